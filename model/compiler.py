"""The GEMM compiler: ``C = A @ B`` (int8 operands, int32 result) as chip programs.

:func:`compile_gemm` turns ``A`` [M, K] and ``B`` [K, N] into a :class:`GemmPlan`:
a list of :class:`Window` s, each one start-to-done run of the chip (a program
loaded at instruction address 0, the global-buffer words the host writes
before the start, the ranges it reads after done), and
:meth:`GemmPlan.result`, which assembles ``C`` from what the host read.
:func:`run_plan_model` runs a plan on the cycle-exact model. Compilation is
deterministic: the same operands and config give the same plan, whatever
backend runs it. Every program keeps the rules of docs/isa.md that make its
result independent of timing (a test runs each plan on the cycle-exact and on
the functional, program-order model and compares the global buffers).

Blocks and passes
-----------------
``B`` is cut into blocks of ``rows`` x ``cols`` (``Kb`` x ``Nb`` blocks, zero
padded; a block's padding rows are never programmed, since the activations'
zero padding makes them irrelevant, and padding columns are dropped by
:meth:`GemmPlan.result`). A *pass* holds up to ``T = mesh_x * mesh_y`` blocks
in the tiles' RRAM and streams rows of ``A`` through them. A *unit* is the set
of tiles of a pass that hold the K-blocks of one N-block:

* ``Kb <= T``: a pass holds ``T // Kb`` whole N-blocks (N split over units, K
  split over a unit's tiles); there are ``ceil(Nb / (T // Kb))`` passes and
  each block is programmed once.
* ``Kb > T``: an N-block's K-blocks go in K-groups of ``T``, one pass each. A
  K-group's results are partial sums: ``out`` to a region at the top of the
  global buffer (the *P region*), added back by the next K-group's roots with
  ``ldpsum``; the last K-group sends ``C``. Rows go in *M-blocks* whose partial
  sums fit the P region (half the buffer); each M-block reprograms its passes.
* A pass that uses at most half the tiles is replicated (rows split over the
  copies) when the estimate says the speed-up pays for the extra programming.

Each pass starts with windows that only program RRAM (``ldw``, a few rows to
each tile in turn, so that a tile writes a row while the controller sends the
others theirs; each tile's ``ldw`` follows its last use of the old weights in
its own packet order, so no barrier is needed before it). Keeping them apart
measures the programming share of the cycles exactly.

Rounds
------
Rows go through a unit in chunks of ``n`` (one ``ldact`` per tile and row
range, one ``mvm`` command per chunk, ``mvm acc=0`` first: nothing is assumed
about the accumulators' content). The chunks' commands are grouped in rounds;
the controller sends a round's commands to the tiles in turn.

* One tile (no K split): round ``c`` has the ``ldact`` and ``mvm`` of chunk ``c``
  into accumulator set ``c % 2``, round ``c + 1`` its ``out`` before the next
  chunk's loads. A tile handles its packets in arrival order and the
  controller's packets to it arrive in order, so no barrier is needed.
* Several tiles (K split): every tile computes the chunk's partial sums for
  its K-block; the rows are cut into shares, tile ``j`` the root of share
  ``j`` (``dag``), or one root per chunk (``root``), rotating with the chunk.
  A tile sends each share's partial sums to its root (``psum``), the root adds
  them to its own and sends the share ``out``. Two hazards need the
  controller: a partial sum must reach a root after the root's ``mvm acc=0``
  wrote the slots (a ``sync`` answered after that ``mvm``, then a barrier), and
  the root's ``out`` must follow every partial sum (the barrier after the
  ``psum`` s). So each round ends with one ``barrier``; a ``sync`` at the start
  of round ``c + 1`` (answered once the tile is done with round ``c``, or the
  answer to its first ``psum`` of that round, which shows the same) lets the
  partial sums of chunk ``c`` go in round ``c + 2`` (``dag``: ``c + 2`` and
  ``c + 3``) and its ``out`` in the round after; the barrier ending a round
  does not wait for that round's MVMs. Accumulator sets: 4 (``dag``), 3
  (``root``), so ``n = tile_acc_depth // sets``.
* Deadlock: a tile takes a packet only when idle, so two tiles sending
  partial sums to each other at once wait for each other forever. In a round
  the tiles send partial sums only forward in that round's order of the unit
  (``dag``: reversed every other round, so a chunk's exchange takes two rounds),
  and :func:`_deadlock_free` checks each round's wait-for graph (routes, ports,
  and the tiles' results to the controller); if no scheme passes, a pass with
  several units is split into passes of one.

Windows
-------
A round goes into the current window if its instructions, plus the closing
``sync`` s, ``barrier`` and ``halt``, fit ``imem_depth`` and its new global-buffer
words fit below the P region; else the window is closed (``sync`` to every
tile sent anything since its last ``sync``, ``barrier``, ``halt``) and the round
opens the next one. Tile accumulators and RRAM persist between windows, so a
pipeline runs on across a window boundary (a round ends on a barrier anyway);
the global buffer persists too, which the P region relies on. Activations are
stored once per window and row range and sent to every tile that needs them
(N split: the same words go to each tile). A schedule whose round does not
fit is retried with smaller rounds (:func:`compile_gemm`).

Epilogue (one int8 layer)
-------------------------
``compile_gemm(cfg, A, B, bias, shift, relu)``: with a bias or a shift, every pass starts with a
round that ``ldbias`` es each tile of a final unit (the tiles that may send ``C``: a unit's only tile,
or every root of a K split) with its N-block's slice of the bias (zeros without one). The register
is per tile and persists across windows; a tile handles its packets in order, so the load follows
the ``out`` s of the passes before and precedes this pass's. Only the final ``out`` of an output adds
it: ``out bias=1`` (``shift`` None, int32 ``C``) or ``outq shift=.. relu=..`` (int8 ``C``,
``words_q`` words a vector); partial sums to another tile (``psum``) or to the P region stay raw.

Performance (``python -m rramcim.sim.bench_gemm``): the roofline
(:func:`roofline`) is the controller's port, one flit a cycle each way, over
the activations a GEMM must send and the int32 results it must take back. An
N split that fills the default chip is bound by the results (int32 ``out``
packets) and reaches over 90 % of it; a K split over tiles is bound instead
by the partial sums between tiles, which a tile can neither receive nor send
while it computes or takes activations; :func:`traffic_bound` gives the bound
of a plan's own data movement, tiles included.

Pure Python and numpy: no Amaranth or cocotb here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np

from .chip import COUNTER_NAMES, TILE_COUNTER_NAMES, ChipState, pack_vector, unpack_vector
from .chip_cycle import ChipCycleModel
from .config import Config
from .isa import COUNT_MAX, Op, decode, encode
from .macro import wrap_signed
from .noc import CTRL, E, L, N, S, W, xy_route

__all__ = ["CompileError", "GemmPlan", "Window", "compile_gemm", "roofline", "run_plan_model", "traffic_bound"]


class CompileError(ValueError):
    """A GEMM the compiler cannot build; the one-line message names the problem."""


@dataclass
class Window:
    """One start-to-done run of the chip."""

    program: list[int]                 # instruction words, loaded at imem address 0
    gbuf: dict[int, list[int]]         # global-buffer words the host writes before start: {address: [words]}
    reads: list[tuple[int, int]]       # (address, n_words) the host reads from the global buffer after done


@dataclass
class GemmPlan:
    """A compiled GEMM: its windows and how ``C`` is put together from what the host reads.

    ``read_map[w][r] = (row0, nrows, nb)``: window ``w``'s read ``r`` holds rows
    ``row0 .. row0+nrows-1`` of ``C``'s column block ``nb`` (columns
    ``nb*cols ..``), ``nrows`` vectors of ``words_a`` words (``words_q`` words of ``xbits``
    elements if ``shift`` is not None: ``outq`` results). ``schedule`` describes the layout
    (passes, units, chunk sizes) for reports.
    """

    cfg: Config
    M: int
    K: int
    N: int
    windows: list[Window]
    read_map: list[list[tuple[int, int, int]]] = field(default_factory=list, repr=False)
    schedule: dict = field(default_factory=dict, repr=False)
    shift: int | None = None           # None: C is int32 (``out``); else int8 from ``outq shift=.. relu=..``
    relu: int = 0

    @property
    def macs(self) -> int:
        """The GEMM's multiply-accumulates, ``M * K * N`` (no padding)."""
        return self.M * self.K * self.N

    def result(self, read_words: list[list[list[int]]]) -> np.ndarray:
        """C from what the host read: read_words[w][r] = the words of window w's read r. int32 [M, N]
        (``shift`` None), else the ``outq`` results, int8 [M, N]."""
        cfg = self.cfg
        quant = self.shift is not None
        C = np.zeros((self.M, self.N), dtype=np.int64)
        if len(read_words) != len(self.windows):
            raise ValueError(f"read_words: {len(read_words)} windows, the plan has {len(self.windows)}")
        wa, bits = (cfg.words_q, cfg.xbits) if quant else (cfg.words_a, cfg.acc_bits)
        for w, (win, rmap) in enumerate(zip(self.windows, self.read_map)):
            if len(read_words[w]) != len(win.reads):
                raise ValueError(f"read_words[{w}]: {len(read_words[w])} reads, window {w} has {len(win.reads)}")
            for r, ((addr, n), (row0, nrows, nb)) in enumerate(zip(win.reads, rmap)):
                words = read_words[w][r]
                if len(words) != n:
                    raise ValueError(f"read_words[{w}][{r}]: {len(words)} words, expected {n}")
                c0 = nb * cfg.cols
                nc = min(cfg.cols, self.N - c0)
                for i in range(nrows):
                    v = unpack_vector(words[i * wa:(i + 1) * wa], cfg.cols, bits, cfg.flit_width)
                    C[row0 + i, c0:c0 + nc] = v[:nc]
        if quant:
            return C.astype(np.int8)
        return wrap_signed(C, 32).astype(np.int32)


# --- operands ---------------------------------------------------------------------------------


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


# --- layout -----------------------------------------------------------------------------------


@dataclass
class _Unit:
    """Tiles that together hold the K-blocks ``kbs`` of N-block ``nb`` and handle rows ``r0 .. r1-1``."""

    tiles: list            # [(x, y)], one per K-block
    kbs: list
    nb: int
    r0: int
    r1: int
    pin: bool = False      # add the partial sums of the earlier K-groups (ldpsum from the P region)
    final: bool = True     # out to C (else: to the P region)


@dataclass
class _Pass:
    units: list
    blocks: list           # [(tile, kb, nb)] to program


def _tiles(cfg: Config) -> list:
    return [(x, y) for y in range(cfg.mesh_y) for x in range(cfg.mesh_x)]


def _split(n: int, parts: int) -> list[tuple[int, int]]:
    """``[0, n)`` in ``parts`` contiguous ranges, sizes differing by at most one (larger first)."""
    q, r = divmod(n, parts)
    out, a = [], 0
    for i in range(parts):
        b = a + q + (1 if i < r else 0)
        out.append((a, b))
        a = b
    return out


def _row_cost(cfg: Config, s: int) -> float:
    """Estimated tile-busy cycles per row of ``A``, per tile, in a unit of ``s`` tiles."""
    act = 3 + cfg.words_x                    # header, argument and words, exec
    send = 2 + cfg.words_a                   # header, argument, words
    recv = 4 + cfg.words_a                   # header, argument and words, exec, ACK
    return (s * (act + cfg.steps) + (s - 1) * (send + recv) + send) / s


def _estimate(cfg: Config, per_tile_rows: list, units: list, rows: int) -> float:
    """Estimated cycles of a pass: programming ``per_tile_rows`` RRAM rows, then ``rows`` rows of ``A``
    through ``units`` = ``[(tiles in the unit, replicas)]``: the controller's sending, its receiving or
    the busiest tile, whichever is slowest."""
    prog_tile = 3 + cfg.words_w + cfg.rram_write_cycles + cfg.rram_verify_cycles + 2
    prog = max(sum(per_tile_rows) * (3 + cfg.words_w), max(per_tile_rows) * prog_tile)
    tx = rx = tile = 0.0
    for s, reps in units:
        tx += rows * s * (2 + cfg.words_x)
        rx += rows * (2 + cfg.words_a + (s - 1))
        tile = max(tile, -(-rows // reps) * _row_cost(cfg, s))
    return prog + max(tx, rx, tile)


def _layout(cfg: Config, M: int, K: int, N: int, max_group: int) -> tuple[list, int]:
    """``([(M-block, [passes])], P-region vectors)``.

    ``Kb <= max_group`` (at most ``T`` tiles): a pass holds ``T // Kb`` whole N-blocks, every row
    of ``A`` in one M-block. Else an N-block's K-blocks go in K-groups of ``max_group``, one pass
    each, partial sums between them through the P region, rows in M-blocks whose partial sums fit it.
    A pass that uses at most half the tiles is replicated (rows split over the copies) when the
    estimate says the extra programming pays.
    """
    R, Cc = cfg.rows, cfg.cols
    Kb, Nb = -(-K // R), -(-N // Cc)
    tiles = _tiles(cfg)
    T = len(tiles)
    krows = [min(R, K - kb * R) for kb in range(Kb)]

    def make_pass(groups, r0, r1, pin, final):
        used = sum(len(kbs) for _, kbs in groups)
        best = None
        for reps in range(1, min(T // used, r1 - r0) + 1):
            per_tile = [krows[kb] for _, kbs in groups for kb in kbs] * reps
            est = _estimate(cfg, per_tile, [(len(kbs), reps) for _, kbs in groups], r1 - r0)
            if best is None or est < best[0]:
                best = (est, reps)
        units, blocks, k = [], [], 0
        for q0, q1 in _split(r1 - r0, best[1]):
            for nb, kbs in groups:
                ts = tiles[k:k + len(kbs)]
                k += len(kbs)
                units.append(_Unit(ts, list(kbs), nb, r0 + q0, r0 + q1, pin, final))
                blocks += [(t, kb, nb) for t, kb in zip(ts, kbs)]
        return _Pass(units, blocks)

    if Kb <= max_group:
        per = T // Kb
        passes = [make_pass([(nb, list(range(Kb))) for nb in range(g0, min(Nb, g0 + per))], 0, M, False, True)
                  for g0 in range(0, Nb, per)]
        return [((0, M), passes)], 0
    kgroups = [list(range(k0, min(Kb, k0 + max_group))) for k0 in range(0, Kb, max_group)]
    mb = max(1, min(M, (cfg.gbuf_words // 2) // cfg.words_a))
    out = []
    for m0 in range(0, M, mb):
        m1 = min(M, m0 + mb)
        out.append(((m0, m1), [make_pass([(nb, kbs)], m0, m1, g > 0, g == len(kgroups) - 1)
                               for nb in range(Nb) for g, kbs in enumerate(kgroups)]))
    return out, mb


# --- partial sums between tiles: which rounds, and why they cannot deadlock -------------------

# A scheme: (name, early). ``dag``: every tile is the root of a share of a chunk's rows, the partial
# sums go in two rounds whose tile orders are reversed; ``root``: one root per chunk (rotating).
# ``early``: the ``sync`` that shows a chunk's MVMs are done goes at the start of the next round, so
# that the barrier ending a round does not wait for that round's MVMs.
_SCHEMES = [("dag", True), ("root", True), ("dag", False), ("root", False)]


def _delays(scheme: str, early: bool) -> tuple[int, int]:
    """Rounds after a chunk's compute round: (its first partial sums, its out)."""
    e = 2 if early else 1
    return e, e + (1 if scheme == "root" else 2)


def _slot(i: int, j: int, s: int) -> int:
    """The matching in which tiles ``i`` and ``j`` of a unit of ``s`` meet in a round-robin
    tournament (circle method): a send order in which few tiles wait for the same receiver."""
    m = s + (s % 2)
    for k in range(m - 1):
        ring = [m - 1] + [(k + q) % (m - 1) for q in range(m - 1)]
        for q in range(m // 2):
            if {ring[q], ring[m - 1 - q]} == {i, j}:
                return k
    raise AssertionError((i, j, s))


def _forward(i: int, j: int, r: int) -> bool:
    """May tile ``i`` send to tile ``j`` of its unit in round ``r`` (``dag``)? The unit's order,
    reversed in odd rounds."""
    return i < j if r % 2 == 0 else i > j


def _round_psums(scheme: str, units: list) -> list[list]:
    """Every set of (sender, receiver) pairs a round of the scheme may hold, over all units."""
    if scheme == "dag":
        return [[(ts[i], ts[j]) for ts in units for i in range(len(ts)) for j in range(len(ts))
                 if i != j and _forward(i, j, r)] for r in (0, 1)]
    return [[(ts[i], ts[k % len(ts)]) for ts in units for i in range(len(ts)) if i != k % len(ts)]
            for k in range(max(len(ts) for ts in units))]


def _route(src, dest) -> list:
    """The router output ports ``((x, y), port)`` a packet from ``src`` to ``dest`` holds (XY)."""
    x, y = (0, 0) if src == CTRL else src
    ports = []
    while True:
        o = xy_route(x, y, dest)
        ports.append(((x, y), o))
        if o == L or (dest == CTRL and (x, y) == (0, 0)):
            return ports
        x, y = {N: (x, y - 1), S: (x, y + 1), E: (x + 1, y), W: (x - 1, y)}[o]


def _deadlock_free(cfg: Config, psums: list) -> bool:
    """Can a round with the partial sums ``psums`` ([(sender, receiver)]) never deadlock?

    A tile takes a packet only when idle, and stays busy while it sends. So a round is safe if its
    wait-for graph has no cycle: a router output port waits for the next port of every route through
    it (wormhole), a tile's ejection port waits for every packet the tile may send (its partial sums
    of the round, and results or answers to the controller); the controller always takes its
    packets. Any tile may also receive from and send to the controller in any round.
    """
    tiles = _tiles(cfg)
    to_ctrl = {t: _route(t, CTRL) for t in tiles}
    routes = [_route(CTRL, t) for t in tiles] + list(to_ctrl.values())
    sent = {t: [to_ctrl[t]] for t in tiles}
    for a, b in psums:
        rt = _route(a, b)
        routes.append(rt)
        sent[a].append(rt)
    edges: dict = {}
    for rt in routes:
        for p, q in pairwise(rt):
            edges.setdefault(p, set()).add(q)
    for t in tiles:
        edges.setdefault((t, L), set()).update(rt[0] for rt in sent[t])
    state: dict = {}
    for v0 in list(edges):
        if state.get(v0):
            continue
        state[v0] = 1
        stack = [(v0, iter(edges.get(v0, ())))]
        while stack:
            v, it = stack[-1]
            w = next(it, None)
            if w is None:
                state[v] = 2
                stack.pop()
            elif state.get(w) == 1:
                return False
            elif not state.get(w):
                state[w] = 1
                stack.append((w, iter(edges.get(w, ()))))
    return True


# --- emission ---------------------------------------------------------------------------------


class _Ref:
    """A global-buffer operand: data the host writes (``'in'``, allocated once per window and key),
    a result range the host reads (``'out'``), or a fixed address (``'fixed'``, the P region)."""

    __slots__ = ("addr", "key", "kind", "make", "nwords", "read")

    def __init__(self, kind, key=None, nwords=0, make=None, addr=None, read=None):
        self.kind, self.key, self.nwords, self.make, self.addr, self.read = kind, key, nwords, make, addr, read


class _Emitter:
    """Windows being built: instructions, host writes and reads, and what a window must end with."""

    def __init__(self, cfg: Config, limit: int):
        self.cfg, self.limit = cfg, limit          # allocatable global buffer: [0, limit)
        self.windows: list[Window] = []
        self.read_maps: list = []
        self.kinds: list = []
        self.tiles = _tiles(cfg)
        self.kind = "gemm"
        self._new()

    def _new(self):
        self.prog: list[int] = []
        self.gbuf: dict[int, list[int]] = {}
        self.reads: list = []
        self.rmap: list = []
        self.ptr = 0
        self.keys: dict = {}
        self.dirty: set = set()         # tiles sent something since their last sync
        self.outstanding = False        # syncs or partial sums since the last barrier

    def close(self):
        """End the window: ``sync`` every tile sent anything since its last one, ``barrier``, ``halt``."""
        if not self.prog:
            return
        for t in self.tiles:
            if t in self.dirty:
                self.prog.append(encode("sync", tx=t[0], ty=t[1]))
                self.outstanding = True
        if self.outstanding:
            self.prog.append(encode("barrier"))
        self.prog.append(encode("halt"))
        merged: dict[int, list[int]] = {}
        last = None
        for a in sorted(self.gbuf):
            if last is not None and last + len(merged[last]) == a:
                merged[last] += self.gbuf[a]
            else:
                merged[a] = list(self.gbuf[a])
                last = a
        self.windows.append(Window(self.prog, merged, self.reads))
        self.read_maps.append(self.rmap)
        self.kinds.append(self.kind)
        self._new()

    def _need(self, ops) -> tuple[int, int]:
        seen, words = set(), 0
        for _, _, ref in ops:
            if ref is None or ref.kind == "fixed":
                continue
            if ref.kind == "out" or (ref.key not in self.keys and ref.key not in seen):
                words += ref.nwords
                seen.add(ref.key)
        return len(ops), words

    def _closing(self, ops) -> int:
        """Instructions the window needs to end after ``ops``: a sync per tile sent anything, barrier, halt."""
        return len(self.dirty | {_tile_of(op) for op in ops if op[0] != "sync"} - {None}) + 2

    def fits(self, ops) -> bool:
        n, words = self._need(ops)
        return len(self.prog) + n + self._closing(ops) <= self.cfg.imem_depth and self.ptr + words <= self.limit

    def round(self, ops, what: str):
        """Emit ``ops`` (``[(name, operands, _Ref or None)]``) in one window, starting a new one if needed."""
        if not self.fits(ops):
            self.close()
            if not self.fits(ops):
                n, words = self._need(ops)
                cfg = self.cfg
                if n + self._closing(ops) > cfg.imem_depth:
                    raise CompileError(f"imem_depth: {what} needs windows of at least {n + self._closing(ops)} "
                                       f"instructions; config {cfg.name!r} has {cfg.imem_depth}")
                raise CompileError(f"gbuf_words: {what} needs at least {words} free global-buffer words in a "
                                   f"window; config {cfg.name!r} has {self.limit} besides the partial sums")
        for name, operands, ref in ops:
            if ref is not None:
                operands = dict(operands, gaddr=self._addr(ref))
            self.emit(name, **operands)

    def _addr(self, ref: _Ref) -> int:
        if ref.kind == "fixed":
            return ref.addr
        if ref.kind == "in" and ref.key in self.keys:
            return self.keys[ref.key]
        a = self.ptr
        self.ptr += ref.nwords
        if ref.kind == "in":
            self.keys[ref.key] = a
            self.gbuf[a] = ref.make()
        else:
            self.reads.append((a, ref.nwords))
            self.rmap.append(ref.read)
        return a

    def emit(self, name, **ops):
        self.prog.append(encode(name, **ops))
        if name == "barrier":
            self.outstanding = False
        elif name == "sync":
            self.dirty.discard((ops["tx"], ops["ty"]))
            self.outstanding = True
        elif "tx" in ops:
            self.dirty.add((ops["tx"], ops["ty"]))
            if name == "psum":
                self.outstanding = True


def _op(name, ref=None, **operands):
    return (name, operands, ref)


def _tile_of(op):
    return (op[1]["tx"], op[1]["ty"]) if "tx" in op[1] else None


class _Compiler:
    # tuning, chosen on the cycle-exact model (sim/perf/gemm.py): rows per ldw instruction (the
    # controller interleaves the tiles' rows so that each tile programs while the others receive),
    # rows per chunk without partial sums, rows per ldact when K is split over tiles
    PROGRAM_ROWS = 2
    CHUNK = 4
    ACT_GROUP = 1

    def __init__(self, cfg: Config, A: np.ndarray, B: np.ndarray, max_group: int | None = None,
                 chunk: int | None = None, act_group: int | None = None, bias: np.ndarray | None = None,
                 shift: int | None = None, relu: int = 0):
        self.cfg, self.A, self.B = cfg, A, B
        self.bias, self.shift, self.relu = bias, shift, relu
        self.epilogue = bias is not None or shift is not None    # final results take the tiles' bias
        self.M, self.K = A.shape
        self.N = B.shape[1]
        self.max_group = max_group or cfg.tiles          # most K-blocks split over tiles
        self.chunk = chunk or COUNT_MAX                  # most rows a chunk
        self.act_group = act_group or self.ACT_GROUP

    # data ---------------------------------------------------------------------------------
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
        if self.shift is not None:
            return _op("outq", ref, shift=self.shift, relu=self.relu, **ops)
        if self.bias is not None:
            return _op("out", ref, bias=1, **ops)
        return _op("out", ref, **ops)

    def p_ref(self, r0: int, r1: int) -> _Ref:
        return _Ref("fixed", addr=self.p_base + (r0 - self.mblock0) * self.cfg.words_a)

    # schedule -----------------------------------------------------------------------------
    def compile(self) -> GemmPlan:
        cfg = self.cfg
        # K split over tiles needs two accumulator sets at least; else K-groups of one block
        layout, pvec = _layout(cfg, self.M, self.K, self.N, self.max_group if cfg.tile_acc_depth >= 2 else 1)
        self.p_base = cfg.gbuf_words - pvec * cfg.words_a
        em = self.em = _Emitter(cfg, self.p_base)
        passes = []
        for (m0, m1), plist in layout:
            self.mblock0 = m0
            todo = list(plist)
            while todo:
                ps = todo.pop(0)
                choice = self.scheme(ps)
                if choice is None:               # several units' partial sums could deadlock: split
                    todo[:0] = [_Pass([u], [b for b in ps.blocks if b[0] in u.tiles]) for u in ps.units]
                    continue
                n, scheme, early = choice
                em.close()
                em.kind = "program"
                self.program(ps)
                em.close()
                em.kind = "gemm"
                self.stream(ps, n, scheme, early)
                passes.append({"units": [{"tiles": u.tiles, "kbs": u.kbs, "nb": u.nb, "rows": (u.r0, u.r1),
                                          "pin": u.pin, "final": u.final} for u in ps.units],
                               "chunk": n, "scheme": scheme, "early": early})
        em.close()
        return GemmPlan(cfg, self.M, self.K, self.N, em.windows, em.read_maps,
                        {"passes": passes, "mblocks": [mb for mb, _ in layout], "window_kinds": em.kinds,
                         "Kb": -(-self.K // cfg.rows), "Nb": -(-self.N // cfg.cols)}, self.shift, self.relu)

    def program(self, ps: _Pass):
        """``ldw`` the pass's blocks: ``PROGRAM_ROWS`` rows to each tile in turn (padding rows of a
        block are left alone: their activations are zero)."""
        q = self.PROGRAM_ROWS
        todo = [(t, kb, nb, min(self.cfg.rows, self.K - kb * self.cfg.rows)) for t, kb, nb in ps.blocks]
        for r in range(0, max(n for *_, n in todo), q):
            for t, kb, nb, n in todo:        # each its own round: windows may end anywhere
                if r < n:
                    self.em.round([_op("ldw", self.w_ref(kb, nb, r, min(q, n - r)), tx=t[0], ty=t[1], row=r,
                                       count=min(q, n - r))], "programming")

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

    def stream(self, ps: _Pass, n: int, scheme: str, early: bool):
        """Stream the pass's rows through its units, a round at a time.

        With an epilogue, the pass starts with a round that loads every tile of a final unit (the
        tiles that may send ``C``) with its N-block's bias (``ldbias``). A tile's packets are handled
        in arrival order, so that follows every ``out``/``outq`` of the passes before (which used the
        old bias) and precedes this pass's ones; the register persists across windows."""
        rounds: dict = {}
        if self.epilogue:
            loads = [_op("ldbias", self.b_ref(u.nb), tx=t[0], ty=t[1]) for u in ps.units if u.final
                     for t in u.tiles]
            if loads:
                self.em.round(loads, "GEMM")

        def rnd(r):
            return rounds.setdefault(r, {"cert": [], "psum": [], "out": [], "comp": []})
        for u in ps.units:
            for c, a in enumerate(range(u.r0, u.r1, n)):
                rows = (a, min(u.r1, a + n))
                if scheme == "none":
                    self.chunk_single(u, c, rows, n, rnd)
                else:
                    self.chunk_multi(u, c, rows, n, scheme, early, rnd)
        for r in sorted(rounds):
            d = rounds[r]
            psums = [op for _, op in sorted(d["psum"], key=lambda x: x[0])]
            comp = d["comp"]
            if scheme != "none" and self.act_group < n:
                comp = self.interleave(comp)
            # outs after the partial sums: a root's out follows the partial sums it sends, and
            # precedes this round's mvm into the same accumulator set (in the tile's packet order)
            ops = psums + d["out"] + comp
            if scheme != "none":
                # a tile whose MVMs the next rounds' partial sums need answers a sync (early: at the
                # start of the round, for the rounds before; else at the end), unless, early, its
                # first command in this round is a partial sum: the answer to it shows the same
                first = {}
                for op in ops:
                    first.setdefault(_tile_of(op), op[0])
                syncs = [_op("sync", tx=t[0], ty=t[1]) for t in self.em.tiles
                         if t in d["cert"] and not (early and first.get(t) == "psum")]
                ops = (syncs + ops if early else ops + syncs)
                if syncs or psums:
                    ops.append(_op("barrier"))
            self.em.round(ops, "GEMM")

    def chunk_single(self, u: _Unit, c: int, rows, n: int, rnd):
        """One tile: ``ldact``, ``mvm`` (and ``ldpsum``) in round ``c``, ``out`` in round ``c+1``
        before the next chunk's loads (two accumulator sets; one: ``out`` right after)."""
        t, kb = u.tiles[0], u.kbs[0]
        r0, r1 = rows
        two = self.cfg.tile_acc_depth >= 2 * n
        base = (c % 2) * n if two else 0
        comp = rnd(c)["comp"]
        comp.append(_op("ldact", self.x_ref(kb, r0, r1), tx=t[0], ty=t[1], slot=0, count=r1 - r0))
        comp.append(_op("mvm", tx=t[0], ty=t[1], a=0, count=r1 - r0, b=base, acc=0))
        if u.pin:
            comp.append(_op("ldpsum", self.p_ref(r0, r1), tx=t[0], ty=t[1], slot=base, count=r1 - r0))
        out = self.out_op(u, r0, r1, t, base)
        (rnd(c + 1)["out"] if two else comp).append(out)

    def chunk_multi(self, u: _Unit, c: int, rows, n: int, scheme: str, early: bool, rnd):
        """Chunk ``c`` of a unit of several tiles, its operations put in the rounds they belong to.

        Round ``c``: every tile ``ldact`` s the chunk's rows of its K-block and ``mvm`` s them into
        accumulator set ``c % sets``. ``root``: tile ``c % s`` is the root of every row; ``dag``: the
        rows are cut into ``s`` shares (rotating with ``c``), tile ``j`` the root of share ``j``. A
        root's ``mvm`` must be done before partial sums arrive: a ``sync`` in round ``c`` (late) or
        ``c+1`` (early), then the barrier ending that round. The partial sums for a share go to its
        root in the next round (``dag``: in the next two, each pair of tiles in the direction that
        round's order allows); after the barrier ending them, the roots ``out`` their shares.
        """
        s = len(u.tiles)
        r0, r1 = rows
        ln = r1 - r0
        first, r_out = _delays(scheme, early)
        base = (c % r_out) * n
        if scheme == "root":
            shares = [(0, 0)] * s
            shares[c % s] = (0, ln)
        else:
            lens = [b - a for a, b in _split(ln, s)]
            rot = c % s
            lens = lens[s - rot:] + lens[:s - rot]
            shares = [(sum(lens[:j]), lens[j]) for j in range(s)]
        comp = rnd(c)["comp"]
        for j, (t, kb) in enumerate(zip(u.tiles, u.kbs)):
            comp.append(_op("ldact", self.x_ref(kb, r0, r1), tx=t[0], ty=t[1], slot=0, count=ln))
            comp.append(_op("mvm", tx=t[0], ty=t[1], a=0, count=ln, b=base, acc=0))
            off, sl = shares[j]
            if u.pin and sl:
                comp.append(_op("ldpsum", self.p_ref(r0 + off, r0 + off + sl), tx=t[0], ty=t[1],
                                slot=base + off, count=sl))
            rnd(c + (1 if early else 0))["cert"].append(t)
        for i, t in enumerate(u.tiles):
            for d in range(1, s):
                j = (i + d) % s
                off, sl = shares[j]
                if not sl:
                    continue
                r = c + first
                if scheme == "dag" and not _forward(i, j, r):
                    r += 1
                g = u.tiles[j]
                rnd(r)["psum"].append(((c, _slot(i, j, s)), _op("psum", tx=t[0], ty=t[1], b=base + off, count=sl,
                                                               dx=g[0], dy=g[1], d=base + off)))
        for j, t in enumerate(u.tiles):
            off, sl = shares[j]
            if sl:
                rnd(c + r_out)["out"].append(self.out_op(u, r0 + off, r0 + off + sl, t, base + off))

    def interleave(self, comp):
        """Each tile's ``ldact`` cut into pieces of ``ACT_GROUP`` rows, sent to the tiles in turn, so
        that one busy tile does not hold the controller while the others wait for their rows."""
        g = self.act_group
        queues: dict = {}
        for op in comp:
            q = queues.setdefault(_tile_of(op), [])
            if op[0] != "ldact":
                q.append(op)
                continue
            kb, r0, r1 = op[2].key[1:]
            for a in range(r0, r1, g):
                b = min(r1, a + g)
                q.append(_op("ldact", self.x_ref(kb, a, b), **dict(op[1], slot=op[1]["slot"] + a - r0,
                                                                    count=b - a)))
        out = []
        qs = list(queues.values())
        while any(qs):
            for q in qs:
                if q:
                    out.append(q.pop(0))
                    while q and q[0][0] != "ldact":
                        out.append(q.pop(0))
        return out


def compile_gemm(cfg: Config, A: np.ndarray, B: np.ndarray, bias=None, shift: int | None = None,
                 relu: int = 0) -> GemmPlan:
    """Compile ``C = A @ B`` (int8 ``A`` [M, K], int8 ``B`` [K, N], int32 ``C``) for ``cfg``, or one
    int8 layer with an epilogue.

    ``bias`` (None or integers [N], int32): added to every row of ``C``, once, by the ``out`` that
    sends an output (``bias=1``; the tiles ``ldbias`` their N-block's slice). ``shift`` (None or
    0..31): ``C = post_process(A @ B + bias, shift, relu)`` as int8 [M, N] (docs/isa.md ``outq``:
    wrap to ``acc_bits``, shift rounding ties toward +inf, clamp to int8, ReLU if ``relu``), by the
    final ``outq`` (bias zeros without one); partial sums through the global buffer stay raw int32.
    ``relu`` (0 or 1) needs ``shift``. Without them: ``C = A @ B`` (+ bias) wrapping to int32.

    If a round of the schedule does not fit the instruction memory or the global buffer, the
    compiler retries with smaller rounds: ``ldact`` s not cut, then chunks of 2 and 1 rows, then K
    split over fewer tiles (down to none: partial sums through the global buffer only).
    """
    A, B = _check(cfg, A, B)
    epi = dict(zip(("bias", "shift", "relu"), _check_epilogue(cfg, B.shape[1], bias, shift, relu)))
    whole = COUNT_MAX
    tries = [{}, {"act_group": whole}, {"act_group": whole, "chunk": 2}, {"act_group": whole, "chunk": 1}]
    g = cfg.tiles // 2
    while g >= 1:
        tries.append({"act_group": whole, "chunk": 1, "max_group": g})
        g //= 2
    for i, kw in enumerate(tries):
        try:
            return _Compiler(cfg, A, B, **kw, **epi).compile()
        except CompileError:
            if i == len(tries) - 1:
                raise
    raise AssertionError("unreachable")


# --- measures ---------------------------------------------------------------------------------


def roofline(cfg: Config, M: int | None = None, K: int | None = None, N: int | None = None,
             requantized: bool = False) -> float:
    """The roofline in MACs per cycle: ``min(peak, port bandwidth / data moved per MAC)``.

    The port is the controller's network port, one ``flit_width`` flit per cycle in each direction
    (docs/architecture.md). A weight-resident GEMM moves through it, per ``M x K x N``, at least
    ``M * Kb * Nb`` activation packets out (one per row of A and tile block that needs it, no
    multicast: ``2 + words_x`` flits each) and ``M * Nb`` result vectors in (C as int32: ``2 + words_a``
    flits each; ``2 + words_q`` when they come back requantized), ``Kb = ceil(K / rows)``,
    ``Nb = ceil(N / cols)``; the busier direction bounds the
    time, so the roofline is ``min(peak, M*K*N / max(out flits, in flits))``. Without a shape, the
    activation direction alone for full blocks: ``min(peak, rows*cols / (2 + words_x))``
    (``default``: 1024/6 = 170.7 of 512).
    """
    peak = cfg.tiles * cfg.peak_macs_per_cycle
    if M is None:
        return min(peak, cfg.rows * cfg.cols / (2 + cfg.words_x))
    kb, nb = -(-K // cfg.rows), -(-N // cfg.cols)
    out_flits = M * kb * nb * (2 + cfg.words_x)
    in_flits = M * nb * (2 + (cfg.words_q if requantized else cfg.words_a))
    return min(peak, M * K * N / max(out_flits, in_flits))


def traffic_bound(plan: GemmPlan) -> dict:
    """Lower bounds on each window's cycles from what its program moves, whatever the timing.

    Per window: ``ctrl_tx``, the controller's own cycles (a fetch per instruction, a cycle per flit
    it sends, a cycle per barrier); ``ctrl_rx``, the flits it receives (one a cycle: results and
    answers); ``tile``, the busiest tile's cycles (a header, the payload words and an exec cycle per
    packet it receives, ``steps`` per MVM, a flit a cycle for what it sends, ``write + verify + 1``
    per row programmed). Returns those sums over the windows, ``cycles``, the sum of each window's
    largest bound, and ``windows``, each window's largest bound.
    """
    cfg = plan.cfg
    tot = {"ctrl_tx": 0, "ctrl_rx": 0, "tile": 0, "cycles": 0, "windows": []}
    load = {Op.LDACT: cfg.words_x, Op.LDW: cfg.words_w, Op.LDBIAS: cfg.words_a, Op.LDPSUM: cfg.words_a}
    for win in plan.windows:
        tx = rx = 0
        tile = {t: 0 for t in _tiles(cfg)}
        for word in win.program:
            ins = decode(word)
            o, op = ins.ops, ins.op
            tx += 1
            if op == Op.BARRIER:
                tx += 1
                continue
            if op in (Op.NOP, Op.HALT):
                continue
            t = (o["tx"], o["ty"])
            n = o.get("count", 1)
            if op in load:
                tx += n * (2 + load[op])
                tile[t] += n * (3 + load[op])
                if op == Op.LDW:
                    tile[t] += n * (cfg.rram_write_cycles + cfg.rram_verify_cycles + 1)
                continue
            tx += 1 + cfg.cmd_words
            tile[t] += 2 + cfg.cmd_words
            if op == Op.MVM:
                tile[t] += n * cfg.steps
            elif op == Op.READ:
                tile[t] += cfg.steps
            elif op == Op.SYNC:
                tile[t] += 1
                rx += 1
            elif op in (Op.OUT, Op.OUTQ):
                w = cfg.words_a if op == Op.OUT else cfg.words_q
                tile[t] += n * (2 + w)
                rx += n * (2 + w)
            elif op == Op.PSUM:
                d = (o["dx"], o["dy"])
                tile[t] += n * (2 + cfg.words_a)
                tile[d] += n * (4 + cfg.words_a)
                rx += n
        tot["ctrl_tx"] += tx
        tot["ctrl_rx"] += rx
        tot["tile"] += max(tile.values())
        tot["windows"].append(max(tx, rx, max(tile.values())))
        tot["cycles"] += tot["windows"][-1]
    return tot


def run_plan_model(plan: GemmPlan, state: ChipState | None = None, trace: list | None = None,
                   trace_offset: int = 0, progress=None) -> tuple[np.ndarray, dict]:
    """Run every window of ``plan`` on the cycle-exact model; returns ``(C, report)``.

    ``progress(done, total)``, if given, is called after each window.
    ``state`` (default: a fresh chip) persists across the windows, as the chip's memories, tile
    accumulators and RRAM do. Raises RuntimeError if a window ends with a chip error. The report:
    ``cycles`` (summed over windows), ``windows``, ``window_cycles``, ``counters`` (the 8 chip-wide
    counters and the tile counters summed over tiles, each summed over windows, by name), ``macs``
    (``M*K*N``, no padding), ``peak_macs_per_cycle`` (``tiles * peak_macs_per_cycle``),
    ``utilization`` (``macs / (cycles * peak)``), ``roofline_macs_per_cycle`` (:func:`roofline`),
    ``roofline_utilization``, ``program_cycles`` and ``program_share`` (the windows that only
    program RRAM: their cycles, measured), ``rram_row_writes`` (rows programmed), ``rram_pulses``,
    ``noc_flits``, ``bound_cycles`` (:func:`traffic_bound`) and ``bound_efficiency``
    (``bound_cycles / cycles``), ``host_write_bits`` / ``host_read_bits`` (the global-buffer words the
    host writes before and reads after the windows, times ``flit_width``).
    """
    cfg = plan.cfg
    st = state if state is not None else ChipState(cfg)
    if st.cfg != cfg:
        raise ValueError(f"state: a chip of config {st.cfg.name!r}, the plan is for {cfg.name!r}")
    bound = traffic_bound(plan)
    reads = []
    counters = {n: 0 for n in COUNTER_NAMES + TILE_COUNTER_NAMES}
    window_cycles = []
    for w, win in enumerate(plan.windows):
        err = st.load_program(win.program)
        if err is not None:
            raise RuntimeError(f"window {w}: {err}")
        for a, words in win.gbuf.items():
            st.write_gbuf(a, words)
        # a valid plan never comes near this; a deadlock would otherwise run to the model's own limit
        res = ChipCycleModel(st, trace, trace_offset + sum(window_cycles)).run(
            max_cycles=20 * bound["windows"][w] + 20_000)
        if res.error is not None:
            raise RuntimeError(f"window {w}: {res.error}")
        for name in COUNTER_NAMES:
            counters[name] += res.counter(name)
        for name in TILE_COUNTER_NAMES:
            counters[name] += res.total(name)
        window_cycles.append(res.cycles)
        reads.append([list(st.gbuf[a:a + n]) for a, n in win.reads])
        if progress is not None:
            progress(w + 1, len(plan.windows))
    C = plan.result(reads)
    cycles = sum(window_cycles)
    kinds = plan.schedule.get("window_kinds", ["gemm"] * len(plan.windows))
    prog = sum(c for c, k in zip(window_cycles, kinds) if k == "program")
    peak = cfg.tiles * cfg.peak_macs_per_cycle
    roof = roofline(cfg, plan.M, plan.K, plan.N, requantized=plan.shift is not None)
    rows = sum(decode(w).ops["count"] for win in plan.windows for w in win.program if decode(w).op == Op.LDW)
    report = {
        "cycles": cycles, "windows": len(plan.windows), "window_cycles": window_cycles,
        "counters": counters, "macs": plan.macs, "peak_macs_per_cycle": peak,
        "utilization": plan.macs / (cycles * peak), "roofline_macs_per_cycle": roof,
        "roofline_utilization": plan.macs / (cycles * roof),
        "program_cycles": prog, "program_share": prog / cycles,
        "rram_row_writes": rows, "rram_pulses": counters["rram_pulses"], "noc_flits": counters["noc_flits"],
        "bound_cycles": bound["cycles"], "bound_efficiency": bound["cycles"] / cycles,
        # what the host moves between windows (not a chip counter: exact from the plan; model/energy.py)
        "host_write_bits": cfg.flit_width * sum(len(w) for win in plan.windows for w in win.gbuf.values()),
        "host_read_bits": cfg.flit_width * sum(n for win in plan.windows for _, n in win.reads),
    }
    return C, report
