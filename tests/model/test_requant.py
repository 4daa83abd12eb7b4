"""The requant unit's integer steps (model/requant.py) against onnxruntime's float32 formula
written with numpy's float32 (IEEE round to nearest even, like SSE): near-ties, exact ties,
large accumulators, every rounding mode."""

import numpy as np
import pytest

from rramcim.model.requant import (RequantError, multiplier_parts, requant, requant_float, rq_unpack,
                                   rq_words)

BOUNDS = [(0, 0, 255), (-128, -128, 127), (5, -128, 127), (77, 0, 255), (-3, -3, 127), (10, -20, 40)]


def _cases(M, rng):
    """Accumulators near every half-integer output, plus random and extreme ones."""
    k = np.arange(-300, 300)
    c = np.round((k + 0.5) / float(M)).astype(np.int64)
    v = np.concatenate([c + d for d in range(-2, 3)]
                       + [rng.integers(-2**31, 2**31, 3000), rng.integers(-2**26, 2**26, 3000),
                          np.array([0, 1, -1, -2**31, 2**31 - 1, 2**24, 2**24 + 1, -2**24 - 3])])
    return np.clip(v, -2**31, 2**31 - 1)


@pytest.mark.parametrize("seed", range(3))
def test_requant_equals_float32(seed):
    rng = np.random.default_rng(seed)
    Ms = [np.float32(2.0 ** rng.uniform(-20, 2)) for _ in range(60)]
    Ms += [np.float32(2.0 ** -k) for k in range(1, 21)] + [np.float32(2 ** -9.06), np.float32(2.0 ** -39.5)]
    for M in Ms:
        m, s = multiplier_parts(M)
        v = _cases(M, rng)
        for zp, lo, hi in BOUNDS:
            got, want = requant(v, m, s, zp, lo, hi), requant_float(v, M, zp, lo, hi)
            bad = np.flatnonzero(got != want)
            assert bad.size == 0, f"M={float(M)!r} zp={zp}: v={v[bad[0]]} gives {got[bad[0]]}, float32 {want[bad[0]]}"


def test_double_rounding_example():
    """The float product 116.50000191 is 116.5 in float32, and rint makes it 116: a correctly rounded
    fixed point gives 117."""
    M = np.float32(2 ** -9.06)
    m, s = multiplier_parts(M)
    assert (int(m), int(s)) == (16093781, 33)
    assert int(requant(62181, m, s, 0, -128, 127)) == 116
    assert round(62181 * int(m) / 2 ** 33) == 117


def test_half_up_differs_only_on_ties():
    M = np.float32(2.0 ** -4)
    m, s = multiplier_parts(M)
    v = np.arange(-2000, 2000)
    up = requant(v, m, s, 0, -128, 127, even=False)
    want = np.clip(np.floor(v / 16 + 0.5), -128, 127)          # ties toward +infinity
    assert np.array_equal(up, want)
    even = requant(v, m, s, 0, -128, 127)
    assert np.array_equal(even, requant_float(v, M, 0, -128, 127))
    assert (up != even).sum() > 0 and np.all(np.abs(up - even) <= 1)
    assert np.all((up == even) | (v % 16 == 8))


def test_multiplier_range():
    for bad in (0.0, -1.0, 2.0 ** 8, 2.0 ** -41, np.inf, np.nan):
        with pytest.raises(RequantError, match="outside"):
            multiplier_parts(np.float32(bad))
    m, s = multiplier_parts(np.array([2.0 ** -40, 255.99], np.float32))
    assert list(s) == [63, 16] and all(2**23 <= int(x) < 2**24 for x in m)


def test_rq_words_round_trip():
    rng = np.random.default_rng(1)
    m, s = multiplier_parts(np.float32(2.0) ** rng.uniform(-30, 7, 50).astype(np.float32))
    even, zp, lo, hi = (rng.integers(0, 2, 50), rng.integers(-128, 128, 50), rng.integers(-128, 128, 50),
                        rng.integers(-128, 128, 50))
    back = rq_unpack(*rq_words(m, s, even, zp, lo, hi))
    for k, v in dict(m=m, s=s, even=even, zp=zp, lo=lo, hi=hi).items():
        assert np.array_equal(back[k], v), k
