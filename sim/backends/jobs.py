"""Jobs on a backend: a compiled plan, a GEMM, an MLP; on the cycle-exact model or on the RTL.

The CLI (``rramcim gemm``, ``rramcim run``) and the benchmarks call these.
RTL backends (``verilator``, ``icarus``) run the plan's windows through the
chip's AXI ports (:mod:`rramcim.sim.backends.rtl`) and are checked against
the model window by window: the same cycles and the same results, or a
:class:`JobError`. The ``fpga`` backend runs them on a board through its
serial port (``port``, ``baud``; :mod:`rramcim.sim.backends.fpga`), checked the
same way. Every backend runs windows through :func:`rramcim.sim.backends.run_windows`.
"""

from __future__ import annotations

import numpy as np

from ...model.chip import ChipState
from ...model.chipfile import KeptChip
from ...model.compiler import compile_gemm
from ...model.config import Config
from . import NO_FPGA_CHIP, BackendError, run_windows
from . import model as model_backend

__all__ = ["JobError", "run_plan", "run_net", "resident_tiles"]


class JobError(RuntimeError):
    """A backend failed or disagreed with the model; one line."""


def run_plan(plan, backend: str = "model", log=None, progress=None, trace: list | None = None,
             trace_offset: int = 0, port: str | None = None, baud: int | None = None,
             serial_timeout: float | None = None, chip: KeptChip | None = None):
    """``(C, report)``; the report is :func:`.model.run_on_model`'s plus ``backend`` (and ``model_cycles``).

    ``chip`` (a :class:`~rramcim.model.chipfile.KeptChip`): the chip's RRAM when the run starts, for
    a plan compiled for it (``compile_gemm(..., rram=chip.rram)``); updated in place to the RRAM the
    backend left (an RTL backend's is read back from the simulation and must equal the model's).

    ``port``, ``baud`` and ``serial_timeout``: the board's serial device, line rate and how many
    seconds to wait for a reply (``fpga`` backend only; None for
    :data:`.fpga.DEFAULT_SERIAL_TIMEOUT`).

    ``trace``: a list that collects the tiles' state changes (cycle, tile, state) from the model run
    (:class:`~rramcim.model.chip_cycle.ChipCycleModel`); the RTL takes the same cycles.
    """
    if chip is not None and backend == "fpga":
        raise JobError(NO_FPGA_CHIP)
    state = None
    if chip is not None:
        state = ChipState(plan.cfg)
        chip.apply(state)
    C, report = model_backend.run_on_model(plan, state=state, trace=trace, trace_offset=trace_offset,
                                           progress=progress if backend == "model" else None)
    report = dict(report, backend=backend)
    kept = None if chip is None else KeptChip.from_state(state)
    if kept is not None and plan.rram is not None and not np.array_equal(kept.rram, plan.rram):
        raise JobError("the chip's RRAM after the run differs from what the compiler planned for it")
    if backend == "model":
        if chip is not None:
            chip.rram, chip.write_counts = kept.rram, kept.write_counts
        return C, report
    rtl_chip = None if chip is None else chip.copy()
    try:
        out = run_windows(backend, plan.cfg, plan.windows, progress=progress, log=log, port=port, baud=baud,
                          serial_timeout=serial_timeout, **({} if chip is None else {"chip": rtl_chip}))
    except BackendError as e:
        raise JobError(str(e)) from None
    for i, o in enumerate(out):
        if o["error"] is not None:
            raise JobError(f"window {i}: the chip stopped with error {o['error']}")
    C_rtl = plan.result([o["reads"] for o in out])
    cycles = [o["cycles"] for o in out]
    if cycles != report["window_cycles"] or not np.array_equal(C_rtl, C):
        raise JobError(f"the RTL ({backend}) disagrees with the model: cycles {sum(cycles)} vs {report['cycles']}, "
                       f"{int((C_rtl != C).sum())} of {C.size} results differ")
    if chip is not None:
        if rtl_chip != kept:
            rows = int((rtl_chip.rram != kept.rram).any(axis=-1).sum())
            counts = int((rtl_chip.write_counts != kept.write_counts).sum())
            raise JobError(f"the RTL ({backend}) disagrees with the model on the RRAM after the run: {rows} rows' "
                           f"weights and {counts} write counters differ")
        chip.rram, chip.write_counts = rtl_chip.rram, rtl_chip.write_counts
    report["model_cycles"] = report["cycles"]
    report["cycles"] = sum(cycles)
    return C_rtl, report


def resident_tiles(cfg: Config, shapes) -> list | None:
    """Tiles of their own for layers of weight ``shapes`` ([(K, N)]), or None if their ``rows x cols`` blocks
    do not all fit the chip. Layer ``i`` gets its blocks' number of tiles, times the copies of its weights
    the spare tiles allow (the compiler may split the rows over them): a spare copy goes, while one fits,
    to the layer with the most MACs a tile; tiles in row-major order, layer after layer."""
    blocks = [-(-K // cfg.rows) * -(-N // cfg.cols) for K, N in shapes]
    spare = cfg.tiles - sum(blocks)
    if spare < 0:
        return None
    copies = [1] * len(blocks)
    while True:
        fit = [i for i, b in enumerate(blocks) if b <= spare]
        if not fit:
            break
        i = max(fit, key=lambda i: (shapes[i][0] * shapes[i][1] / (blocks[i] * copies[i]), -i))
        copies[i] += 1
        spare -= blocks[i]
    order = [(x, y) for y in range(cfg.mesh_y) for x in range(cfg.mesh_x)]
    starts = np.cumsum([0] + [b * c for b, c in zip(blocks, copies)])
    return [order[a:b] for a, b in zip(starts[:-1], starts[1:])]


def run_net(cfg: Config, net, X: np.ndarray, backend: str = "model", log=None, progress=None,
            trace: list | None = None, port: str | None = None, baud: int | None = None,
            serial_timeout: float | None = None, chip: KeptChip | None = None):
    """Run an MLP (:class:`rramcim.model.mlp.Net`) on the chip: ``(Y int32 [batch, out], report)``.

    Layer after layer over the whole batch: each layer is one compiled plan
    (bias, requantization and ReLU on the tiles), its int8 output the next
    layer's input. The report sums cycles, MACs and events over the layers and
    lists each layer's. ``port``, ``baud``, ``serial_timeout``: as :func:`run_plan`'s.
    ``chip`` (a :class:`~rramcim.model.chipfile.KeptChip`): each layer is compiled for the RRAM the
    chip holds then (rows that hold their weights are not written) and run on it; updated in place.
    With a chip, a network whose blocks fit the tiles together is placed *resident*
    (:func:`resident_tiles`: each layer on tiles of its own, so that all weights stay and a second run
    programs nothing); else the layers share every tile (as without a chip) and each run reprograms
    them. The report's ``placement`` says which (``resident`` or ``shared``).
    """
    x = np.asarray(X, dtype=np.int8)
    total = {"cycles": 0, "macs": 0, "windows": 0, "rram_row_writes": 0, "noc_flits": 0, "program_cycles": 0,
             "host_write_bits": 0, "host_read_bits": 0}
    per_layer = []
    counters: dict = {}
    n = len(net.layers)
    placed = resident_tiles(cfg, [L.w.shape for L in net.layers]) if chip is not None else None
    for i, L in enumerate(net.layers):
        if log:
            log(f"  layer {i}: [{x.shape[0]}x{L.w.shape[0]}] @ [{L.w.shape[0]}x{L.w.shape[1]}]"
                + (f", shift {L.shift}, relu {L.relu}" if L.shift is not None else ", int32 out"))
        plan = compile_gemm(cfg, x, L.w, bias=L.b, shift=L.shift, relu=L.relu or 0,
                            rram=None if chip is None else chip.rram, tiles=None if placed is None else placed[i])
        y, rep = run_plan(plan, backend, log=log, progress=progress, trace=trace, trace_offset=total["cycles"],
                          port=port, baud=baud, serial_timeout=serial_timeout, chip=chip)
        for k in total:
            total[k] += rep.get(k, 0) if k != "macs" else plan.macs
        for k, v in rep.get("counters", {}).items():
            counters[k] = counters.get(k, 0) + v
        per_layer.append({"layer": i, "M": plan.M, "K": plan.K, "N": plan.N, "cycles": rep["cycles"],
                          "windows": rep["windows"], "macs": plan.macs, "utilization": rep["utilization"]})
        x = y
    peak = cfg.tiles * cfg.peak_macs_per_cycle
    report = dict(total, backend=backend, layers=per_layer, counters=counters, peak_macs_per_cycle=peak,
                  utilization=total["macs"] / (total["cycles"] * peak) if total["cycles"] else 0.0,
                  **model_backend.cycle_split(total["cycles"], total["program_cycles"], total["macs"], peak),
                  batch=int(x.shape[0]), config=cfg.name, placement="shared" if placed is None else "resident")
    assert n == len(per_layer)
    return np.asarray(x, dtype=np.int32), report
