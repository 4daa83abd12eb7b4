"""Requantization with a per-column multiplier, exactly as onnxruntime computes it.

onnxruntime's CPU kernels (``MlasRequantizeOutput``; QLinearConv, QGemm, QLinearMatMul)
turn an int32 accumulator ``v = acc + bias`` into an 8-bit output with float32 arithmetic::

    f = float32(v)                 # round to nearest even when |v| > 2**24
    f = float32(f * M)             # M = fl(fl(x_scale * w_scale[j]) / y_scale), per column j
    y = rint(f) + zp               # rint: round half to even
    y = clamp(y, lo, hi)

(ORT clamps ``f`` to ``[lo - zp, hi - zp]`` before it rounds; the bounds are integers, so that
is the same.) No fixed-point multiply ``(v * m + c) >> s`` equals this for every ``v``: the
float product is rounded to 24 significant bits before it is rounded to an integer, and where
that first rounding lands on a half the second goes to even (``M = 16093781 * 2**-33``,
``v = 62181``: the product is 116.50000191, float32 makes it 116.5, rint 116; correctly
rounded it is 117). So the chip computes the float pipeline with integers, in the same steps
as the RTL lane (:class:`rramcim.rtl.postproc.RequantLane`), on ``M = m * 2**-s`` with ``m``
the 24-bit significand (its leading one included) and ``s`` its exponent:

1. ``A = |v|``; ``A24`` = ``A`` rounded to 24 significant bits, half to even (``float32(v)``);
2. ``P = A24 * m`` (exact, at most 49 bits);
3. ``P24`` = ``P`` rounded to 24 significant bits, half to even (``float32(f * M)``),
   ``P24 = (P24 >> dp) << dp`` in value;
4. ``r = round(P24 / 2**(s - d))``, with ``d`` the bits step 1 dropped: half to even, or with
   ``even = 0`` half toward +infinity (on the signed value: a negative tie rounds toward 0);
5. ``y = clamp(sign * r + zp, lo, hi)``.

Every step is exact integer arithmetic, so this module is also the proof's executable half:
``tests/model/test_requant.py`` compares it with numpy's float32 (IEEE, like SSE) on every
near-tie and on random accumulators.

Per column the tile holds ``m`` (24 bits), ``s`` (6 bits), ``even`` (1 bit), and the output
zero point and bounds ``zp``, ``lo``, ``hi`` (``xbits`` each): the requant vector,
:func:`rq_words`.
"""

from __future__ import annotations

import numpy as np

__all__ = ["M_BITS", "S_BITS", "S_MIN", "S_MAX", "multiplier_parts", "requant", "requant_float",
           "rq_words", "rq_unpack", "pack_rq", "RequantError"]

M_BITS = 24                 # the significand, its leading one included
S_BITS = 6
S_MIN, S_MAX = 16, 63       # M = m * 2**-s in [2**-40, 2**8): what can reach an 8-bit output


class RequantError(ValueError):
    """A multiplier the requant unit cannot hold."""


def multiplier_parts(M) -> tuple[np.ndarray, np.ndarray]:
    """float32 multipliers ``M`` (any shape) -> ``(m, s)`` int64 with ``M == m * 2**-s`` exactly,
    ``2**23 <= m < 2**24`` and ``S_MIN <= s <= S_MAX``. ``M`` outside ``[2**-40, 2**8)`` (or not
    finite, or not positive) is a :class:`RequantError` naming the value."""
    M = np.asarray(M, dtype=np.float32)
    bad = ~np.isfinite(M) | (M < np.float32(2.0 ** -40)) | (M >= np.float32(2.0 ** 8))
    if bad.any():
        v = float(M[bad].flat[0])
        raise RequantError(f"requant multiplier {v!r} is outside [2**-40, 2**8)")
    bits = M.view(np.uint32).astype(np.int64)
    e = (bits >> 23) & 0xFF
    m = (bits & 0x7FFFFF) | (1 << 23)
    return m, 150 - e


def _bitlen(x: np.ndarray) -> np.ndarray:
    """Bit length of non-negative int64 values (0 for 0)."""
    x = np.asarray(x, dtype=np.int64)
    n = np.zeros(x.shape, dtype=np.int64)
    for b in (32, 16, 8, 4, 2, 1):
        big = (x >> n) >= (1 << b)
        n = n + np.where(big, b, 0)
    return n + (x >> n > 0)


def _round_sig(x: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """``x`` (non-negative) rounded to ``bits`` significant bits, half to even:
    ``(q, d)`` with the value ``q * 2**d`` (``q`` may be ``2**bits`` after a carry)."""
    d = np.maximum(_bitlen(x) - bits, 0)
    q = x >> d
    rest = x - (q << d)
    half = np.where(d > 0, np.int64(1) << np.maximum(d - 1, 0), 0)
    up = (d > 0) & ((rest > half) | ((rest == half) & ((q & 1) == 1)))
    return q + up, d


def requant(v, m, s, zp, lo, hi, even=True) -> np.ndarray:
    """The requant unit on int32 values ``v = wrap(acc + bias)`` (any shape, broadcast with the
    per-column ``m``, ``s``, ``zp``, ``lo``, ``hi``, ``even``): int64 outputs in ``[lo, hi]``."""
    v = np.asarray(v, dtype=np.int64)
    m, s = np.asarray(m, dtype=np.int64), np.asarray(s, dtype=np.int64)
    neg = v < 0
    a24, d = _round_sig(np.abs(v), 24)                 # float32(v) = a24 * 2**d
    p = a24 * m                                        # < 2**49
    p24, dp = _round_sig(p, 24)                        # float32(f * M) = p24 * 2**(dp + d - s)
    sh = s - d - dp                                    # r = round(p24 / 2**sh)
    # sh <= 0: |f * M| >= 2**23 (p24 >= 2**23): saturates for any 8-bit output
    shc = np.clip(sh, 1, 62)
    q = p24 >> shc
    guard = (p24 >> (shc - 1)) & 1
    sticky = (p24 & ((np.int64(1) << (shc - 1)) - 1)) != 0
    even = np.asarray(even, dtype=bool)
    # half to even; half toward +inf: up on a tie for a positive value, not for a negative one
    up = (guard == 1) & (sticky | np.where(even, (q & 1) == 1, ~neg))
    r = np.where(sh <= 0, 1 << 24, q + up)
    y = np.where(neg, -r, r) + np.asarray(zp, dtype=np.int64)
    return np.clip(y, lo, hi)


def requant_float(v, M, zp, lo, hi) -> np.ndarray:
    """The same with numpy's float32 (IEEE round to nearest even, as SSE/AVX): onnxruntime's
    ``MlasRequantizeOutput`` written as it is. The reference the tests hold :func:`requant` to."""
    f = np.asarray(v, dtype=np.int32).astype(np.float32) * np.asarray(M, dtype=np.float32)
    zp = np.asarray(zp, dtype=np.int64)
    f = np.clip(f, (np.asarray(lo) - zp).astype(np.float32), (np.asarray(hi) - zp).astype(np.float32))
    return np.rint(f).astype(np.int64) + zp


def rq_words(m, s, even, zp, lo, hi, xbits: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """The requant vector's two per-column 32-bit elements (docs/isa.md, ``ldrq``):
    ``e0 = m | s << 24 | even << 30``, ``e1 = zp | lo << xbits | hi << 2 * xbits`` (each
    ``xbits`` two's complement), as int64 arrays of unsigned values."""
    mask = (1 << xbits) - 1
    e0 = np.asarray(m, np.int64) | np.asarray(s, np.int64) << 24 | np.asarray(even, np.int64) << 30
    e1 = (np.asarray(zp, np.int64) & mask) | (np.asarray(lo, np.int64) & mask) << xbits \
        | (np.asarray(hi, np.int64) & mask) << 2 * xbits
    return e0, e1


def pack_rq(cfg, e0, e1, c0: int = 0, n: int | None = None) -> list[int]:
    """Columns ``c0 .. c0+n-1`` of the requant words ``e0``, ``e1`` as a tile's requant vector in the
    global buffer (``ldrq``): two ``acc_bits`` vectors of ``cols`` elements, zero padded."""
    from .encoding import pack_vector
    e = [np.broadcast_to(np.asarray(a, np.int64), np.shape(e0)) for a in (e0, e1)]
    n = len(e[0]) - c0 if n is None else n
    words = []
    for a in e:
        v = np.zeros(cfg.cols, dtype=np.int64)
        v[:n] = a[c0:c0 + n]
        v = np.where(v >= 1 << (cfg.acc_bits - 1), v - (1 << cfg.acc_bits), v)    # as acc_bits elements
        words += pack_vector(v, cfg.acc_bits, cfg.flit_width)
    return words


def rq_unpack(e0, e1, xbits: int = 8) -> dict[str, np.ndarray]:
    """Inverse of :func:`rq_words` (the tile's view of a requant vector)."""
    e0, e1 = np.asarray(e0, np.int64), np.asarray(e1, np.int64)
    mask, sign = (1 << xbits) - 1, 1 << (xbits - 1)

    def sx(f):
        return ((f & mask) ^ sign) - sign
    return {"m": e0 & ((1 << 24) - 1), "s": (e0 >> 24) & 63, "even": (e0 >> 30) & 1,
            "zp": sx(e1), "lo": sx(e1 >> xbits), "hi": sx(e1 >> 2 * xbits)}
