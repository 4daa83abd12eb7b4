"""A read-only view of an ONNX graph for the importer: initializers, producers, consumers,
attributes, and one-line errors that name the node.

Only :mod:`onnx` is imported here (the model is read, never run).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

__all__ = ["OnnxImportError", "Graph"]


class OnnxImportError(ValueError):
    """A model the importer refuses; the message (one line) names the file, the node and why."""


class Graph:
    """The main graph of an ONNX model, indexed by tensor name."""

    def __init__(self, path):
        import onnx
        from onnx import numpy_helper
        self.path = str(path)
        try:
            model = onnx.load(self.path)
        except Exception as e:  # noqa: BLE001 - whatever onnx raises is one line
            text = str(e).splitlines()[0][:100] if str(e).strip() else ""
            raise OnnxImportError(f"{self.path}: not a readable ONNX model ({type(e).__name__}: {text})") from None
        self.model = model
        g = model.graph
        self.nodes = list(g.node)
        self.inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
        for n in self.nodes:                    # Constant nodes are initializers written another way
            if n.op_type == "Constant" and n.domain in ("", "ai.onnx"):
                a = self.attrs(n)
                if "value" in a:
                    self.inits[n.output[0]] = numpy_helper.to_array(a["value"])
        self.producer = {o: n for n in self.nodes for o in n.output if o}
        self.consumers = defaultdict(list)
        for n in self.nodes:
            for i in n.input:
                if i:
                    self.consumers[i].append(n)
        self.inputs = [v for v in g.input if v.name not in self.inits]
        self.outputs = list(g.output)
        self.output_names = {v.name for v in g.output}
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)

    # -- naming and errors ---------------------------------------------------------------------------

    @staticmethod
    def name(node) -> str:
        """How a message names a node: its name, else its first output."""
        return repr(node.name) if node.name else f"(unnamed, output {node.output[0]!r})"

    def error(self, node, why: str) -> OnnxImportError:
        where = f"node {self.name(node)} ({node.op_type})" if node is not None else "graph"
        return OnnxImportError(f"{self.path}: {where}: {why}")

    # -- reading -------------------------------------------------------------------------------------

    @staticmethod
    def attrs(node) -> dict:
        from onnx import helper
        return {a.name: helper.get_attribute_value(a) for a in node.attribute}

    def const(self, name: str):
        """An initializer (or Constant) by name, or None."""
        return self.inits.get(name)

    def only_consumer(self, tensor: str):
        """The single node that reads ``tensor``, or None when none or several do or it is a graph output."""
        c = self.consumers.get(tensor, [])
        if len(c) != 1 or tensor in self.output_names:
            return None
        return c[0]

    @staticmethod
    def value_shape(value_info) -> tuple:
        """A graph input's or output's dims: ints, None where symbolic or unknown."""
        dims = value_info.type.tensor_type.shape.dim
        return tuple(d.dim_value if d.HasField("dim_value") else None for d in dims)

    def scalar(self, node, index: int, what: str):
        """Input ``index`` of ``node`` as a constant scalar (0-d or one element), or an error."""
        if len(node.input) <= index or not node.input[index]:
            raise self.error(node, f"no {what} input")
        v = self.const(node.input[index])
        if v is None:
            raise self.error(node, f"{what} {node.input[index]!r} is not a constant")
        if v.size != 1:
            raise self.error(node, f"{what} has shape {v.shape}, expected a scalar (per-tensor)")
        return v.reshape(())


def nhwc_perm(c: int, h: int, w: int) -> np.ndarray:
    """Our flat column of each element of a [C, H, W] map in C order (NCHW), when we hold it NHWC."""
    ci, hi, wi = np.meshgrid(np.arange(c), np.arange(h), np.arange(w), indexing="ij")
    return ((hi * w + wi) * c + ci).reshape(-1)
