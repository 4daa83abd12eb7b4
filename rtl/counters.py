"""Performance counters: narrow pre-counters where the events happen, 64-bit totals in a memory.

A counter's value is the sum of two parts:

* a *pre-counter* in flip-flops next to its events (the controller's, a tile's), as wide
  as ``period`` cycles of its largest increment need (:func:`pre_counters`);
* a 64-bit *total* in a memory of the :class:`CounterBank`, one word per counter (a clear
  marks every total as not written yet: it reads 0 until the round robin first writes it).

While the chip runs, the bank visits one counter per cycle, round robin over all ``period``
of them: it reads the total, takes the pre-counter (which restarts from that cycle's
increment) and writes the sum back the next cycle. A pre-counter therefore holds at most
``period`` cycles of increments, and no event is lost or counted twice. While the chip is not
running nothing counts, and the bank's read port serves the host: ``value`` = total +
pre-counter of ``index``, one cycle later (as a 64-bit register read would be). A read
while the chip runs returns an unspecified value (the port is the round robin's).

A block with pre-counters shows them on a :class:`CounterPort` (``pre`` out; ``running``,
``clear`` and ``take`` in); the bank has one flipped port per block (``source0``, ...), which
the chip connects to the blocks' ports with ``wiring.connect``.

The 64-bit adders and registers of the counters become one adder, a memory and a
multiplexer over the narrow pre-counters: on an FPGA the totals are one block RAM
(docs/fpga.md), the values read are those of 64-bit registers.
"""

from amaranth.hdl import Array, Const, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..model.encoding import COUNTER_NAMES, TILE_COUNTER_BASE, TILE_COUNTER_NAMES, TILE_COUNTER_STRIDE
from ..model.config import Config

__all__ = ["COUNTER_BITS", "PRE_BITS", "CounterPort", "CounterBank", "pre_counters", "max_amount",
           "counter_count", "counter_indices"]

COUNTER_BITS = 64
PRE_BITS = 32           # the width of a pre-counter port (the pre-counters themselves are narrower)


class CounterPort(wiring.Signature):
    """The pre-counters of a block, from the block's side.

    Parameters
    ----------
    n : int
        How many pre-counters.

    Members
    -------
    running : In(1)
        The chip is running: events count.
    clear : In(1)
        Clear the pre-counters (a start).
    take : In(n)
        One-hot: the bank takes this pre-counter in this cycle.
    pre : Out(array of n x PRE_BITS)
        The pre-counters' values.
    """

    def __init__(self, n: int):
        if not isinstance(n, int) or n < 1:
            raise TypeError(f"n must be a positive int, not {n!r}")
        self.n = n
        super().__init__({
            "running": In(1),
            "clear": In(1),
            "take": In(n),
            "pre": Out(data.ArrayLayout(PRE_BITS, n)),
        })

    def __eq__(self, other):
        return type(other) is CounterPort and other.n == self.n

    def __repr__(self):
        return f"CounterPort({self.n})"


def counter_count(cfg: Config) -> int:
    """How many counter indices the host can read (``cnt_index`` < this)."""
    return TILE_COUNTER_BASE + cfg.mesh_x * cfg.mesh_y * TILE_COUNTER_STRIDE


def counter_indices(cfg: Config) -> list:
    """The indices of the counters (docs/isa.md numbering), in the order of the bank's slots."""
    tiles = [TILE_COUNTER_BASE + t * TILE_COUNTER_STRIDE + k
             for t in range(cfg.mesh_x * cfg.mesh_y) for k in range(len(TILE_COUNTER_NAMES))]
    return list(range(len(COUNTER_NAMES))) + tiles


def max_amount(amount) -> int:
    """The largest value of an increment: an int, or any value of a signal's shape."""
    if isinstance(amount, int):
        return amount
    shape = amount.shape()
    return (1 << shape.width) - 1 if not shape.signed else (1 << (shape.width - 1)) - 1


def pre_counters(m, incs: dict, *, period: int, port) -> None:
    """The pre-counters of ``incs`` (name -> list of ``(cond, amount)``), in the order of ``incs``,
    on ``port`` (a :class:`CounterPort` interface: its ``pre`` is driven here).

    ``port.take`` (one bit a counter): the bank takes this counter in this cycle, which restarts
    it from this cycle's increment. Each is as wide as ``period`` cycles of its increments need.
    """
    assert len(incs) == len(port.pre), (len(incs), len(port.pre))
    for k, (name, terms) in enumerate(incs.items()):
        most = period * sum(max_amount(a) for _, a in terms)
        pre = Signal(max(1, most.bit_length()), name=f"pre_{name}")
        assert len(pre) <= PRE_BITS, f"pre-counter {name} needs {len(pre)} bits"
        with m.If(port.clear):
            m.d.sync += pre.eq(0)
        with m.Elif(port.running):
            _count(m, pre, terms, port.take[k])
        m.d.comb += port.pre[k].eq(pre)


def _count(m, pre, terms, taken):
    """Add the amounts of the terms whose condition holds (to 0 if ``taken``).

    A counter of one term adds under an enable, so that its condition (often late in the cycle:
    a handshake with the network) does not go through the adder's carry chain.
    """
    if len(terms) == 1:
        cond, amount = terms[0]
        with m.If(taken):
            m.d.sync += pre.eq(Mux(cond, amount, 0))
        with m.Elif(cond):
            m.d.sync += pre.eq(pre + amount)
    elif terms:
        m.d.sync += pre.eq(Mux(taken, 0, pre) + sum(Mux(cond, amount, 0) for cond, amount in terms))
    else:
        m.d.sync += pre.eq(0)


class CounterBank(wiring.Component):
    """The 64-bit totals of the counters at ``indices`` (of ``depth`` index values; others read 0).

    The counters take slots 0, 1, ... in the order of ``indices``; the round robin visits the slots.

    Parameters
    ----------
    indices : list of int
        The counter index of each slot.
    depth : int
        How many counter indices the host can read.
    sizes : list of int or None
        How many slots each source block has, in slot order (default: one source of them all).

    Members
    -------
    source0, source1, ... : In(CounterPort(size))
        The sources' pre-counters; the bank gives each ``running`` and ``clear`` and takes one
        pre-counter a cycle (``take``, one-hot over all slots, 0 while not running).
    running, clear : In(1)
        Counting (the round robin runs); clear every counter (the totals read 0).
    index : In(range(depth))
        The counter to read (while not running).
    value : Out(COUNTER_BITS)
        Counter ``index`` of the cycle before.
    """

    def __init__(self, indices: list, depth: int, sizes: list | None = None):
        assert len(indices) >= 2 and len(set(indices)) == len(indices) and max(indices) < depth
        self.indices, self.depth = list(indices), depth
        n = len(indices)
        self.sizes = list(sizes) if sizes is not None else [n]
        if sum(self.sizes) != n or min(self.sizes) < 1:
            raise ValueError(f"sizes {self.sizes} do not split the {n} slots")
        super().__init__({
            **{f"source{s}": In(CounterPort(size)) for s, size in enumerate(self.sizes)},
            "running": In(1),
            "clear": In(1),
            "index": In(range(depth)),
            "value": Out(COUNTER_BITS),
        })

    def elaborate(self, platform):
        m = Module()
        n = len(self.indices)
        m.submodules.totals = mem = Memory(shape=COUNTER_BITS, depth=n, init=[])
        rd, wr = mem.read_port(), mem.write_port()

        f = Signal(range(n))                # the slot the round robin takes in this cycle
        fresh = Signal(init=1)              # the first round since the clear: slots >= f hold no total yet
        with m.If(self.clear):
            m.d.sync += [f.eq(0), fresh.eq(1)]
        with m.Elif(self.running):
            m.d.sync += f.eq(Mux(f == n - 1, 0, f + 1))
            with m.If(f == n - 1):
                m.d.sync += fresh.eq(0)
        take = Signal(n)
        m.d.comb += take.eq(Mux(self.running, Const(1, n) << f, 0))
        pre, slot = [], 0
        for s, size in enumerate(self.sizes):
            port = getattr(self, f"source{s}")
            m.d.comb += [port.running.eq(self.running), port.clear.eq(self.clear),
                         port.take.eq(take[slot:slot + size])]
            pre += [port.pre[k] for k in range(size)]
            slot += size

        # the host's index to its slot (an unused index: no slot, reads 0)
        slot_of = {i: s for s, i in enumerate(self.indices)}
        used = Array([Const(i in slot_of, 1) for i in range(self.depth)])[self.index]
        slot = Array([Const(slot_of.get(i, 0), range(n)) for i in range(self.depth)])[self.index]
        sel = Signal(range(n))
        m.d.comb += [sel.eq(Mux(self.running, f, slot)), rd.addr.eq(sel)]
        # the cycle after: the total read (if the slot holds one), the pre-counter's value then,
        # and whether it was taken
        sel_q = Signal(range(n))
        part = Signal(PRE_BITS)
        taken = Signal()
        valid = Signal()
        used_q = Signal()
        m.d.sync += [sel_q.eq(sel), part.eq(Array(pre)[sel]),
                     taken.eq(self.running), valid.eq(~fresh | (sel < f)), used_q.eq(used)]

        bypass = Signal()                   # the total read was written in the cycle it was read
        bypass_value = Signal(COUNTER_BITS)
        base = Mux(bypass, bypass_value, Mux(valid, rd.data, 0))
        total = Signal(COUNTER_BITS)
        m.d.comb += [total.eq(base + part), self.value.eq(Mux(used_q, total, 0))]
        m.d.comb += [wr.addr.eq(sel_q), wr.data.eq(total), wr.en.eq(taken)]
        m.d.sync += [bypass.eq(taken & (sel_q == sel) & ~self.clear), bypass_value.eq(total)]
        return m
