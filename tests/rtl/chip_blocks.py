"""A chip block (the tile or the controller) alone on Amaranth's simulator, in lockstep with its model.

The tile and controller tests (tests/rtl/test_tile.py, tests/rtl/test_controller.py) drive the
block's network port (``node``, :class:`~rramcim.rtl.noc.ni.NodeSignature`) as the network
would, and its model (:class:`~rramcim.model.chip_cycle.TileModel`,
:class:`~rramcim.model.chip_cycle.ControllerModel`) with the same events, cycle by cycle:

* receive: :class:`RxFeed` offers queued packets one flit a cycle, with idle cycles drawn
  ahead from a seed (a flit once offered stays until it is taken, as a router's output does);
* transmit: :class:`TxCheck` takes the block's flit in the cycles a pattern drawn ahead says
  the network is ready, and checks that the RTL and the model offer the same flit kinds in
  every cycle and send the same header (destination, type, length) or word in every cycle a
  flit goes;
* counters: :class:`BankEmulator` plays the counter bank's round robin on the block's counter
  port and adds up the pre-counters, so the totals compare with the model's counters.

Every difference raises :class:`BlockMismatch` naming the cycle.
"""

from collections import deque
from typing import NamedTuple

from rramcim.model.encoding import unpack_header
from rramcim.rtl.counters import PRE_BITS

__all__ = ["BlockMismatch", "Flit", "RxFeed", "TxCheck", "BankEmulator", "compare_counters", "counter_port", "draw",
           "tile_cycle"]


class BlockMismatch(AssertionError):
    """The RTL block and its model disagree."""


def counter_port(member: str) -> str:
    """The I/O name of ``member`` (``running``, ``clear``, ``take``, ``pre``) of a block's counter port."""
    return f"counters__{member}"


class Flit(NamedTuple):
    """A flit as the models see it delivered (``model.noc`` flits have the same fields)."""

    head: bool
    tail: bool
    data: int


def draw(rng, n: int, p: float) -> list:
    """``n`` cycles of a pattern: True with probability ``p``."""
    return [bool(v) for v in rng.random(n) < p]


class RxFeed:
    """Packets to a block's ``rx_header`` / ``rx_payload``, one flit a cycle.

    A packet is offered from its release cycle on, in the order added; no flit is offered in
    a cycle ``idle`` marks, unless it was offered before and not taken yet.
    """

    def __init__(self, cfg, idle: list):
        self.cfg, self.idle = cfg, idle
        self.flits = deque()            # (release cycle, Flit)
        self.current = None

    def add(self, header: int, payload=(), release: int = 0):
        payload = list(payload)
        self.flits.append((release, Flit(True, not payload, header)))
        for k, w in enumerate(payload):
            self.flits.append((release, Flit(False, k == len(payload) - 1, w)))

    @property
    def empty(self) -> bool:
        return self.current is None and not self.flits

    def offer(self, io, t):
        """Drive the rx streams for cycle ``t``; returns the flit offered or None."""
        if self.current is None and self.flits and self.flits[0][0] <= t and not self.idle[t % len(self.idle)]:
            self.current = self.flits.popleft()[1]
        f = self.current
        io.set("node__rx_header__valid", f is not None and f.head)
        io.set("node__rx_payload__valid", f is not None and not f.head)
        if f is not None:
            if f.head:
                io.set("node__rx_header__payload", f.data)
            else:
                io.set("node__rx_payload__payload", f.data | (int(f.tail) << self.cfg.flit_width))
        return f

    def taken(self):
        self.current = None


class TxCheck:
    """The block's transmit side against the model's offer, and the network's readiness.

    ``ready``: a pattern of cycles in which the network takes a flit. ``sent`` lists every
    flit that went: ``(cycle, "header", (dest, type, length))`` or ``(cycle, "payload", word)``.
    """

    def __init__(self, cfg, ready: list):
        self.cfg, self.ready = cfg, ready
        self.sent = []

    def drive(self, io, t) -> bool:
        r = self.ready[t % len(self.ready)]
        io.set("node__tx_header__ready", r)
        io.set("node__tx_payload__ready", r)
        return r

    def check(self, io, t, offered) -> bool:
        """Compare cycle ``t``'s offers (the model's: ``(TxHeader or None, word or None)`` or None);
        True if the flit goes."""
        hv, pv = io.get("node__tx_header__valid"), io.get("node__tx_payload__valid")
        mh, mw = offered if offered is not None else (None, None)
        if (bool(hv), bool(pv)) != (mh is not None, mw is not None):
            raise BlockMismatch(f"cycle {t}: the RTL offers header {hv} payload {pv}, the model "
                                f"{'a header' if mh is not None else 'no header'} and "
                                f"{'a payload word' if mw is not None else 'no payload word'}")
        if not self.ready[t % len(self.ready)] or not (hv or pv):
            return False
        if hv:
            rtl, model = (self._fields(io.get("node__tx_header__payload")), self._fields(mh.word))
            if rtl != model:
                raise BlockMismatch(f"cycle {t}: header (dest, type, length) RTL {rtl}, model {model}")
            self.sent.append((t, "header", rtl))
        else:
            rtl = io.get("node__tx_payload__payload")
            if rtl != mw:
                raise BlockMismatch(f"cycle {t}: payload word RTL {rtl:#x}, model {mw:#x}")
            self.sent.append((t, "payload", rtl))
        return True

    def _fields(self, word):
        h = unpack_header(self.cfg, word)         # the source is the NI's to fill in
        return h["dest"], h["type"], h["length"]


class BankEmulator:
    """The counter bank's side of one block's counter port (rtl/counters.py): while running it
    takes one pre-counter a cycle, round robin, and adds the value it had to a total."""

    def __init__(self, n: int):
        self.n, self.f, self.total = n, 0, [0] * n

    def drive(self, io, running: bool, clear: bool = False):
        """Cycle inputs: ``running`` and ``clear`` as the core gives them, ``take`` as the bank does."""
        io.set(counter_port("running"), running)
        io.set(counter_port("clear"), clear)
        io.set(counter_port("take"), (1 << self.f) if running else 0)
        if clear:
            self.f, self.total = 0, [0] * self.n

    def pre(self, io) -> list:
        word = io.get(counter_port("pre"))
        return [(word >> (k * PRE_BITS)) & ((1 << PRE_BITS) - 1) for k in range(self.n)]

    def take(self, io, running: bool):
        """Before the clock edge of a cycle driven with ``running``: the bank takes slot ``f``."""
        if running:
            self.total[self.f] += self.pre(io)[self.f]
            self.f = (self.f + 1) % self.n

    def values(self, io) -> list:
        return [t + p for t, p in zip(self.total, self.pre(io))]


def compare_counters(names, rtl_values, model_values: dict):
    """The counters by name; raise on the first that differs."""
    rtl = dict(zip(names, rtl_values))
    bad = {n: (rtl[n], model_values[n]) for n in names if rtl[n] != model_values[n]}
    if bad:
        raise BlockMismatch(f"counters (RTL, model) differ: {bad}")
    return rtl


def tile_cycle(io, t, feed: RxFeed, tx: TxCheck, bank: "BankEmulator", model) -> bool:
    """One cycle of a tile and its model (:class:`~rramcim.model.chip_cycle.TileModel`) in lockstep:
    drive the feed, the network's readiness and the counter bank, check the rx readiness, the flit
    offered and idleness against the model, apply the cycle to the model. True if a flit was sent."""
    flit = feed.offer(io, t)
    tx.drive(io, t)
    bank.drive(io, running=True)
    offered = model.offer(t)
    ready = (io.get("node__rx_header__ready"), io.get("node__rx_payload__ready"))
    if ready != (model.rx_ready(True), model.rx_ready(False)):
        raise BlockMismatch(f"cycle {t}: rx ready (header, payload) RTL {ready}, model state {model.state}")
    sent = tx.check(io, t, offered)
    if io.get("idle") != model.idle:
        raise BlockMismatch(f"cycle {t}: RTL idle {io.get('idle')}, model state {model.state}")
    taken = flit is not None and ready[0 if flit.head else 1]
    bank.take(io, True)
    model.cycle(t, [flit] if taken else (), True if sent else None)
    if taken:
        feed.taken()
    return sent
