"""Test bench of the chip core (rtl/chip.py) against the cycle-exact chip model.

A bench is a list of *runs* on one chip. Each run loads a program and
global-buffer words through the host streams (with random idle cycles on
both), optionally pulses ``soft_reset`` first, starts the chip and waits for
``done``. The model (:class:`~rramcim.model.chip_cycle.ChipCycleModel`, on a
:class:`~rramcim.model.chip.ChipState` that persists across runs as the
chip's memories and RRAM do) predicts everything before the simulation
starts; the bench then checks, for every run:

* the cycle count (``start`` taken to ``done``) and the ``cycles`` counter;
* every performance counter index (unused ones read 0);
* the error register (code, instruction address, tile and row) and ``irq``;
* the whole global buffer, once the network and the tiles are quiet.

Runs can be dumps (:func:`dump_program`) that send every accumulator and
every RRAM row back to the global buffer, so the tiles' state is compared too.
"""

from __future__ import annotations

import numpy as np

from ...model.chip import ChipError, ChipState
from ...model.chip_cycle import ChipCycleModel
from ...model.config import Config
from ...model.encoding import (ERROR_FIELDS, counter_name, gbuf_write_fields, imem_write_fields, pack_fields,
                               unpack_fields)
from ...model.isa import assemble
from ...model.macro import FaultMap
from ...rtl.counters import counter_count
from ...rtl.verilog import chip_faults
from .io import CheckError

__all__ = ["ChipBench", "dump_program", "decode_error", "counter_label"]


def decode_error(v: int) -> tuple[int, int, tuple[int, int], int]:
    """The ``error`` port (:data:`~rramcim.model.encoding.ERROR_FIELDS`) as (code, pc, (x, y), row)."""
    f = unpack_fields(ERROR_FIELDS, v)
    return f["code"], f["pc"], (f["x"], f["y"]), f["row"]


def counter_label(cfg: Config, i: int) -> str:
    name = counter_name(i)
    if name is None:
        return f"unused counter {i}"
    if "@" not in name:
        return name
    what, t = name.split("@")
    return f"tile {int(t) % cfg.mesh_x},{int(t) // cfg.mesh_x} {what}"


def dump_program(cfg: Config, gaddr: int = 0) -> tuple[list[int], int]:
    """A program that sends every tile's accumulators (raw) and RRAM rows (read back, every bank's)
    to the global buffer from ``gaddr``; (words, words of global buffer it writes). It overwrites
    accumulator slot 0 (the last thing it sends is the last row)."""
    lines, a = [], gaddr
    for y in range(cfg.mesh_y):
        for x in range(cfg.mesh_x):
            lines.append(f"out {x},{y} b=0 count={cfg.tile_acc_depth} gaddr={a}")
            a += cfg.tile_acc_depth * cfg.words_a
    for y in range(cfg.mesh_y):
        for x in range(cfg.mesh_x):
            for k in range(cfg.banks):
                bank = f" bank={k}" if cfg.banks > 1 else ""
                for r in range(cfg.rows):
                    lines += [f"sync {x},{y}", "barrier",        # the out above has left the slot
                              f"read {x},{y} row={r} b=0{bank}", f"out {x},{y} b=0 count=1 gaddr={a}"]
                    a += cfg.words_a
    lines += [f"sync {x},{y}" for y in range(cfg.mesh_y) for x in range(cfg.mesh_x)]
    lines += ["barrier", "halt"]
    if a > cfg.gbuf_words:
        raise ValueError(f"dump needs {a - gaddr} global-buffer words from {gaddr}; the buffer has {cfg.gbuf_words}")
    return assemble("\n".join(lines)), a - gaddr


def _next_bank(macro) -> None:
    """A deliberate model bug: ``macro`` (a :class:`~rramcim.model.macro.MacroState`) computes with the bank
    after the one it is asked for (the chip model's MVMs read the weights through ``effective_weights``)."""
    right = macro.effective_weights
    macro.effective_weights = lambda bank=0: right((bank + 1) % macro.cfg.banks)


class ChipBench:
    """Parameters
    ----------
    cfg : Config
    runs : list of dict
        ``program`` (words), ``gbuf`` ({address: [words]}), ``soft_reset`` (pulse before loading),
        ``early_start`` (after the stop, while packets are still in flight, pulse ``start``: it
        must be ignored).
    faults : FaultMap or None
        Stuck cells of the last tile (as the chip build has them).
    seed : int
        Idle cycles on the host streams.
    idle : float
        Probability that a host stream is idle in a cycle.
    model_bug : str or None
        ``"late"``: the expected cycle count is one too many; ``"bank"``: the model computes every
        MVM (and ``read``) with the next bank, wrapping (a config of several banks). The checker must
        fail.
    """

    def __init__(self, cfg: Config, runs: list[dict], faults: FaultMap | None = None, seed: int = 0,
                 idle: float = 0.3, model_bug: str | None = None):
        self.cfg, self.runs, self.idle = cfg, runs, idle
        self.rng = np.random.default_rng(seed)
        state = ChipState(cfg, chip_faults(cfg, faults))
        if model_bug not in (None, "late", "bank"):
            raise ValueError(f"unknown model_bug {model_bug!r}")
        if model_bug == "bank":
            for tile in state.tiles.values():
                _next_bank(tile.macro)
        self.expected = []
        for i, run in enumerate(runs):
            prog = [int(w) for w in run["program"]]
            load_error = state.load_program(prog)
            if load_error is not None:              # the host's load fails: no start
                self.expected.append((load_error, list(state.gbuf)))
                continue
            for addr, words in run.get("gbuf", {}).items():
                state.write_gbuf(int(addr), words)
            res = ChipCycleModel(state).run()
            if model_bug == "late":
                res.cycles += 1
            self.expected.append((res, list(state.gbuf)))

    async def run(self, io, wait_done, progress=None) -> dict:
        """``wait_done(limit)`` waits until ``done`` rises and returns the cycles since start was taken."""
        cfg = self.cfg
        summary = {"runs": len(self.runs), "cycles": [], "errors": [], "counters_checked": 0}
        for i, (run, (exp, gbuf)) in enumerate(zip(self.runs, self.expected)):
            where = f"run {i}"
            if run.get("soft_reset"):
                io.set("soft_reset", 1)
                await io.tick()
                await io.tick()
                io.set("soft_reset", 0)
            await self._write(io, "imem_wr", [(a, int(w)) for a, w in enumerate(run["program"])])
            if isinstance(exp, ChipError):          # a load past the end of the instruction memory
                await self._check_error(io, where + " (load)", exp, after_run=False)
                summary["cycles"].append(0)
                summary["errors"].append(exp.code)
                continue
            await self._write(io, "gbuf_wr", [(int(a) + k, int(w)) for a, ws in run.get("gbuf", {}).items()
                                              for k, w in enumerate(ws)])
            io.set("start", 1)
            await io.tick()                      # start taken at this edge: the end of cycle 0
            io.set("start", 0)
            cycles = await wait_done(exp.cycles + 1000)
            if cycles is None:
                raise CheckError(f"{where}: no done within {exp.cycles + 1000} cycles; the model stops at "
                                 f"cycle {exp.cycles} ({exp.error or 'halt'})")
            if cycles != exp.cycles:
                raise CheckError(f"{where}: the RTL stopped at cycle {cycles}, the model at {exp.cycles} "
                                 f"({exp.error or 'halt'})")
            await self._check_error(io, where, exp.error)       # one cycle after the stop
            # let the network and the tiles finish (results may still land after an error)
            drain = exp.quiescent_cycle - exp.cycles + 2
            waited = 1
            if run.get("early_start") and drain > 3:
                # a start while packets are still in flight must be ignored
                io.set("start", 1)
                await io.tick()
                io.set("start", 0)
                await io.settle()
                if io.get("running") or io.get("quiet"):
                    raise CheckError(f"{where}: start taken (running {io.get('running')}) or quiet "
                                     f"({io.get('quiet')}) while the model still had packets in flight")
                summary["early_starts_refused"] = summary.get("early_starts_refused", 0) + 1
                await io.tick()
                waited += 1
            while True:
                await io.settle()
                if io.get("quiet"):
                    break
                if waited > drain:
                    raise CheckError(f"{where}: not quiet {drain} cycles after the stop; the model was")
                await io.tick()
                waited += 1
            await io.tick()
            await self._check_counters(io, where, exp.counters)
            summary["counters_checked"] += counter_count(cfg)
            await self._check_gbuf(io, where, gbuf)
            summary["cycles"].append(cycles)
            summary["errors"].append(None if exp.error is None else exp.error.code)
            if progress:
                progress(i + 1, len(self.runs))
        return summary

    async def _write(self, io, port, items):
        fields = {"imem_wr": imem_write_fields(), "gbuf_wr": gbuf_write_fields(self.cfg)}
        k = 0
        while k < len(items):
            valid = self.rng.random() >= self.idle
            io.set(f"{port}__valid", valid)
            if valid:
                a, w = items[k]
                io.set(f"{port}__payload", pack_fields(fields[port], addr=a, data=w))
            await io.settle()
            if valid and io.get(f"{port}__ready"):
                k += 1
            await io.tick()
        io.set(f"{port}__valid", 0)

    async def _check_error(self, io, where, exp: ChipError | None, after_run: bool = True):
        await io.settle()
        code, pc, tile, row = decode_error(io.get("error"))
        want = (0, 0, (0, 0), 0) if exp is None else (exp.code, exp.pc, tuple(exp.tile), exp.row)
        if (code, pc, tile, row) != want:
            raise CheckError(f"{where}: error register code {code} pc {pc} tile {tile} row {row}, model "
                             f"code {want[0]} pc {want[1]} tile {want[2]} row {want[3]}")
        if io.get("irq") != (code != 0) or (after_run and not io.get("done")):
            raise CheckError(f"{where}: irq {io.get('irq')} / done {io.get('done')} after the stop")
        await io.tick()

    async def _check_counters(self, io, where, exp: dict):
        cfg = self.cfg
        n = counter_count(cfg)
        for i in range(n + 1):               # the value of index i - 1 was registered at the last edge
            if i < n:
                io.set("cnt_index", i)
            await io.settle()
            if i > 0:
                got = io.get("cnt_value")
                want = exp.get(i - 1, 0)
                if got != want:
                    raise CheckError(f"{where}: counter {i - 1} ({counter_label(cfg, i - 1)}) reads {got}, "
                                     f"model {want}")
            await io.tick()

    async def _check_gbuf(self, io, where, gbuf):
        n = self.cfg.gbuf_words
        for a in range(n + 1):
            if a < n:
                io.set("gbuf_rd_addr", a)
            await io.settle()
            if a > 0:
                got = io.get("gbuf_rd_data")
                if got != gbuf[a - 1]:
                    raise CheckError(f"{where}: global buffer word {a - 1} reads {got:#x}, model {gbuf[a - 1]:#x}")
            await io.tick()
