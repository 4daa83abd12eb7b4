"""The cycle-exact model as a backend.

:func:`run_windows` runs windows (start-to-done runs) on
:class:`~rramcim.model.chip_cycle.ChipCycleModel`, on one chip state that persists across them
(memories, tile accumulators, RRAM), and answers as the RTL and board backends do;
:func:`run_on_model` runs a compiled plan's windows and reports the cycles, the counters and the
measures of :mod:`rramcim.model.compiler` (roofline, traffic bound)."""

from __future__ import annotations

import numpy as np

from ...model.chip import ChipState
from ...model.chipfile import KeptChip
from ...model.chip_cycle import ChipCycleModel
from ...model.compiler import GemmPlan, roofline, traffic_bound
from ...model.config import Config
from ...model.encoding import COUNTER_NAMES, TILE_COUNTER_NAMES, counter_name
from ...model.isa import OPCODE_BITS, Op, decode, isa_field

__all__ = ["run_windows", "run_on_model", "run_windows_checked", "windows_report", "cycle_split"]


def cycle_split(cycles: int, program_cycles: int, macs: int, peak: float) -> dict:
    """The report's split of ``cycles`` into RRAM programming and the rest: ``program_cycles``,
    ``inference_cycles`` (``cycles - program_cycles``: every cycle but the programming windows, input
    loading included) and ``compute_utilization`` (``macs / (peak * inference_cycles)``; 0.0 when no
    cycle is left for inference)."""
    inference = cycles - program_cycles
    return {"program_cycles": program_cycles, "inference_cycles": inference,
            "compute_utilization": macs / (peak * inference) if inference > 0 else 0.0}


def run_windows(cfg: Config, windows, state: ChipState | None = None, progress=None, trace: list | None = None,
                trace_offset: int = 0, max_cycles: list[int] | None = None, chip: KeptChip | None = None) -> list[dict]:
    """``windows``: objects with ``program``, ``gbuf`` ({addr: [words]}) and ``reads`` ([(addr, n)]).

    One dict per window, as :func:`rramcim.sim.backends.rtl.run_windows`: ``cycles``, ``error``
    (None, or the :class:`~rramcim.model.chip.ChipError`; the run stops at the first), ``counters``
    (name -> value; tile counters as ``name@t``) and ``reads`` ([[words] per read]). ``state``
    (default: a fresh chip) persists across the windows; ``max_cycles[w]`` bounds window ``w``.
    ``chip`` (a :class:`~rramcim.model.chipfile.KeptChip`, instead of ``state``): the RRAM the run starts
    with, updated in place to what it holds after the run, as the RTL backends do.
    """
    if chip is not None:
        if state is not None:
            raise ValueError("state and chip: give one")
        state = ChipState(cfg)
        chip.apply(state)
    st = state if state is not None else ChipState(cfg)
    if st.cfg != cfg:
        raise ValueError(f"state: a chip of config {st.cfg.name!r}, the windows are for {cfg.name!r}")
    out, elapsed = [], 0
    for w, win in enumerate(windows):
        err = st.load_program(win.program)
        if err is not None:
            out.append(dict(cycles=0, error=err, counters={}, reads=[]))
            break
        for a, words in win.gbuf.items():
            st.write_gbuf(a, words)
        limit = {} if max_cycles is None else {"max_cycles": max_cycles[w]}
        res = ChipCycleModel(st, trace, trace_offset + elapsed).run(**limit)
        counters = {name: v for i, v in sorted(res.counters.items()) if (name := counter_name(i)) is not None}
        out.append(dict(cycles=res.cycles, error=res.error, counters=counters,
                        reads=[list(st.gbuf[a:a + n]) for a, n in win.reads]))
        elapsed += res.cycles
        if res.error is not None:
            break
        if progress is not None:
            progress(w + 1, len(windows))
    if chip is not None:
        after = KeptChip.from_state(st)
        chip.rram, chip.write_counts = after.rram, after.write_counts
    return out


def run_on_model(plan: GemmPlan, state: ChipState | None = None, trace: list | None = None,
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
    program RRAM: their cycles, measured), ``inference_cycles`` and ``compute_utilization``
    (:func:`cycle_split`), ``rram_row_writes`` (rows programmed), ``rram_pulses``,
    ``noc_flits``, ``bound_cycles`` (:func:`traffic_bound`) and ``bound_efficiency``
    (``bound_cycles / cycles``), ``host_write_bits`` / ``host_read_bits`` (the global-buffer words the
    host writes before and reads after the windows, times ``flit_width``).
    """
    cfg = plan.cfg
    if state is not None and state.cfg != cfg:
        raise ValueError(f"state: a chip of config {state.cfg.name!r}, the plan is for {cfg.name!r}")
    bound = traffic_bound(plan)
    # a valid plan never comes near these limits; a deadlock would otherwise run to the model's own limit
    out = run_windows_checked(cfg, plan.windows, state, trace, trace_offset, progress,
                              max_cycles=[20 * c + 20_000 for c in bound["windows"]])
    C = plan.result([o["reads"] for o in out])
    kinds = plan.schedule.get("window_kinds", ["gemm"] * len(plan.windows))
    report = windows_report(cfg, plan.windows, kinds, out, plan.macs)
    roof = roofline(cfg, plan.M, plan.K, plan.N, requantized=plan.shift is not None)
    report |= {"roofline_macs_per_cycle": roof, "roofline_utilization": plan.macs / (report["cycles"] * roof),
               "bound_cycles": bound["cycles"], "bound_efficiency": bound["cycles"] / report["cycles"]}
    return C, report


def _mvm_vectors(program) -> int:
    """Vectors the ``mvm`` instructions of ``program`` run through the macros."""
    mvm = isa_field("mvm", "count")
    return sum(mvm.get(w) for w in program if w & ((1 << OPCODE_BITS) - 1) == Op.MVM)


def run_windows_checked(cfg: Config, windows, state: ChipState | None = None, trace: list | None = None,
                        trace_offset: int = 0, progress=None, max_cycles: list[int] | None = None) -> list[dict]:
    """:func:`run_windows`, raising RuntimeError at a window that ends with a chip error. Without
    ``max_cycles``, a window is bounded by 20 cycles a word it moves (program, global-buffer words written
    and read), twice the compute cycles of its MVMs, plus 20,000: a valid plan never comes near, a deadlock
    stops there."""
    if max_cycles is None:
        max_cycles = [20 * (len(w.program) + sum(len(v) for v in w.gbuf.values()) + sum(n for _, n in w.reads))
                      + 2 * cfg.steps * _mvm_vectors(w.program) + 20_000 for w in windows]
    out = run_windows(cfg, windows, state, progress, trace, trace_offset, max_cycles=max_cycles)
    for w, o in enumerate(out):
        if o["error"] is not None:
            raise RuntimeError(f"window {w}: {o['error']}")
    return out


def windows_report(cfg: Config, windows, kinds, out: list[dict], macs: int) -> dict:
    """The report of windows run (``out``, :func:`run_windows`'s) doing ``macs`` MACs: ``cycles`` (summed
    over windows), ``windows``, ``window_cycles``, ``counters`` (the chip-wide counters and the tile
    counters summed over tiles, each summed over windows, by name), ``macs``, ``peak_macs_per_cycle``
    (``tiles * peak_macs_per_cycle``), ``utilization`` (``macs / (cycles * peak)``), ``program_cycles``
    and ``program_share`` (the windows of kind ``program``: their cycles, measured), ``inference_cycles``
    and ``compute_utilization`` (:func:`cycle_split`), ``rram_row_writes`` (rows the ``ldw`` s program),
    ``rram_pulses``, ``noc_flits``, ``host_write_bits`` / ``host_read_bits`` (the global-buffer words the
    host writes before and reads after the windows, times ``flit_width``)."""
    counters = {n: sum(o["counters"].get(n, 0) for o in out) for n in COUNTER_NAMES}
    counters |= {n: sum(v for o in out for k, v in o["counters"].items() if k.split("@")[0] == n)
                 for n in TILE_COUNTER_NAMES}
    window_cycles = [o["cycles"] for o in out]
    cycles = sum(window_cycles)
    prog = sum(c for c, k in zip(window_cycles, kinds) if k == "program")
    peak = cfg.tiles * cfg.peak_macs_per_cycle
    rows = sum(decode(w).ops["count"] for win in windows for w in win.program if decode(w).op == Op.LDW)
    return {
        "cycles": cycles, "windows": len(windows), "window_cycles": window_cycles,
        "counters": counters, "macs": macs, "peak_macs_per_cycle": peak,
        "utilization": macs / (cycles * peak), **cycle_split(cycles, prog, macs, peak),
        "program_share": prog / cycles, "rram_row_writes": rows, "rram_pulses": counters["rram_pulses"],
        "noc_flits": counters["noc_flits"],
        # what the host moves between windows (not a chip counter: exact from the plan; model/energy.py)
        "host_write_bits": cfg.flit_width * sum(len(w) for win in windows for w in win.gbuf.values()),
        "host_read_bits": cfg.flit_width * sum(n for win in windows for _, n in win.reads),
    }
