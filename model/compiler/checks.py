"""The compiler's input checks: the config, the operands ``A`` and ``B`` and the epilogue (``bias``,
``shift``, ``relu``); each failure a :class:`~.plan.CompileError` whose one line names the input."""

from __future__ import annotations

import numpy as np

from ..config import Config
from .plan import CompileError

def _check_operand(name: str, X) -> np.ndarray:
    X = np.asarray(X)
    if X.dtype.kind not in "iu":
        raise CompileError(f"{name}: dtype {X.dtype} is not an integer type (int8 values expected)")
    if X.ndim != 2:
        raise CompileError(f"{name}: must be 2-D, not shape {tuple(X.shape)}")
    if 0 in X.shape:
        raise CompileError(f"{name}: shape {tuple(X.shape)} has an empty dimension")
    if X.size:
        lo, hi = int(X.min()), int(X.max())
        if lo < -128 or hi > 127:
            bad = lo if lo < -128 else hi
            raise CompileError(f"{name}: value {bad} outside the int8 range -128..127")
    return X.astype(np.int64)


def _check(cfg: Config, A, B) -> tuple[np.ndarray, np.ndarray]:
    for f in ("wbits", "xbits"):
        if getattr(cfg, f) < 8:
            raise CompileError(f"{f}: the GEMM takes int8 operands; config {cfg.name!r} has {f}="
                               f"{getattr(cfg, f)} < 8")
    if cfg.acc_bits < 32:
        raise CompileError(f"acc_bits: C is int32; config {cfg.name!r} has acc_bits={cfg.acc_bits} < 32")
    A = _check_operand("A", A)
    B = _check_operand("B", B)
    if A.shape[1] != B.shape[0]:
        raise CompileError(f"K mismatch: A is {A.shape[0]}x{A.shape[1]} but B is {B.shape[0]}x{B.shape[1]} "
                           f"(A's columns must equal B's rows)")
    return A, B


def _check_epilogue(cfg: Config, N: int, bias, shift, relu) -> tuple[np.ndarray | None, int | None, int]:
    if bias is not None:
        b = np.asarray(bias)
        if b.dtype.kind not in "iu":
            raise CompileError(f"bias: dtype {b.dtype} is not an integer type (int32 values expected)")
        if b.shape != (N,):
            raise CompileError(f"bias: shape {tuple(b.shape)}, expected ({N},) (one value per column of B)")
        lo, hi = int(b.min()), int(b.max())
        blo, bhi = max(-(1 << 31), -(1 << (cfg.acc_bits - 1))), min((1 << 31) - 1, (1 << (cfg.acc_bits - 1)) - 1)
        if lo < blo or hi > bhi:
            bad = lo if lo < blo else hi
            raise CompileError(f"bias: value {bad} outside the int32 / acc_bits={cfg.acc_bits} range {blo}..{bhi}")
        bias = b.astype(np.int64)
    if shift is not None:
        if isinstance(shift, (bool, np.bool_)) or not isinstance(shift, (int, np.integer)) or not 0 <= shift <= 31:
            raise CompileError(f"shift: {shift!r} is not None or an integer 0..31")
        shift = int(shift)
        if cfg.xbits != 8:
            raise CompileError(f"shift: outq gives xbits-wide outputs and C is int8; config {cfg.name!r} has "
                               f"xbits={cfg.xbits}")
    if isinstance(relu, (bool, np.bool_)) or not isinstance(relu, (int, np.integer)) or relu not in (0, 1):
        raise CompileError(f"relu: {relu!r} is not 0 or 1")
    relu = int(relu)
    if relu and shift is None:
        raise CompileError("relu: needs shift (ReLU is done by outq; out sends int32 without it)")
    return bias, shift, relu


def _check_rq(cfg: Config, N: int, rq, shift, relu):
    """``rq``: None, or the requant vector's two per-column element arrays ``(e0, e1)`` [N]
    (:func:`rramcim.model.requant.rq_words`), which replace ``shift`` and ``relu``."""
    if rq is None:
        return None
    if not cfg.has_requant:
        raise CompileError(f"rq: config {cfg.name!r} has no requant unit (requant = {cfg.requant}, acc_bits = "
                           f"{cfg.acc_bits}, xbits = {cfg.xbits})")
    if cfg.xbits != 8:
        raise CompileError(f"rq: C is int8; config {cfg.name!r} has xbits={cfg.xbits}")
    if shift or relu:
        raise CompileError("rq: replaces shift and relu (give 0 or None)")
    e = [np.asarray(a) for a in rq]
    if len(e) == 2 and all(a.ndim == 0 for a in e[1:]):      # one zero point and bounds for every column
        e[1] = np.full(N, e[1])
    if len(e) != 2 or any(a.shape != (N,) or a.dtype.kind not in "iu" for a in e):
        raise CompileError(f"rq: two integer arrays of shape ({N},) expected (the requant vector's elements)")
    if any(int(a.min()) < 0 or int(a.max()) >= 1 << 32 for a in e):
        raise CompileError("rq: elements are 32-bit unsigned words")
    return tuple(a.astype(np.int64) for a in e)
