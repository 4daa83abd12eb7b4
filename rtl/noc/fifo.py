"""A stream FIFO with registered flags, for router inputs and link cuts.

Protocol: ``w.ready`` is high while fewer than ``depth`` entries are stored
(it does not look at ``r.ready``: a full FIFO takes nothing, even in a cycle
where it is read). ``r.valid`` is high while an entry is stored; ``r.payload``
is the oldest entry. An entry written in cycle ``t`` can be read from cycle
``t+1``. Both flags come from registers, so no combinational path crosses
the FIFO.
"""

from amaranth.hdl import Module, Signal, Array, Mux
from amaranth.lib import wiring, stream
from amaranth.lib.wiring import In, Out

__all__ = ["StreamFIFO"]


def _next(ptr, depth):
    """The pointer after ``ptr`` in a ring of ``depth`` entries."""
    return Mux(ptr == depth - 1, 0, ptr + 1)


class StreamFIFO(wiring.Component):
    """Parameters
    ----------
    shape : shape-castable
        Payload shape.
    depth : int
        Entries, at least 1.

    Members
    -------
    w : In(stream.Signature(shape))
    r : Out(stream.Signature(shape))
    level : Out(range(depth + 1))
        Entries stored.
    """

    def __init__(self, shape, depth: int):
        if not isinstance(depth, int) or depth < 1:
            raise TypeError(f"depth must be a positive integer, not {depth!r}")
        self.shape, self.depth = shape, depth
        super().__init__({
            "w": In(stream.Signature(shape)),
            "r": Out(stream.Signature(shape)),
            "level": Out(range(depth + 1)),
        })

    def elaborate(self, platform):
        m = Module()
        d = self.depth
        storage = Array(Signal(self.shape, name=f"entry{i}") for i in range(d))
        wp = Signal(range(d))
        rp = Signal(range(d))
        level = self.level
        w_fire = self.w.valid & self.w.ready
        r_fire = self.r.valid & self.r.ready
        m.d.comb += [
            self.w.ready.eq(level != d),
            self.r.valid.eq(level != 0),
            self.r.payload.eq(storage[rp]),
        ]
        with m.If(w_fire):
            m.d.sync += storage[wp].eq(self.w.payload)
            m.d.sync += wp.eq(_next(wp, d))
        with m.If(r_fire):
            m.d.sync += rp.eq(_next(rp, d))
        m.d.sync += level.eq(level + w_fire - r_fire)
        return m
