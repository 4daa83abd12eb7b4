"""The CNN demo: a small convolutional network on scikit-learn's digits, in ONNX, float and int8.

The network, sized for a chip of 32x32 int8 macros (every layer an im2col GEMM of at most
``K = 256`` rows and ``N = 32`` columns)::

    input  float32 [N, 1, 8, 8]   pixels / 16 (like the MLP demo, model/digits.py)
    conv1  Conv 3x3 pad 1, 1 -> 8, Relu             [N, 8, 8, 8]   GEMM K=9,   N=8
    conv2  Conv 3x3 stride 2 pad 1, 8 -> 16, Relu   [N, 16, 4, 4]  GEMM K=72,  N=16
           (or, with ``pool=True``: MaxPool 2x2, then Conv 3x3 pad 1, 8 -> 16, Relu)
    Flatten                                         [N, 256]       (C, H, W order)
    fc1    Gemm 256 -> 32, Relu                                    GEMM K=256, N=32
    fc2    Gemm 32 -> 10                            [N, 10]        logits

Training is numpy only: hand-written forward and backward passes (convolutions as im2col
GEMMs), softmax cross-entropy, Adam, float32, and every random choice drawn from one
``numpy.random.default_rng(seed)``, so a seed gives the same weights on every run. The data are
scikit-learn's bundled digits (no download), split like the MLP demo (``test_size=0.25``,
stratified, ``random_state=seed``).

The float model is written with ``onnx.helper`` at opset 13 (Conv, Relu, MaxPool, Flatten,
Gemm with ``transB=1`` as PyTorch exports it; the batch dimension is symbolic), then quantized
by onnxruntime's ``quantize_static`` in the QDQ format: int8 weights (per tensor, or per output
channel), int8 or uint8 activations with zero points calibrated (MinMax) on a slice of the
training set, int32 biases. :func:`build_demo_models` does all of it into a folder and caches it
under a key of everything that determines the result.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from pathlib import Path

import numpy as np

__all__ = ["CnnResult", "train_cnn", "forward", "float_accuracy", "export_float_onnx",
           "quantize_onnx", "ort_accuracy", "build_demo_models", "load_split"]

OPSET = 13
INPUT_NAME, OUTPUT_NAME = "input", "logits"
_CACHE_VERSION = 1          # bump when training or export changes what a key's files hold


@dataclasses.dataclass
class CnnResult:
    """A trained CNN and its data.

    Members
    -------
    params : dict of str to float32 arrays
        ``conv1.weight`` [8, 1, 3, 3], ``conv1.bias``, ``conv2.weight`` [16, 8, 3, 3],
        ``conv2.bias``, ``fc1.weight`` [32, 256], ``fc1.bias``, ``fc2.weight`` [10, 32],
        ``fc2.bias`` (ONNX layouts: OIHW, Gemm ``B`` transposed); also the initializer names.
    pool : bool
        The MaxPool variant (pool 2x2, then a stride-1 conv2) instead of a stride-2 conv2.
    X_train, X_test : float32 [N, 1, 8, 8]
        Pixels / 16, NCHW.
    y_train, y_test : int64 [N]
    seed : int
    losses : list of float
        The mean training loss per epoch.
    """
    params: dict
    pool: bool
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    seed: int = 0
    losses: list = dataclasses.field(default_factory=list)


def load_split(seed: int = 0):
    """``(X_train, y_train, X_test, y_test)``: the digits as float32 NCHW pixels / 16, split
    like the MLP demo."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    d = load_digits()
    X = (d.data / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    Xtr, Xte, ytr, yte = train_test_split(X, d.target, test_size=0.25, random_state=seed,
                                          stratify=d.target)
    return Xtr, ytr.astype(np.int64), Xte, yte.astype(np.int64)


# --- numpy layers ---------------------------------------------------------------------------

def _im2col(x, k, stride, pad):
    """[N, C, H, W] -> ``(cols [N*OH*OW, C*k*k], OH, OW)``; the column order (C, kh, kw) is
    ``weight.reshape(O, -1)``'s."""
    n, c, h, w = x.shape
    oh, ow = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    cols = np.empty((n, c, k, k, oh, ow), dtype=x.dtype)
    for i in range(k):
        for j in range(k):
            cols[:, :, i, j] = xp[:, :, i:i + stride * oh:stride, j:j + stride * ow:stride]
    return cols.transpose(0, 4, 5, 1, 2, 3).reshape(n * oh * ow, c * k * k), oh, ow


def _col2im(dcols, shape, k, stride, pad, oh, ow):
    """The adjoint of :func:`_im2col`: overlapping windows' gradients add."""
    n, c, h, w = shape
    d = dcols.reshape(n, oh, ow, c, k, k).transpose(0, 3, 4, 5, 1, 2)
    dxp = np.zeros((n, c, h + 2 * pad, w + 2 * pad), dtype=dcols.dtype)
    for i in range(k):
        for j in range(k):
            dxp[:, :, i:i + stride * oh:stride, j:j + stride * ow:stride] += d[:, :, i, j]
    return dxp[:, :, pad:pad + h, pad:pad + w]


def _conv(x, weight, bias, stride, pad):
    """Conv2d as a GEMM; returns the output [N, O, OH, OW] and what the backward pass needs."""
    o, _, k, _ = weight.shape
    cols, oh, ow = _im2col(x, k, stride, pad)
    y = cols @ weight.reshape(o, -1).T + bias
    return y.reshape(x.shape[0], oh, ow, o).transpose(0, 3, 1, 2), (x.shape, cols, oh, ow)


def _conv_back(dy, weight, cache, stride, pad, need_dx=True):
    shape, cols, oh, ow = cache
    o, _, k, _ = weight.shape
    d = dy.transpose(0, 2, 3, 1).reshape(-1, o)
    dw = (d.T @ cols).reshape(weight.shape)
    dx = _col2im(d @ weight.reshape(o, -1), shape, k, stride, pad, oh, ow) if need_dx else None
    return dx, dw, d.sum(0)


def _maxpool(x):
    """2x2 stride 2; returns the output and the one-hot argmax mask (the first maximum)."""
    n, c, h, w = x.shape
    win = x.reshape(n, c, h // 2, 2, w // 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(n, c, h // 2, w // 2, 4)
    arg = win.argmax(-1)
    return np.take_along_axis(win, arg[..., None], -1)[..., 0], arg


def _maxpool_back(dy, arg, shape):
    n, c, h, w = shape
    d = np.zeros((n, c, h // 2, w // 2, 4), dtype=dy.dtype)
    np.put_along_axis(d, arg[..., None], dy[..., None], -1)
    return d.reshape(n, c, h // 2, w // 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(shape)


def _forward(p, x, pool):
    """Logits and the caches of every layer (for :func:`_backward`)."""
    a1, c1 = _conv(x, p["conv1.weight"], p["conv1.bias"], 1, 1)
    h1 = np.maximum(a1, 0)
    if pool:
        h1p, arg = _maxpool(h1)
        a2, c2 = _conv(h1p, p["conv2.weight"], p["conv2.bias"], 1, 1)
    else:
        arg = None
        a2, c2 = _conv(h1, p["conv2.weight"], p["conv2.bias"], 2, 1)
    h2 = np.maximum(a2, 0)
    f = h2.reshape(len(x), -1)
    a3 = f @ p["fc1.weight"].T + p["fc1.bias"]
    h3 = np.maximum(a3, 0)
    z = h3 @ p["fc2.weight"].T + p["fc2.bias"]
    return z, (c1, h1, arg, c2, h2, f, h3)


def _backward(p, dz, caches, pool):
    c1, h1, arg, c2, h2, f, h3 = caches
    g = {"fc2.weight": dz.T @ h3, "fc2.bias": dz.sum(0)}
    d3 = (dz @ p["fc2.weight"]) * (h3 > 0)
    g["fc1.weight"], g["fc1.bias"] = d3.T @ f, d3.sum(0)
    d2 = (d3 @ p["fc1.weight"]).reshape(h2.shape) * (h2 > 0)
    dh1, g["conv2.weight"], g["conv2.bias"] = _conv_back(d2, p["conv2.weight"], c2, 1 if pool else 2, 1)
    if pool:
        dh1 = _maxpool_back(dh1, arg, h1.shape)
    _, g["conv1.weight"], g["conv1.bias"] = _conv_back(dh1 * (h1 > 0), p["conv1.weight"], c1, 1, 1,
                                                       need_dx=False)
    return g


def forward(result: CnnResult, X) -> np.ndarray:
    """The float32 logits [N, 10] of images ``X`` [N, 1, 8, 8]."""
    return _forward(result.params, np.asarray(X, dtype=np.float32), result.pool)[0]


def float_accuracy(result: CnnResult, X=None, y=None) -> float:
    """The numpy model's accuracy on ``(X, y)``, the test split by default."""
    X = result.X_test if X is None else X
    y = result.y_test if y is None else y
    return float((forward(result, X).argmax(1) == y).mean())


# --- training -------------------------------------------------------------------------------

def _init(rng, channels, hidden):
    """He-normal weights (fan-in), zero biases."""
    c1, c2 = channels
    shapes = {"conv1.weight": (c1, 1, 3, 3), "conv2.weight": (c2, c1, 3, 3),
              "fc1.weight": (hidden, c2 * 16), "fc2.weight": (10, hidden)}
    p = {}
    for name, shape in shapes.items():
        fan_in = int(np.prod(shape[1:]))
        p[name] = (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)
        p[name.replace("weight", "bias")] = np.zeros(shape[0], dtype=np.float32)
    return p


def train_cnn(seed: int = 0, *, epochs: int = 30, batch: int = 32, lr: float = 3e-3,
              weight_decay: float = 1e-4, channels=(8, 16), hidden: int = 32,
              pool: bool = False) -> CnnResult:
    """Train the CNN with Adam (cosine-decayed learning rate, decoupled weight decay) on the
    digits' training split; deterministic for a ``seed``.

    Parameters
    ----------
    seed : int
        The data split's ``random_state`` and the weights' and minibatch order's generator.
    epochs, batch, lr, weight_decay
        The optimizer's settings.
    channels : (int, int)
        conv1's and conv2's output channels.
    hidden : int
        fc1's outputs.
    pool : bool
        The MaxPool variant (see the module docstring).
    """
    for name, v in (("epochs", epochs), ("batch", batch), ("hidden", hidden)):
        if not isinstance(v, int) or v < 1:
            raise TypeError(f"{name} must be a positive int, not {v!r}")
    if len(channels) != 2 or any(not isinstance(c, int) or c < 1 for c in channels):
        raise TypeError(f"channels must be two positive ints, not {channels!r}")
    from threadpoolctl import threadpool_limits     # scikit-learn's dependency
    Xtr, ytr, Xte, yte = load_split(seed)
    # one BLAS thread: these GEMMs are too small to gain from more, which only spin against
    # other work on a shared machine; and the sums' order then depends on no core count
    with threadpool_limits(limits=1, user_api="blas"):
        p, losses = _train(Xtr, ytr, seed, epochs, batch, lr, weight_decay, tuple(channels), hidden, pool)
    return CnnResult(p, bool(pool), Xtr, ytr, Xte, yte, seed, losses)


def _train(Xtr, ytr, seed, epochs, batch, lr, weight_decay, channels, hidden, pool):
    """The training loop of :func:`train_cnn`: ``(params, losses per epoch)``."""
    rng = np.random.default_rng(seed)
    p = _init(rng, channels, hidden)
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v2 = {k: np.zeros_like(v) for k, v in p.items()}
    b1, b2, eps = 0.9, 0.999, 1e-8
    steps_per_epoch = -(-len(Xtr) // batch)
    total, t = epochs * steps_per_epoch, 0
    losses = []
    for _ in range(epochs):
        order = rng.permutation(len(Xtr))
        run = 0.0
        for s in range(0, len(Xtr), batch):
            idx = order[s:s + batch]
            z, caches = _forward(p, Xtr[idx], pool)
            z = z - z.max(1, keepdims=True)
            e = np.exp(z)
            prob = e / e.sum(1, keepdims=True)
            run += float(-np.log(prob[np.arange(len(idx)), ytr[idx]] + 1e-12).sum())
            prob[np.arange(len(idx)), ytr[idx]] -= 1
            g = _backward(p, (prob / len(idx)).astype(np.float32), caches, pool)
            t += 1
            rate = lr * 0.5 * (1 + math.cos(math.pi * (t - 1) / total))
            for k in p:
                m[k] = b1 * m[k] + (1 - b1) * g[k]
                v2[k] = b2 * v2[k] + (1 - b2) * g[k] * g[k]
                step = rate * (m[k] / (1 - b1 ** t)) / (np.sqrt(v2[k] / (1 - b2 ** t)) + eps)
                if k.endswith("weight"):
                    step = step + rate * weight_decay * p[k]
                p[k] = (p[k] - step).astype(np.float32)
        losses.append(run / len(Xtr))
    return p, losses


# --- ONNX -----------------------------------------------------------------------------------

def export_float_onnx(result: CnnResult, path) -> Path:
    """Write the float model (opset 13, input ``input`` float32 [N, 1, 8, 8], output ``logits``
    float32 [N, 10]) to ``path``; checked with ``onnx.checker``."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    p = result.params
    def node(op, inputs, output, name=None, **attrs):
        return helper.make_node(op, inputs, [output], name=name or output, **attrs)

    conv = dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    nodes = [node("Conv", [INPUT_NAME, "conv1.weight", "conv1.bias"], "conv1", strides=[1, 1], **conv),
             node("Relu", ["conv1"], "relu1")]
    x = "relu1"
    if result.pool:
        nodes.append(node("MaxPool", [x], "pool1", kernel_shape=[2, 2], strides=[2, 2]))
        x = "pool1"
    stride2 = [1, 1] if result.pool else [2, 2]
    nodes += [node("Conv", [x, "conv2.weight", "conv2.bias"], "conv2", strides=stride2, **conv),
              node("Relu", ["conv2"], "relu2"),
              node("Flatten", ["relu2"], "flat", axis=1),
              node("Gemm", ["flat", "fc1.weight", "fc1.bias"], "fc1", transB=1),
              node("Relu", ["fc1"], "relu3"),
              node("Gemm", ["relu3", "fc2.weight", "fc2.bias"], OUTPUT_NAME, name="fc2", transB=1)]
    n_out = p["fc2.weight"].shape[0]
    graph = helper.make_graph(
        nodes, "digits_cnn",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["N", 1, 8, 8])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", n_out])],
        [numpy_helper.from_array(np.asarray(v, dtype=np.float32), k) for k, v in p.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="rramcim.model.digits_cnn")
    model.ir_version = 8        # opset 13's IR; readable by every onnxruntime since 1.10
    model = onnx.shape_inference.infer_shapes(model)
    onnx.checker.check_model(model, full_check=True)
    path = Path(path)
    _atomic_write(path, model.SerializeToString())
    return path


class _CalibrationReader:
    """An ``onnxruntime.quantization.CalibrationDataReader`` over images, ``batch`` at a time."""

    def __init__(self, images, batch=64):
        self._images = np.asarray(images, dtype=np.float32)
        self._batch = batch
        self._at = 0

    def get_next(self):
        if self._at >= len(self._images):
            return None
        x = self._images[self._at:self._at + self._batch]
        self._at += self._batch
        return {INPUT_NAME: x}

    def rewind(self):
        self._at = 0


def quantize_onnx(float_path, out_path, calib_images, per_channel: bool = False,
                  activation_type: str = "int8", weight_type: str = "int8",
                  extra_options: dict | None = None) -> Path:
    """Quantize the float model with onnxruntime's ``quantize_static``: QDQ format, MinMax
    calibration on ``calib_images`` [N, 1, 8, 8], int8 weights (per tensor, or per output
    channel with ``per_channel``), ``activation_type`` ``"int8"`` or ``"uint8"`` activations
    (asymmetric, with zero points: the defaults), int32 biases. ``extra_options`` goes to
    ``quantize_static`` as it is."""
    from onnxruntime.quantization import (CalibrationMethod, QuantFormat, QuantType, quant_pre_process,
                                          quantize_static)
    from onnxruntime.quantization.calibrate import CalibrationDataReader
    types = {"int8": QuantType.QInt8, "uint8": QuantType.QUInt8}
    for name, v in (("activation_type", activation_type), ("weight_type", weight_type)):
        if v not in types:
            raise TypeError(f"{name} must be 'int8' or 'uint8', not {v!r}")
    if len(calib_images) == 0:
        raise TypeError("calib_images is empty")

    class Reader(_CalibrationReader, CalibrationDataReader):
        pass

    out_path = Path(out_path)
    tmp = out_path.with_name(f".{out_path.name}.{os.getpid()}.tmp")
    prep = out_path.with_name(f".{out_path.name}.{os.getpid()}.prep.onnx")
    try:
        # onnxruntime's recommended first step (shape inference, basic graph optimizations, a
        # metadata tag); on this graph it changes no node
        quant_pre_process(str(float_path), str(prep), skip_symbolic_shape=True)
        quantize_static(str(prep), str(tmp), Reader(calib_images), quant_format=QuantFormat.QDQ,
                        per_channel=per_channel, activation_type=types[activation_type],
                        weight_type=types[weight_type], calibrate_method=CalibrationMethod.MinMax,
                        extra_options=dict(extra_options or {}))
        os.replace(tmp, out_path)
    finally:
        prep.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)
    return out_path


def ort_session(onnx_path):
    """An onnxruntime CPU session on ``onnx_path`` (graph optimizations at their defaults)."""
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])


def ort_logits(onnx_path, X) -> np.ndarray:
    """The model's float32 outputs on ``X`` [N, 1, 8, 8] with onnxruntime's CPU execution."""
    sess = ort_session(onnx_path)
    return sess.run(None, {sess.get_inputs()[0].name: np.asarray(X, dtype=np.float32)})[0]


def ort_accuracy(onnx_path, X, y) -> float:
    """The accuracy of the ONNX model at ``onnx_path`` on ``(X, y)`` under onnxruntime."""
    return float((ort_logits(onnx_path, X).argmax(1) == np.asarray(y)).mean())


# --- the demo's models, cached --------------------------------------------------------------

def _atomic_write(path: Path, data: bytes):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _cache_key(**settings) -> str:
    import onnx
    import onnxruntime
    import sklearn
    blob = json.dumps({"version": _CACHE_VERSION, "numpy": np.__version__, "sklearn": sklearn.__version__,
                       "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__, **settings},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def build_demo_models(folder, seed: int = 0, pool: bool = False, calib: int = 256,
                      activation_type: str = "int8") -> dict:
    """Train (or load), export and quantize the demo CNN into ``folder``.

    Files are named by a key of the seed, the settings and the library versions, so a second
    call with the same arguments only reads the weights back. Returns a dict: ``key``,
    ``weights`` (the .npz of the parameters and the split), ``float`` (float ONNX), ``int8``
    (QDQ, per-tensor weights), ``int8_per_channel`` (QDQ, per-channel weights): paths; and
    ``X_test``, ``y_test``, ``result`` (the :class:`CnnResult`).
    """
    folder = Path(folder)
    key = _cache_key(seed=seed, pool=bool(pool), calib=calib, activation_type=activation_type)
    stem = f"digits_cnn_{'pool_' if pool else ''}{key}"
    paths = {"weights": folder / f"{stem}.npz", "float": folder / f"{stem}_float.onnx",
             "int8": folder / f"{stem}_int8.onnx", "int8_per_channel": folder / f"{stem}_int8_pc.onnx"}
    if all(p.exists() for p in paths.values()):
        result = _load_result(paths["weights"])
    else:
        result = train_cnn(seed, pool=pool)
        export_float_onnx(result, paths["float"])
        calib_images = result.X_train[:calib]
        quantize_onnx(paths["float"], paths["int8"], calib_images, activation_type=activation_type)
        quantize_onnx(paths["float"], paths["int8_per_channel"], calib_images, per_channel=True,
                      activation_type=activation_type)
        _save_result(result, paths["weights"])   # last: its presence says the rest is there
    return {"key": key, **paths, "X_test": result.X_test, "y_test": result.y_test, "result": result}


def _save_result(result: CnnResult, path: Path):
    import io
    buf = io.BytesIO()
    np.savez(buf, **{f"param/{k}": v for k, v in result.params.items()},
             pool=result.pool, seed=result.seed, losses=np.asarray(result.losses),
             X_train=result.X_train, y_train=result.y_train, X_test=result.X_test, y_test=result.y_test)
    _atomic_write(path, buf.getvalue())


def _load_result(path: Path) -> CnnResult:
    with np.load(path) as f:
        params = {k[len("param/"):]: f[k] for k in f.files if k.startswith("param/")}
        return CnnResult(params, bool(f["pool"]), f["X_train"], f["y_train"], f["X_test"], f["y_test"],
                         int(f["seed"]), [float(v) for v in f["losses"]])
