"""Float ONNX models built with onnx.helper and quantized by onnxruntime's ``quantize_static`` (QDQ), for the
tests of the importer (tests/model/test_onnx_import.py), the CLI and the RTL backends."""

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static

OPSET = 17

# -- float models -----------------------------------------------------------------------------------------


def _f32(name, a):
    return numpy_helper.from_array(np.asarray(a, np.float32), name)


def _model(nodes, inits, in_shape, out_shape, name):
    g = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *in_shape])],
                          [helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, ["N", *out_shape])],
                          inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)])


def mlp(rng, dims, op="Gemm", trans_b=1, act="Relu"):
    """Dense layers (Gemm with bias, or MatMul) with Relu (or Clip 0..6) between them."""
    nodes, inits, x = [], [], "x"
    for i in range(len(dims) - 1):
        W = rng.standard_normal((dims[i], dims[i + 1])) / np.sqrt(dims[i])
        if op == "Gemm":
            inits += [_f32(f"W{i}", W.T if trans_b else W), _f32(f"b{i}", 0.1 * rng.standard_normal(dims[i + 1]))]
            nodes.append(helper.make_node("Gemm", [x, f"W{i}", f"b{i}"], [f"y{i}"], transB=trans_b, name=f"fc{i}"))
        else:
            inits.append(_f32(f"W{i}", W))
            nodes.append(helper.make_node("MatMul", [x, f"W{i}"], [f"y{i}"], name=f"fc{i}"))
        x = f"y{i}"
        if i < len(dims) - 2:
            if act == "Relu":
                nodes.append(helper.make_node("Relu", [x], [f"r{i}"], name=f"relu{i}"))
            else:
                inits += [_f32(f"lo{i}", 0.0), _f32(f"hi{i}", 6.0)]
                nodes.append(helper.make_node("Clip", [x, f"lo{i}", f"hi{i}"], [f"r{i}"], name=f"clip{i}"))
            x = f"r{i}"
    return _model(nodes, inits, (dims[0],), (dims[-1],), f"mlp_{op}")


def cnn(rng, cin=1, hw=8, c1=8, c2=16, k1=3, pads1=(1, 1, 1, 1), strides2=(2, 2), pool=((2, 2), (2, 2), (0, 0, 0, 0)),
        flatten="Flatten", ncls=10):
    """Conv(pads1) -> Relu -> Conv(3x3, pad 1, strides2) -> Relu -> MaxPool -> Flatten/Reshape -> Gemm."""
    h1, w1 = hw + pads1[0] + pads1[2] - k1 + 1, hw + pads1[1] + pads1[3] - k1 + 1
    h2, w2 = (h1 + 2 - 3) // strides2[0] + 1, (w1 + 2 - 3) // strides2[1] + 1
    (pk, ps, pp) = pool
    h3, w3 = (h2 + pp[0] + pp[2] - pk[0]) // ps[0] + 1, (w2 + pp[1] + pp[3] - pk[1]) // ps[1] + 1
    feat = c2 * h3 * w3
    inits = [_f32("W1", rng.standard_normal((c1, cin, k1, k1)) / np.sqrt(cin * k1 * k1)),
             _f32("b1", 0.1 * rng.standard_normal(c1)),
             _f32("W2", rng.standard_normal((c2, c1, 3, 3)) / np.sqrt(c1 * 9)), _f32("b2", 0.1 * rng.standard_normal(c2)),
             _f32("W3", rng.standard_normal((ncls, feat)) / np.sqrt(feat)), _f32("b3", 0.1 * rng.standard_normal(ncls))]
    nodes = [helper.make_node("Conv", ["x", "W1", "b1"], ["c1"], pads=list(pads1), name="conv1"),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("Conv", ["r1", "W2", "b2"], ["c2"], pads=[1] * 4, strides=list(strides2), name="conv2"),
             helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
             helper.make_node("MaxPool", ["r2"], ["p2"], kernel_shape=list(pk), strides=list(ps), pads=list(pp),
                              name="pool")]
    if flatten == "Flatten":
        nodes.append(helper.make_node("Flatten", ["p2"], ["f"], axis=1, name="flatten"))
    else:
        inits.append(numpy_helper.from_array(np.array([-1, feat], np.int64), "shape"))
        nodes.append(helper.make_node("Reshape", ["p2", "shape"], ["f"], name="reshape"))
    nodes.append(helper.make_node("Gemm", ["f", "W3", "b3"], ["y"], transB=1, name="fc"))
    return _model(nodes, inits, (cin, hw, hw), (ncls,), "cnn")


class _Reader(CalibrationDataReader):
    def __init__(self, batches):
        self.batches, self.i = list(batches), 0

    def get_next(self):
        self.i += 1
        return {"x": self.batches[self.i - 1]} if self.i <= len(self.batches) else None

    def rewind(self):
        self.i = 0


def quantized(tmp_path, fmodel, calib, per_channel=False, act=QuantType.QInt8, pow2=False, name="m", **kw):
    fpath, qpath = tmp_path / f"{name}_float.onnx", tmp_path / f"{name}.onnx"
    onnx.save(fmodel, fpath)
    quantize_static(str(fpath), str(qpath), _Reader(calib), quant_format=QuantFormat.QDQ, per_channel=per_channel,
                    activation_type=act, weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax, **kw)
    if pow2:
        m = onnx.load(qpath)
        _pow2_scales(m)
        onnx.save(m, qpath)
    return qpath


def _pow2_scales(model):
    """Every scale rounded to a power of two, biases' scales kept at x_scale * w_scale (so that onnxruntime
    still fuses the convolutions): requant multipliers become powers of two, and exact ties appear."""
    inits = {i.name: i for i in model.graph.initializer}

    def get(n):
        return numpy_helper.to_array(inits[n]).astype(np.float32)

    def put(n, a):
        inits[n].CopyFrom(numpy_helper.from_array(np.asarray(a, np.float32), n))
    for n in inits:
        if n.endswith("_scale"):
            put(n, 2.0 ** np.round(np.log2(get(n))))
    prod = {o: n for n in model.graph.node for o in n.output}
    for n in model.graph.node:
        if n.op_type in ("Conv", "Gemm") and len(n.input) > 2:
            dx, dw, db = (prod[n.input[i]] for i in range(3))
            put(db.input[1], (get(dx.input[1]) * get(dw.input[1])).reshape(get(db.input[1]).shape))
