"""The digits CNN demo (``rramcim run --demo cnn``), measured: where its cycles, host traffic and energy go.

``python -m rramcim.sim.perf.cnn`` trains, exports and quantizes the CNN (model/digits_cnn.py), imports it
(model/onnxq), runs the test split on the cycle-exact model (``default``) and prints, per chip layer:
its GEMM (``M`` im2col rows, ``K``, ``N``), cycles, compute utilization beside its limit (the share of the
macro's rows and columns its K and N fill, :func:`occupancy`), and the host's window traffic (im2col rows
written) beside the layer's own input (each input element once). Then accuracies (float, onnxruntime int8,
chip), the check that every float32 output equals onnxruntime's, the energy per inference of the chip and of
its same-capacity baseline, and onnxruntime's own CPU time per inference on this machine (the anchor; a wall
time, noisy). ``--write docs/onnx.md`` replaces the section between ``<!-- cnn:begin -->`` and
``<!-- cnn:end -->``. About a minute.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

import numpy as np

from ...model.config import PRESETS
from ...model.digits_cnn import build_demo_models, float_accuracy
from ...model.mlp import reference
from ...model.onnxq import import_onnx, ort_saturates
from ..backends.jobs import run_net
from .equal_area import _write


def occupancy(cfg, K: int, N: int) -> float:
    """The share of the macros' cells a layer's blocks fill: ``K / (ceil(K / rows) * rows)`` times the same for
    ``N``: the utilization limit of any schedule of that layer on ``cfg``."""
    kb, nb = -(-K // cfg.rows), -(-N // cfg.cols)
    return K / (kb * cfg.rows) * N / (nb * cfg.cols)


def _ort_time(path, X, reps: int = 20) -> float:
    import onnxruntime as ort
    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    s.run(None, {name: X})
    t = time.perf_counter()
    for _ in range(reps):
        s.run(None, {name: X})
    return (time.perf_counter() - t) / reps / X.shape[0]


def measure(config: str = "default", batch: int | None = None) -> dict:
    from ...model import energy as E
    cfg = PRESETS[config]
    acc = "avx2" if ort_saturates() else "exact"
    with tempfile.TemporaryDirectory(prefix="rramcim-cnn-") as folder:
        d = build_demo_models(folder)
        path = d["int8"]
        X, y = d["X_test"], d["y_test"]
        if batch:
            X, y = X[:batch], y[:batch]
        imp = import_onnx(path)
        import onnxruntime as ort
        s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        want = s.run(None, {s.get_inputs()[0].name: X})[0]
        t_int8 = _ort_time(path, X)
        t_float = _ort_time(d["float"], X)
        xq = imp.quantize(X)
        Y, rep = run_net(cfg, imp.net, xq, "model", acc=acc)
        exact = run_net(cfg, imp.net, xq, "model", acc="exact")[1] if acc != "exact" else rep
    assert np.array_equal(Y, reference(imp.net, xq, acc=acc))
    got = imp.dequantize(Y)
    same = np.array_equal(got.view(np.uint32), want.view(np.uint32))
    layers = []
    x_bits = xq.shape[1] * 8
    for L, r, q in zip(imp.net.layers, rep["layers"], exact["layers"]):
        layers.append(dict(q, kind="conv" if L.conv is not None else "dense", input_bits=x_bits * len(y),
                           limit=occupancy(cfg, r["K"], r["N"]), cycles_acc=r["cycles"]))
        x_bits = L.outputs * 8
    gemms = [(r["M"], r["K"], r["N"], 8, 1, 1) for r in rep["layers"]]      # every layer requantized
    e = E.energy_report(cfg, rep, gemms, per=len(y))
    return dict(cfg=cfg, batch=len(y), acc=acc, layers=layers, report=rep, exact=exact, same=same, energy=e,
                float_acc=float_accuracy(d["result"], X, y), ort_acc=float((want.argmax(1) == y).mean()),
                chip_acc=float((got.argmax(1) == y).mean()), t_int8=t_int8, t_float=t_float)


def table(m: dict) -> str:
    cfg, rep = m["cfg"], m["report"]
    peak = cfg.tiles * cfg.peak_macs_per_cycle
    lines = [f"Digits CNN, test split ({m['batch']} images), config `{cfg.name}` ({cfg.tiles} tiles, peak "
             f"{peak:g} MACs/cycle), cycle-exact model; `python -m rramcim.sim.perf.cnn`. Exact accumulators, and "
             f"with onnxruntime's AVX2 saturation added by the host (`{m['acc']}` on this machine):", "",
             "| layer | GEMM M x K x N | cycles | share | utilization | its limit (K, N fill) | host bits written / layer input bits | cycles with the AVX2 addend |",
             "|---|---|---|---|---|---|---|---|"]
    total = m["exact"]["cycles"]
    for i, L in enumerate(m["layers"]):
        lines.append(f"| {i} {L['kind']} | {L['M']} x {L['K']} x {L['N']} | {L['cycles']:,} | "
                     f"{100 * L['cycles'] / total:.0f} % | {100 * L['utilization']:.1f} % | {100 * L['limit']:.0f} % | "
                     f"{L['host_write_bits'] / L['input_bits']:.1f}x | {L['cycles_acc']:,} |")
    e = m["energy"]
    lines += ["", f"Whole run, exact: {total:,} cycles ({total / m['batch']:,.0f} per inference), utilization "
              f"{100 * m['exact']['utilization']:.1f} % of peak; with the addend {rep['cycles']:,} "
              f"({100 * rep['utilization']:.1f} %); accuracy float {100 * m['float_acc']:.2f} %, onnxruntime "
              f"int8 {100 * m['ort_acc']:.2f} %, chip {100 * m['chip_acc']:.2f} %; every float32 output equal to "
              f"onnxruntime's: {'yes' if m['same'] else 'NO'}.",
              f"Energy per inference: chip {e['energy_per_pj'] / 1e3:.1f} nJ, {e['baseline']} baseline "
              f"{e['baseline_energy_per_pj'] / 1e3:.1f} nJ (ratio {e['energy_ratio']:.2f}x); onnxruntime on this "
              f"machine's CPU (the anchor): {1e6 * m['t_int8']:.1f} us per inference int8, "
              f"{1e6 * m['t_float']:.1f} us float (wall time, batch {m['batch']})."]
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m rramcim.sim.perf.cnn", description=__doc__.split("\n")[0])
    ap.add_argument("--config", default="default", help="preset (default: %(default)s)")
    ap.add_argument("--batch", type=int, help="images of the test split (default: all)")
    ap.add_argument("--write", metavar="FILE.md", help="replace the <!-- cnn --> section of this file")
    args = ap.parse_args(argv)
    m = measure(args.config, args.batch)
    text = table(m)
    print(text)
    if args.write and not _write(args.write, "cnn", text):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
