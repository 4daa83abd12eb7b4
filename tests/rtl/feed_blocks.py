"""A stand-in mesh for the controller's standing-sequence instructions (``ldseq``, ``chan``, ``feed``).

tests/rtl/test_controller_feed.py runs the controller alone against
:class:`~rramcim.model.chip_cycle.ControllerModel` (``run_controller`` of
tests/rtl/test_controller.py) with:

* :class:`SortedRx`: an :class:`~tests.rtl.chip_blocks.RxFeed` that delivers packets in the order
  of their release cycle (not of when they were queued) and records every flit delivered;
* :class:`FeedMesh`: the tiles as a pipeline would answer the controller: an ``ACK`` for each
  ``ldseq``; for each ``XS`` packet it takes, a ``CREDIT`` from the channel's tile (the header's
  source) after a delay drawn ahead, never more credits than packets (one for each of the first
  ``count - credits`` vectors of a channel, as a tile's ring frees them, and now and then one for
  a later vector); ``RESULT_S`` packets (argument gaddr, 1..``words_a`` words, from a random tile)
  so that every ``feed`` gets its ``expect``, some at random cycles after the ``feed`` is fetched
  and some chasing a packet (sent as its header goes, to the words it is about to read);
  everything else as :class:`~tests.rtl.test_controller.FakeMesh`;
* :func:`feed_program`: random programs of the older instructions with ``ldseq`` / ``chan`` /
  ``feed`` segments inserted;
* :func:`feed_facts`: what a run exercised, from the flits (results written to a word a feed
  packet was sending, credits that arrived in the cycle a packet started).
"""

from __future__ import annotations

import numpy as np

from rramcim.model.encoding import CTRL, PacketType, pack_header, unpack_header
from rramcim.model.isa import Op, assemble, decode
from rramcim.model.progen import random_program
from tests.rtl.chip_blocks import Flit, RxFeed
from tests.rtl.test_controller import FakeMesh, random_words

__all__ = ["SortedRx", "FeedMesh", "feed_program", "feed_facts", "mesh_with"]


class SortedRx(RxFeed):
    """Packets delivered in the order of their release cycle (ties: in the order added); a packet
    being delivered is never split. ``delivered``: ``(cycle, Flit)`` of every flit taken."""

    def __init__(self, cfg, idle: list):
        super().__init__(cfg, idle)
        self.delivered = []
        self._offered = None

    def add(self, header: int, payload=(), release: int = 0):
        payload = list(payload)
        flits = [(release, Flit(True, not payload, header))]
        flits += [(release, Flit(False, k == len(payload) - 1, w)) for k, w in enumerate(payload)]
        lo = 0
        while lo < len(self.flits) and not self.flits[lo][1].head:     # the rest of a packet under way
            lo += 1
        i = len(self.flits)
        while i > lo and self.flits[i - 1][0] > release:
            i -= 1
        for f in reversed(flits):
            self.flits.insert(i, f)

    def offer(self, io, t):
        f = super().offer(io, t)
        self._offered = (t, f)
        return f

    def taken(self):
        self.delivered.append(self._offered)
        super().taken()


class FeedMesh(FakeMesh):
    """The tiles' answers to ``ldseq`` and feed packets (the module's docstring), the rest as
    :class:`FakeMesh`. Options (give them with :func:`mesh_with`):

    ``credit_delay`` (lo, hi): cycles from a packet's tail to its credit's release; ``p_extra``: a
    credit also for one of a channel's last ``credits`` vectors; ``p_chase``: a result goes with a
    packet's header to that packet's words; ``p_far``: a result to the last global-buffer word (the
    rest past the end); ``result_span``: cycles after the fetch within which the other results go
    (None: as long as the feed's packets take without stalls, doubled).
    """

    def __init__(self, cfg, program, feed, rng, p_err, credit_delay=(0, 24), p_extra=0.3, p_chase=0.4,
                 p_far=0.1, result_span=None):
        super().__init__(cfg, program, feed, rng, p_err)
        seeds = np.random.default_rng(int(rng.integers(1 << 32)))
        self.delays = [int(d) for d in seeds.integers(credit_delay[0], credit_delay[1] + 1, 4099)]
        self.draws = seeds.random(4093)          # the answers' coin flips, drawn ahead
        self.nd = self.nr = 0
        self.p_extra, self.p_chase, self.p_far, self.result_span = p_extra, p_chase, p_far, result_span
        self.tiles = [(x, y) for y in range(cfg.mesh_y) for x in range(cfg.mesh_x)]
        self.chans = {}              # channel -> dict(tile, gaddr, words, credits, fetched)
        self.run = None              # the feed under way: dict(count, order, n, chase)
        self.feeds = []              # every feed with channels: dict(chans, packets: [XS records])
        self.results = 0             # RESULT_S packets sent
        self.chan_log = []           # (cycle, tile) of every chan fetched

    def _delay(self):
        self.nd += 1
        return self.delays[self.nd % len(self.delays)]

    def _coin(self, p):
        self.nr += 1
        return self.draws[self.nr % len(self.draws)] < p

    def _pick(self, n):
        self.nr += 1
        return int(self.draws[self.nr % len(self.draws)] * n)

    def fetched(self, t, word):
        ins = decode(word)
        o = ins.ops
        if ins.op == Op.CHAN:
            self.chans[o["c"]] = dict(tile=(o["tx"], o["ty"]), gaddr=o["gaddr"], words=o["words"],
                                      credits=o["credits"], fetched=t)
            self.chan_log.append((t, (o["tx"], o["ty"])))
        elif ins.op == Op.FEED:
            self._start(t, o["count"], o["expect"])

    def _start(self, t, count, expect):
        order = sorted(self.chans)
        chase = {}
        span = self.result_span or 2 * count * sum(self.chans[c]["words"] + 1 for c in order) + 8
        for _ in range(expect):
            if order and self._coin(self.p_chase):
                chase.setdefault(self._pick(count * len(order)), []).append(None)
            else:
                self._result(t + 1 + self._pick(span), self._address(None))
        if order:
            self.run = dict(count=count, order=order, n=0, chase=chase)
            self.feeds.append(dict(chans={c: dict(self.chans[c]) for c in order}, packets=[]))
        self.chans = {} if order else self.chans

    def _address(self, packet):
        """A result's address: the last word (``p_far``), else ``packet``'s words (a chase), else a
        word of a channel of the feed or anywhere."""
        cfg = self.cfg
        if self._coin(self.p_far):
            return cfg.gbuf_words - 1
        if packet is not None:
            return max(0, packet["base"] + self._pick(packet["words"] + 1) - 1)
        return self._pick(cfg.gbuf_words)

    def _result(self, release, gaddr):
        cfg = self.cfg
        n = 1 + self._pick(cfg.words_a)
        data = random_words(self.rng, n, cfg.flit_width)
        src = self.tiles[self._pick(len(self.tiles))]
        self.feed.add(pack_header(cfg, CTRL, src, PacketType.RESULT_S, 1 + n), [gaddr] + data, release)
        self.results += 1

    def sent(self, t, kind, value):
        if kind == "header" and value[1] == PacketType.XS:
            r = self.run
            c = r["order"][r["n"] % len(r["order"])]
            ch = self.feeds[-1]["chans"][c]
            v = r["n"] // len(r["order"])
            assert value[0] == ch["tile"], f"cycle {t}: XS to {value[0]}, channel {c} is tile {ch['tile']}"
            packet = dict(c=c, v=v, tile=ch["tile"], header=t, base=ch["gaddr"] + v * ch["words"],
                          words=ch["words"], sent=[])
            self.feeds[-1]["packets"].append(packet)
            for _ in r["chase"].pop(r["n"], []):
                self._result(t + 1 + self._pick(3), self._address(packet))
        elif kind == "payload" and self.header[1] == PacketType.XS:
            p = self.feeds[-1]["packets"][-1]
            p["sent"].append((p["base"] + len(p["sent"]), t))
        super().sent(t, kind, value)

    def _answer(self, t, dest, ptype, words):
        if ptype == PacketType.SEQ:                  # the sequence starts
            self.feed.add(pack_header(self.cfg, CTRL, dest, PacketType.ACK, 0), (), t + 1 + self._delay())
        elif ptype == PacketType.XS:
            r = self.run
            p = self.feeds[-1]["packets"][-1]
            ch = self.feeds[-1]["chans"][p["c"]]
            if p["v"] < r["count"] - ch["credits"] or self._coin(self.p_extra):
                self.feed.add(pack_header(self.cfg, CTRL, dest, PacketType.CREDIT, 0), (), t + 1 + self._delay())
            r["n"] += 1
            if r["n"] == r["count"] * len(r["order"]):
                self.run = None
        else:
            super()._answer(t, dest, ptype, words)


def mesh_with(**options):
    """A :class:`FeedMesh` factory with ``options`` (``run_controller``'s ``mesh_cls``)."""
    return lambda cfg, program, feed, rng, p_err: FeedMesh(cfg, program, feed, rng, p_err, **options)


def feed_program(cfg, seed: int, segments: int = 3, old_steps: int = 10, max_count: int = 6,
                 max_credits: int = 3):
    """``(words, {gbuf address: words})``: a random program of the older instructions
    (:func:`~rramcim.model.progen.random_program`) with ``segments`` feed segments inserted, each
    0..2 ``ldseq`` (and a ``barrier``), ``chan`` s on 0..``feed_channels`` channels (distinct tiles, random
    numbers, words, credits and addresses; now and then one defined twice, the second winning;
    now and then an older instruction between them), a ``feed`` (count 1..``max_count``, expect
    0..count * channels + 1) and mostly a ``barrier``. The global buffer is random words under
    the older program's data."""
    rng = np.random.default_rng(seed + 7919)
    text, data = random_program(cfg, seed, steps=old_steps)
    blocks = [[line] for line in text.strip().splitlines()[:-2]]      # without the final barrier and halt
    tiles = [(x, y) for y in range(cfg.mesh_y) for x in range(cfg.mesh_x)]
    for _ in range(segments):
        seg = []
        n_seq = int(rng.integers(0, 3))
        for _ in range(n_seq):
            x, y = tiles[rng.integers(len(tiles))]
            seg.append(f"ldseq {x},{y} gaddr={int(rng.integers(0, cfg.gbuf_words - cfg.seq_words + 1))}")
        if n_seq:
            seg.append("barrier")
        count = int(rng.integers(1, max_count + 1))
        n = int(rng.integers(0, cfg.feed_channels + 1))
        cs = [int(c) for c in rng.choice(cfg.feed_channels, n, replace=False)]
        ts = [tiles[i] for i in rng.choice(len(tiles), n, replace=False)]
        for c, (x, y) in zip(cs, ts):
            for _ in range(1 + (rng.random() < 0.2)):     # sometimes defined twice: the second counts
                words = int(rng.integers(1, cfg.words_x + 1))
                credits = int(rng.integers(1, min(max_credits, cfg.tile_ibuf_depth) + 1))
                g = int(rng.integers(0, cfg.gbuf_words - count * words + 1))
                seg.append(f"chan {x},{y} c={c} words={words} credits={credits} gaddr={g}")
            if rng.random() < 0.2:
                seg.append(["nop", f"sync {x},{y}"][int(rng.integers(2))])
        seg.append(f"feed count={count} expect={int(rng.integers(0, count * n + 2))}")
        if rng.random() < 0.7:
            seg.append("barrier")
        at = int(rng.integers(0, len(blocks) + 1))
        blocks.insert(at, seg)
    lines = [line for b in blocks for line in b] + ["barrier", "halt"]
    gbuf = {0: random_words(rng, cfg.gbuf_words, cfg.flit_width)}
    image = gbuf[0]
    for a, ws in data.items():
        image[a:a + len(ws)] = ws
    return assemble("\n".join(lines) + "\n"), gbuf


def feed_facts(cfg, mesh: FeedMesh, rx: SortedRx, sent: list) -> dict:
    """What a run exercised, from its flits (``sent``: :attr:`TxCheck.sent`):

    ``hits``: result words written to an address in a cycle between the header of a feed packet
    sending that address and the cycle the word went; ``credit_at_start``: packets that started
    (job) in the cycle their channel's only credit arrived, the packet before ending in that cycle;
    ``credit_at_stall``: the same after the feed waited for the credit; ``credit_at_chan``: credits
    that arrived in the cycle a ``chan`` to their tile was fetched (they count toward it); ``packets``."""
    writes, credits = [], {}
    ptype, addr, k = None, 0, 0
    for t, f in rx.delivered:
        if f.head:
            h = unpack_header(cfg, f.data)
            ptype, k = h["type"], 0
            if ptype == PacketType.CREDIT:
                credits.setdefault(h["src"], []).append(t)
            continue
        if ptype == PacketType.RESULT_S:
            if k == 0:
                addr = f.data & ((1 << 20) - 1)
            else:
                writes.append((t, addr + k - 1))
        k += 1
    flit_cycles = {t for t, _, _ in sent}
    reads = {}
    for fd in mesh.feeds:
        for p in fd["packets"]:
            for a, ts in p["sent"]:
                reads.setdefault(a, []).append((p["header"], ts))
    hits = sum(1 for tw, a in writes for th, ts in reads.get(a, ()) if th <= tw < ts)
    at_start = at_stall = 0
    for fd in mesh.feeds:
        for c, ch in fd["chans"].items():
            mine = [p for p in fd["packets"] if p["c"] == c]
            got = credits.get(ch["tile"], [])
            for i, p in enumerate(mine):
                th = p["header"]
                before = sum(1 for tc in got if ch["fetched"] <= tc <= th - 2)
                if th - 1 in got and ch["credits"] + before - i == 0:
                    if th - 1 in flit_cycles:
                        at_start += 1
                    else:
                        at_stall += 1
    at_chan = sum(1 for t, tile in mesh.chan_log if t in credits.get(tile, ()))
    return dict(hits=hits, credit_at_start=at_start, credit_at_stall=at_stall, credit_at_chan=at_chan,
                packets=sum(len(fd["packets"]) for fd in mesh.feeds))
