"""Run windows (start-to-done runs of a program) on the chip's RTL, through its AXI ports.

Used by ``rramcim gemm --backend verilator|icarus`` and by the chip tests:
:func:`run_windows` builds (or reuses, from the shared cache) the simulator
model of the whole chip for the config and runs the host driver
(:mod:`rramcim.sim.host.driver`) on it.
"""

from __future__ import annotations

from pathlib import Path

from ...model.chipfile import KeptChip
from ...model.config import Config
from ..tools.build import build, run_cocotb
from . import plain_windows

__all__ = ["run_windows", "RtlError"]


class RtlError(RuntimeError):
    """The RTL run failed (a simulator problem or a driver check); the message says where to look."""


def run_windows(cfg: Config, windows, simulator: str = "verilator", pause: float = 0.0, seed: int = 0,
                test_dir: Path | None = None, progress=None, log=None, expect_cycles=None,
                chip: KeptChip | None = None) -> list[dict]:
    """``windows``: objects with ``program``, ``gbuf`` ({addr: [words]}) and ``reads`` ([(addr, n)]).

    Returns one dict per window: ``cycles``, ``error`` (None or [code, pc, [x, y], row]),
    ``counters`` (name -> value; tile counters as ``name@t``), ``reads`` ([[words] per read]) and
    ``sim_seconds`` (with ``expect_cycles``, one per window: the wall time of the window's cycles,
    the testbench idle).

    ``test_dir``: the run's work folder, left as it is; without one a temporary folder, removed
    unless the run fails or ``RRAMCIM_KEEP_BUILD=1`` (see :func:`rramcim.sim.tools.build.run_cocotb`);
    a failure's message names it.

    ``chip`` (a :class:`~rramcim.model.chipfile.KeptChip` of ``cfg``): the RRAM cells and write
    counters the simulation starts with (deposited before the first window, sim/tb/top.py; the
    build stays the same); updated in place to what the RTL holds after the last window.
    """
    b = build("chip", cfg, simulator, log=log)
    ws = plain_windows(windows)
    if expect_cycles is not None:           # timing runs: the bench idles through each window
        for w, c in zip(ws, expect_cycles):
            w["expect_cycles"] = int(c)
    params = dict(windows=ws, pause=pause, seed=seed)
    if chip is not None:
        if chip.cfg != cfg:
            raise RtlError(f"chip: kept for config {chip.cfg.name!r}, the run is for {cfg.name!r}")
        params["chip"] = {"cells": chip.cell_words(), "write_counts": chip.write_counts.tolist()}
    res = run_cocotb(b, "rramcim.sim.tb.top", params, test_dir, progress=progress)
    if not res.passed:
        raise RtlError(f"{simulator} run of the chip failed: {res.describe()}")
    if chip is not None:
        got = res.summary.get("chip")
        if got is None:           # the run stopped before its last window: the chip's state was not read
            raise RtlError(f"{simulator} run of the chip: no RRAM state read back")
        after = KeptChip.from_cell_words(cfg, got["cells"], got["write_counts"])
        chip.rram, chip.write_counts = after.rram, after.write_counts
    return res.summary["windows"]
