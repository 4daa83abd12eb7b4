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

* :func:`biased`, per column: ``a = wrap(acc + bias)``, which is also the
  word ``out`` sends (with or without the bias);
* :class:`ShiftClampLane`, per element of the word being sent: ``y``.

The lane does not form the rounded sum: ``floor((a + 2**(s-1)) / 2**s) =
(a >> s) + a[s-1]`` (the rounding bit is the highest bit shifted out), so it
shifts only the ``xbits + 1`` bits a clamped result can depend on, adds the
rounding bit to them, and tells from the bits of ``a`` above them whether
``a >> s`` is out of that range (then the clamp gives the bound of its sign).

Later additions have a place: a per-column fixed-point multiplier goes
between the bias add and the lane (``a * m``, then a wider shift), a
round-half-even mode changes only the rounding bit (and the bits below it),
an output zero point adds after the clamp.
"""

from amaranth.hdl import Cat, Const, Module, Signal, Mux, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..model.config import Config

__all__ = ["ShiftClampLane", "SHIFT_BITS", "biased"]

SHIFT_BITS = 5


def biased(cfg: Config, acc, bias):
    """``wrap(acc + bias)`` (signed, ``acc_bits``)."""
    return (acc + bias)[:cfg.acc_bits].as_signed()


class ShiftClampLane(wiring.Component):
    """Members
    -------
    a : In(signed(acc_bits))
        :func:`biased` of the element's column.
    shift : In(5)
        0..31.
    relu : In(1)
    y : Out(signed(xbits))
        Combinational.
    """

    def __init__(self, cfg: Config):
        self.cfg = cfg
        super().__init__({
            "a": In(signed(cfg.acc_bits)),
            "shift": In(SHIFT_BITS),
            "relu": In(1),
            "y": Out(signed(cfg.xbits)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        A, X = cfg.acc_bits, cfg.xbits
        a, s = self.a, self.shift
        n = X + 1                       # bits of q = a >> s kept: q + the rounding bit can be 2**X
        # q = a >> s (floor), its low n bits; rb = a[s - 1] (0 for s = 0)
        q = Signal(signed(n))
        m.d.comb += q.eq(a >> s if A <= n else (a >> s)[:n].as_signed())
        rb = Signal()
        m.d.comb += rb.eq(Cat(Const(0, 1), a, a[-1].replicate(1 << SHIFT_BITS)).bit_select(s, 1))
        # a >> s fits n bits iff the bits of a from position s + n - 1 up all equal its sign:
        # no two neighbours differ there
        change = [a[i] ^ a[i + 1] for i in range(A - 1)]
        outside = Signal()
        m.d.comb += outside.eq(Cat(*[change[i] & (s + (n - 1) <= i) for i in range(A - 1)]).any())
        r = Signal(signed(n + 1))
        m.d.comb += r.eq(q + rb)
        lo, hi = -(1 << (X - 1)), (1 << (X - 1)) - 1
        clamped = Signal(signed(X))
        with m.If(outside):
            m.d.comb += clamped.eq(Mux(a[-1], lo, hi))
        with m.Elif(r < lo):
            m.d.comb += clamped.eq(lo)
        with m.Elif(r > hi):
            m.d.comb += clamped.eq(hi)
        with m.Else():
            m.d.comb += clamped.eq(r)
        m.d.comb += self.y.eq(Mux(self.relu & (clamped < 0), 0, clamped))
        return m
