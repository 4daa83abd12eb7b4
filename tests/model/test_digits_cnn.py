"""The CNN demo (model/digits_cnn.py): the numpy layers against naive loops and finite
differences, deterministic training, the float ONNX model equal to the numpy forward pass, the
onnxruntime-quantized QDQ models' graphs and accuracies, and the cache of build_demo_models."""

import time

import numpy as np
import onnx
import pytest

from rramcim.model import digits_cnn as dc


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo models, trained once for the module."""
    return dc.build_demo_models(tmp_path_factory.mktemp("digits_cnn"), seed=0)


def _conv_naive(x, w, b, stride, pad):
    n, c, h, wd = x.shape
    o, _, k, _ = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh, ow = (h + 2 * pad - k) // stride + 1, (wd + 2 * pad - k) // stride + 1
    y = np.zeros((n, o, oh, ow))
    for i in range(oh):
        for j in range(ow):
            win = xp[:, :, i * stride:i * stride + k, j * stride:j * stride + k]
            y[:, :, i, j] = np.einsum("nckl,ockl->no", win, w) + b
    return y


@pytest.mark.parametrize("stride,pad,hw", [(1, 1, 8), (2, 1, 8), (2, 0, 7), (1, 0, 5)])
def test_conv_is_the_naive_convolution(stride, pad, hw):
    rng = np.random.default_rng(stride * 10 + pad)
    x = rng.standard_normal((3, 4, hw, hw))
    w, b = rng.standard_normal((5, 4, 3, 3)), rng.standard_normal(5)
    y, _ = dc._conv(x, w, b, stride, pad)
    np.testing.assert_allclose(y, _conv_naive(x, w, b, stride, pad), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("pool", [False, True])
def test_backward_is_the_finite_difference(pool):
    """Every parameter's gradient, at a few coordinates, against a central difference (float64)."""
    rng = np.random.default_rng(1)
    p = {k: v.astype(np.float64) for k, v in dc._init(rng, (3, 4), 6).items()}
    p = {k: v + 0.1 * rng.standard_normal(v.shape) for k, v in p.items()}      # nonzero biases too
    x, y = rng.random((4, 1, 8, 8)), rng.integers(0, 10, 4)

    def loss(params):
        z, caches = dc._forward(params, x, pool)
        z = z - z.max(1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(1, keepdims=True))
        return -logp[np.arange(4), y].mean(), z, caches

    _, z, caches = loss(p)
    prob = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    prob[np.arange(4), y] -= 1
    g = dc._backward(p, prob / 4, caches, pool)
    eps = 1e-6
    for k, v in p.items():
        for flat in rng.choice(v.size, size=min(5, v.size), replace=False):
            idx = np.unravel_index(flat, v.shape)
            plus, minus = dict(p), dict(p)
            plus[k], minus[k] = v.copy(), v.copy()
            plus[k][idx] += eps
            minus[k][idx] -= eps
            numeric = (loss(plus)[0] - loss(minus)[0]) / (2 * eps)
            assert g[k][idx] == pytest.approx(numeric, rel=1e-4, abs=1e-7), (k, idx)


def test_training_is_deterministic_for_a_seed():
    a, b, c = dc.train_cnn(1, epochs=2), dc.train_cnn(1, epochs=2), dc.train_cnn(2, epochs=2)
    assert all(np.array_equal(a.params[k], b.params[k]) for k in a.params)
    assert a.losses == b.losses
    assert not np.array_equal(a.params["fc1.weight"], c.params["fc1.weight"])


def test_split_and_shapes(demo):
    r = demo["result"]
    assert r.X_train.shape == (1347, 1, 8, 8) and r.X_test.shape == (450, 1, 8, 8)
    assert r.X_train.dtype == np.float32 and 0 <= r.X_train.min() and r.X_train.max() == 1
    assert {k: v.shape for k, v in r.params.items()} == {
        "conv1.weight": (8, 1, 3, 3), "conv1.bias": (8,), "conv2.weight": (16, 8, 3, 3), "conv2.bias": (16,),
        "fc1.weight": (32, 256), "fc1.bias": (32,), "fc2.weight": (10, 32), "fc2.bias": (10,)}
    assert r.losses[-1] < r.losses[0] / 10


def test_float_accuracy(demo):
    assert dc.float_accuracy(demo["result"]) >= 0.93


def test_float_onnx_is_the_numpy_forward(demo):
    r = demo["result"]
    model = onnx.load(demo["float"])
    assert model.opset_import[0].version == dc.OPSET
    ops = [n.op_type for n in model.graph.node]
    assert ops == ["Conv", "Relu", "Conv", "Relu", "Flatten", "Gemm", "Relu", "Gemm"]
    ort = dc.ort_logits(demo["float"], r.X_test)
    assert ort.shape == (450, 10) and ort.dtype == np.float32
    np.testing.assert_allclose(ort, dc.forward(r, r.X_test), rtol=1e-4, atol=1e-4)
    assert dc.ort_accuracy(demo["float"], r.X_test, r.y_test) == dc.float_accuracy(r)


def test_the_comparison_can_fail(demo, tmp_path):
    """A model with one wrong weight is told apart from the numpy forward pass."""
    r = demo["result"]
    bad = dc.CnnResult(dict(r.params), r.pool, r.X_train, r.y_train, r.X_test, r.y_test)
    bad.params["conv2.weight"] = r.params["conv2.weight"].copy()
    bad.params["conv2.weight"][3, 2, 1, 1] += 0.5
    path = dc.export_float_onnx(bad, tmp_path / "bad.onnx")
    with pytest.raises(AssertionError):
        np.testing.assert_allclose(dc.ort_logits(path, r.X_test), dc.forward(r, r.X_test),
                                   rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("which", ["int8", "int8_per_channel"])
def test_quantized_model(demo, which):
    model = onnx.load(demo[which])
    ops = [n.op_type for n in model.graph.node]
    assert {"Conv", "Gemm", "QuantizeLinear", "DequantizeLinear"} <= set(ops)
    assert ops.count("Conv") == 2 and ops.count("Gemm") == 2
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    # the weights int8, the biases int32; per channel: one scale per output channel
    for node in model.graph.node:
        if node.op_type == "DequantizeLinear" and node.input[0].endswith("weight_quantized"):
            assert inits[node.input[0]].dtype == np.int8
            scale = inits[node.input[1]]
            assert scale.size == (inits[node.input[0]].shape[0] if which == "int8_per_channel" else 1)
        if node.op_type == "DequantizeLinear" and node.input[0].endswith("bias_quantized"):
            assert inits[node.input[0]].dtype == np.int32
    r = demo["result"]
    acc = dc.ort_accuracy(demo[which], demo["X_test"], demo["y_test"])
    assert acc >= dc.float_accuracy(r) - 0.03


def test_uint8_activations(demo, tmp_path):
    path = dc.quantize_onnx(demo["float"], tmp_path / "u8.onnx", demo["result"].X_train[:128],
                            per_channel=True, activation_type="uint8")
    model = onnx.load(path)
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    q = [n for n in model.graph.node if n.op_type == "QuantizeLinear"]
    assert q and all(inits[n.input[2]].dtype == np.uint8 for n in q)
    acc = dc.ort_accuracy(path, demo["X_test"], demo["y_test"])
    assert acc >= dc.float_accuracy(demo["result"]) - 0.03


def test_maxpool_variant(tmp_path):
    r = dc.train_cnn(0, epochs=3, pool=True)
    path = dc.export_float_onnx(r, tmp_path / "pool.onnx")
    ops = [n.op_type for n in onnx.load(path).graph.node]
    assert ops == ["Conv", "Relu", "MaxPool", "Conv", "Relu", "Flatten", "Gemm", "Relu", "Gemm"]
    np.testing.assert_allclose(dc.ort_logits(path, r.X_test), dc.forward(r, r.X_test), rtol=1e-4, atol=1e-4)
    assert dc.float_accuracy(r) >= 0.85
    q = dc.quantize_onnx(path, tmp_path / "pool_int8.onnx", r.X_train[:128])
    assert "MaxPool" in {n.op_type for n in onnx.load(q).graph.node}


def test_build_is_cached(demo):
    folder = demo["float"].parent
    t = time.perf_counter()
    again = dc.build_demo_models(folder, seed=0)
    assert time.perf_counter() - t < 2
    assert again["key"] == demo["key"] and again["int8"] == demo["int8"]
    assert all(np.array_equal(again["result"].params[k], v) for k, v in demo["result"].params.items())
    np.testing.assert_array_equal(again["X_test"], demo["X_test"])
    # another seed or setting is another key, so other files
    base = dict(seed=0, pool=False, calib=256, activation_type="int8")
    assert dc._cache_key(**base) == demo["key"]
    assert dc._cache_key(**{**base, "seed": 1}) != demo["key"]
    assert dc._cache_key(**{**base, "activation_type": "uint8"}) != demo["key"]


def test_arguments_are_checked(tmp_path):
    with pytest.raises(TypeError, match="epochs"):
        dc.train_cnn(0, epochs=0)
    with pytest.raises(TypeError, match="channels"):
        dc.train_cnn(0, channels=(8,))
    with pytest.raises(TypeError, match="activation_type"):
        dc.quantize_onnx(tmp_path / "x.onnx", tmp_path / "y.onnx", np.zeros((1, 1, 8, 8)),
                         activation_type="int4")
