"""Int8 MLPs: the NET.npz contract, its numpy reference, and running a net on the chip.

NET.npz (../shared/architecture.md): ``layers`` (N >= 1) and, for each layer
``i``, ``w{i}`` int8 [in, out] and ``b{i}`` int32 [out]; for every layer but
the last, ``shift{i}`` (0..31) and ``relu{i}`` (0 or 1). ``layers``,
``shift{i}`` and ``relu{i}`` may be 0-d or 1-element arrays of any integer
dtype. With ``x`` int8 [batch, in]: ``acc = x @ w{i} + b{i}`` wrapping to
int32; for ``i < N-1``: ``y = acc`` if ``shift == 0`` else
``floor((acc + 2**(shift-1)) / 2**shift)`` exactly, clamped to [-128, 127],
then ReLU if ``relu{i}``; ``y`` is the next ``x``. The last layer returns
``acc`` (int32).

On the chip each layer is a GEMM with an epilogue (:func:`rramcim.model.compiler.compile_gemm`
with ``bias``, ``shift``, ``relu``): the tiles add the bias and requantize
(``outq``), the last layer leaves as int32 with its bias (``out bias=1``).
Layers run one after the other over the whole batch, so each layer's
weights are programmed once per batch and stay resident while every input
goes through; a layer larger than the chip is split in passes with RRAM
reprogramming by the compiler.

Pure numpy: no Amaranth or cocotb here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .npfile import NpFileError, NpzArchive, one_line, read_npy

__all__ = ["Layer", "Net", "NetError", "load_net", "load_inputs", "reference", "requantize", "save_net"]

I8 = (-128, 127)
I32 = (-(1 << 31), (1 << 31) - 1)


class NetError(ValueError):
    """A NET.npz or X.npy that breaks the contract; the message names the file and the field."""


@dataclass
class Requant:
    """A layer's per-column requantization (``scale{i}`` and friends; :mod:`rramcim.model.requant`):
    ``y = clamp(round(float32(float32(acc) * scale[j])) + zp, lo, hi)``."""
    scale: np.ndarray       # float32 [out]: the multiplier M per output column
    zp: int                 # output zero point (int8 domain)
    lo: int = -128          # output bounds (a Relu folded in: lo = zp)
    hi: int = 127
    even: int = 1           # 1: ties to even (onnxruntime); 0: ties toward +infinity

    def parts(self):
        """``(m, s)`` int64 [out]: ``scale == m * 2**-s``."""
        from .requant import multiplier_parts
        return multiplier_parts(self.scale)


@dataclass
class Conv:
    """A convolution layer's geometry (``conv{i}``): the layer's input is NHWC ``[batch, h*w*c]``
    flattened, its weights ``[kh*kw*c, out]`` in (kh, kw, c) row order, its output NHWC
    ``[batch, oh*ow*out]``; padding positions hold ``pad`` (the input zero point)."""
    h: int
    w: int
    c: int
    kh: int
    kw: int
    sh: int = 1
    sw: int = 1
    pt: int = 0
    pl: int = 0
    pb: int = 0
    pr: int = 0
    pad: int = 0

    @property
    def oh(self) -> int:
        return (self.h + self.pt + self.pb - self.kh) // self.sh + 1

    @property
    def ow(self) -> int:
        return (self.w + self.pl + self.pr - self.kw) // self.sw + 1


@dataclass
class Pool:
    """A max pool after a convolution layer (``pool{i}``), on its NHWC output; padding never wins."""
    kh: int
    kw: int
    sh: int
    sw: int
    pt: int = 0
    pl: int = 0
    pb: int = 0
    pr: int = 0


@dataclass
class Layer:
    w: np.ndarray           # int8 [in, out]
    b: np.ndarray           # int32 [out]
    shift: int | None       # None for the last layer
    relu: int
    rq: Requant | None = None       # per-column requant (replaces shift/relu; the last layer too)
    conv: Conv | None = None        # the layer is a convolution (im2col on the host)
    pool: Pool | None = None        # max pool of the layer's output


@dataclass
class Net:
    layers: list

    @property
    def inputs(self) -> int:
        return self.layers[0].w.shape[0]

    @property
    def outputs(self) -> int:
        return self.layers[-1].w.shape[1]


def _wrap32(v: np.ndarray) -> np.ndarray:
    return ((v.astype(np.int64) + (1 << 31)) % (1 << 32) - (1 << 31)).astype(np.int64)


def requantize(acc: np.ndarray, shift: int, relu: int) -> np.ndarray:
    """int32 accumulators -> int8: rounding shift (ties toward +infinity), clamp, ReLU."""
    a = np.asarray(acc, dtype=np.int64)
    if shift:
        a = (a + (1 << (shift - 1))) >> shift          # exact: int64 holds int32 + 2**30
    y = np.clip(a, *I8)
    if relu:
        y = np.maximum(y, 0)
    return y.astype(np.int8)


def reference(net: Net, X: np.ndarray) -> np.ndarray:
    """The contract's semantics in numpy: int32 [batch, out]."""
    x = np.asarray(X, dtype=np.int64)
    for i, L in enumerate(net.layers):
        acc = _wrap32(x @ L.w.astype(np.int64) + L.b.astype(np.int64))
        if i == len(net.layers) - 1:
            return acc.astype(np.int32)
        x = requantize(acc, L.shift, L.relu).astype(np.int64)
    raise AssertionError("unreachable")


def _scalar(arr, where: str, lo: int, hi: int) -> int:
    """A 0-d or 1-element integer in ``lo..hi``; the dtype and shape checks also take a :class:`Header`."""
    _scalar_shape(arr, where)
    v = int(arr.reshape(()))
    if not lo <= v <= hi:
        raise NetError(f"{where}: {v} outside {lo}..{hi}")
    return v


def _scalar_shape(arr, where: str):
    if arr.dtype.kind not in "iu":
        raise NetError(f"{where}: dtype {arr.dtype}, expected an integer")
    if arr.size != 1 or arr.ndim > 1:
        raise NetError(f"{where}: shape {arr.shape}, expected a scalar (0-d or 1 element)")


def _int_shape(arr, where: str, ndim: int, kind: str):
    """The dtype and shape checks of :func:`_int_array`, on an array or a :class:`Header` (before its data)."""
    if arr.dtype.kind not in "iu":
        raise NetError(f"{where}: dtype {arr.dtype}, expected {kind}")
    if arr.ndim != ndim:
        raise NetError(f"{where}: shape {arr.shape}, expected {ndim}-D")
    if arr.size == 0:
        raise NetError(f"{where}: shape {arr.shape} is empty")


def _int_array(arr, where: str, ndim: int, rng: tuple[int, int], kind: str) -> np.ndarray:
    _int_shape(arr, where, ndim, kind)
    lo, hi = int(arr.min()), int(arr.max())
    if lo < rng[0] or hi > rng[1]:
        bad = lo if lo < rng[0] else hi
        raise NetError(f"{where}: value {bad} outside the {kind} range [{rng[0]}, {rng[1]}] (dtype {arr.dtype})")
    return arr


def _unexpected(path, z: NpzArchive, expected: set):
    extra = sorted(set(z.fields) - expected)
    if extra:
        hint = ""
        if any(re.fullmatch(r"(shift|relu)\d+", k) for k in extra):
            hint = " (the last layer has no shift or relu: it returns int32)"
        shown = extra[0] if len(extra[0]) <= 60 else extra[0][:60] + "..."
        raise NetError(f"{path}: unexpected field {shown!r}{hint}")


def _read_net(path, z: NpzArchive) -> Net:
    """The contract's checks in the order that reads least: names, then headers, then data."""
    if "layers" not in z.fields:
        raise NetError(f"{path}: no 'layers' field")
    n = _scalar(z.read("layers", check=lambda h: _scalar_shape(h, f"{path}: layers")), f"{path}: layers",
                1, 1 << 16)
    expected = {"layers"}
    for i in range(n):
        for f in (f"w{i}", f"b{i}") + ((f"shift{i}", f"relu{i}") if i < n - 1 else ()):
            if f not in z.fields:
                raise NetError(f"{path}: {f} missing (layers = {n})")
            expected.add(f)
    _unexpected(path, z, expected)
    prev = None
    for i in range(n):                  # shapes and dtypes from the headers, before any weight is read
        w, b = z.header(f"w{i}"), z.header(f"b{i}")
        _int_shape(w, f"{path}: w{i}", 2, "int8")
        _int_shape(b, f"{path}: b{i}", 1, "int32")
        if b.shape != (w.shape[1],):
            raise NetError(f"{path}: b{i} shape {b.shape}, expected ({w.shape[1]},) (the outputs of w{i} {w.shape})")
        if prev is not None and prev.shape[1] != w.shape[0]:
            raise NetError(f"{path}: w{i} shape {w.shape} does not chain: w{i - 1} has {prev.shape[1]} outputs")
        if i < n - 1:
            _scalar_shape(z.header(f"shift{i}"), f"{path}: shift{i}")
            _scalar_shape(z.header(f"relu{i}"), f"{path}: relu{i}")
        prev = w
    layers = []
    for i in range(n):
        w = _int_array(z.read(f"w{i}"), f"{path}: w{i}", 2, I8, "int8")
        b = _int_array(z.read(f"b{i}"), f"{path}: b{i}", 1, I32, "int32")
        shift = relu = None
        if i < n - 1:
            shift = _scalar(z.read(f"shift{i}"), f"{path}: shift{i}", 0, 31)
            relu = _scalar(z.read(f"relu{i}"), f"{path}: relu{i}", 0, 1)
        layers.append(Layer(w.astype(np.int8), b.astype(np.int32), shift, relu or 0))
    return Net(layers)


def load_net(path) -> Net:
    """Read and check a NET.npz; every problem is a one-line :class:`NetError` naming the file and the field.

    The archive is read by :class:`rramcim.model.npfile.NpzArchive`: member names, sizes and headers are
    checked before any array is decompressed, within its limits (``MAX_ARRAY_BYTES`` an array,
    ``MAX_TOTAL_BYTES`` in all).
    """
    p = Path(path)
    if not p.is_file():
        raise NetError(f"{path}: {'not a regular file' if p.exists() else 'no such file'}")
    try:
        with NpzArchive(p, where=str(path)) as z:
            return _read_net(path, z)
    except NetError:
        raise
    except NpFileError as e:
        raise NetError(str(e)) from None
    except Exception as e:  # noqa: BLE001 - whatever else breaks while reading is one line, not a traceback
        raise NetError(f"{path}: cannot read it ({one_line(e)})") from None


def load_inputs(path, net: Net) -> np.ndarray:
    """Read and check X.npy: int8 values [batch, in] with ``in`` = the net's inputs (read by
    :func:`rramcim.model.npfile.read_npy`: dtype and shape checked before the data is read)."""
    p = Path(path)
    if not p.is_file():
        raise NetError(f"{path}: {'not a regular file' if p.exists() else 'no such file'}")

    def check(h):
        _int_shape(h, str(path), 2, "int8")
        if h.shape[1] != net.inputs:
            raise NetError(f"{path}: shape {h.shape}, expected [batch, {net.inputs}] (w0 has {net.inputs} inputs)")
    try:
        X = read_npy(p, where=str(path), check=check)
    except NetError:
        raise
    except NpFileError as e:
        raise NetError(str(e)) from None
    except Exception as e:  # noqa: BLE001
        raise NetError(f"{path}: cannot read it ({one_line(e)})") from None
    X = _int_array(X, str(path), 2, I8, "int8")
    return X.astype(np.int8)


def save_net(path, net: Net):
    arrays = {"layers": np.array(len(net.layers))}
    for i, L in enumerate(net.layers):
        arrays[f"w{i}"], arrays[f"b{i}"] = L.w.astype(np.int8), L.b.astype(np.int32)
        if L.shift is not None:
            arrays[f"shift{i}"], arrays[f"relu{i}"] = np.array(L.shift), np.array(L.relu)
    np.savez(path, **arrays)
