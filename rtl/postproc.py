"""Post-processing of a tile's outputs: bias, rounding shift, clamp, ReLU; or requantization.

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

With a requant unit (:attr:`rramcim.model.config.Config.has_requant`) an element can instead
be requantized as onnxruntime does it (:func:`rramcim.model.requant.requant`, ``outq rq=1``):
:class:`RequantLane`, on the same ``a``, applies the column's multiplier ``M = m * 2**-s`` as
float32 arithmetic would (``|a|`` and the product each rounded to 24 significant bits), rounds
to an integer half to even or half up, adds the output zero point and clamps to the column's
bounds, with integers only: one 25 x 24 multiplier and one barrel shifter a lane.
"""

from amaranth.hdl import Cat, Const, Module, Signal, Mux, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..model.config import Config
from ..model.requant import M_BITS, S_BITS

__all__ = ["ShiftClampLane", "RequantLane", "SHIFT_BITS", "biased"]

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


def _smear_down(x):
    """Bit ``i`` set iff ``x`` has a one at ``i`` or above (``x | x >> 1 | x >> 2 | ...``)."""
    step = 1
    while step < len(x):
        x = x | (x >> step)
        step *= 2
    return x


def _shift_right(m, x, amount, width, name):
    """``x >> amount`` to ``width`` bits, in ``m``, the highest bit of ``amount`` first: a stage keeps
    only the bits the smaller stages can still bring into the result. Also the OR of the bits
    shifted out below (a sticky bit) and of those dropped above (``x >> amount >= 2**width``)."""
    below, above = Const(0, 1), Const(0, 1)
    for k in reversed(range(len(amount))):
        step = 1 << k
        kept = Signal(width + step - 1, name=f"{name}{step}")
        shifted = Mux(amount[k], x[step:], x)
        m.d.comb += kept.eq(shifted)
        below = below | (amount[k] & x[:step].any())
        above = above | shifted[len(kept):].any()
        x = kept
    return x, below, above


class RequantLane(wiring.Component):
    """onnxruntime's float32 requantization of one output element, with integers (combinational).

    ``y = requant(a, m, s, zp, lo, hi, even)`` of :mod:`rramcim.model.requant`, bit for bit, for
    every input (also ``m < 2**23``, ``s < 16`` and ``lo > hi``, which the compiler never loads):

    1. ``A = |a|`` (32 bits; ``|-2**31|`` fits). The leading one of ``A[24:32]`` gives ``d`` (0..8);
       a shifter of 4 stages gives ``A >> d`` (24 bits), the guard bit ``A[d-1]`` and, from the
       bits its stages shift out, the sticky bit. ``A24 = (A >> d) + up`` (25 bits: ``2**24``
       after a carry), half to even.
    2. ``P = A24 * m``: 25 x 24 bits, ``P < 2**48``.
    3. ``P`` rounded to 24 significant bits, half to even, in place: with ``dp`` its bits beyond 24
       (0..24), ``R = P24 * 2**dp`` (49 bits) is ``P`` with its ``dp`` low bits cleared, plus
       ``2**dp`` when it rounds up (a 49-bit incrementer). No shifter: the mask of the ``dp`` low
       bits is ``P[24:48]`` smeared down (bit ``i`` is below ``dp`` iff ``P`` has a one at ``i + 24``
       or above), and the guard, sticky and lowest kept bits are masked ORs of ``P`` at its edge.
    4. ``r = round(R / 2**t)`` with ``t = s - d`` (1..63), which is the model's
       ``round(P24 / 2**(s - d - dp))``: the lane's one wide shifter, 6 stages from the largest,
       takes ``Cat(0, R)`` to ``xbits + 2`` bits (the guard bit and ``R >> t`` to ``xbits + 1``
       bits), each stage keeping only the bits the later ones can bring into the result; the bits
       shifted out below make the sticky bit, those dropped above tell ``R >> t >= 2**(xbits +
       1)``. Ties to even (``even = 1``) or toward +infinity on the signed value (``even = 0``: up
       when ``a >= 0``, toward 0 when ``a < 0``).
    5. ``r >= 2**(xbits + 1)`` saturates the magnitude to ``2**(xbits + 1) - 1`` (so does
       ``s <= d``, as the model does): ``3 * 2**(xbits - 1) - 1`` or more beyond any ``zp``, outside
       every ``xbits`` range. ``y = min(max(sign * r + zp, lo), hi)`` (numpy's ``clip``; ``xbits + 3``
       bits before the clamp).

    Step 2 is the lane's size (a 25 x 24 multiplier, or 4 18 x 18 DSP blocks on an FPGA); the
    rest is about a 49-bit incrementer, two shifters of 4 and 6 stages and the clamp.

    Parameters
    ----------
    cfg : Config
        ``acc_bits`` must be 32 (the int32 accumulators the requantization is defined on).

    Members
    -------
    a : In(signed(32))
        :func:`biased` of the element's column: ``wrap(acc + bias)``.
    m : In(24)
        The multiplier's significand, its leading one included: ``2**23 <= m < 2**24``.
    s : In(6)
        Its exponent, 16..63: ``M = m * 2**-s``.
    even : In(1)
        1: ties to even (onnxruntime); 0: ties toward +infinity.
    zp, lo, hi : In(signed(xbits))
        Output zero point and clamp bounds.
    y : Out(signed(xbits))
        Combinational.
    """

    def __init__(self, cfg: Config):
        if not isinstance(cfg, Config):
            raise TypeError(f"cfg must be a Config, not {cfg!r}")
        if cfg.acc_bits != 32:
            raise ValueError(f"RequantLane needs acc_bits = 32 (onnxruntime's int32 accumulators), "
                             f"not {cfg.acc_bits}")
        self.cfg = cfg
        X = cfg.xbits
        super().__init__({
            "a": In(signed(32)),
            "m": In(M_BITS),
            "s": In(S_BITS),
            "even": In(1),
            "zp": In(signed(X)),
            "lo": In(signed(X)),
            "hi": In(signed(X)),
            "y": Out(signed(X)),
        })

    @staticmethod
    def round_up(guard, sticky, tie):
        """Whether a value rounds up, from the highest bit dropped (``guard``), the OR of the bits
        below it (``sticky``) and whether a tie rounds up (``tie``)."""
        return guard & (sticky | tie)

    def elaborate(self, platform):
        # One submodule a step: each is its own process on Amaranth's simulator (a change runs
        # only the steps after it), and each step's size shows in a synthesis report.
        m = Module()
        N = self.cfg.xbits + 1                          # bits of a magnitude that does not saturate
        neg = self.a[-1]
        a24, d = Signal(25), Signal(4)
        m.submodules.round_a = self._round_a(neg, a24, d)
        P = Signal(48)                                  # a24 <= 2**24, m < 2**24
        m.d.comb += P.eq(a24 * self.m)
        R = Signal(49)
        m.submodules.round_p = self._round_p(P, R)
        mag, sat = Signal(N), Signal()
        m.submodules.shift = self._shift(neg, R, d, mag, sat)
        m.submodules.clamp = self._clamp(neg, mag, sat)
        return m

    def _round_a(self, neg, a24, d):
        """Step 1: ``|a|`` rounded to 24 significant bits, half to even: ``a24 * 2**d``."""
        m = Module()
        A = Mux(neg, -self.a, self.a)[:32]
        lead = Const(0, 4)
        for i in range(24, 32):                         # the highest one wins
            lead = Mux(A[i], i - 23, lead)
        m.d.comb += d.eq(lead)
        # A[d-1] (0 if d = 0), then A >> d; and A[:d-1].any() (the bits above are zero)
        w0, sticky, _ = _shift_right(m, Cat(Const(0, 1), A), d, 25, "shift_a")
        m.d.comb += a24.eq(w0[1:] + self.round_up(w0[0], sticky, w0[1]))
        return m

    def _round_p(self, P, R):
        """Step 3: ``P`` rounded to 24 significant bits, half to even, in place (the ``dp`` bits
        below them cleared): ``R = P24 * 2**dp``."""
        m = Module()
        mask = Signal(24)                               # mask[i]: i < dp, i.e. P[i+24:].any()
        m.d.comb += mask.eq(_smear_down(P[24:]))
        edge = Cat(mask, Const(0, 1))
        guard = (P[:24] & edge[:24] & ~edge[1:]).any()
        sticky = (P[:23] & edge[1:24]).any()
        lsb = (P[1:25] & edge[:24] & ~edge[1:]).any()
        wide_mask = Cat(mask, Const(0, 24))
        m.d.comb += R.eq(((P | wide_mask) + self.round_up(guard, sticky, lsb)) & ~wide_mask)
        return m

    def _shift(self, neg, R, d, mag, sat):
        """Step 4: ``round(R / 2**t)``, ``t = s - d``, as a magnitude of ``N`` bits and whether it
        saturates (``R >> t >= 2**N``, or ``s <= d``)."""
        m = Module()
        N = len(mag)
        t = Signal(S_BITS)
        m.d.comb += t.eq(self.s - d)
        x, sticky, over = _shift_right(m, Cat(Const(0, 1), R), t, N + 1, "shift")
        r = x[1:] + self.round_up(x[0], sticky, Mux(self.even, x[1], ~neg))
        m.d.comb += [
            sat.eq((self.s <= d) | over | r[N]),
            mag.eq(r),
        ]
        return m

    def _clamp(self, neg, mag, sat):
        """Step 5: ``min(max(sign * r + zp, lo), hi)``, a saturated magnitude ``2**N - 1``."""
        m = Module()
        N = len(mag)
        v = Signal(signed(N + 2))
        m.d.comb += v.eq(Mux(neg, -(mag | sat.replicate(N)), mag | sat.replicate(N)) + self.zp)
        v_lo = Mux(v < self.lo, self.lo, v)
        m.d.comb += self.y.eq(Mux(v_lo > self.hi, self.hi, v_lo))
        return m
