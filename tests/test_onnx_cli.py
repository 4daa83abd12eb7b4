"""Issue 20 at the CLI: ``rramcim run --onnx``, ``rramcim import`` and ``rramcim run --demo cnn``, held to
onnxruntime (run here, independently of the CLI's own check), bit for bit."""

import json

import numpy as np
import onnxruntime as ort
import pytest
from onnxruntime.quantization import QuantType

from rramcim.model.mlp import load_net, reference
from rramcim.model.onnxq import Imported, ort_saturates, saturating_pairs
from tests.onnx_models import cnn, mlp, quantized
from tests.test_cli import _one_line_error, rramcim

ort.set_default_logger_severity(3)


def _ort(path, x):
    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return s.run(None, {s.get_inputs()[0].name: x})[0]


def _bits_equal(a, b):
    return a.dtype == b.dtype == np.float32 and a.shape == b.shape and np.array_equal(a.view(np.uint32),
                                                                                        b.view(np.uint32))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A per-tensor Gemm MLP (int8 activations), a per-channel MatMul MLP (uint8 activations) and a per-channel
    CNN with power-of-two scales (exact ties), with inputs."""
    tmp = tmp_path_factory.mktemp("onnx_cli")
    rng = np.random.default_rng(7)
    out = {}
    x = rng.standard_normal((40, 20)).astype(np.float32)
    out["mlp"] = (quantized(tmp, mlp(rng, [20, 24, 12]), [x[:20]], name="mlp"), x[20:])
    x = rng.standard_normal((40, 16)).astype(np.float32)
    out["mlp_pc"] = (quantized(tmp, mlp(rng, [16, 40, 8], op="MatMul"), [x[:20]], per_channel=True,
                               act=QuantType.QUInt8, name="mlp_pc"), x[20:])
    x = rng.random((24, 2, 6, 6)).astype(np.float32)
    out["cnn"] = (quantized(tmp, cnn(rng, cin=2, hw=6, c1=4, c2=8, pool=((2, 2), (1, 1), (0, 0, 0, 0))), [x[:12]],
                            per_channel=True, pow2=True, name="cnn"), x[12:])
    return out


@pytest.mark.parametrize("name", ["mlp", "mlp_pc", "cnn"])
def test_run_onnx_equals_onnxruntime(tmp_path, models, name):
    path, x = models[name]
    np.save(tmp_path / "x.npy", x)
    p = rramcim("run", "--onnx", str(path), "--inputs", str(tmp_path / "x.npy"), "--out", str(tmp_path / "y.npy"),
                "--report", str(tmp_path / "r.json"))
    assert p.returncode == 0, p.stderr
    y = np.load(tmp_path / "y.npy")
    assert _bits_equal(y, _ort(path, x))
    r = json.loads((tmp_path / "r.json").read_text())
    assert r["ort_accumulate"] == ("avx2" if ort_saturates() else "exact")
    assert r["macs"] > 0 and r["cycles"] > 0
    assert "Y == onnxruntime (float32, bit for bit): yes" in p.stdout


def test_import_writes_the_net_run_by_run_net(tmp_path, models):
    path, x = models["cnn"]
    p = rramcim("import", str(path), "-o", str(tmp_path / "net.npz"))
    assert p.returncode == 0, p.stderr
    imp = Imported.from_net(tmp_path / "net.npz")
    assert imp.net.layers[0].conv is not None and imp.net.layers[-1].rq is not None
    xq = imp.quantize(x)
    np.save(tmp_path / "xq.npy", xq)
    p = rramcim("run", "--net", str(tmp_path / "net.npz"), "--inputs", str(tmp_path / "xq.npy"),
                "--out", str(tmp_path / "yq.npy"))
    assert p.returncode == 0, p.stderr
    yq = np.load(tmp_path / "yq.npy")
    assert np.array_equal(yq, reference(load_net(tmp_path / "net.npz"), xq))
    assert yq.min() >= -128 and yq.max() <= 127                     # the last layer is requantized
    if not any(saturating_pairs(L).size for L in imp.net.layers) or not ort_saturates():
        assert _bits_equal(imp.dequantize(yq), _ort(path, x))


@pytest.mark.skipif(not ort_saturates(), reason="onnxruntime's accumulators are exact on this CPU")
def test_exact_accumulators_differ_from_onnxruntime_here(tmp_path, models):
    """On an AVX2 CPU without VNNI the default session saturates pairs: with exact accumulators the CLI's own
    check against onnxruntime fails, and nothing is written (the checker can fail)."""
    path, x = models["mlp_pc"]
    x = np.abs(x) * 3                                  # large activations: the pairs saturate
    np.save(tmp_path / "x.npy", x)
    p = rramcim("run", "--onnx", str(path), "--inputs", str(tmp_path / "x.npy"), "--out", str(tmp_path / "y.npy"),
                "--ort-accumulate", "exact")
    _one_line_error(p, "differs from onnxruntime")
    assert not (tmp_path / "y.npy").exists()


def test_bad_onnx_inputs_are_one_line(tmp_path, models):
    path, x = models["mlp"]
    out = tmp_path / "y.npy"
    np.save(tmp_path / "x8.npy", x.astype(np.int8))
    _one_line_error(rramcim("run", "--onnx", str(path), "--inputs", str(tmp_path / "x8.npy"), "--out", str(out)),
                    "x8.npy", "float32")
    np.save(tmp_path / "xs.npy", x[:, :5])
    _one_line_error(rramcim("run", "--onnx", str(path), "--inputs", str(tmp_path / "xs.npy"), "--out", str(out)),
                    "xs.npy", "shape")
    (tmp_path / "bad.onnx").write_bytes(b"not a model")
    np.save(tmp_path / "x.npy", x)
    _one_line_error(rramcim("run", "--onnx", str(tmp_path / "bad.onnx"), "--inputs", str(tmp_path / "x.npy"),
                            "--out", str(out)), "bad.onnx")
    _one_line_error(rramcim("import", str(tmp_path / "bad.onnx"), "-o", str(tmp_path / "n.npz")), "bad.onnx")
    _one_line_error(rramcim("run", "--onnx", str(path), "--net", "n.npz", "--inputs", str(tmp_path / "x.npy"),
                            "--out", str(out)), "--net and --onnx")
    assert not out.exists() and not (tmp_path / "n.npz").exists()


def test_cnn_demo(tmp_path):
    p = rramcim("run", "--demo", "cnn", "--report", str(tmp_path / "r.json"))
    assert p.returncode == 0, p.stderr
    assert "outputs identical to onnxruntime's, float32 bit for bit: yes" in p.stdout
    acc = {k: float(line.split()[-1].rstrip("%")) for line in p.stdout.splitlines()
           for k in ("float (numpy)", "onnxruntime int8") if f"accuracy, {k}" in line}
    assert acc["float (numpy)"] > 93 and acc["onnxruntime int8"] > 93
    r = json.loads((tmp_path / "r.json").read_text())
    assert r["placement"] == "layer-by-layer" and len(r["layers"]) == 4
