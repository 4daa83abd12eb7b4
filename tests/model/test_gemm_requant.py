"""compile_gemm's requant epilogue (``rq``: ldrq, outq rq=1) and its addend (ldpsum into the first K-group),
on the cycle-exact model, against model/requant.py's arithmetic written out here; K split over tiles and
passes, N over blocks."""

import numpy as np
import pytest

from rramcim.model.compiler import CompileError, compile_gemm
from rramcim.model.config import PRESETS
from rramcim.model.requant import multiplier_parts, requant, rq_words
from rramcim.sim.backends.jobs import run_plan

SHAPES = [(5, 20, 11), (7, 70, 40), (3, 9, 3), (9, 200, 70)]


@pytest.mark.parametrize("name", ["tiny", "default"])
@pytest.mark.parametrize("M, K, N", SHAPES)
def test_requant_epilogue_and_addend(name, M, K, N):
    cfg = PRESETS[name]
    rng = np.random.default_rng(M * K + N)
    A, B = rng.integers(-128, 128, (M, K)), rng.integers(-128, 128, (K, N))
    b = rng.integers(-5000, 5000, N)
    scale = (np.float32(2.0) ** rng.uniform(-15, -6, N)).astype(np.float32)
    scale[::3] = np.float32(2.0) ** -rng.integers(8, 14, len(scale[::3]))     # powers of two: exact ties
    m, s = multiplier_parts(scale)
    zp, lo, hi = int(rng.integers(-20, 20)), -128, 127
    even = rng.integers(0, 2, N)
    C = rng.integers(-40000, 1, (M, N))
    Y, _ = run_plan(compile_gemm(cfg, A, B, bias=b, rq=rq_words(m, s, even, zp, lo, hi)), "model")
    assert np.array_equal(np.asarray(Y), requant(A @ B + b, m, s, zp, lo, hi, even == 1))
    Y, _ = run_plan(compile_gemm(cfg, A, B, bias=b, rq=rq_words(m, s, even, zp, zp, hi), addend=C), "model")
    assert np.array_equal(np.asarray(Y), requant(A @ B + b + C, m, s, zp, zp, hi, even == 1))
    Y, _ = run_plan(compile_gemm(cfg, A, B, addend=C), "model")
    assert np.array_equal(np.asarray(Y), A @ B + C)


def test_bad_requant_arguments():
    A, B = np.ones((2, 3), int), np.ones((3, 4), int)
    rq = rq_words(*multiplier_parts(np.full(4, 0.01, np.float32)), 1, 0, -128, 127)
    with pytest.raises(CompileError, match="no requant unit"):
        compile_gemm(PRESETS["ulx3s"], A, B, rq=rq)
    with pytest.raises(CompileError, match="replaces shift and relu"):
        compile_gemm(PRESETS["tiny"], A, B, rq=rq, shift=3)
    with pytest.raises(CompileError, match=r"rq: two integer arrays of shape \(4,\)"):
        compile_gemm(PRESETS["tiny"], A, B, rq=(rq[0][:3], rq[1]))
    with pytest.raises(CompileError, match="addend"):
        compile_gemm(PRESETS["tiny"], A, B, addend=np.ones((2, 3), int))
