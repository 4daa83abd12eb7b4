""":func:`compile_gemm`: the operands checked, the layout cut into passes, each pass's weights
programmed and its rows streamed, retried with smaller rounds when a round does not fit a window."""

from __future__ import annotations

import numpy as np

from ..config import Config
from ..isa import COUNT_MAX
from .checks import _check, _check_epilogue, _check_rq
from .emitter import _Emitter
from .layout import _layout, _Pass
from .plan import CompileError, GemmPlan
from .reduction import _deadlock_free, _delays, _round_psums, _SCHEMES
from .refs import _op, _Refs
from .rounds import _Stream

__all__ = ["compile_gemm"]


class _Compiler:
    """One attempt at a plan: the passes of :func:`~.layout._layout`, each one's weights programmed
    (:meth:`program`) and its rows streamed (:class:`~.rounds._Stream`) with a partial-sum scheme
    that cannot deadlock (:meth:`scheme`). ``max_group``, ``chunk`` and ``act_group`` bound the
    K split, the rows a chunk and the rows an ``ldact`` (None: the defaults)."""

    # tuning, chosen on the cycle-exact model (sim/perf/gemm.py): rows per ldw instruction (the
    # controller interleaves the tiles' rows so that each tile programs while the others receive),
    # rows per chunk without partial sums, rows per ldact when K is split over tiles
    PROGRAM_ROWS = 2
    CHUNK = 4
    ACT_GROUP = 1

    def __init__(self, cfg: Config, A: np.ndarray, B: np.ndarray, max_group: int | None = None,
                 chunk: int | None = None, act_group: int | None = None, bias: np.ndarray | None = None,
                 shift: int | None = None, relu: int = 0, rram: np.ndarray | None = None, tiles: list | None = None,
                 rq=None, addend=None):
        self.cfg, self.A, self.B = cfg, A, B
        self.rq, self.addend = rq, addend
        self.rram = None if rram is None else rram.copy()   # what the rows hold, kept up to date by program()
        self.bias, self.shift, self.relu = bias, shift, relu
        self.epilogue = bias is not None or shift is not None    # final results take the tiles' bias
        self.M, self.K = A.shape
        self.N = B.shape[1]
        self.tiles = tiles                               # the tiles the plan may use (None: all)
        self.max_group = max_group or (cfg.tiles if tiles is None else len(tiles))   # most K-blocks split over tiles
        self.chunk = chunk or COUNT_MAX                  # most rows a chunk
        self.act_group = act_group or self.ACT_GROUP

    def compile(self) -> GemmPlan:
        """The plan, or a :class:`~.plan.CompileError` if a round does not fit a window."""
        cfg = self.cfg
        # K split over tiles needs two accumulator sets at least; else K-groups of one block
        layout, pvec = _layout(cfg, self.M, self.K, self.N, self.max_group if cfg.tile_acc_depth >= 2 else 1,
                               self.tiles)
        p_base = cfg.gbuf_words - pvec * cfg.words_a
        refs = self.refs = _Refs(cfg, self.A, self.B, self.bias, self.shift, self.relu, p_base, self.rq, self.addend)
        em = self.em = _Emitter(cfg, p_base)
        stream = _Stream(cfg, em, refs, self.act_group, self.epilogue)
        passes = []
        for (m0, m1), plist in layout:
            refs.mblock0 = m0
            todo = list(plist)
            while todo:
                ps = todo.pop(0)
                choice = self.scheme(ps)
                if choice is None:               # several units' partial sums could deadlock: split
                    if len(ps.units) == 1:
                        raise CompileError("no partial-sum scheme of a unit is deadlock-free")   # retried smaller
                    todo[:0] = [_Pass([u], [b for b in ps.blocks if b[0] in u.tiles]) for u in ps.units]
                    continue
                n, scheme, early = choice
                em.close()
                em.kind = "program"
                self.program(ps)
                em.close()
                em.kind = "gemm"
                stream.stream(ps, n, scheme, early)
                passes.append({"units": [{"tiles": u.tiles, "kbs": u.kbs, "nb": u.nb, "rows": (u.r0, u.r1),
                                          "pin": u.pin, "final": u.final} for u in ps.units],
                               "chunk": n, "scheme": scheme, "early": early})
        em.close()
        return GemmPlan(cfg, self.M, self.K, self.N, em.windows, em.read_maps,
                        {"passes": passes, "mblocks": [mb for mb, _ in layout], "window_kinds": em.kinds,
                         "Kb": -(-self.K // cfg.rows), "Nb": -(-self.N // cfg.cols)}, self.shift, self.relu,
                        self.rram)

    def program(self, ps: _Pass):
        """``ldw`` the pass's blocks: ``PROGRAM_ROWS`` rows to each tile in turn (padding rows of a
        block are left alone: their activations are zero). With the rows' content known (``rram``),
        a row that already holds its weights is not written: each group of rows becomes one ``ldw``
        per run of consecutive rows that must change."""
        q = self.PROGRAM_ROWS
        todo = [(t, kb, nb, min(self.cfg.rows, self.K - kb * self.cfg.rows)) for t, kb, nb in ps.blocks]
        for r in range(0, max(n for *_, n in todo), q):
            for t, kb, nb, n in todo:        # each its own round: windows may end anywhere
                for r0, r1 in self._changed(t, kb, nb, r, min(r + q, n)):
                    self.em.round([_op("ldw", self.refs.w_ref(kb, nb, r0, r1 - r0), tx=t[0], ty=t[1],
                                       row=r0, count=r1 - r0)], "programming")

    def _changed(self, t, kb: int, nb: int, r0: int, r1: int) -> list[tuple[int, int]]:
        """The runs ``(first, end)`` of rows ``r0 .. r1-1`` of tile ``t`` that must be written with block
        (kb, nb)'s rows: all of them, or (``rram`` known) those holding other weights, now marked written."""
        if r0 >= r1:
            return []
        if self.rram is None:
            return [(r0, r1)]
        cfg = self.cfg
        want = np.zeros((r1 - r0, cfg.cols), dtype=np.int64)
        c1 = min(self.N, (nb + 1) * cfg.cols)
        want[:, :c1 - nb * cfg.cols] = self.B[kb * cfg.rows + r0:kb * cfg.rows + r1, nb * cfg.cols:c1]
        held = self.rram[t[1], t[0], r0:r1]
        differ = [r0 + i for i in range(r1 - r0) if not np.array_equal(want[i], held[i])]
        held[:] = want
        runs: list[list[int]] = []
        for r in differ:
            if runs and runs[-1][1] == r:
                runs[-1][1] = r + 1
            else:
                runs.append([r, r + 1])
        return [(a, b) for a, b in runs]

    def scheme(self, ps: _Pass):
        """``(rows per chunk, scheme, early)`` for a pass, or None if its partial sums could deadlock."""
        cfg = self.cfg
        limit = min(cfg.tile_ibuf_depth, self.chunk)
        multi = [u.tiles for u in ps.units if len(u.tiles) > 1]
        if not multi:
            sets = 2 if cfg.tile_acc_depth >= 2 else 1
            return min(limit, cfg.tile_acc_depth // sets, self.CHUNK), "none", True
        ok = []
        for scheme, early in _SCHEMES:
            n = min(limit, cfg.tile_acc_depth // _delays(scheme, early)[1])
            if n >= 1 and all(_deadlock_free(cfg, p) for p in _round_psums(scheme, multi)):
                ok.append((n, scheme, early))
        if not ok:
            return None
        return next((c for c in ok if c[0] >= 2), ok[0])


def compile_gemm(cfg: Config, A: np.ndarray, B: np.ndarray, bias=None, shift: int | None = None,
                 relu: int = 0, rram=None, tiles=None, rq=None, addend=None) -> GemmPlan:
    """Compile ``C = A @ B`` (int8 ``A`` [M, K], int8 ``B`` [K, N], int32 ``C``) for ``cfg``, or one
    int8 layer with an epilogue.

    ``bias`` (None or integers [N], int32): added to every row of ``C``, once, by the ``out`` that
    sends an output (``bias=1``; the tiles ``ldbias`` their N-block's slice). ``shift`` (None or
    0..31): ``C = post_process(A @ B + bias, shift, relu)`` as int8 [M, N] (docs/isa.md ``outq``:
    wrap to ``acc_bits``, shift rounding ties toward +inf, clamp to int8, ReLU if ``relu``), by the
    final ``outq`` (bias zeros without one); partial sums through the global buffer stay raw int32.
    ``relu`` (0 or 1) needs ``shift``. Without them: ``C = A @ B`` (+ bias) wrapping to int32.
    ``rq`` (None or ``(e0, e1)``, the per-column requant words of :func:`rramcim.model.requant.rq_words`,
    [N] each): ``C`` int8 [M, N] requantized like onnxruntime (docs/isa.md ``outq rq=1``; the tiles
    ``ldrq`` their N-block's slice next to the bias); it replaces ``shift`` and ``relu``.
    ``addend`` (None or integers [M, N] in the ``acc_bits`` range): added to the accumulators of ``C``
    before the epilogue (``ldpsum`` into the first K-group's accumulators, like a bias per row):
    onnxruntime's saturating u8s8 accumulators on an AVX2 host (docs/onnx.md).

    ``rram`` (None or integers [mesh_y, mesh_x, rows, cols], :attr:`rramcim.model.chipfile.KeptChip.rram`):
    the weights the tiles' rows hold before the plan runs (a kept chip). A row that already holds the
    weights the plan wants there is not written (no ``ldw``; a programming window left empty is not
    made), and :attr:`GemmPlan.rram` is what the rows hold after the plan. None: the content is
    unknown and every row the plan uses is written (the plan is the same for every content).

    ``tiles`` (None or a list of distinct tiles ``(x, y)``): the only tiles the plan uses, filled in that
    order (a network kept resident gives each layer tiles of its own); None: every tile.

    If a round of the schedule does not fit the instruction memory or the global buffer, the
    compiler retries with smaller rounds: ``ldact`` s not cut, then chunks of 2 and 1 rows, then K
    split over fewer tiles (down to none: partial sums through the global buffer only).
    """
    A, B = _check(cfg, A, B)
    if rram is not None:
        rram = np.asarray(rram)
        shape = (cfg.mesh_y, cfg.mesh_x, cfg.rows, cfg.cols)
        if rram.shape != shape or rram.dtype.kind not in "iu":
            raise ValueError(f"rram: {rram.dtype} {rram.shape}, expected integers {shape}")
        rram = rram.astype(np.int64)
    if tiles is not None:
        tiles = [(int(x), int(y)) for x, y in tiles]
        if not tiles or len(set(tiles)) != len(tiles) or not all(0 <= x < cfg.mesh_x and 0 <= y < cfg.mesh_y
                                                                 for x, y in tiles):
            raise ValueError(f"tiles: distinct tiles of the {cfg.mesh_x}x{cfg.mesh_y} mesh, not {tiles}")
    epi = dict(zip(("bias", "shift", "relu"), _check_epilogue(cfg, B.shape[1], bias, shift, relu)))
    epi["rq"] = _check_rq(cfg, B.shape[1], rq, shift, relu)
    if addend is not None:
        addend = np.asarray(addend)
        lim = 1 << (cfg.acc_bits - 1)
        if addend.shape != (A.shape[0], B.shape[1]) or addend.dtype.kind not in "iu" or (
                addend.size and (int(addend.min()) < -lim or int(addend.max()) >= lim)):
            raise CompileError(f"addend: integers [{A.shape[0]}, {B.shape[1]}] in the acc_bits range expected, "
                               f"not {addend.dtype} {addend.shape}")
        epi["addend"] = addend.astype(np.int64)
    if epi["rq"] is not None:
        epi["shift"], epi["relu"] = 0, 0          # int8 outputs by outq, with rq=1
    whole = COUNT_MAX
    tries = [{}, {"act_group": whole}, {"act_group": whole, "chunk": 2}, {"act_group": whole, "chunk": 1}]
    g = (cfg.tiles if tiles is None else len(tiles)) // 2
    while g >= 1:
        tries.append({"act_group": whole, "chunk": 1, "max_group": g})
        g //= 2
    for i, kw in enumerate(tries):
        try:
            return _Compiler(cfg, A, B, **kw, **epi, rram=rram, tiles=tiles).compile()
        except CompileError:
            if i == len(tries) - 1:
                raise
    raise AssertionError("unreachable")
