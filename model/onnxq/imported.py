"""An imported model: its NET and the host's two float ends, exactly as onnxruntime computes them.

- :meth:`Imported.quantize` is ``QuantizeLinear`` (MLAS ``MlasQuantizeLinear``): ``x / scale``
  as a float32 *division*, clamped to ``[lo - zp, hi - zp]`` (NaN to ``lo - zp``, as
  ``maxps``/``minps`` order it), rounded half to even, plus ``zp``; uint8 models are moved to our
  int8 domain by -128; the model's C-order elements go to our columns (NHWC for a conv net).
- :meth:`Imported.dequantize` is ``DequantizeLinear``: ``float32(int32(q) - zp) * scale``, back
  in the model's output shape and order.

Both are saved with the NET as ``io_*`` fields (:meth:`Imported.save`, :meth:`Imported.from_net`),
so a NET.npz alone reproduces the model end to end.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..mlp import Net, load_net, save_net

__all__ = ["Imported", "IoSide"]

F32 = np.float32


@dataclass
class IoSide:
    """One float end of the model: a per-tensor quantization and where its elements go."""
    scale: np.float32
    zp: int                 # our int8 domain
    uint8: bool             # the model's type (informative: q - zp does not depend on it)
    shape: tuple            # per batch item, the model's shape
    perm: np.ndarray        # our column of each element of the model's C-order tensor

    def fields(self, side: str) -> dict:
        return {f"io_{side}_scale": np.array(self.scale, F32), f"io_{side}_zp": np.array(self.zp),
                f"io_{side}_uint8": np.array(int(self.uint8)), f"io_{side}_shape": np.array(self.shape, np.int64),
                f"io_{side}_perm": np.asarray(self.perm, np.int64)}

    @classmethod
    def from_fields(cls, io: dict, side: str, where: str) -> "IoSide":
        try:
            scale = np.asarray(io[f"io_{side}_scale"])
            shape = tuple(int(v) for v in np.asarray(io[f"io_{side}_shape"]).reshape(-1))
            perm = np.asarray(io[f"io_{side}_perm"]).astype(np.int64).reshape(-1)
            side_ = cls(F32(scale.reshape(())), int(np.asarray(io[f"io_{side}_zp"]).reshape(())),
                        bool(int(np.asarray(io[f"io_{side}_uint8"]).reshape(()))), shape, perm)
        except KeyError as e:
            raise ValueError(f"{where}: no {e.args[0]} field (not written by the ONNX importer)") from None
        except (TypeError, ValueError) as e:
            raise ValueError(f"{where}: io_{side}_* fields malformed ({e})") from None
        n = int(np.prod(shape))
        if scale.dtype != F32 or len(perm) != n or sorted(perm.tolist()) != list(range(n)):
            raise ValueError(f"{where}: io_{side}_* fields inconsistent (scale dtype {scale.dtype}, "
                             f"{len(perm)} columns for shape {shape})")
        return side_


@dataclass
class Imported:
    """An ONNX QDQ model as the chip runs it: ``dequantize(reference(net, quantize(x)))`` is
    onnxruntime's output bit for bit (with ``acc="avx2"`` where :func:`ort_saturates`)."""
    net: Net
    inp: IoSide
    out: IoSide

    @property
    def input_shape(self) -> tuple:
        """The model's input shape, batch first (``None``)."""
        return (None,) + tuple(self.inp.shape)

    @property
    def output_shape(self) -> tuple:
        return (None,) + tuple(self.out.shape)

    def quantize(self, x) -> np.ndarray:
        """float32 ``x`` [batch, *input_shape[1:]] -> int8 [batch, net.inputs] (QuantizeLinear)."""
        x = np.asarray(x)
        if x.dtype != F32:
            raise ValueError(f"input dtype {x.dtype}, expected float32 (what onnxruntime takes)")
        if x.shape[1:] != tuple(self.inp.shape) or x.ndim < 1:
            raise ValueError(f"input shape {x.shape}, expected [batch, {', '.join(map(str, self.inp.shape))}]")
        f = x.reshape(x.shape[0], -1) / self.inp.scale
        lo, hi = F32(-128 - self.inp.zp), F32(127 - self.inp.zp)
        f = np.minimum(np.maximum(np.where(np.isnan(f), lo, f), lo), hi)
        q = np.rint(f).astype(np.int32) + self.inp.zp
        out = np.empty_like(q, dtype=np.int8)
        out[:, self.inp.perm] = q
        return out

    def dequantize(self, y) -> np.ndarray:
        """The net's output (int8 values [batch, net.outputs], any integer dtype) -> float32 in the
        model's output shape (DequantizeLinear)."""
        y = np.asarray(y)
        if y.ndim != 2 or y.shape[1] != len(self.out.perm):
            raise ValueError(f"output shape {y.shape}, expected [batch, {len(self.out.perm)}]")
        d = (y[:, self.out.perm].astype(np.int32) - np.int32(self.out.zp)).astype(F32) * self.out.scale
        return d.astype(F32).reshape((y.shape[0],) + tuple(self.out.shape))

    def save(self, path):
        """The NET.npz, with the ``io_*`` fields :meth:`from_net` reads back."""
        io = dict(self.net.io)
        io.update(self.inp.fields("in"))
        io.update(self.out.fields("out"))
        save_net(path, Net(self.net.layers, io))

    @classmethod
    def from_net(cls, path) -> "Imported":
        """An imported model back from its NET.npz (:func:`rramcim.model.mlp.load_net` checks it)."""
        net = load_net(path)
        inp, out = IoSide.from_fields(net.io, "in", str(path)), IoSide.from_fields(net.io, "out", str(path))
        if len(inp.perm) != net.inputs or len(out.perm) != net.outputs:
            raise ValueError(f"{path}: io_in/io_out sizes {len(inp.perm)}/{len(out.perm)} do not match the net's "
                             f"{net.inputs}/{net.outputs}")
        return cls(net, inp, out)


def import_onnx(path) -> Imported:
    """Import an onnxruntime QDQ model (see :mod:`rramcim.model.onnxq.importer` for what is supported);
    an unsupported one is an :class:`OnnxImportError` naming the node and why."""
    from .importer import import_graph
    g, dims, inp, out, net = import_graph(path)
    return Imported(net, IoSide(inp.scale, inp.zp, inp.elem == 2, inp.shape, inp.perm),
                    IoSide(out.scale, out.zp, out.elem == 2, out.shape, out.perm))
