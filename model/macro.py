"""Golden model of the digital RRAM CIM macro: values, RRAM state and timing.

This module is the specification that ``rtl/macro.py`` is verified against.
It is pure numpy and Python.

Values
------
A crossbar holds ``rows x cols`` signed ``wbits``-bit weights as bit planes of
1-bit RRAM cells: weight ``W[r, c]`` bit ``b`` lives in cell ``(r, c*wbits + b)``.
An MVM takes a signed ``xbits``-bit vector ``x[rows]`` and returns
``y[c] = sum_r x[r] * W[r, c]`` wrapped to a signed ``acc_bits`` integer.

The macro computes it bit-serially: step ``s`` (``0 .. xbits/par - 1``, most
significant bits first) applies input bit-planes ``p = hi .. hi-par+1`` with
``hi = xbits-1-s*par``; every physical column counts the rows where the input
bit and the cell are both 1 (``popcount``); then

    T_s[c] = sum_q 2**q * sx(p) * sum_b sw(b) * 2**b * popcount(c, b, p)
    acc    = acc * 2**par + T_s

where ``q = p - (hi-par+1)``, and ``sx``/``sw`` are -1 for the two's-complement
sign bit and +1 otherwise. :func:`mvm_bitplane` does exactly this.

RRAM
----
Cells and per-row write counters are non-volatile: reset clears neither; they
power up as zero. A fault map marks cells stuck at 0 or 1: such a cell reads
its stuck value whatever was written. Programming a row is write-verify: a
pulse of ``rram_write_cycles`` then a verify read of ``rram_verify_cycles``;
on a mismatch the pulse is retried, at most ``rram_max_attempts`` pulses in
all. Every pulse adds one to the row's write counter.

Timing (cycle 0 is the first cycle after reset; a transfer happens in a cycle
where valid and ready are both high)
------
* ``x`` is ready when the engine is idle or in the last compute step, the
  output FIFO has a free slot for the result (``occupancy < macro_out_depth``,
  counting results not yet taken from ``y``), and ``prog`` is not valid
  (programming has priority).
* An MVM accepted in cycle ``t`` computes in cycles ``t+1 .. t+S``
  (``S = xbits/par``); its result is valid on ``y`` from cycle ``t+S+2``
  (:func:`mvm_latency`). Back-to-back MVMs start every ``S`` cycles
  (:func:`mvm_interval`). Results leave in order.
* ``prog`` is ready only when the engine is idle (no compute step, no
  programming). A row accepted in cycle ``t`` needing ``A`` pulses has its
  response valid on ``prog_resp`` from cycle ``t + A*(write+verify) + 1``
  (:func:`program_latency`); the engine is idle again in the cycle after the
  response is taken.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from .config import Config

__all__ = [
    "FaultMap", "MacroState", "ProgramResult", "wrap_signed", "weights_to_cells",
    "cells_to_weights", "mvm_bitplane", "mvm_reference", "mvm_latency", "mvm_interval",
    "program_latency", "StallPattern", "MacroCycleModel", "MacroCore", "StreamSource", "MvmEvent", "ProgEvent",
]


def wrap_signed(v, bits: int):
    """Wrap integers (numpy int64 or Python int) to signed ``bits``-bit two's complement."""
    if isinstance(v, np.ndarray):
        v = v.astype(np.int64)
        if bits >= 64:
            return v
        m = np.int64(1) << np.int64(bits)
        v = v & (m - 1)
        return np.where(v >= (m >> 1), v - m, v)
    v = int(v) & ((1 << bits) - 1)
    return v - (1 << bits) if v >> (bits - 1) else v


def _signed_range(bits: int) -> tuple[int, int]:
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def weights_to_cells(w: np.ndarray, wbits: int) -> np.ndarray:
    """Signed weights ``[..., cols]`` -> cell bits ``[..., cols*wbits]`` (bit b of column c at c*wbits+b)."""
    w = np.asarray(w, dtype=np.int64)
    lo, hi = _signed_range(wbits)
    if w.size and (w.min() < lo or w.max() > hi):
        raise ValueError(f"weights out of range for wbits={wbits}: [{w.min()}, {w.max()}]")
    u = w & ((1 << wbits) - 1)
    bits = (u[..., None] >> np.arange(wbits)) & 1
    return bits.reshape(*w.shape[:-1], w.shape[-1] * wbits).astype(np.uint8)


def cells_to_weights(cells: np.ndarray, wbits: int) -> np.ndarray:
    """Cell bits ``[..., cols*wbits]`` -> signed weights ``[..., cols]``."""
    cells = np.asarray(cells, dtype=np.int64)
    b = cells.reshape(*cells.shape[:-1], cells.shape[-1] // wbits, wbits)
    u = (b << np.arange(wbits)).sum(axis=-1)
    return np.where(u >= 1 << (wbits - 1), u - (1 << wbits), u)


def mvm_bitplane(x: np.ndarray, cells: np.ndarray, cfg: Config) -> np.ndarray:
    """The macro's MVM by its own method: bit planes, popcounts, shift-and-add.

    ``x`` is int ``[rows]``, ``cells`` the effective cell bits ``[rows, cols*wbits]``.
    Returns int64 ``[cols]`` holding signed ``acc_bits`` values.
    """
    x = np.asarray(x, dtype=np.int64)
    lo, hi = _signed_range(cfg.xbits)
    if x.shape != (cfg.rows,):
        raise ValueError(f"x must have shape ({cfg.rows},), not {x.shape}")
    if x.min() < lo or x.max() > hi:
        raise ValueError(f"x out of range for xbits={cfg.xbits}")
    xu = x & ((1 << cfg.xbits) - 1)
    xplanes = (xu[:, None] >> np.arange(cfg.xbits)) & 1                 # [rows, xbits]
    cellb = np.asarray(cells, dtype=np.int64).reshape(cfg.rows, cfg.cols, cfg.wbits)
    # popcount[c, b, p] = sum_r xplane[r, p] & cell[r, c, b]
    pop = np.einsum("rp,rcb->cbp", xplanes, cellb)
    sw = np.ones(cfg.wbits, dtype=np.int64)
    sw[-1] = -1
    wscale = sw << np.arange(cfg.wbits)                                 # sw(b) * 2**b
    col_plane = np.einsum("cbp,b->cp", pop, wscale)                     # W(c, p)
    acc = np.zeros(cfg.cols, dtype=np.int64)
    for s in range(cfg.steps):
        hi_p = cfg.xbits - 1 - s * cfg.par
        lo_p = hi_p - cfg.par + 1
        term = np.zeros(cfg.cols, dtype=np.int64)
        for p in range(lo_p, hi_p + 1):
            sx = -1 if p == cfg.xbits - 1 else 1
            term += (sx << (p - lo_p)) * col_plane[:, p]
        acc = wrap_signed((acc << cfg.par) + term, cfg.acc_bits)
    return acc


def mvm_reference(x: np.ndarray, w: np.ndarray, acc_bits: int) -> np.ndarray:
    """Plain ``x @ W`` in int64, wrapped to ``acc_bits``: the check on :func:`mvm_bitplane`."""
    return wrap_signed(np.asarray(x, np.int64) @ np.asarray(w, np.int64), acc_bits)


def mvm_latency(cfg: Config) -> int:
    """Cycles from the cycle an input vector is taken to the first cycle its result is valid."""
    return cfg.steps + 2


def mvm_interval(cfg: Config) -> int:
    """Initiation interval of back-to-back MVMs, in cycles."""
    return cfg.steps


def program_latency(cfg: Config, attempts: int) -> int:
    """Cycles from the cycle a row write is taken to the first cycle its response is valid."""
    return attempts * (cfg.rram_write_cycles + cfg.rram_verify_cycles) + 1


@dataclass(frozen=True)
class FaultMap:
    """Stuck-at cells of one crossbar: a set of ``(row, cell, value)``.

    ``row`` is an RRAM row (``bank * rows + r``); ``cell`` is the physical column ``col*wbits + bit``; ``value`` is 0 or 1.
    """

    stuck: tuple = ()

    @classmethod
    def from_list(cls, cfg: Config, items) -> "FaultMap":
        out = {}
        for it in items:
            row, cell, value = (int(v) for v in it)
            if not 0 <= row < cfg.rram_rows:
                raise ValueError(f"fault map: row {row} outside 0..{cfg.rram_rows - 1}")
            if not 0 <= cell < cfg.cells_per_row:
                raise ValueError(f"fault map: cell {cell} outside 0..{cfg.cells_per_row - 1}")
            if value not in (0, 1):
                raise ValueError(f"fault map: stuck value must be 0 or 1, not {value}")
            out[(row, cell)] = value
        return cls(tuple(sorted((r, c, v) for (r, c), v in out.items())))

    @classmethod
    def random(cls, cfg: Config, n: int, rng: np.random.Generator) -> "FaultMap":
        items = [(rng.integers(cfg.rram_rows), rng.integers(cfg.cells_per_row), rng.integers(2))
                 for _ in range(n)]
        return cls.from_list(cfg, items)

    def masks(self, cfg: Config) -> tuple[np.ndarray, np.ndarray]:
        """Boolean ``(stuck0, stuck1)`` arrays of shape ``[rram_rows, cols*wbits]``."""
        s0 = np.zeros((cfg.rram_rows, cfg.cells_per_row), dtype=bool)
        s1 = np.zeros_like(s0)
        for r, c, v in self.stuck:
            (s1 if v else s0)[r, c] = True
        return s0, s1

    def __bool__(self):
        return bool(self.stuck)


@dataclass(frozen=True)
class ProgramResult:
    row: int
    attempts: int
    ok: bool
    fail_mask: int          # bit c*wbits+b set where the cell did not verify


class MacroState:
    """The macro's RRAM: cells, write counters, faults. Functional, no timing.

    ``cells`` is ``[rram_rows, cols*wbits]``: bank ``k``'s row ``r`` is row ``k * rows + r``. Write the
    cells and counters through :meth:`load` (or :meth:`program_row`): the effective weights of each
    bank are kept between writes.
    """

    def __init__(self, cfg: Config, faults: FaultMap | None = None):
        self.cfg = cfg
        self.faults = faults or FaultMap()
        self.cells = np.zeros((cfg.rram_rows, cfg.cells_per_row), dtype=np.uint8)
        self.write_counts = np.zeros(cfg.rram_rows, dtype=np.int64)
        self.verify_failures = 0
        self._s0, self._s1 = self.faults.masks(cfg)
        self._weights: dict[int, np.ndarray] = {}       # bank -> effective weights, until a row of it is written

    def load(self, cells, write_counts) -> None:
        """Set every cell and write counter (a kept chip's state)."""
        self.cells[:] = cells
        self.write_counts[:] = write_counts
        self._weights.clear()

    def effective_cells(self, bank: int | None = None) -> np.ndarray:
        """What the cells read (written values with stuck cells forced): bank ``bank``'s ``[rows, cols*wbits]``,
        or every RRAM row if None."""
        sl = slice(None) if bank is None else slice(bank * self.cfg.rows, (bank + 1) * self.cfg.rows)
        return ((self.cells[sl].astype(bool) & ~self._s0[sl]) | self._s1[sl]).astype(np.uint8)

    def effective_weights(self, bank: int = 0) -> np.ndarray:
        """Bank ``bank``'s effective weights ``[rows, cols]`` (kept until a row of the bank is written)."""
        w = self._weights.get(bank)
        if w is None:
            w = self._weights[bank] = cells_to_weights(self.effective_cells(bank), self.cfg.wbits)
        return w

    def program_row(self, row: int, weights) -> ProgramResult:
        """Write-verify RRAM row ``row`` (``bank * rows + r``) with ``cols`` signed weights."""
        cfg = self.cfg
        if not 0 <= row < cfg.rram_rows:
            raise ValueError(f"row {row} outside 0..{cfg.rram_rows - 1}")
        target = weights_to_cells(np.asarray(weights, dtype=np.int64).reshape(cfg.cols), cfg.wbits)
        s0, s1 = self._s0[row], self._s1[row]
        self._weights.pop(row // cfg.rows, None)
        attempts = 0
        while True:
            attempts += 1
            self.cells[row] = target
            self.write_counts[row] += 1
            eff = ((target.astype(bool) & ~s0) | s1).astype(np.uint8)
            bad = eff != target
            if not bad.any() or attempts == cfg.rram_max_attempts:
                break
        ok = not bad.any()
        if not ok:
            self.verify_failures += 1
        mask = int(sum(1 << int(i) for i in np.flatnonzero(bad)))
        return ProgramResult(row, attempts, ok, mask)

    def mvm(self, x, bank: int = 0) -> np.ndarray:
        """The MVM of ``x`` with bank ``bank``, by the macro's own method (:func:`mvm_bitplane`)."""
        if not 0 <= bank < self.cfg.banks:
            raise ValueError(f"bank {bank} outside 0..{self.cfg.banks - 1}")
        return mvm_bitplane(x, self.effective_cells(bank), self.cfg)


# ---------------------------------------------------------------------------
# Cycle-exact model of the macro's stream ports.

class StallPattern:
    """A pause pattern drawn in advance from a seed, shared by driver and model.

    ``paused(t)`` is True in cycles where a source may not raise valid (for an
    input stream) or a sink drops ready (for an output stream). The pattern
    repeats with its length, like ``itertools.cycle``.
    """

    def __init__(self, pattern):
        self.pattern = np.asarray(pattern, dtype=bool)
        if self.pattern.ndim != 1 or not len(self.pattern):
            raise ValueError("a stall pattern needs at least one entry")

    @classmethod
    def random(cls, rng: np.random.Generator, probability: float, length: int = 4096) -> "StallPattern":
        return cls(rng.random(length) < probability)

    @classmethod
    def none(cls) -> "StallPattern":
        return cls([False])

    def paused(self, t: int) -> bool:
        return bool(self.pattern[t % len(self.pattern)])


class StreamSource:
    """A stream source that keeps the stream rules: valid and payload are held until taken.

    In a cycle where it is not holding an item and is not paused, it offers its
    next item (if ``release`` gives item cycles, not before the item's cycle).
    The test benches drive the RTL with this same class.
    """

    def __init__(self, items, stall: StallPattern, release=None):
        self.items = deque(items)
        self.release = deque(release) if release is not None else None
        if self.release is not None and len(self.release) != len(self.items):
            raise ValueError("release needs one cycle per item")
        self.stall = stall
        self.current = None

    def offer(self, t: int):
        """The item offered in cycle ``t`` (``None`` if valid is low)."""
        if self.current is None and self.items and not self.stall.paused(t):
            if self.release is None:
                self.current = self.items.popleft()
            elif self.release[0] <= t:
                self.release.popleft()
                self.current = self.items.popleft()
        return self.current

    def taken(self):
        self.current = None

    @property
    def done(self) -> bool:
        return self.current is None and not self.items


@dataclass
class MvmEvent:
    index: int
    accept_cycle: int
    out_cycle: int
    y: np.ndarray
    weights: np.ndarray     # effective weights the MVM ran with


@dataclass
class ProgEvent:
    index: int
    accept_cycle: int
    resp_cycle: int
    result: ProgramResult


@dataclass
class _Pending:
    visible: int
    index: int
    y: np.ndarray
    weights: np.ndarray


class MacroCore:
    """One macro's stream ports, one cycle at a time (the engine of :class:`MacroCycleModel`).

    The caller offers a row write (``(row, weights)`` or None) and an input
    vector (or None) and says whether it takes ``y`` and ``prog_resp`` this
    cycle; :meth:`step` returns what fired and moves to the next cycle.
    """

    def __init__(self, cfg: Config, state: MacroState, fast: bool = False):
        self.cfg, self.state = cfg, state
        # fast (the chip model): no MvmEvent.weights, and y = wrap(x @ W) with the effective weights
        # kept between row writes; equal to mvm_bitplane (tests/model/test_macro.py proves it on
        # random operands), which the macro's own tests hold the RTL to.
        self.fast = fast
        self.mode, self.step_no, self.occ = "idle", 0, 0
        self.results: deque[_Pending] = deque()
        self.cur_prog = None          # (index, accept_cycle, result, response_cycle)
        self.n_x = self.n_prog = 0
        self.accepted: dict[int, int] = {}

    @property
    def idle(self) -> bool:
        return self.mode == "idle" and not self.results

    def step(self, t: int, p_item, x_item, y_ready: bool = True, resp_ready: bool = True, bank: int = 0):
        """Cycle ``t``; ``x_item`` (if not None) computes with bank ``bank``. Returns ``(prog_taken, x_taken,
        MvmEvent or None, ProgEvent or None)``."""
        cfg, st = self.cfg, self.state
        idle = self.mode == "idle"
        last_step = self.mode == "compute" and self.step_no == cfg.steps - 1
        prog_fire = idle and p_item is not None
        x_fire = ((idle or last_step) and self.occ < cfg.macro_out_depth
                  and p_item is None and x_item is not None)
        y_fire = bool(self.results) and self.results[0].visible <= t and y_ready
        resp_fire = self.mode == "prog" and t >= self.cur_prog[3] and resp_ready
        mvm_ev = prog_ev = None
        # End of cycle t: state updates.
        if y_fire:
            r = self.results.popleft()
            mvm_ev = MvmEvent(r.index, self.accepted.pop(r.index), t, r.y, r.weights)
            self.occ -= 1
        if self.mode == "compute":
            if last_step:
                self.mode = "idle"
            else:
                self.step_no += 1
        elif self.mode == "prog" and resp_fire:
            prog_ev = ProgEvent(self.cur_prog[0], self.cur_prog[1], t, self.cur_prog[2])
            self.cur_prog = None
            self.mode = "idle"
        if prog_fire:
            row, weights = p_item
            # Nothing reads the cells while a row is programmed, so the
            # write-verify outcome can be settled now; only its timing waits.
            res = st.program_row(int(row), weights)
            self.cur_prog = (self.n_prog, t, res, t + program_latency(cfg, res.attempts))
            self.n_prog += 1
            self.mode = "prog"
        if x_fire:
            if self.fast:
                y = mvm_reference(x_item, st.effective_weights(bank), cfg.acc_bits)
                weights = None
            else:
                y, weights = st.mvm(x_item, bank), st.effective_weights(bank)
            self.results.append(_Pending(t + mvm_latency(cfg), self.n_x, y, weights))
            self.accepted[self.n_x] = t
            self.n_x += 1
            self.occ += 1
            self.mode, self.step_no = "compute", 0
        return prog_fire, x_fire, mvm_ev, prog_ev


@dataclass
class MacroCycleModel:
    """Cycle-exact model of one macro driven by stream sources and sinks.

    ``prog_items`` are ``(row, weights[cols])``; ``x_items`` are vectors
    ``[rows]``, or ``(vector, bank)`` for a bank other than 0. Each stream has its own :class:`StallPattern`. ``run`` returns
    the per-MVM and per-row events with the cycles at which they were taken and
    answered.
    """

    cfg: Config
    state: MacroState
    prog_stall: StallPattern = field(default_factory=StallPattern.none)
    x_stall: StallPattern = field(default_factory=StallPattern.none)
    y_stall: StallPattern = field(default_factory=StallPattern.none)
    resp_stall: StallPattern = field(default_factory=StallPattern.none)

    def run(self, prog_items, x_items, max_cycles: int = 10_000_000):
        prog_src = StreamSource(prog_items, self.prog_stall)
        x_src = StreamSource(x_items, self.x_stall)
        core = MacroCore(self.cfg, self.state)
        mvms: list[MvmEvent] = []
        progs: list[ProgEvent] = []
        t = 0
        while True:
            if prog_src.done and x_src.done and core.idle:
                return mvms, progs, t
            if t >= max_cycles:
                raise RuntimeError(f"macro model did not finish within {max_cycles} cycles")
            p_item = prog_src.offer(t)
            x_item = x_src.offer(t)
            x, bank = x_item if isinstance(x_item, tuple) else (x_item, 0)
            pf, xf, mv, pe = core.step(t, p_item, x, not self.y_stall.paused(t),
                                       not self.resp_stall.paused(t), bank)
            if pf:
                prog_src.taken()
            if xf:
                x_src.taken()
            if mv:
                mvms.append(mv)
            if pe:
                progs.append(pe)
            t += 1
