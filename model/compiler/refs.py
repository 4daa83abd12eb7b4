"""Operations (``(name, operands, _Ref or None)``, made by :func:`_op`) and the GEMM's operands in
the global buffer, as :class:`_Ref` s the emitter places when a round goes into a window: rows of
``A`` (``ldact``), rows of ``B``'s blocks (``ldw``), the bias (``ldbias``), the ranges of ``C`` the host
reads (``out``/``outq``) and the P region's partial sums (``ldpsum``)."""

from __future__ import annotations

import numpy as np

from ..encoding import pack_vector
from ..requant import pack_rq
from ..config import Config
from .layout import _Unit


class _Ref:
    """A global-buffer operand: data the host writes (``'in'``, allocated once per window and key),
    a result range the host reads (``'out'``), or a fixed address (``'fixed'``, the P region)."""

    __slots__ = ("addr", "key", "kind", "make", "nwords", "read")

    def __init__(self, kind, key=None, nwords=0, make=None, addr=None, read=None):
        self.kind, self.key, self.nwords, self.make, self.addr, self.read = kind, key, nwords, make, addr, read


def _op(name, ref=None, **operands):
    return (name, operands, ref)


def _tile_of(op):
    return (op[1]["tx"], op[1]["ty"]) if "tx" in op[1] else None


class _Refs:
    """The global-buffer operands of one GEMM: ``A``, ``B`` (int64 arrays of int8 values), the
    epilogue (``bias``, ``shift``, ``relu``), the P region's first word ``p_base``, and ``mblock0``,
    the first row of the M-block being compiled (its partial sums start at ``p_base``)."""

    def __init__(self, cfg: Config, A: np.ndarray, B: np.ndarray, bias: np.ndarray | None, shift: int | None,
                 relu: int, p_base: int, rq=None, addend=None):
        self.cfg, self.A, self.B = cfg, A, B
        self.rq, self.addend = rq, addend
        self.bias, self.shift, self.relu = bias, shift, relu
        self.K = A.shape[1]
        self.N = B.shape[1]
        self.p_base = p_base
        self.mblock0 = 0

    def x_ref(self, kb: int, r0: int, r1: int) -> _Ref:
        """Rows ``r0 .. r1-1`` of ``A``'s K-block ``kb``, zero padded: ``words_x`` words a row."""
        cfg, R = self.cfg, self.cfg.rows

        def make():
            X = np.zeros((r1 - r0, R), dtype=np.int64)
            k1 = min(self.K, (kb + 1) * R)
            X[:, :k1 - kb * R] = self.A[r0:r1, kb * R:k1]
            return [w for v in X for w in pack_vector(v, cfg.xbits, cfg.flit_width)]
        return _Ref("in", ("x", kb, r0, r1), (r1 - r0) * cfg.words_x, make)

    def w_ref(self, kb: int, nb: int, row0: int, n: int) -> _Ref:
        """Rows ``row0 .. row0+n-1`` of block (kb, nb) of ``B``, zero padded: ``words_w`` words a row."""
        cfg, R, Cc = self.cfg, self.cfg.rows, self.cfg.cols

        def make():
            Wt = np.zeros((n, Cc), dtype=np.int64)
            c1 = min(self.N, (nb + 1) * Cc)
            Wt[:, :c1 - nb * Cc] = self.B[kb * R + row0:kb * R + row0 + n, nb * Cc:c1]
            return [w for v in Wt for w in pack_vector(v, cfg.wbits, cfg.flit_width)]
        return _Ref("in", ("w", kb, nb, row0, n), n * cfg.words_w, make)

    def b_ref(self, nb: int) -> _Ref:
        """N-block ``nb``'s slice of the bias (zeros without one), zero padded: ``words_a`` words."""
        cfg, Cc = self.cfg, self.cfg.cols

        def make():
            v = np.zeros(Cc, dtype=np.int64)
            if self.bias is not None:
                c1 = min(self.N, (nb + 1) * Cc)
                v[:c1 - nb * Cc] = self.bias[nb * Cc:c1]
            return pack_vector(v, cfg.acc_bits, cfg.flit_width)
        return _Ref("in", ("b", nb), cfg.words_a, make)

    def addend_ref(self, nb: int, r0: int, r1: int) -> _Ref:
        """Rows ``r0 .. r1-1`` of N-block ``nb`` of the addend (``ldpsum`` into the first K-group's
        accumulators), zero padded: ``words_a`` words a row."""
        cfg, Cc = self.cfg, self.cfg.cols

        def make():
            V = np.zeros((r1 - r0, Cc), dtype=np.int64)
            c1 = min(self.N, (nb + 1) * Cc)
            V[:, :c1 - nb * Cc] = self.addend[r0:r1, nb * Cc:c1]
            return [w for v in V for w in pack_vector(v, cfg.acc_bits, cfg.flit_width)]
        return _Ref("in", ("c", nb, r0, r1), (r1 - r0) * cfg.words_a, make)

    def first_in(self, u, t, r0: int, r1: int, slot: int):
        """What accumulator slots ``slot..`` of tile ``t`` take after its ``mvm`` of rows ``r0 .. r1-1``:
        the partial sums of the earlier K-groups (``pin``), or the addend (the first K-group), or nothing."""
        if u.pin:
            return [_op("ldpsum", self.p_ref(r0, r1), tx=t[0], ty=t[1], slot=slot, count=r1 - r0)]
        if self.addend is not None:
            return [_op("ldpsum", self.addend_ref(u.nb, r0, r1), tx=t[0], ty=t[1], slot=slot, count=r1 - r0)]
        return []

    def rq_ref(self, nb: int) -> _Ref:
        """N-block ``nb``'s slice of the requant vector (``rq``), zero padded: ``2 * words_a`` words."""
        cfg, Cc = self.cfg, self.cfg.cols

        def make():
            return pack_rq(cfg, *self.rq, nb * Cc, min(self.N, (nb + 1) * Cc) - nb * Cc)
        return _Ref("in", ("rq", nb), 2 * cfg.words_a, make)

    def out_ref(self, u: _Unit, r0: int, r1: int) -> _Ref:
        if u.final:
            words = self.cfg.words_q if self.shift is not None else self.cfg.words_a
            return _Ref("out", None, (r1 - r0) * words, read=(r0, r1 - r0, u.nb))
        return self.p_ref(r0, r1)

    def out_op(self, u: _Unit, r0: int, r1: int, t, b: int):
        """Rows ``r0 .. r1-1`` from accumulator slots ``b..`` of tile ``t``: raw partial sums to the P
        region (not final), else ``C``: ``out`` (``bias=1`` with a bias) or ``outq`` (requantized). Only
        the final out of an output adds the bias, so it is added once whatever the K split."""
        ops = {"tx": t[0], "ty": t[1], "b": b, "count": r1 - r0}
        ref = self.out_ref(u, r0, r1)
        if not u.final:
            return _op("out", ref, **ops)
        if self.rq is not None:
            return _op("outq", ref, rq=1, **ops)
        if self.shift is not None:
            return _op("outq", ref, shift=self.shift, relu=self.relu, **ops)
        if self.bias is not None:
            return _op("out", ref, bias=1, **ops)
        return _op("out", ref, **ops)

    def p_ref(self, r0: int, r1: int) -> _Ref:
        return _Ref("fixed", addr=self.p_base + (r0 - self.mblock0) * self.cfg.words_a)
