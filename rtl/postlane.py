"""One post-processing lane of a tile's sender: the rounding shift or, on chips with the requant
unit (``cfg.has_requant``), onnxruntime's per-column requantization (docs/isa.md, ``outq``).

A lane makes one ``xbits`` output element from one biased accumulator column ``a``:
:class:`~.postproc.ShiftClampLane` (``shift``, ``relu``) when ``rq`` is 0,
:class:`~.postproc.RequantLane` with the column's half-words of the tile's requant vector
(``e0``: ``m | s << 24 | even << 30``; ``e1``: ``zp | lo << xbits | hi << 2*xbits``,
:func:`rramcim.model.requant.rq_words`) when ``rq`` is 1. Without the unit the lane is the
shift lane alone and ``rq``, ``e0``, ``e1`` are unused (the Verilog of such a chip is that of
before).
"""

from amaranth.hdl import Module, Mux, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..model.config import Config
from .postproc import SHIFT_BITS, RequantLane, ShiftClampLane

__all__ = ["PostLane", "RQ_BITS"]

RQ_BITS = 32            # a requant vector element (the tile's acc_bits, which the unit requires)


class PostLane(wiring.Component):
    """Members
    -------
    a : In(signed(acc_bits))
        ``wrap(acc + bias)`` of the element's column.
    shift : In(5), relu : In(1)
        The shift lane's operands.
    rq : In(1)
        1: the requant lane's result.
    e0, e1 : In(32)
        The column's requant vector elements.
    y : Out(signed(xbits))
        Combinational.
    """

    def __init__(self, cfg: Config):
        self.cfg = cfg
        super().__init__({
            "a": In(signed(cfg.acc_bits)),
            "shift": In(SHIFT_BITS),
            "relu": In(1),
            "rq": In(1),
            "e0": In(RQ_BITS),
            "e1": In(RQ_BITS),
            "y": Out(signed(cfg.xbits)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg, X = self.cfg, self.cfg.xbits
        m.submodules.sc = sc = ShiftClampLane(cfg)
        m.d.comb += [sc.a.eq(self.a), sc.shift.eq(self.shift), sc.relu.eq(self.relu)]
        if not cfg.has_requant:
            m.d.comb += self.y.eq(sc.y)
            return m
        m.submodules.rq = rq = RequantLane(cfg)
        e0, e1 = self.e0, self.e1
        m.d.comb += [rq.a.eq(self.a), rq.m.eq(e0[:24]), rq.s.eq(e0[24:30]), rq.even.eq(e0[30]),
                     rq.zp.eq(e1[:X].as_signed()), rq.lo.eq(e1[X:2 * X].as_signed()),
                     rq.hi.eq(e1[2 * X:3 * X].as_signed()),
                     self.y.eq(Mux(self.rq, rq.y, sc.y))]
        return m
