"""The QDQ graph walk: an onnxruntime ``quantize_static`` (QuantFormat.QDQ) model -> a NET.

The importer follows the one chain of quantized activations from the graph input to the graph
output, node by node in the file's (topological) order, and accepts exactly the patterns that
onnxruntime's CPU execution provider fuses into integer kernels, because only those can be
computed bit for bit by an integer chip (``QDQSelectorActionTransformer``; docs/onnx.md):

- ``x -> QuantizeLinear``: the host quantizes (:meth:`Imported.quantize`);
- ``DQ(act), DQ(W int8, zp 0), [DQ(b int32)] -> Conv | Gemm | MatMul -> [Relu | Clip] -> Q``:
  one NET layer (onnxruntime's QLinearConv, QGemm, QLinearMatMul), requant in NET requant mode;
  a Relu/Clip is accepted only where onnxruntime drops it (the Q's range already clips it);
- ``DQ -> MaxPool -> Q`` (same scale and zero point): the conv layer's ``pool``;
- ``DQ -> Flatten | Reshape -> Q`` (same scale and zero point): a new shape, no data moves (the
  following Gemm/MatMul's rows are permuted instead, ``Layer.korder`` keeps onnxruntime's order);
- ``DQ -> Relu | Clip -> Q`` (same scale and zero point; onnxruntime computes it in float, which
  is ``clamp(q, Q(min), Q(max))`` exactly): folded into the producing layer's ``lo``/``hi``;
- ``DQ -> graph output``: the host dequantizes (:meth:`Imported.dequantize`).

Every activation is held in our int8 domain: uint8 values ``- 128`` (exact: only ``q - zp``
enters any arithmetic, and max, clamp and rounding commute with the shift). A [C, H, W] map is
held NHWC, flattened (``Act.perm`` maps each element of the model's C-order tensor to our column).

Anything else is an :class:`OnnxImportError` naming the node and why.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..mlp import Conv, Layer, Net, Pool, Requant
from .graph import Graph, OnnxImportError, nhwc_perm

__all__ = ["import_graph"]

F32 = np.float32
_INT8, _UINT8 = 3, 2                        # onnx TensorProto element types
_DYNAMIC = {"DynamicQuantizeLinear", "MatMulInteger", "ConvInteger", "DynamicQuantizeMatMul",
            "DynamicQuantizeLSTM", "MatMulIntegerToFloat"}
_QOPERATOR = {"QLinearConv", "QLinearMatMul", "QGemm", "QLinearAdd", "QLinearMul", "QLinearAveragePool",
              "QLinearGlobalAveragePool", "QLinearConcat", "QLinearLeakyRelu", "QLinearSigmoid", "QLinearSoftmax"}
_COMPUTE = ("Conv", "Gemm", "MatMul")


@dataclass
class Act:
    """A quantized activation as the chip holds it."""
    scale: np.float32
    zp: int                 # our int8 domain
    elem: int               # the model's element type (_INT8 or _UINT8)
    shape: tuple            # per batch item, the model's shape
    perm: np.ndarray        # our column of each element of the model's C-order tensor
    layer: int              # the layer that wrote it (-1: the graph input)
    direct: bool            # it is that layer's output as the layer computes it (no reshape since)


def _wrap32(v):
    return ((np.asarray(v, np.int64) + (1 << 31)) % (1 << 32) - (1 << 31)).astype(np.int64)


class _Walk:
    def __init__(self, g: Graph):
        self.g = g
        self.layers: list[Layer] = []
        self.qts: dict[str, Act] = {}           # Q outputs (quantized tensors)
        self.acts: dict[str, Act] = {}          # DQ outputs of activations
        self.done: set[int] = set()             # nodes consumed by a look-ahead
        self.current: str | None = None         # the latest quantized tensor
        self.input_act: Act | None = None

    # -- small helpers -------------------------------------------------------------------------------

    def _qparams(self, node) -> tuple:
        """``(scale float32, zp in our domain, elem)`` of a Q or DQ node (per tensor)."""
        g = self.g
        s = g.scalar(node, 1, "scale")
        if s.dtype != np.float32 or not (np.isfinite(s) and s > 0):
            raise g.error(node, f"scale {s!r} ({s.dtype}): expected a positive finite float32")
        if len(node.input) > 2 and node.input[2]:
            z = g.scalar(node, 2, "zero point")
        else:
            z = np.array(0, np.uint8)
        if z.dtype == np.int8:
            return F32(s), int(z), _INT8
        if z.dtype == np.uint8:
            return F32(s), int(z) - 128, _UINT8
        raise g.error(node, f"zero point of type {z.dtype}: only int8 and uint8 activations are supported")

    def _same_q(self, node, act: Act):
        """The QuantizeLinear right after ``node`` (a data-movement op), with ``act``'s parameters."""
        g = self.g
        q = g.only_consumer(node.output[0])
        if q is None or q.op_type != "QuantizeLinear":
            raise g.error(node, "its output is not quantized by one QuantizeLinear (a float op between "
                                "quantized ones, or a branch)")
        s, z, e = self._qparams(q)
        if s.view(np.uint32) != act.scale.view(np.uint32) or z != act.zp or e != act.elem:
            raise g.error(node, f"its QuantizeLinear {g.name(q)} has scale {float(s)!r}, zero point {z} "
                                f"(ours), but its input {float(act.scale)!r}, {act.zp}: onnxruntime computes "
                                f"{node.op_type} in float and requantizes")
        self.done.add(id(q))
        return q

    def _act_in(self, node, name: str) -> Act:
        if name not in self.acts:
            raise self.g.error(node, f"input {name!r} is not a dequantized activation (a float op between "
                                     f"quantized ones?)")
        return self.acts[name]

    def _push(self, q, act: Act):
        self.qts[q.output[0]] = act
        self.current = q.output[0]

    # -- the graph input and output ------------------------------------------------------------------

    def begin(self):
        g = self.g
        for n in g.nodes:
            if n.op_type in _DYNAMIC:
                raise g.error(n, "dynamic quantization is not supported (quantize with quantize_static, "
                                 "QuantFormat.QDQ)")
            if n.op_type in _QOPERATOR:
                raise g.error(n, "QOperator format is not supported (quantize with QuantFormat.QDQ)")
            if n.domain not in ("", "ai.onnx"):
                raise g.error(n, f"op of domain {n.domain!r} is not supported")
        if len(g.inputs) != 1 or len(g.outputs) != 1:
            raise g.error(None, f"{len(g.inputs)} inputs and {len(g.outputs)} outputs: one of each is supported")
        x = g.inputs[0]
        if x.type.tensor_type.elem_type != 1:
            raise g.error(None, f"input {x.name!r} is not float32")
        dims = g.value_shape(x)
        if len(dims) < 2 or any(d is None or d < 1 for d in dims[1:]):
            raise g.error(None, f"input {x.name!r} has shape {dims}: expected [batch, ...] with known sizes")
        q = g.only_consumer(x.name)
        if q is None or q.op_type != "QuantizeLinear":
            raise g.error(None, f"input {x.name!r} is not read by exactly one QuantizeLinear (a float model, "
                                f"or a float op before quantization)")
        s, z, e = self._qparams(q)
        shape = tuple(int(d) for d in dims[1:])
        first = next((n.op_type for n in g.nodes if n.op_type in _COMPUTE), None)
        perm = nhwc_perm(*shape) if len(shape) == 3 and first == "Conv" else np.arange(int(np.prod(shape)))
        self.input_act = Act(s, z, e, shape, perm, -1, True)
        self.done.add(id(q))
        self._push(q, self.input_act)
        return dims

    def end(self) -> Act:
        g = self.g
        out = g.outputs[0].name
        if out not in self.acts:
            p = g.producer.get(out)
            raise g.error(p, f"graph output {out!r} is not a DequantizeLinear of the quantized chain")
        if not self.layers:
            raise g.error(None, "no Conv, Gemm or MatMul: nothing for the chip to compute")
        return self.acts[out]

    # -- node handlers -------------------------------------------------------------------------------

    def dequantize(self, n):
        g = self.g
        src = n.input[0]
        if g.const(src) is not None:
            return                              # a weight or bias: read by its compute node
        if src not in self.qts:
            raise g.error(n, f"dequantizes {src!r}, which is not a QuantizeLinear output of the chain")
        act = self.qts[src]
        if src != self.current or g.only_consumer(src) is not n:
            raise g.error(n, f"{src!r} is read more than once or out of order (branches are not supported)")
        s, z, e = self._qparams(n)
        if s.view(np.uint32) != act.scale.view(np.uint32) or z != act.zp or e != act.elem:
            raise g.error(n, f"scale or zero point differ from its QuantizeLinear's")
        if n.output[0] not in g.output_names and g.only_consumer(n.output[0]) is None:
            raise g.error(n, f"read by {len(g.consumers.get(n.output[0], []))} nodes: onnxruntime fuses a "
                             f"DequantizeLinear with one consumer only")
        self.acts[n.output[0]] = act

    def quantize(self, n):
        raise self.g.error(n, f"quantizes {n.input[0]!r}, a tensor computed in float (a float op between "
                              f"quantized ones?)")

    def compute(self, n):
        from .layers import build_layer
        layer, act = build_layer(self, n)
        self.layers.append(layer)
        return act

    def maxpool(self, n):
        g = self.g
        act = self._act_in(n, n.input[0])
        L = self.layers[act.layer] if act.layer >= 0 else None
        if L is None or L.conv is None or L.pool is not None or not act.direct:
            raise g.error(n, "a MaxPool is supported right after a Conv only")
        if len([o for o in n.output if o]) != 1:
            raise g.error(n, "the Indices output is not supported")
        a = g.attrs(n)
        k = list(a.get("kernel_shape", []))
        st = list(a.get("strides", [1, 1]))
        pads = list(a.get("pads", [0, 0, 0, 0]))
        if len(k) != 2 or a.get("ceil_mode", 0) or list(a.get("dilations", [1, 1])) != [1, 1] \
                or a.get("storage_order", 0) or a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            raise g.error(n, f"attributes {a}: a 2-D kernel, ceil_mode 0, dilations 1, no auto_pad are supported")
        pool = Pool(k[0], k[1], st[0], st[1], pads[0], pads[1], pads[2], pads[3])
        if not (pool.pt < pool.kh and pool.pb < pool.kh and pool.pl < pool.kw and pool.pr < pool.kw):
            raise g.error(n, f"pads {pads} not below the kernel {k}")
        from ..conv import pool_out_hw
        c, oh, ow = act.shape
        ph, pw = pool_out_hw(oh, ow, pool)
        if ph < 1 or pw < 1:
            raise g.error(n, f"kernel {k} larger than the padded map {oh}x{ow}")
        q = self._same_q(n, act)
        L.pool = pool
        self._push(q, replace(act, shape=(c, ph, pw), perm=nhwc_perm(c, ph, pw)))

    def reshape(self, n):
        g = self.g
        act = self._act_in(n, n.input[0])
        size = int(np.prod(act.shape))
        if n.op_type == "Flatten":
            axis = g.attrs(n).get("axis", 1)
            if axis < 0:
                axis += len(act.shape) + 1
            if axis != 1:
                raise g.error(n, f"axis {axis}: only a Flatten that keeps the batch (axis 1) is supported")
            shape = (size,)
        else:
            t = g.const(n.input[1]) if len(n.input) > 1 else None
            if t is None or t.ndim != 1:
                raise g.error(n, "the target shape is not a constant vector")
            t = [int(v) for v in t]
            if g.attrs(n).get("allowzero", 0) and 0 in t:
                raise g.error(n, "allowzero with a 0 in the shape is not supported")
            full = (None,) + tuple(act.shape)
            t = [full[i] if v == 0 and i < len(full) else v for i, v in enumerate(t)]
            if not t or t[0] is not None and t[0] != -1:
                raise g.error(n, f"target shape {t}: the first dimension must stay the batch (0 or -1)")
            rest = t[1:]
            if t[0] == -1 and -1 in rest:
                raise g.error(n, f"target shape {t}: two -1")
            if -1 in rest:
                known = int(np.prod([v for v in rest if v != -1]))
                if known <= 0 or size % known:
                    raise g.error(n, f"target shape {t} does not fit {size} values per item")
                rest = [size // known if v == -1 else v for v in rest]
            if int(np.prod(rest)) != size or any(v < 1 for v in rest):
                raise g.error(n, f"target shape {t} does not keep {size} values per batch item")
            shape = tuple(rest)
        q = self._same_q(n, act)
        self._push(q, replace(act, shape=shape, direct=act.direct and shape == act.shape))

    def clip(self, n):
        """A Relu or Clip between a DQ and a Q of the same parameters: folded into lo/hi."""
        g = self.g
        act = self._act_in(n, n.input[0])
        if act.layer < 0:
            raise g.error(n, "a Relu/Clip on the model's input is not supported (nothing computes before it)")
        q = self._same_q(n, act)
        lo, hi = clip_bounds(g, n, act.scale, act.zp, act.elem)
        rq = self.layers[act.layer].rq
        rq.lo, rq.hi = max(rq.lo, lo), min(rq.hi, hi)
        if rq.lo > rq.hi:
            raise g.error(n, f"clips everything to one value ({rq.lo}..{rq.hi})")
        self._push(q, act)

    def run(self):
        dims = self.begin()
        handlers = {"DequantizeLinear": self.dequantize, "QuantizeLinear": self.quantize,
                    "MaxPool": self.maxpool, "Flatten": self.reshape, "Reshape": self.reshape,
                    "Relu": self.clip, "Clip": self.clip, "Constant": lambda n: None}
        for n in self.g.nodes:
            if id(n) in self.done:
                continue
            if n.op_type in _COMPUTE:
                self.compute(n)
                continue
            h = handlers.get(n.op_type)
            if h is None:
                raise self.g.error(n, "op not supported (supported: Conv, Gemm, MatMul, Relu, Clip, MaxPool, "
                                      "Flatten, Reshape between QuantizeLinear/DequantizeLinear)")
            h(n)
        return dims, self.end()


def clip_bounds(g: Graph, node, scale, zp: int, elem: int) -> tuple[int, int]:
    """A Relu's or Clip's bounds quantized as the following QuantizeLinear quantizes them, in our
    domain: ``Q(min)``, ``Q(max)`` (``x / scale`` in float32, half to even, + zp, saturated)."""
    if node.op_type == "Relu":
        return zp, 127
    a = g.attrs(node)
    lo_f, hi_f = a.get("min", -np.inf), a.get("max", np.inf)        # opset < 11: attributes
    for i, which in ((1, "min"), (2, "max")):
        if len(node.input) > i and node.input[i]:
            v = g.const(node.input[i])
            if v is None or v.size != 1:
                raise g.error(node, f"{which} is not a constant scalar")
            if which == "min":
                lo_f = float(v.reshape(()))
            else:
                hi_f = float(v.reshape(()))

    def q(v):
        with np.errstate(over="ignore", invalid="ignore"):
            f = F32(F32(v) / scale)
        f = min(max(f, F32(-128 - zp)), F32(127 - zp))
        return int(np.rint(f)) + zp
    return q(lo_f), q(hi_f)


def import_graph(path):
    """Walk the model at ``path``: ``(Graph, input dims, output Act, input Act, layers)``."""
    g = Graph(path)
    w = _Walk(g)
    dims, out = w.run()
    return g, dims, w.input_act, out, Net(w.layers)
