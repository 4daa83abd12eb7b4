"""``rramcim run``: an int8 network on the chip. With ``--net``, ``--inputs`` and ``--out``: that network on those
inputs, checked against the numpy reference. With ``--onnx`` (and ``--inputs``, ``--out``): an onnxruntime QDQ
model, float32 in and out, checked against onnxruntime. With none of them: the demo, a 64-32-10 MLP trained on
scikit-learn's digits, quantized to int8 (``--demo cnn``: a small CNN, quantized by onnxruntime)."""

from __future__ import annotations

from pathlib import Path

from .common import (CliError, add_backend_options, add_baseline_option, add_chip_option, add_config_option,
                     add_node_option, check_baseline, check_fpga_args, check_int8_config, check_node, config,
                     energy, keep_build, kept_chip, npy_bytes, print_cycle_split, progress_printer, report_text,
                     stage_chip)
from .outputs import Outputs

CLOCK_MHZ = 200      # the clock the demo states inferences per second at (an assumption, not a timing result)
PLOTS = ("layers.png", "timeline.png", "energy.png")


def add_parser(sub):
    sp = sub.add_parser("run", help="run an int8 MLP on the chip (no arguments: the digits demo)",
                        description="Run an int8 MLP (NET.npz: layers, w{i} int8 [in, out], b{i} int32 [out], "
                                    "shift{i} 0..31 and relu{i} 0/1 for every layer but the last) on inputs "
                                    "X.npy (int8 [batch, in]) and write Y.npy (int32 [batch, out]). Without "
                                    "--net/--inputs/--out: the demo, a 64-32-10 MLP trained on scikit-learn's "
                                    "digits, quantized to int8 and run on the chip.")
    add_config_option(sp)
    sp.add_argument("--net", metavar="NET.npz", help="the network")
    sp.add_argument("--onnx", metavar="MODEL.onnx",
                    help="an int8 QDQ model from onnxruntime's quantize_static (docs/onnx.md): --inputs are then "
                         "float32 in the model's input shape, --out float32 in its output shape, equal to "
                         "onnxruntime's bit for bit")
    sp.add_argument("--inputs", metavar="X.npy", help="int8 inputs [batch, in] (with --onnx: float32)")
    sp.add_argument("--out", metavar="Y.npy", help="output: int32 [batch, out] (with --onnx: float32)")
    sp.add_argument("--ort-accumulate", choices=["auto", "exact", "avx2"], default="auto",
                    help="with --onnx: whose accumulators to match. onnxruntime's default session on an x86 CPU "
                         "with AVX2 but no VNNI saturates u8s8 products in pairs (avx2: the host adds that "
                         "correction between layers); elsewhere it is exact. auto (default): this CPU's")
    sp.add_argument("--demo", choices=["mlp", "cnn"], default="mlp",
                    help="without --net/--onnx: which demo (mlp: the 64-32-10 MLP; cnn: a 2-conv CNN trained "
                         "with numpy and quantized by onnxruntime)")
    add_backend_options(sp, "cycles, MACs, utilization, per-layer figures, energy")
    add_node_option(sp)
    add_baseline_option(sp)
    add_chip_option(sp)
    sp.add_argument("--plot", metavar="DIR", help="write PNG plots: per-layer cycles and utilization "
                                                  "(layers.png), tile activity over time (timeline.png), "
                                                  "energy of the chip and the baseline by component (energy.png)")
    sp.set_defaults(func=main)


def main(args):
    import numpy as np
    from ..model.mlp import NetError, load_inputs, load_net, reference
    if args.net and args.onnx:
        raise CliError("--net and --onnx: give one network")
    src = "onnx" if args.onnx else "net"
    given = [f for f in ("net", "onnx", "inputs", "out") if getattr(args, f)]
    if given:
        missing = [f"--{f}" for f in (src, "inputs", "out") if not getattr(args, f)]
        if missing:
            raise CliError(f"{', '.join(missing)} missing: give --{src}, --inputs and --out "
                           "(or none of them for the demo)")
    outputs = Outputs([("--out", args.out), ("--report", args.report), ("--chip", args.chip)],
                      inputs=[("--net", args.net), ("--onnx", args.onnx), ("--inputs", args.inputs),
                              ("--config", args.config)],
                      dirs=[("--plot", args.plot, PLOTS)])
    cfg = _checked_config(args)
    if not given:
        if args.demo == "cnn":
            from .onnx_run import run_cnn_demo
            return run_cnn_demo(args, cfg, outputs)
        return _run_demo(args, cfg, outputs)
    if args.onnx:
        from .onnx_run import run_onnx
        return run_onnx(args, cfg, outputs)
    try:
        net = load_net(args.net)
        X = load_inputs(args.inputs, net)
    except NetError as e:
        raise CliError(str(e)) from None
    sizes = "-".join(str(n) for n in [net.inputs] + [L.w.shape[1] for L in net.layers])
    print(f"rramcim run: {len(net.layers)}-layer int8 MLP {sizes}, batch {X.shape[0]}, config '{cfg.name}', "
          f"backend {args.backend}")
    chip = kept_chip(args, cfg)
    trace = [] if args.plot else None
    Y, report = _run_net(args, cfg, net, X, trace, chip)
    ref = reference(net, X)
    if not np.array_equal(Y, ref):
        raise CliError(f"the chip's output differs from the numpy reference in {int((Y != ref).sum())} places")
    report.update(config_fields=cfg.as_dict(), layers_count=len(net.layers))
    print(f"  Y == numpy reference (int32): yes; cycles {report['cycles']}, MACs {report['macs']}, utilization "
          f"{100 * report['utilization']:.1f}% of {report['peak_macs_per_cycle']:g} MACs/cycle")
    print_cycle_split(report)
    finish_run(args, cfg, outputs, net, report, trace, chip, Y.astype(np.int32), X.shape[0])


def finish_run(args, cfg, outputs, net, report, trace, chip, Y, batch: int):
    """The end of a ``--net`` or ``--onnx`` run: energy (and ``--plot``), then ``--out`` (``Y``), ``--report``
    and ``--chip`` staged and written together."""
    with outputs.scratch() as scratch:
        energy(args, cfg, report, _layers(report, net), batch, "inference", scratch if args.plot else None)
        _plots(args, report, trace, cfg, outputs, scratch)
    outputs.stage("--out", args.out, npy_bytes(Y))
    if args.report:
        outputs.stage("--report", args.report, report_text(report))
    stage_chip(args, outputs, chip)
    print(f"wrote {args.out}" + (f" and {args.report}" if args.report else "") + (f" and {args.chip}" if chip else ""))
    outputs.commit()


def _run_demo(args, cfg, outputs):
    import numpy as np
    from ..model.digits import train_digits
    from ..model.mlp import reference
    print("rramcim run (demo): a 64-32-10 MLP on scikit-learn's digits, trained in float, quantized to int8, "
          f"run on the chip (config '{cfg.name}', backend {args.backend})")
    chip = kept_chip(args, cfg)
    net, X, y, float_acc, _ = train_digits()
    ref = reference(net, X)
    print(f"  test images: {len(y)}; hidden layer shift {net.layers[0].shift}, ReLU")
    trace = [] if args.plot else None
    Y, report = _run_net(args, cfg, net, X, trace, chip)
    same = np.array_equal(Y, ref)
    cycles = report["cycles"]
    print(f"  accuracy, float (scikit-learn):  {100 * float_acc:.2f}%")
    print(f"  accuracy, int8 numpy reference:  {100 * float((ref.argmax(1) == y).mean()):.2f}%")
    print(f"  accuracy, chip ({args.backend}):{' ' * max(1, 14 - len(args.backend))}"
          f"{100 * float((Y.argmax(1) == y).mean()):.2f}%  (outputs identical to the reference, bit for bit: "
          f"{'yes' if same else 'NO'})")
    print(f"  cycles {cycles} for {len(y)} inferences ({cycles / len(y):.0f} per inference), MACs {report['macs']}, "
          f"utilization {100 * report['utilization']:.1f}% of {report['peak_macs_per_cycle']:g} MACs/cycle")
    print_cycle_split(report)
    print(f"  {len(y) * CLOCK_MHZ * 1e6 / cycles:,.0f} inferences/s at an assumed {CLOCK_MHZ} MHz clock")
    with outputs.scratch() as scratch:
        energy(args, cfg, report, _layers(report), len(y), "inference", scratch if args.plot else None)
        _plots(args, report, trace, cfg, outputs, scratch)
    if not same:
        raise CliError("the chip's outputs differ from the int8 numpy reference")
    if args.report:
        outputs.stage("--report", args.report, report_text(dict(report, float_accuracy=float_acc)))
    stage_chip(args, outputs, chip)
    written = [f for f in (args.report, args.chip if chip else None) if f]
    if written:
        print(f"wrote {' and '.join(written)}")
    outputs.commit()


def _checked_config(args):
    """The config, with the int8 operands, ``--node`` and ``--port`` checked before any work."""
    cfg = config(args.config)
    check_int8_config(cfg)
    check_node(args)
    check_baseline(args, cfg)
    check_fpga_args(args)
    keep_build(args)
    return cfg


def _run_net(args, cfg, net, X, trace, chip, acc: str = "exact"):
    """``(Y, report)`` of ``net`` on ``X`` on the chosen backend (on the kept ``chip``, updated in place, if not
    None), a JobError as a one-line CliError."""
    from ..model.compiler import CompileError
    from ..sim.backends.jobs import JobError, run_net
    try:
        return run_net(cfg, net, X, args.backend, log=print, progress=progress_printer("windows"),
                       trace=trace, port=args.port, baud=args.baud, serial_timeout=args.serial_timeout, chip=chip,
                       acc=acc)
    except (JobError, CompileError) as e:
        raise CliError(str(e)) from None


def _layers(report, net=None) -> list:
    """A net run's GEMMs as ``(M, K, N, out_bits, bias, rq)`` (:func:`rramcim.model.energy.energy_report`): hidden
    layers leave requantized (int8), the last int32 unless it is requantized too; every layer has a bias; ``rq``
    is 1 where ``net``'s layer has a per-column requant (the chip's requant unit makes its ``M * N`` outputs)."""
    n = len(report["layers"])
    rq = [0] * n if net is None else [int(net.layers[L.get("layer", i)].rq is not None)
                                      for i, L in enumerate(report["layers"])]
    return [(L["M"], L["K"], L["N"], 8 if i < n - 1 or rq[i] else 32, 1, rq[i])
            for i, L in enumerate(report["layers"])]


def _plots(args, report, trace, cfg, outputs, scratch):
    """``--plot DIR``: the per-layer and timeline plots of a net run (and energy.png, drawn by
    :func:`.common.energy` into the same scratch folder), staged into DIR."""
    if not args.plot:
        return
    from ..sim.report.plots import plot_net_run
    plot_net_run(report, trace, cfg, scratch)
    files = sorted(Path(scratch).glob("*.png"))
    outputs.stage_dir("--plot", files)
    print(f"  plots: {', '.join(str(Path(args.plot) / f.name) for f in files)}")
