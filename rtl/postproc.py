"""Post-processing of a tile's outputs: bias, rounding shift, clamp, ReLU.

One output element is made from one accumulator column exactly as
:func:`rramcim.model.chip.post_process` (docs/isa.md, ``outq``):

    a = wrap(acc + bias)                          # acc_bits, two's complement
    r = a                          if shift == 0
        floor((a + 2**(shift-1)) / 2**shift)      otherwise (ties toward +inf)
    y = clamp(r, -2**(xbits-1), 2**(xbits-1)-1)
    y = max(y, 0)                  if relu

in two parts, which the tile's sender puts in two register stages (the FPGA
clock, docs/fpga.md):

* :func:`rounded_sum`, per column: ``t = a + half``, with ``half =
  2**(shift-1)`` (:func:`rounding_half`, 0 for ``shift == 0``), in
  :func:`wide_bits` bits so that it never overflows; ``half = 0`` gives
  ``a`` itself, the word ``out`` sends;
* :class:`ShiftClampLane`, per element of the word being sent: ``y =
  relu(clamp(t >> shift))``.

Later additions have a place: a per-column fixed-point multiplier goes
between the bias add and the rounding add (``a * m``, then a wider shift),
a round-half-even mode changes only the rounding constant, an output zero
point adds after the clamp.
"""

from amaranth.hdl import Const, Module, Signal, Mux, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..model.config import Config

__all__ = ["ShiftClampLane", "SHIFT_BITS", "rounded_sum", "rounding_half", "wide_bits"]

SHIFT_BITS = 5


def wide_bits(cfg: Config) -> int:
    """Bits of ``t = a + half``: wide enough for ``a + 2**30`` at any ``acc_bits``."""
    return max(cfg.acc_bits, 1 << SHIFT_BITS) + 1


def rounding_half(cfg: Config, shift):
    """``2**(shift-1)`` for ``shift`` 1..31, 0 for ``shift == 0``, in :func:`wide_bits` bits."""
    wide = wide_bits(cfg)
    return Mux(shift == 0, 0, Const(1, wide) << (shift - 1)[:SHIFT_BITS])


def rounded_sum(cfg: Config, acc, bias, half):
    """``sext(wrap(acc + bias)) + half`` (signed, :func:`wide_bits` bits)."""
    a = (acc + bias)[:cfg.acc_bits].as_signed()
    return (a + half)[:wide_bits(cfg)].as_signed()


class ShiftClampLane(wiring.Component):
    """Members
    -------
    t : In(signed(wide_bits))
        :func:`rounded_sum` of the element's column.
    shift : In(5)
        0..31.
    relu : In(1)
    y : Out(signed(xbits))
        Combinational.
    """

    def __init__(self, cfg: Config):
        self.cfg = cfg
        super().__init__({
            "t": In(signed(wide_bits(cfg))),
            "shift": In(SHIFT_BITS),
            "relu": In(1),
            "y": Out(signed(cfg.xbits)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        r = Signal(signed(wide_bits(cfg)))
        m.d.comb += r.eq(self.t >> self.shift)              # arithmetic: floor
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
