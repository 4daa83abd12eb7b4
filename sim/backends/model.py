"""The cycle-exact model as a backend: :func:`run_plan` runs a compiled plan's windows on
:class:`~rramcim.model.chip_cycle.ChipCycleModel`, one start-to-done run each, on one chip state
that persists across them (memories, tile accumulators, RRAM), and reports the cycles, the
counters and the measures of :mod:`rramcim.model.compiler` (roofline, traffic bound)."""

from __future__ import annotations

import numpy as np

from ...model.chip import COUNTER_NAMES, TILE_COUNTER_NAMES, ChipState
from ...model.chip_cycle import ChipCycleModel
from ...model.compiler import GemmPlan, roofline, traffic_bound
from ...model.isa import Op, decode

__all__ = ["run_plan"]


def run_plan(plan: GemmPlan, state: ChipState | None = None, trace: list | None = None,
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
