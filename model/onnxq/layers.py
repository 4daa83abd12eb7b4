"""One fused QDQ group (``DQ(x), DQ(W), [DQ(b)] -> Conv | Gemm | MatMul -> [Relu | Clip] -> Q``)
-> one NET layer in requant mode, exactly as onnxruntime's QLinearConv / QGemm / QLinearMatMul
compute it:

- ``M[j] = float32(float32(x_scale * w_scale[j]) / y_scale)``, in that order (QGemm computes
  ``alpha * a_scale * b_scale[j]`` first, the same number for ``alpha = 1``);
- ``acc = sum_k (x[k] - x_zp) * W[k, j] + b[j]`` in int32, which is ``x @ W + b'`` with
  ``b' = wrap32(b - x_zp * sum_k W[k, j])``: the input zero point folds into the bias exactly
  (int32 arithmetic wraps the same either way);
- ``y = clamp(rint(float32(float32(acc) * M[j])) + y_zp, -128, 127)`` in our int8 domain.

A Conv's weights become ``[KH*KW*C, Cout]`` in (kh, kw, c) row order for
:func:`rramcim.model.conv.im2col`; a Gemm/MatMul after a Flatten of an NHWC-held map gets its
rows permuted to our column order (``Layer.korder`` keeps onnxruntime's K order).
"""

from __future__ import annotations

import numpy as np

from ..mlp import Conv, Layer, Requant
from ..requant import RequantError, multiplier_parts
from .graph import nhwc_perm

__all__ = ["build_layer"]

F32 = np.float32
BIAS_SCALE_TOLERANCE = 0.01     # onnxruntime fuses a Conv only with b_scale within ~1 % of x_scale * w_scale


def _weight(walk, n):
    """``(W int8 array, w_scale float32 (scalar or 1-D), axis)`` of a weight DQ."""
    g = walk.g
    name = n.input[1]
    dq = g.producer.get(name)
    if dq is None or dq.op_type != "DequantizeLinear" or g.const(dq.input[0]) is None:
        what = "float" if g.const(name) is not None else "not a constant DequantizeLinear"
        raise g.error(n, f"weights {name!r} are {what} (only quantized int8 weights are supported)")
    if g.only_consumer(name) is not n:
        raise g.error(dq, "weights read by several nodes: onnxruntime does not fuse a shared weight DequantizeLinear")
    W = g.const(dq.input[0])
    if W.dtype != np.int8:
        raise g.error(dq, f"weights of type {W.dtype}: only int8 weights (zero point 0) are supported")
    ws = g.const(dq.input[1]) if len(dq.input) > 1 else None
    if ws is None or ws.dtype != np.float32 or ws.ndim > 1 or not (np.isfinite(ws).all() and (ws > 0).all()):
        raise g.error(dq, "weight scale is not a constant positive float32 scalar or vector")
    if len(dq.input) > 2 and dq.input[2]:
        wz = g.const(dq.input[2])
        if wz is None or np.any(wz != 0):
            raise g.error(dq, f"nonzero weight zero point {wz if wz is None else wz.reshape(-1)[:4]}: "
                              f"only symmetric int8 weights (zero point 0) are supported")
    a = g.attrs(dq)
    if a.get("block_size", 0):
        raise g.error(dq, "block-wise weight quantization is not supported")
    axis = a.get("axis", 1)
    if axis < 0:
        axis += W.ndim
    return W, ws.astype(F32), axis


def _bias(walk, n, N: int, expected_scale):
    """int64 [N] bias of input 2 (zeros if none); a Conv's bias scale is checked like onnxruntime."""
    g = walk.g
    if len(n.input) < 3 or not n.input[2]:
        return np.zeros(N, np.int64)
    name = n.input[2]
    dq = g.producer.get(name)
    if dq is None or dq.op_type != "DequantizeLinear" or g.const(dq.input[0]) is None:
        raise g.error(n, f"bias {name!r} is not a constant int32 DequantizeLinear (a float bias is not supported)")
    b = g.const(dq.input[0])
    if b.dtype != np.int32 or b.shape != (N,):
        raise g.error(dq, f"bias of type {b.dtype} and shape {b.shape}: expected int32 ({N},)")
    if len(dq.input) > 2 and dq.input[2]:
        bz = g.const(dq.input[2])
        if bz is None or np.any(bz != 0):
            raise g.error(dq, "nonzero bias zero point: onnxruntime's fused kernels ignore it")
    if n.op_type == "Conv":
        bs = g.const(dq.input[1])
        if bs is None or bs.size not in (1, N):
            raise g.error(dq, "bias scale is not a constant scalar or per-channel vector")
        rel = np.abs(bs.astype(np.float64).reshape(-1) / expected_scale.astype(np.float64) - 1)
        if np.any(rel > BIAS_SCALE_TOLERANCE):
            raise g.error(dq, f"bias scale differs from x_scale * w_scale by {rel.max():.1%}: onnxruntime does not "
                              f"fuse this Conv and computes it in float")
    return b.astype(np.int64)


def _redundant(g, clip, ys, zy, elem) -> bool:
    """onnxruntime's ``IsClipMadeRedundantByQ``: the Q's range already clips what the Relu/Clip clips."""
    qmin, qmax = (-128, 127) if elem == 3 else (0, 255)
    zm = zy + (128 if elem == 2 else 0)
    if clip.op_type == "Relu":
        return zm == qmin
    try:
        a = g.attrs(clip)
        lo_f = float(a.get("min", -3.4028234663852886e38))
        hi_f = float(a.get("max", 3.4028234663852886e38))
        if len(clip.input) > 1 and clip.input[1]:
            lo_f = float(g.const(clip.input[1]).reshape(()))
        if len(clip.input) > 2 and clip.input[2]:
            hi_f = float(g.const(clip.input[2]).reshape(()))
    except (AttributeError, TypeError, ValueError):
        return False
    with np.errstate(over="ignore", invalid="ignore"):
        ql, qh = np.rint(F32(F32(lo_f) / ys)), np.rint(F32(F32(hi_f) / ys))
    lim = 2.0 ** 31
    if not (np.isfinite(ql) and np.isfinite(qh) and -lim <= ql < lim and -lim <= qh < lim):
        return False                    # onnxruntime's int32 cast is undefined there: never call it redundant
    return int(ql) + zm <= qmin and int(qh) + zm >= qmax


def _output_q(walk, n):
    """The QuantizeLinear after ``n`` (through a Relu/Clip that onnxruntime drops)."""
    g = walk.g
    c = g.only_consumer(n.output[0])
    if c is None:
        k = len(g.consumers.get(n.output[0], []))
        raise g.error(n, f"its output is read by {k} nodes or is a graph output: onnxruntime does not fuse it")
    clip = None
    if c.op_type in ("Relu", "Clip"):
        clip, c = c, g.only_consumer(c.output[0])
    if c is None or c.op_type != "QuantizeLinear":
        extra = " (onnxruntime makes a MatMul without Q a float MatMulIntegerToFloat)" if n.op_type == "MatMul" else ""
        raise g.error(n, f"its output is not quantized{extra}: a float op between quantized ones is not supported")
    ys, zy, ey = walk._qparams(c)
    if clip is not None:
        if not _redundant(g, clip, ys, zy, ey):
            raise g.error(clip, f"between {g.name(n)} and its QuantizeLinear, not made redundant by the output "
                                f"range: onnxruntime computes {n.op_type} in float")
        walk.done.add(id(clip))
    walk.done.add(id(c))
    return c, ys, zy, ey


def _conv_geometry(g, n, act, W):
    cout, cin, kh, kw = W.shape
    a = g.attrs(n)
    if a.get("group", 1) != 1 or list(a.get("dilations", [1, 1])) != [1, 1]:
        raise g.error(n, "only group 1 and dilation 1 are supported")
    if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET", b"VALID", "VALID"):
        raise g.error(n, f"auto_pad {a['auto_pad']!r} is not supported (explicit pads are)")
    if "kernel_shape" in a and list(a["kernel_shape"]) != [kh, kw]:
        raise g.error(n, f"kernel_shape {a['kernel_shape']} differs from the weights' {[kh, kw]}")
    st = list(a.get("strides", [1, 1]))
    pads = list(a.get("pads", [0, 0, 0, 0]))
    if len(st) != 2 or len(pads) != 4 or min(st) < 1 or min(pads) < 0:
        raise g.error(n, f"strides {st}, pads {pads}: a 2-D convolution is expected")
    if len(act.shape) != 3 or act.shape[0] != cin:
        raise g.error(n, f"input shape {act.shape}, expected ({cin}, H, W)")
    if not np.array_equal(act.perm, nhwc_perm(*act.shape)):
        raise g.error(n, "its input is not a feature map the chip holds NHWC (a Reshape to 4-D is not supported)")
    conv = Conv(act.shape[1], act.shape[2], cin, kh, kw, st[0], st[1], pads[0], pads[1], pads[2], pads[3],
                pad=act.zp)
    if conv.oh < 1 or conv.ow < 1:
        raise g.error(n, "kernel larger than the padded input")
    return conv


def build_layer(walk, n):
    """``(Layer, Act of its output)`` for the compute node ``n``; its output Q is taken."""
    from dataclasses import replace
    g = walk.g
    act = walk._act_in(n, n.input[0])
    W, ws, axis = _weight(walk, n)
    conv, korder = None, None
    if n.op_type == "Conv":
        if W.ndim != 4:
            raise g.error(n, f"weights of shape {W.shape}: a 2-D convolution is expected")
        conv = _conv_geometry(g, n, act, W)
        Wm = W.astype(np.int64).transpose(2, 3, 1, 0).reshape(-1, W.shape[0])   # rows (kh, kw, c)
        wm, ch_axis = Wm, 0
    else:
        a = g.attrs(n)
        trans_b = a.get("transB", 0) if n.op_type == "Gemm" else 0
        if n.op_type == "Gemm" and (a.get("transA", 0) or a.get("alpha", 1.0) != 1.0
                                    or (len(n.input) > 2 and n.input[2] and a.get("beta", 1.0) != 1.0)):
            raise g.error(n, "only transA 0, alpha 1 and beta 1 are supported")
        if W.ndim != 2:
            raise g.error(n, f"weights of shape {W.shape}: 2-D expected")
        Wm = (W.T if trans_b else W).astype(np.int64)
        ch_axis = 0 if trans_b else 1
        if act.shape != (Wm.shape[0],):
            raise g.error(n, f"input of shape {act.shape} per item, expected ({Wm.shape[0]},) (2-D [batch, K] only)")
        wm = np.empty_like(Wm)
        wm[act.perm] = Wm
        if not np.array_equal(act.perm, np.arange(len(act.perm))):
            korder = act.perm.astype(np.int64)
    N = Wm.shape[1]
    if ws.size > 1 and (ws.size != N or axis != ch_axis):
        raise g.error(n, f"weight scale of shape {ws.shape} on axis {axis}: per-tensor or per output channel "
                         f"(axis {ch_axis}) is expected")
    wsc = np.broadcast_to(ws.reshape(-1), (N,)).astype(F32)
    xw = (act.scale * wsc).astype(F32)
    b = _bias(walk, n, N, xw)
    q, ys, zy, ey = _output_q(walk, n)
    if ey != act.elem:
        raise g.error(q, "output and input of different types (int8 and uint8): onnxruntime does not fuse it")
    M = (xw / ys).astype(F32)
    try:
        multiplier_parts(M)
    except RequantError as e:
        raise g.error(n, str(e)) from None
    bq = ((b - act.zp * Wm.sum(axis=0)) + (1 << 31)) % (1 << 32) - (1 << 31)
    layer = Layer(wm.astype(np.int8), bq.astype(np.int32), 0, 0, Requant(M, zy), conv, None, korder)
    index = len(walk.layers)
    if conv is not None:
        out = replace(act, scale=ys, zp=zy, shape=(N, conv.oh, conv.ow), perm=nhwc_perm(N, conv.oh, conv.ow),
                      layer=index, direct=True)
    else:
        out = replace(act, scale=ys, zp=zy, shape=(N,), perm=np.arange(N), layer=index, direct=True)
    walk._push(q, out)
    return layer, out
