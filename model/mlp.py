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
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Layer", "Net", "NetError", "load_net", "load_inputs", "reference", "requantize", "save_net"]

I8 = (-128, 127)
I32 = (-(1 << 31), (1 << 31) - 1)


class NetError(ValueError):
    """A NET.npz or X.npy that breaks the contract; the message names the file and the field."""


@dataclass
class Layer:
    w: np.ndarray           # int8 [in, out]
    b: np.ndarray           # int32 [out]
    shift: int | None       # None for the last layer
    relu: int


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
    if arr.dtype.kind not in "iu":
        raise NetError(f"{where}: dtype {arr.dtype}, expected an integer")
    if arr.size != 1 or arr.ndim > 1:
        raise NetError(f"{where}: shape {arr.shape}, expected a scalar (0-d or 1 element)")
    v = int(arr.reshape(()))
    if not lo <= v <= hi:
        raise NetError(f"{where}: {v} outside {lo}..{hi}")
    return v


def _int_array(arr, where: str, ndim: int, rng: tuple[int, int], kind: str) -> np.ndarray:
    if arr.dtype.kind not in "iu":
        raise NetError(f"{where}: dtype {arr.dtype}, expected {kind}")
    if arr.ndim != ndim:
        raise NetError(f"{where}: shape {arr.shape}, expected {ndim}-D")
    if arr.size == 0:
        raise NetError(f"{where}: shape {arr.shape} is empty")
    lo, hi = int(arr.min()), int(arr.max())
    if lo < rng[0] or hi > rng[1]:
        bad = lo if lo < rng[0] else hi
        raise NetError(f"{where}: value {bad} outside the {kind} range [{rng[0]}, {rng[1]}] (dtype {arr.dtype})")
    return arr


def load_net(path) -> Net:
    """Read and check a NET.npz; every problem is a one-line :class:`NetError` naming the field."""
    p = Path(path)
    if not p.is_file():
        raise NetError(f"{path}: no such file")
    try:
        with np.load(p, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise NetError(f"{path}: not a readable .npz file ({str(e).splitlines()[0][:80] if str(e) else type(e).__name__})") \
            from None
    if "layers" not in data:
        raise NetError(f"{path}: no 'layers' field")
    n = _scalar(data["layers"], f"{path}: layers", 1, 1 << 16)
    expected = {"layers"}
    layers = []
    for i in range(n):
        for f in (f"w{i}", f"b{i}") + ((f"shift{i}", f"relu{i}") if i < n - 1 else ()):
            if f not in data:
                raise NetError(f"{path}: {f} missing (layers = {n})")
            expected.add(f)
        w = _int_array(data[f"w{i}"], f"{path}: w{i}", 2, I8, "int8")
        b = _int_array(data[f"b{i}"], f"{path}: b{i}", 1, I32, "int32")
        if b.shape != (w.shape[1],):
            raise NetError(f"{path}: b{i} shape {b.shape}, expected ({w.shape[1]},) (the outputs of w{i} {w.shape})")
        if layers and layers[-1].w.shape[1] != w.shape[0]:
            raise NetError(f"{path}: w{i} shape {w.shape} does not chain: w{i - 1} has {layers[-1].w.shape[1]} "
                           f"outputs")
        shift = relu = None
        if i < n - 1:
            shift = _scalar(data[f"shift{i}"], f"{path}: shift{i}", 0, 31)
            relu = _scalar(data[f"relu{i}"], f"{path}: relu{i}", 0, 1)
        layers.append(Layer(w.astype(np.int8), b.astype(np.int32), shift, relu or 0))
    extra = sorted(set(data) - expected)
    if extra:
        hint = ""
        if any(re.fullmatch(r"(shift|relu)\d+", k) for k in extra):
            hint = " (the last layer has no shift or relu: it returns int32)"
        raise NetError(f"{path}: unexpected field {extra[0]!r}{hint}")
    return Net(layers)


def load_inputs(path, net: Net) -> np.ndarray:
    """Read and check X.npy: int8 values [batch, in] with ``in`` = the net's inputs."""
    p = Path(path)
    if not p.is_file():
        raise NetError(f"{path}: no such file")
    try:
        X = np.load(p, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise NetError(f"{path}: not a readable .npy file ({str(e).splitlines()[0][:80] if str(e) else type(e).__name__})") \
            from None
    if not isinstance(X, np.ndarray):
        raise NetError(f"{path}: not a .npy array")
    X = _int_array(X, str(path), 2, I8, "int8")
    if X.shape[1] != net.inputs:
        raise NetError(f"{path}: shape {X.shape}, expected [batch, {net.inputs}] (w0 has {net.inputs} inputs)")
    return X.astype(np.int8)


def save_net(path, net: Net):
    arrays = {"layers": np.array(len(net.layers))}
    for i, L in enumerate(net.layers):
        arrays[f"w{i}"], arrays[f"b{i}"] = L.w.astype(np.int8), L.b.astype(np.int32)
        if L.shift is not None:
            arrays[f"shift{i}"], arrays[f"relu{i}"] = np.array(L.shift), np.array(L.relu)
    np.savez(path, **arrays)
