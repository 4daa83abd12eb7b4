"""Issue 20: ONNX QDQ models imported by model/onnxq, held to onnxruntime as the oracle.

Each test builds its own float model with onnx.helper, quantizes it with onnxruntime's
``quantize_static`` (QDQ) on calibration data, imports it, and compares

(a) every layer's int8 output of :func:`reference_layers` with onnxruntime's: the session's
    optimized graph is saved, its fused nodes' outputs made graph outputs, and it is rerun with
    optimizations off (findings §4.8: exposing the QDQ graph's own tensors would stop the fusion);
(b) the float32 output, bit for bit: ``dequantize(reference(net, quantize(x)))``.

The default session is matched with the saturating accumulator (``acc="avx2"``) on a CPU where
:func:`ort_saturates`, the exact one elsewhere; a session with ``session.x64quantprecision=1``
(exact U8U8 kernels) is matched with the exact accumulator everywhere. Graphs with power-of-two
scales have exact ties; half-up rounding injected there must fail.
"""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static

from rramcim.model.mlp import load_net, reference, reference_layers
from rramcim.model.onnxq import (Imported, OnnxImportError, avx2_correction, import_onnx, ort_saturates,
                                 saturating_pairs)
from tests.configs import slow
from tests.onnx_models import _Reader, cnn, mlp, quantized

ort.set_default_logger_severity(3)
SATURATES = ort_saturates()
DEFAULT_ACC = "avx2" if SATURATES else "exact"
EXACT = {"session.x64quantprecision": "1"}

# -- onnxruntime as the oracle ----------------------------------------------------------------------------

_FUSED = ("QLinearConv", "QGemm", "QLinearMatMul")
_POOLS = ("MaxPool", "NhwcMaxPool")


def ort_run(path, x, cfg=None, opt_path=None):
    so = ort.SessionOptions()
    for k, v in (cfg or {}).items():
        so.add_session_config_entry(k, v)
    if opt_path:
        so.optimized_model_filepath = str(opt_path)
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


def ort_layers(opt_path, x):
    """Every fused layer's output (after its pool) from onnxruntime's optimized graph, as int8 values in our
    NHWC-flattened layout; also the final output, to check the rerun changed nothing."""
    m = onnx.load(opt_path)
    nodes = list(m.graph.node)
    inits = {i.name: i.data_type for i in m.graph.initializer}
    consumers = {}
    for n in nodes:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    picked = []                                     # (tensor, element type, NHWC?)
    for n in nodes:
        if n.op_type not in _FUSED:
            continue
        zp_in = n.input[8] if n.op_type == "QGemm" else n.input[7]
        nhwc = n.domain == "com.microsoft" and any(a.name == "channels_last" and a.i for a in n.attribute)
        out, t = n.output[0], inits[zp_in]
        while True:             # through its pool and a float DQ -> Relu/Clip -> Q (both part of our layer)
            nxt = consumers.get(out, [])
            if len(nxt) == 1 and nxt[0].op_type in _POOLS:
                out, nhwc = nxt[0].output[0], nxt[0].op_type == "NhwcMaxPool"
                continue
            if len(nxt) == 1 and nxt[0].op_type == "DequantizeLinear":
                c = consumers.get(nxt[0].output[0], [])
                if len(c) == 1 and c[0].op_type in ("Relu", "Clip"):
                    (q,) = consumers[c[0].output[0]]
                    out, t = q.output[0], inits[q.input[2]]
                    continue
            break
        picked.append((out, t, nhwc))
    final = m.graph.output[0].name
    m.graph.output.extend(helper.make_tensor_value_info(o, t, None) for o, t, _ in picked)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    s = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    vals = dict(zip([o.name for o in s.get_outputs()], s.run(None, {"x": x})))
    layers = []
    for o, t, nhwc in picked:
        v = vals[o].astype(np.int16) - (128 if t == TensorProto.UINT8 else 0)
        if v.ndim == 4 and not nhwc:
            v = v.transpose(0, 2, 3, 1)
        layers.append(v.reshape(v.shape[0], -1))
    return layers, vals[final]


def check_against_ort(tmp_path, qpath, x, cfg=None, acc=None, name="opt"):
    """(a) and (b) for one session: returns the imported model."""
    acc = acc or ("exact" if cfg else DEFAULT_ACC)
    opt = tmp_path / f"{name}.onnx"
    y_ort = ort_run(qpath, x, cfg, opt)
    ort_l, y_rerun = ort_layers(opt, x)
    assert np.array_equal(y_ort.view(np.uint32), y_rerun.view(np.uint32)), "the exposed rerun changed the output"
    imp = import_onnx(qpath)
    ours = reference_layers(imp.net, imp.quantize(x), acc=acc)
    assert len(ours) == len(ort_l), (len(ours), len(ort_l))
    for i, (a, b) in enumerate(zip(ours, ort_l)):
        bad = int(np.sum(a.astype(np.int16) != b))
        assert bad == 0, f"layer {i}: {bad} of {a.size} int8 outputs differ from onnxruntime ({acc})"
    y = imp.dequantize(ours[-1])
    assert y.dtype == np.float32 and y.shape == y_ort.shape
    assert np.array_equal(y.view(np.uint32), y_ort.view(np.uint32)), \
        f"{int(np.sum(y.view(np.uint32) != y_ort.view(np.uint32)))} float32 outputs differ"
    return imp


# -- bit-exact on generated models ------------------------------------------------------------------------

S8, U8 = QuantType.QInt8, QuantType.QUInt8
CASES = {   # name: (builder, input shape, per_channel, activations, pow2)
    "gemm_pt_s8": (lambda r: mlp(r, (64, 96, 48, 10)), (64,), False, S8, False),
    "gemm_pc_u8": (lambda r: mlp(r, (64, 96, 48, 10)), (64,), True, U8, False),
    "gemm_transb0_pc_s8_clip": (lambda r: mlp(r, (33, 40, 7), trans_b=0, act="Clip"), (33,), True, S8, False),
    "matmul_pc_s8": (lambda r: mlp(r, (64, 48, 10), op="MatMul"), (64,), True, S8, False),
    "matmul_pt_u8_pow2": (lambda r: mlp(r, (64, 48, 10), op="MatMul"), (64,), False, U8, True),
    "cnn_pt_u8": (lambda r: cnn(r), (1, 8, 8), False, U8, False),
    "cnn_pc_s8_pow2": (lambda r: cnn(r), (1, 8, 8), True, S8, True),
    "cnn_c4_pc_s8": (lambda r: cnn(r, cin=4, c1=16, c2=32), (4, 8, 8), True, S8, False),
    "cnn_odd_pads_strides_reshape": (lambda r: cnn(r, cin=3, hw=9, c1=5, k1=2, pads1=(1, 0, 0, 1), strides2=(2, 1),
                                                   pool=((3, 2), (2, 1), (1, 0, 1, 1)), flatten="Reshape"),
                                     (3, 9, 9), True, U8, False),
}
SLOW_CASES = {f"{k}_seed{s}": v + (s,) for k, v in CASES.items() for s in (1, 2)}


def _run_case(tmp_path, build, shape, per_channel, act, pow2, seed=0, batch=48):
    rng = np.random.default_rng(100 + seed)
    calib = [(rng.standard_normal((8,) + shape) * 2).astype(np.float32) for _ in range(3)]
    qpath = quantized(tmp_path, build(rng), calib, per_channel, act, pow2)
    x = (rng.standard_normal((batch,) + shape) * 1.5).astype(np.float32)
    imp = check_against_ort(tmp_path, qpath, x)                 # default session
    check_against_ort(tmp_path, qpath, x, EXACT, name="opt_exact")
    return imp, qpath, x


@pytest.mark.parametrize("case", list(CASES))
def test_bit_exact_with_onnxruntime(tmp_path, case):
    _run_case(tmp_path, *CASES[case])


@pytest.mark.parametrize("case", [slow(k, why="more seeds; seed 0 of every case runs always") for k in SLOW_CASES])
def test_bit_exact_more_seeds(tmp_path, case):
    _run_case(tmp_path, *SLOW_CASES[case], batch=128)


def test_half_up_rounding_fails_on_power_of_two_scales(tmp_path):
    """Exact ties exist on power-of-two graphs: the reference matches onnxruntime with half-even rounding,
    and a half-up rounding injected into every layer (``round{i} = 1``) must not."""
    rng = np.random.default_rng(7)
    calib = [(rng.standard_normal((8, 1, 8, 8)) * 2).astype(np.float32) for _ in range(3)]
    qpath = quantized(tmp_path, cnn(rng), calib, False, U8, pow2=True)
    x = (rng.standard_normal((256, 1, 8, 8)) * 1.5).astype(np.float32)
    imp = check_against_ort(tmp_path, qpath, x, EXACT, name="opt_exact")
    assert all(float(np.log2(L.rq.scale).max()).is_integer() for L in imp.net.layers)
    ort_l, _ = ort_layers(tmp_path / "opt_exact.onnx", x)
    imp.save(tmp_path / "net.npz")
    fields = dict(np.load(tmp_path / "net.npz"))
    for i in range(len(imp.net.layers)):
        fields[f"round{i}"] = np.array(1)
    np.savez(tmp_path / "half_up.npz", **fields)
    net = load_net(tmp_path / "half_up.npz")
    assert all(L.rq.even == 0 for L in net.layers)
    ours = reference_layers(net, imp.quantize(x), acc="exact")
    bad = [int(np.sum(a.astype(np.int16) != b)) for a, b in zip(ours, ort_l)]
    assert sum(bad) > 0, "half-up rounding went unnoticed: no exact tie in this graph"


def test_save_and_from_net(tmp_path):
    imp, qpath, x = _run_case(tmp_path, *CASES["cnn_pt_u8"], batch=8)
    imp.save(tmp_path / "net.npz")
    back = Imported.from_net(tmp_path / "net.npz")
    assert back.input_shape == (None, 1, 8, 8) and back.output_shape == (None, 10)
    assert np.array_equal(back.quantize(x), imp.quantize(x))
    y = back.dequantize(reference(load_net(tmp_path / "net.npz"), back.quantize(x), acc=DEFAULT_ACC))
    assert np.array_equal(y.view(np.uint32), ort_run(qpath, x).view(np.uint32))


def test_special_inputs_quantize_like_onnxruntime(tmp_path):
    rng = np.random.default_rng(3)
    calib = [rng.standard_normal((8, 16)).astype(np.float32) for _ in range(2)]
    for act in (S8, U8):
        qpath = quantized(tmp_path, mlp(rng, (16, 12, 4)), calib, act=act, name=f"m{act}")
        x = rng.standard_normal((6, 16)).astype(np.float32)
        x[0, :6] = [np.nan, np.inf, -np.inf, 1e30, -1e30, -np.nan]
        x[1] = np.float32(0.5) * np.float32(onnx.numpy_helper.to_array(
            next(i for i in onnx.load(qpath).graph.initializer if i.name == "x_scale")))   # exact ties in Q
        imp = import_onnx(qpath)
        y = imp.dequantize(reference(imp.net, imp.quantize(x), acc=DEFAULT_ACC))
        assert np.array_equal(y.view(np.uint32), ort_run(qpath, x).view(np.uint32))


@pytest.mark.skipif(not SATURATES, reason="this CPU's onnxruntime sums exactly (VNNI or not x86)")
def test_default_session_saturates_where_the_exact_sum_differs(tmp_path):
    """On this CPU the exact accumulator is not onnxruntime's default one: a per-channel model has
    saturating pairs, and without the correction its outputs differ."""
    rng = np.random.default_rng(0)
    calib = [(rng.standard_normal((8, 64)) * 2).astype(np.float32) for _ in range(3)]
    qpath = quantized(tmp_path, mlp(rng, (64, 96, 48, 10)), calib, per_channel=True)
    imp = import_onnx(qpath)
    assert sum(len(saturating_pairs(L)) for L in imp.net.layers) > 0
    x = (rng.standard_normal((64, 64)) * 1.5).astype(np.float32)
    y_ort = ort_run(qpath, x)
    exact = imp.dequantize(reference(imp.net, imp.quantize(x), acc="exact"))
    avx2 = imp.dequantize(reference(imp.net, imp.quantize(x), acc="avx2"))
    assert np.array_equal(avx2.view(np.uint32), y_ort.view(np.uint32))
    assert not np.array_equal(exact.view(np.uint32), y_ort.view(np.uint32))
    one_by_one = np.concatenate([ort_run(qpath, x[i:i + 1]) for i in range(8)])     # batch 1: the GEMV kernels
    assert np.array_equal(avx2[:8].view(np.uint32), one_by_one.view(np.uint32))


def test_avx2_correction_is_the_pairwise_saturating_sum():
    from rramcim.model.mlp import Layer
    rng = np.random.default_rng(1)
    for K, korder in ((7, None), (8, "perm"), (33, "perm"), (64, None)):
        w = rng.integers(-128, 128, (K, 9)).astype(np.int8)
        L = Layer(w, np.zeros(9, np.int32), None, 0, korder=rng.permutation(K) if korder else None)
        x = rng.integers(-128, 128, (40, K)).astype(np.int8)
        x[0], x[1] = 127, -128                               # raw bytes 255 and 0
        k = L.korder if L.korder is not None else np.arange(K)
        u, wk = x.astype(np.int64)[:, k] + 128, w.astype(np.int64)[k]
        if K % 2:
            u, wk = np.pad(u, ((0, 0), (0, 1))), np.pad(wk, ((0, 1), (0, 0)))
        sat = sum(np.clip(u[:, 2 * p, None] * wk[2 * p] + u[:, 2 * p + 1, None] * wk[2 * p + 1], -32768, 32767)
                  for p in range(u.shape[1] // 2))
        corr = avx2_correction(L, x)
        assert np.array_equal(sat - u @ wk, corr)
        can = set(map(tuple, saturating_pairs(L)))
        hit = {(p, j) for p in range(u.shape[1] // 2) for j in range(9)
               if np.any(np.abs(u[:, 2 * p] * wk[2 * p, j] + u[:, 2 * p + 1] * wk[2 * p + 1, j]) > 32767)}
        assert hit <= can and len(can) > 0


# -- refused models: one line naming the node and why ----------------------------------------------------


def _refused(path, *words):
    with pytest.raises(OnnxImportError) as e:
        import_onnx(path)
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg, msg
    for w in words:
        assert w in msg, (w, msg)
    assert isinstance(e.value, ValueError)


def _edit(path, out, fn):
    m = onnx.load(path)
    fn(m)
    onnx.save(m, out)
    return out


def _set_init(m, name, arr):
    for i in m.graph.initializer:
        if i.name == name:
            i.CopyFrom(numpy_helper.from_array(arr, name))


@pytest.fixture(scope="module")
def quantized_mlp(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mlp")
    rng = np.random.default_rng(11)
    calib = [rng.standard_normal((8, 16)).astype(np.float32) for _ in range(2)]
    return tmp, rng, calib, quantized(tmp, mlp(rng, (16, 12, 8, 4)), calib)


def test_refuses_an_unsupported_op(tmp_path, quantized_mlp):
    _, rng, calib, _ = quantized_mlp
    m = mlp(rng, (16, 12, 4))
    relu = next(n for n in m.graph.node if n.op_type == "Relu")
    relu.op_type, relu.name = "Sigmoid", "squash"
    _refused(quantized(tmp_path, m, calib), "'squash'", "Sigmoid", "not supported")


def test_refuses_dynamic_quantization(tmp_path, quantized_mlp):
    _, rng, _, _ = quantized_mlp
    onnx.save(mlp(rng, (16, 12, 4), op="MatMul"), tmp_path / "f.onnx")
    quantize_dynamic(str(tmp_path / "f.onnx"), str(tmp_path / "d.onnx"), weight_type=QuantType.QInt8)
    _refused(tmp_path / "d.onnx", "dynamic quantization")


def test_refuses_a_nonzero_weight_zero_point(tmp_path, quantized_mlp):
    _, _, _, q = quantized_mlp
    path = _edit(q, tmp_path / "z.onnx", lambda m: _set_init(m, "W1_zero_point", np.array(3, np.int8)))
    _refused(path, "nonzero weight zero point", "DequantizeLinear")


def test_refuses_a_float_op_between_quantized_ones(tmp_path, quantized_mlp):
    _, rng, calib, _ = quantized_mlp
    path = quantized(tmp_path, mlp(rng, (16, 12, 8, 4)), calib, nodes_to_exclude=["fc1"])
    _refused(path, "'fc1'", "float")


def test_refuses_what_onnxruntime_would_not_fuse(tmp_path):
    rng = np.random.default_rng(12)
    calib = [(rng.standard_normal((4, 1, 8, 8)) * 2).astype(np.float32) for _ in range(2)]
    q = quantized(tmp_path, cnn(rng), calib)
    # a Conv bias scale 2x off: onnxruntime runs that Conv in float
    path = _edit(q, tmp_path / "b.onnx", lambda m: _set_init(
        m, "b1_quantized_scale", (numpy_helper.to_array(next(i for i in m.graph.initializer
                                                             if i.name == "b1_quantized_scale")) * 2)))
    _refused(path, "bias scale", "float")
    # a MaxPool whose Q changes the scale: float MaxPool and a requantization
    def rescale_pool(m):
        qn = next(n for n in m.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == "p2")
        m.graph.initializer.append(numpy_helper.from_array(np.array(0.5, np.float32), "other_scale"))
        qn.input[1] = "other_scale"
    _refused(_edit(q, tmp_path / "p.onnx", rescale_pool), "'pool'", "float")
    # QOperator format
    qo = tmp_path / "qo.onnx"
    quantize_static(str(tmp_path / "m_float.onnx"), str(qo), _Reader(calib), quant_format=QuantFormat.QOperator)
    _refused(qo, "QOperator")


def test_refuses_a_file_that_is_not_onnx(tmp_path):
    (tmp_path / "x.onnx").write_bytes(b"not a model")
    _refused(tmp_path / "x.onnx", "not a readable ONNX model")


# -- Relu and Clip where quantize_static leaves them ------------------------------------------------------


def test_symmetric_activations_keep_relu_between_q_and_dq(tmp_path):
    """With symmetric activations the Relu stays, as DQ -> Relu -> Q of one scale and zero point; onnxruntime
    computes it in float, which is max(q, zp): folded into the previous layer's lo."""
    rng = np.random.default_rng(5)
    calib = [(rng.standard_normal((8, 32)) * 2).astype(np.float32) for _ in range(3)]
    qpath = quantized(tmp_path, mlp(rng, (32, 24, 16, 6)), calib, per_channel=True,
                      extra_options={"ActivationSymmetric": True})
    ops = [n.op_type for n in onnx.load(qpath).graph.node]
    assert "Relu" in ops
    x = (rng.standard_normal((64, 32)) * 1.5).astype(np.float32)
    imp = check_against_ort(tmp_path, qpath, x)
    check_against_ort(tmp_path, qpath, x, EXACT, name="opt_exact")
    assert [L.rq.lo for L in imp.net.layers] == [0, 0, -128]


def _insert_relu(m, after):
    """A Relu between node ``after`` and the QuantizeLinear of its output."""
    node = next(n for n in m.graph.node if n.name == after)
    q = next(n for n in m.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == node.output[0])
    q.input[0] = f"{after}_relu"
    relu = helper.make_node("Relu", [node.output[0]], [f"{after}_relu"], name=f"{after}_relu")
    nodes = list(m.graph.node)
    nodes.insert(nodes.index(node) + 1, relu)
    del m.graph.node[:]
    m.graph.node.extend(nodes)


def test_relu_between_op_and_q(tmp_path, quantized_mlp):
    """onnxruntime drops a Relu between a Gemm and its Q when the Q's zero point is its minimum (the Q clips
    it already), and computes the Gemm in float otherwise: the first imports, the second is refused."""
    _, rng, _, q = quantized_mlp
    path = _edit(q, tmp_path / "r.onnx", lambda m: _insert_relu(m, "fc0"))
    x = (rng.standard_normal((32, 16)) * 1.5).astype(np.float32)
    check_against_ort(tmp_path, path, x)
    _refused(_edit(q, tmp_path / "r2.onnx", lambda m: _insert_relu(m, "fc2")), "'fc2_relu'", "float")
