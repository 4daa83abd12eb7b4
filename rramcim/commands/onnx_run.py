"""``rramcim run --onnx``: an onnxruntime QDQ model on the chip, and ``rramcim run --demo cnn``.

The host does what onnxruntime does at the ends (QuantizeLinear of the float32 inputs,
DequantizeLinear of the outputs); everything between runs on the chip: every Conv, Gemm and MatMul
with its bias and per-column requantization (docs/onnx.md). The result is checked against the
numpy reference of the imported network and against onnxruntime itself (CPU execution provider,
default session), bit for bit, before anything is written.
"""

from __future__ import annotations

import numpy as np

from .common import CliError, energy, kept_chip, print_cycle_split, report_text, stage_chip


def ort_accumulate(choice: str) -> str:
    """``--ort-accumulate``: ``auto`` is this CPU's (:func:`rramcim.model.onnxq.avx2.ort_saturates`)."""
    from ..model.onnxq import ort_saturates
    if choice == "auto":
        return "avx2" if ort_saturates() else "exact"
    return choice


def load_model(path):
    """The imported model, an :class:`~rramcim.model.onnxq.OnnxImportError` as one line."""
    from ..model.onnxq import OnnxImportError, import_onnx
    try:
        return import_onnx(path)
    except (OnnxImportError, ValueError) as e:
        raise CliError(str(e).splitlines()[0] if str(e) else f"{path}: cannot import it") from None


def load_float_inputs(path, imp) -> np.ndarray:
    """X.npy: float32 in the model's input shape (any batch), checked before its data is read."""
    from ..model.npfile import NpFileError, read_npy
    want = tuple(imp.input_shape[1:])

    def check(h):
        if h.dtype != np.float32:
            raise CliError(f"{path}: dtype {h.dtype}, expected float32 (the model's input)")
        if tuple(h.shape[1:]) != want or len(h.shape) != len(want) + 1:
            raise CliError(f"{path}: shape {tuple(h.shape)}, expected [batch, {', '.join(map(str, want))}] "
                           f"(the model's input)")
        if h.shape[0] == 0:
            raise CliError(f"{path}: an empty batch")
    try:
        X = read_npy(path, where=str(path), check=check)
    except NpFileError as e:
        raise CliError(str(e)) from None
    if not np.isfinite(X).all():
        raise CliError(f"{path}: holds NaN or infinite values")
    return X


def onnxruntime_outputs(path, X) -> np.ndarray:
    """onnxruntime's float32 outputs (CPU execution provider, default session options); a model whose batch
    dimension is fixed runs batch by batch of that size."""
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    try:
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        inp = sess.get_inputs()[0]
        n = inp.shape[0] if inp.shape and isinstance(inp.shape[0], int) and inp.shape[0] > 0 else X.shape[0]
        if X.shape[0] % n:
            raise CliError(f"{path}: the model's batch is fixed at {n}; the inputs' batch {X.shape[0]} is not a "
                           f"multiple of it")
        return np.concatenate([sess.run(None, {inp.name: X[i:i + n]})[0] for i in range(0, X.shape[0], n)])
    except CliError:
        raise
    except Exception as e:  # noqa: BLE001 - onnxruntime's errors are long; one line of it
        raise CliError(f"{path}: onnxruntime cannot run it ({str(e).splitlines()[0][:200]})") from None


def run_on_chip(args, cfg, imp, X, chip, label: str, trace=None):
    """Quantize, run on the chip, check against the reference: ``(Xq, Yq, Y float32, report)``."""
    from ..model.mlp import reference
    from .run import _run_net
    acc = ort_accumulate(args.ort_accumulate)
    Xq = imp.quantize(X)
    print(f"rramcim run: {label}: {len(imp.net.layers)} chip layers "
          f"({', '.join(_kind(L) for L in imp.net.layers)}), batch {X.shape[0]}, config '{cfg.name}', "
          f"backend {args.backend}, accumulators {acc}")
    Yq, report = _run_net(args, cfg, imp.net, Xq, trace, chip, acc=acc)
    ref = reference(imp.net, Xq, acc=acc)
    if not np.array_equal(Yq, ref):
        raise CliError(f"the chip's output differs from the numpy reference in {int((Yq != ref).sum())} places")
    report["ort_accumulate"] = acc
    return Xq, Yq, imp.dequantize(Yq), report


def _kind(L) -> str:
    if L.conv is not None:
        c = L.conv
        s = f"conv{c.kh}x{c.kw}" + (f"/{c.sh}" if (c.sh, c.sw) != (1, 1) else "") + f" {c.c}->{L.w.shape[1]}"
        return s + (" +maxpool" if L.pool is not None else "")
    return f"dense {L.w.shape[0]}->{L.w.shape[1]}"


def _same_bits(a, b) -> int:
    """Elements whose float32 bits differ (``-1``: the shapes differ)."""
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    if a.shape != b.shape:
        return -1
    return int((a.view(np.uint32) != b.view(np.uint32)).sum())


def _summary(report, what: str):
    print(f"  {what}; cycles {report['cycles']}, MACs {report['macs']}, utilization "
          f"{100 * report['utilization']:.1f}% of {report['peak_macs_per_cycle']:g} MACs/cycle")
    print_cycle_split(report)


def run_onnx(args, cfg, outputs):
    """``rramcim run --onnx MODEL.onnx --inputs X.npy --out Y.npy``."""
    from .run import finish_run
    imp = load_model(args.onnx)
    X = load_float_inputs(args.inputs, imp)
    chip = kept_chip(args, cfg)
    trace = [] if args.plot else None
    _, _, Y, report = run_on_chip(args, cfg, imp, X, chip, str(args.onnx), trace)
    want = onnxruntime_outputs(args.onnx, X)
    bad = _same_bits(Y, want)
    if bad:
        raise CliError(f"the chip's float32 output differs from onnxruntime's in {bad} places"
                       + (f" (accumulators {report['ort_accumulate']}: try --ort-accumulate)" if bad > 0 else ""))
    _summary(report, "Y == onnxruntime (float32, bit for bit): yes")
    report.update(config_fields=cfg.as_dict(), layers_count=len(imp.net.layers), onnx=str(args.onnx))
    finish_run(args, cfg, outputs, imp.net, report, trace, chip, Y, X.shape[0])


def run_cnn_demo(args, cfg, outputs):
    """``rramcim run --demo cnn``: the digits CNN (model/digits_cnn.py), trained with numpy, exported to
    ONNX, quantized by onnxruntime, run on the chip; float, onnxruntime int8 and chip accuracies."""
    import tempfile
    from ..model.digits_cnn import build_demo_models, float_accuracy
    from .run import _layers, _plots
    print(f"rramcim run (demo cnn): a 2-conv CNN on scikit-learn's digits, trained with numpy, exported to ONNX, "
          f"quantized by onnxruntime (QDQ int8), run on the chip (config '{cfg.name}', backend {args.backend})")
    chip = kept_chip(args, cfg)
    with tempfile.TemporaryDirectory(prefix="rramcim-cnn-") as folder:
        d = build_demo_models(folder)
        path, X, y = d["int8"], d["X_test"], d["y_test"]
        imp = load_model(path)
        want = onnxruntime_outputs(path, X)
        trace = [] if args.plot else None
        _, _, Y, report = run_on_chip(args, cfg, imp, X, chip, "digits CNN", trace)
    bad = _same_bits(Y, want)
    print(f"  test images: {len(y)}")
    print(f"  accuracy, float (numpy):          {100 * float_accuracy(d['result']):.2f}%")
    print(f"  accuracy, onnxruntime int8:       {100 * float((want.argmax(1) == y).mean()):.2f}%")
    print(f"  accuracy, chip ({args.backend}):{' ' * max(1, 17 - len(args.backend))}"
          f"{100 * float((Y.argmax(1) == y).mean()):.2f}%  (outputs identical to onnxruntime's, float32 bit for "
          f"bit: {'yes' if bad == 0 else 'NO'})")
    _summary(report, f"{report['cycles'] / len(y):.0f} cycles per inference")
    with outputs.scratch() as scratch:
        energy(args, cfg, report, _layers(report, imp.net), len(y), "inference", scratch if args.plot else None)
        _plots(args, report, trace, cfg, outputs, scratch)
    if bad:
        raise CliError(f"the chip's outputs differ from onnxruntime's in {bad} places")
    if args.report:
        outputs.stage("--report", args.report, report_text(dict(report, float_accuracy=float_accuracy(d["result"]))))
    stage_chip(args, outputs, chip)
    written = [f for f in (args.report, args.chip if chip else None) if f]
    if written:
        print(f"wrote {' and '.join(written)}")
    outputs.commit()
