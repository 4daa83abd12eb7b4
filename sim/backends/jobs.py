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
from ...model.compiler import compile_gemm, pipeline_limit
from ...model.compiler.banked import BankedPlan, NotBanked, compile_banked
from ...model.compiler.net import NetPlan, NotResident, compile_net
from ...model.config import Config
from ...model.conv import im2col, maxpool
from ...model.mlp import Layer, Net
from ...model.onnxq.avx2 import avx2_correction, saturating_pairs
from . import NO_FPGA_CHIP, BackendError, run_windows
from . import model as model_backend

__all__ = ["JobError", "PIPELINE_BACKENDS", "pipeline_runs_on", "run_plan", "run_net", "resident_tiles",
           "compile_resident", "gemm_plan"]

PIPELINE_BACKENDS = ("model", "verilator", "icarus")
"""The backends that run a resident pipeline (:class:`~rramcim.model.compiler.net.NetPlan`: standing
sequences, ``XS``/``PS``/``CREDIT``/``RESULT_S`` packets): the model and the RTL (tests/sim/
test_pipeline_cocotb.py holds the RTL to the model on them). ``"fpga"`` joins once a board build with
sequences has been run on a board. On the others :func:`run_net` and :func:`gemm_plan` take the
layer-by-layer flow and say why."""


def pipeline_runs_on(backend: str) -> str | None:
    """None if ``backend`` runs resident pipelines (:data:`PIPELINE_BACKENDS`), else why not (one line)."""
    if backend in PIPELINE_BACKENDS:
        return None
    return (f"the {backend} backend does not run standing sequences yet (PIPELINE_BACKENDS: "
            f"{', '.join(PIPELINE_BACKENDS)})")


def on_bank0(cfg: Config, chip: KeptChip | None, compile_fn):
    """``compile_fn(rram)`` of a flow that uses bank 0 only (the pipeline, the GEMM compiler) on a kept
    ``chip``: given the rows of bank 0, its plan's ``rram`` grown back to every bank (the others unchanged)."""
    if chip is None or cfg.banks == 1:
        return compile_fn(None if chip is None else chip.rram)
    plan = compile_fn(chip.rram[:, :, :cfg.rows])
    if plan.rram is not None:
        full = np.array(chip.rram, dtype=np.int64)
        full[:, :, :cfg.rows] = plan.rram
        plan.rram = full
    return plan


def compile_resident(cfg: Config, net, X, backend: str, chip: KeptChip | None = None):
    """``(plan, reason)``: the resident pipeline of ``net`` on ``X`` (:func:`compile_net`, for the kept
    ``chip``'s RRAM if given) and None, or None and why it cannot run (the backend, or
    :class:`NotResident`'s reason)."""
    reason = pipeline_runs_on(backend)
    if reason is not None:
        return None, reason
    if not cfg.streams:
        return None, f"config '{cfg.name}' has no standing sequences (streams = 0)"
    try:
        return on_bank0(cfg, chip, lambda rram: compile_net(cfg, net, X, rram=rram)), None
    except NotResident as e:
        return None, str(e)


def gemm_plan(cfg: Config, A, B, backend: str, chip: KeptChip | None = None):
    """``(plan, placement, reason)`` of ``C = A @ B``: a one-layer resident pipeline (no bias, int32 out)
    when ``B``'s blocks fit the tiles and the first layer's the feed channels (weight-resident: ``placement``
    ``"pipeline"``, reason None), else :func:`compile_gemm`'s plan (``"layer-by-layer"``, and why not).
    Simply: the pipeline whenever it applies; it sends only valid columns, overlaps receiving with
    computing and needs no command per chunk, so on the model it is never slower for a resident B. On a
    banked chip a B too large for the tiles goes in the banks (``"banked"``, :func:`compile_banked`) when
    it fits them."""
    net = Net([Layer(np.asarray(B, dtype=np.int8), np.zeros(B.shape[1], dtype=np.int32), None, 0)])
    plan, reason = compile_resident(cfg, net, A, backend, chip)
    if plan is not None:
        return plan, "pipeline", None
    if cfg.banks > 1:
        try:
            return compile_banked(cfg, net, A, rram=None if chip is None else chip.rram), "banked", None
        except NotBanked:
            pass
    return on_bank0(cfg, chip, lambda rram: compile_gemm(cfg, A, B, rram=rram)), "layer-by-layer", reason


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
    shown = progress if backend == "model" else None
    if isinstance(plan, BankedPlan):
        out = model_backend.run_windows_checked(plan.cfg, plan.windows, state, trace, trace_offset, shown)
        C = plan.result([o["reads"] for o in out])
        report = model_backend.windows_report(plan.cfg, plan.windows, plan.window_kinds, out, plan.macs)
    elif isinstance(plan, NetPlan):
        if (why := pipeline_runs_on(backend)) is not None:
            raise JobError(why)
        out = model_backend.run_windows_checked(plan.cfg, plan.windows, state, trace, trace_offset, shown)
        C = plan.result([o["reads"] for o in out])
        report = model_backend.windows_report(plan.cfg, plan.windows, plan.window_kinds, out, plan.macs)
        limit = pipeline_limit(plan)
        report.update(limit_cycles_per_vector=limit["cycles_per_vector"], limit_bound=limit["bound"],
                      replicas=plan.replicas,
                      limit_utilization=limit["utilization"], host_dram_bits=_host_dram_bits(plan, report))
    else:
        C, report = model_backend.run_on_model(plan, state=state, trace=trace, trace_offset=trace_offset,
                                               progress=shown)
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


def _host_dram_bits(plan: NetPlan, report: dict) -> int:
    """What the host's memory holds of the words a pipeline's windows move: all of them but the padding
    of the last flit of each input vector (``XS`` words of a block's valid rows) and of each result
    (``RESULT_S`` words of its valid columns): the network's inputs and outputs at their own widths,
    plus the weights, biases and descriptors. The zero vectors that fill the last replica's share
    (``pad_vectors``) are not the host's data either."""
    cfg, W = plan.cfg, plan.cfg.flit_width
    first = [b for b in plan.blocks if plan.streams[b.tile]["src_ctrl"] and b.rep == 0]
    pad_in = sum(cfg.vector_words(b.krows, cfg.xbits) * W - b.krows * cfg.xbits for b in first)
    pad = sum(n * (words * W - nc * (bits[0] if bits else cfg.acc_bits))
              for rmap in plan.read_map for _, n, _, nc, words, *bits in rmap)
    pad += pad_in * plan.batch + plan.pad_vectors * sum(cfg.vector_words(b.krows, cfg.xbits) * W for b in first)
    return report["host_write_bits"] + report["host_read_bits"] - pad


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
            serial_timeout: float | None = None, chip: KeptChip | None = None, acc: str = "exact"):
    """Run a network (:class:`rramcim.model.mlp.Net`) on the chip: ``(Y int32 [batch, out], report)``.

    When the network is resident (:func:`compile_net`: every layer's weights on tiles of their own, the
    shape a pipeline carries) and the backend runs standing sequences (:data:`PIPELINE_BACKENDS`), it runs
    as one pipeline: the controller streams the inputs in and collects the final outputs, intermediate
    activations go tile to tile (report ``placement``: ``pipeline``). Else, on a banked chip whose banks hold
    it, resident in the banks (``banked``: :func:`~rramcim.model.compiler.banked.compile_banked`). Else
    layer after layer over the whole batch (``layer-by-layer``, and ``placement_reason`` says why not the pipeline): each layer one
    compiled GEMM (bias, requantization and ReLU on the tiles), its int8 output the next layer's input,
    through the host. ``port``, ``baud``, ``serial_timeout``: as :func:`run_plan`'s.

    ``chip`` (a :class:`~rramcim.model.chipfile.KeptChip`): the plans are compiled for the RRAM it holds
    (rows that hold their weights are not written) and run on it; updated in place to what the backend
    left. Layer by layer, a network whose blocks fit the tiles together gets tiles of its own per layer
    (:func:`resident_tiles`), so that a second run programs nothing there too; ``weights_resident`` says
    whether all weights stay on the chip across runs.

    The report sums cycles, MACs and events; ``layers`` lists each layer's ``M``, ``K``, ``N``, ``macs``
    and ``tiles``, and, layer by layer, its ``cycles``, ``windows`` and ``utilization``; in a pipeline the
    layers run at once and share the cycles (``cycles_shared``: true, no cycles per layer).

    Convolution layers run layer by layer, their windows (im2col) made on the host. ``acc = 'avx2'``:
    the accumulators are onnxruntime's on a CPU whose u8s8 kernels saturate pairs
    (:func:`rramcim.model.onnxq.avx2.ort_saturates`): where a layer's weights can saturate, the host
    adds the correction (``addend``), layer by layer; report ``ort_accumulate`` says which.
    """
    x = np.asarray(X, dtype=np.int8)
    if acc not in ("exact", "avx2"):
        raise ValueError(f"acc must be 'exact' or 'avx2', not {acc!r}")
    if acc == "avx2" and not any(saturating_pairs(L).size for L in net.layers):
        acc = "exact"               # no weight pair can saturate: the same sums
    if acc == "avx2":
        Y, report = _run_layers(cfg, net, x, backend, "onnxruntime's saturating accumulators are added by the host "
                                "between layers", log=log, progress=progress, trace=trace, port=port, baud=baud,
                                serial_timeout=serial_timeout, chip=chip, acc=acc)
        report["ort_accumulate"] = acc
        return Y, report
    plan, reason = compile_resident(cfg, net, x, backend, chip)
    if plan is None:        # a network larger than the tiles: in the banks, if the chip has them
        banked = _run_banked(cfg, net, x, backend, log, progress, trace, chip, port=port, baud=baud,
                             serial_timeout=serial_timeout)
        if banked is not None:
            return banked
    if plan is not None:
        if log:
            copies = f" ({plan.replicas} copies of the network, each a share of the batch)" if plan.replicas > 1 else ""
            log(f"  placement: pipeline, {len(plan.blocks)} tiles resident{copies}, {len(plan.windows)} windows "
                f"({plan.window_kinds.count('program')} programming)")
        Y, report = run_plan(plan, backend, log=log, progress=progress, trace=trace, port=port, baud=baud,
                             serial_timeout=serial_timeout, chip=chip)
        layers = []
        for i, L in enumerate(net.layers):
            tiles = [b.tile for b in plan.blocks if b.layer == i]      # every replica's
            layers.append({"layer": i, "M": int(x.shape[0]), "K": int(L.w.shape[0]), "N": int(L.w.shape[1]),
                           "macs": int(x.shape[0]) * int(L.w.size), "tiles": [list(t) for t in tiles]})
        report.update(layers=layers, cycles_shared=True, batch=int(x.shape[0]), config=cfg.name,
                      placement="pipeline", placement_reason=None, weights_resident=True)
        return np.asarray(Y, dtype=np.int32), report
    if log:
        log(f"  placement: layer-by-layer ({reason})")
    return _run_layers(cfg, net, x, backend, reason, log=log, progress=progress, trace=trace, port=port, baud=baud,
                       serial_timeout=serial_timeout, chip=chip)


def _run_banked(cfg: Config, net, x, backend, log, progress, trace, chip, **serial):
    """:func:`run_net` on a banked chip (``banks`` > 1): the whole network resident in the banks
    (:func:`~rramcim.model.compiler.banked.compile_banked`), ``(Y, report)``; None if it does not fit
    (the log says why) or the chip has one bank."""
    if cfg.banks < 2:
        return None
    try:
        plan = compile_banked(cfg, net, x, rram=None if chip is None else chip.rram)
    except NotBanked as e:
        if log:
            log(f"  placement: not banked ({e})")
        return None
    if log:
        used = max(s.bank_end for s in plan.shares)
        log(f"  placement: banked, every weight resident ({used} of {cfg.banks} banks a tile), "
            f"{len(plan.windows)} windows ({plan.window_kinds.count('program')} programming, "
            f"{plan.rows_per_window} rows an inference window)")
    Y, report = run_plan(plan, backend, log=log, progress=progress, trace=trace, chip=chip, **serial)
    layers = []
    for i, L in enumerate(net.layers):
        tiles = [list(s.tile) for s in plan.shares if s.layer == i]
        layers.append({"layer": i, "M": int(x.shape[0]), "K": int(L.w.shape[0]), "N": int(L.w.shape[1]),
                       "macs": int(x.shape[0]) * int(L.w.size), "tiles": tiles})
    report.update(layers=layers, cycles_shared=True, batch=int(x.shape[0]), config=cfg.name, placement="banked",
                  placement_reason=None, weights_resident=True)
    return np.asarray(Y, dtype=np.int32), report


def _layer_gemm(cfg: Config, L, x, acc: str):
    """Layer ``L`` on int8 ``x`` [batch, in] as a GEMM: ``(A, compile_gemm keyword arguments)``. A
    convolution's ``A`` is its im2col rows (the windows made on the host, :func:`rramcim.model.conv.im2col`);
    ``acc = 'avx2'`` adds onnxruntime's saturation correction as an addend (docs/onnx.md)."""
    A = im2col(x, L.conv) if L.conv is not None else x
    kw = dict(bias=L.b)
    if L.rq is not None:
        kw["rq"] = L.rq.words(cfg.xbits)
    else:
        kw.update(shift=L.shift, relu=L.relu or 0)
    if acc == "avx2":
        corr = avx2_correction(L, A)
        if corr.any():
            kw["addend"] = corr
    return A, kw


def _layer_output(L, y, batch: int):
    """A GEMM's rows back to the layer's output [batch, out] (a convolution's NHWC map, max-pooled)."""
    if L.conv is None:
        return y
    y = np.asarray(y).reshape(batch, -1)
    return maxpool(y, L.conv, L.pool, L.w.shape[1]) if L.pool is not None else y


def _run_layers(cfg: Config, net, x, backend, reason, log=None, progress=None, trace=None, chip=None, acc="exact",
                **serial):
    """:func:`run_net`'s layer-by-layer flow."""
    total = {"cycles": 0, "macs": 0, "windows": 0, "rram_row_writes": 0, "noc_flits": 0, "program_cycles": 0,
             "host_write_bits": 0, "host_read_bits": 0}
    per_layer = []
    counters: dict = {}
    placed = resident_tiles(cfg, [L.w.shape for L in net.layers]) if chip is not None else None
    order = [(xx, y) for y in range(cfg.mesh_y) for xx in range(cfg.mesh_x)]
    for i, L in enumerate(net.layers):
        A, kw = _layer_gemm(cfg, L, x, acc)
        if log:
            what = ("requant" if L.rq is not None else f"shift {L.shift}, relu {L.relu}" if L.shift is not None
                    else "int32 out")
            conv = f"conv {L.conv.kh}x{L.conv.kw}/{L.conv.sh}, " if L.conv is not None else ""
            log(f"  layer {i}: {conv}[{A.shape[0]}x{L.w.shape[0]}] @ [{L.w.shape[0]}x{L.w.shape[1]}], {what}"
                + (", saturation addend" if "addend" in kw else ""))
        plan = on_bank0(cfg, chip, lambda rram: compile_gemm(cfg, A, L.w, **kw, rram=rram,
                                                             tiles=None if placed is None else placed[i]))
        y, rep = run_plan(plan, backend, log=log, progress=progress, trace=trace, trace_offset=total["cycles"],
                          chip=chip, **serial)
        for k in total:
            total[k] += rep.get(k, 0) if k != "macs" else plan.macs
        for k, v in rep.get("counters", {}).items():
            counters[k] = counters.get(k, 0) + v
        per_layer.append({"layer": i, "M": plan.M, "K": plan.K, "N": plan.N, "cycles": rep["cycles"],
                          "windows": rep["windows"], "macs": plan.macs, "utilization": rep["utilization"],
                          "host_write_bits": rep.get("host_write_bits", 0), "host_read_bits": rep.get("host_read_bits", 0),
                          "program_cycles": rep.get("program_cycles", 0),
                          "tiles": [list(t) for t in (order if placed is None else placed[i])]})
        x = _layer_output(L, y, x.shape[0])
    peak = cfg.tiles * cfg.peak_macs_per_cycle
    report = dict(total, backend=backend, layers=per_layer, counters=counters, peak_macs_per_cycle=peak,
                  utilization=total["macs"] / (total["cycles"] * peak) if total["cycles"] else 0.0,
                  **model_backend.cycle_split(total["cycles"], total["program_cycles"], total["macs"], peak),
                  batch=int(x.shape[0]), config=cfg.name, cycles_shared=False, placement="layer-by-layer",
                  placement_reason=reason, weights_resident=placed is not None)
    return np.asarray(x, dtype=np.int32), report
