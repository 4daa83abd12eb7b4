"""A link between two routers, with ``cuts`` register stages.

``cuts = 0`` is a plain connection (the mesh default: one cycle per hop).
Each cut is a two-entry :class:`~.fifo.StreamFIFO`: it adds one cycle of
latency, keeps full throughput and breaks every combinational path, for long
wires in a physical design.
"""

from amaranth.hdl import Module
from amaranth.lib import wiring, stream
from amaranth.lib.wiring import In, Out

from .fifo import StreamFIFO

__all__ = ["Link"]


class Link(wiring.Component):
    """Parameters
    ----------
    shape : shape-castable
    cuts : int
        Register stages, 0 or more.

    Members
    -------
    a : In(stream.Signature(shape))
    b : Out(stream.Signature(shape))
    """

    def __init__(self, shape, cuts: int = 0):
        if not isinstance(cuts, int) or cuts < 0:
            raise TypeError(f"cuts must be a non-negative integer, not {cuts!r}")
        self.shape, self.cuts = shape, cuts
        super().__init__({"a": In(stream.Signature(shape)), "b": Out(stream.Signature(shape))})

    def elaborate(self, platform):
        m = Module()
        prev = wiring.flipped(self.a)
        for k in range(self.cuts):
            f = m.submodules[f"cut{k}"] = StreamFIFO(self.shape, 2)
            wiring.connect(m, prev, f.w)
            prev = f.r
        wiring.connect(m, prev, wiring.flipped(self.b))
        return m
