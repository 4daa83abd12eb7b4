"""The post-processing lane of a tile: bias, rounding shift, clamp, ReLU.

One lane turns one accumulator column into one output element, exactly as
:func:`rramcim.model.chip.post_process` (docs/isa.md, ``outq``):

    a = wrap(acc + bias)                          # acc_bits, two's complement
    r = a                          if shift == 0
        floor((a + 2**(shift-1)) / 2**shift)      otherwise (ties toward +inf)
    y = clamp(r, -2**(xbits-1), 2**(xbits-1)-1)
    y = max(y, 0)                  if relu

A tile has ``flit_width // xbits`` lanes, one per element of the word it is
sending. The lane is a stage of its own so that later additions have a place:
a per-column fixed-point multiplier goes between the bias add and the shift
(``a * m`` then a wider shift), a round-half-even mode changes only the
rounding constant (``2**(shift-1) - 1 + r_odd``), an output zero point adds
after the clamp.
"""

from amaranth.hdl import Const, Module, Signal, Mux, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..model.config import Config

__all__ = ["PostProcessLane", "SHIFT_BITS"]

SHIFT_BITS = 5


class PostProcessLane(wiring.Component):
    """Members
    -------
    acc, bias : In(signed(acc_bits))
    shift : In(5)
        0..31.
    relu : In(1)
    y : Out(signed(xbits))
        Combinational.
    """

    def __init__(self, cfg: Config):
        self.cfg = cfg
        super().__init__({
            "acc": In(signed(cfg.acc_bits)),
            "bias": In(signed(cfg.acc_bits)),
            "shift": In(SHIFT_BITS),
            "relu": In(1),
            "y": Out(signed(cfg.xbits)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        a = Signal(signed(cfg.acc_bits))
        m.d.comb += a.eq(self.acc + self.bias)              # wraps to acc_bits
        # Wide enough for a + 2**30 without overflow at any acc_bits.
        wide = max(cfg.acc_bits, 1 << SHIFT_BITS) + 1
        half = Signal(wide)
        m.d.comb += half.eq(Mux(self.shift == 0, 0, Const(1, wide) << (self.shift - 1)[:SHIFT_BITS]))
        t = Signal(signed(wide))
        m.d.comb += t.eq(a + half)
        r = Signal(signed(wide))
        m.d.comb += r.eq(t >> self.shift)                   # arithmetic: floor
        lo, hi = -(1 << (cfg.xbits - 1)), (1 << (cfg.xbits - 1)) - 1
        clamped = Signal(signed(cfg.xbits))
        with m.If(r < lo):
            m.d.comb += clamped.eq(lo)
        with m.Elif(r > hi):
            m.d.comb += clamped.eq(hi)
        with m.Else():
            m.d.comb += clamped.eq(r)
        m.d.comb += self.y.eq(Mux(self.relu & (clamped < 0), 0, clamped))
        return m
