"""Int8 networks: the NET.npz contract, its numpy reference, and running a net on the chip.

NET.npz (../shared/architecture.md): ``layers`` (N >= 1) and, for each layer
``i``, ``w{i}`` int8 [in, out] and ``b{i}`` int32 [out]; for every layer but
the last, ``shift{i}`` (0..31) and ``relu{i}`` (0 or 1). ``layers``,
``shift{i}`` and ``relu{i}`` may be 0-d or 1-element arrays of any integer
dtype. With ``x`` int8 [batch, in]: ``acc = x @ w{i} + b{i}`` wrapping to
int32; for ``i < N-1``: ``y = acc`` if ``shift == 0`` else
``floor((acc + 2**(shift-1)) / 2**shift)`` exactly, clamped to [-128, 127],
then ReLU if ``relu{i}``; ``y`` is the next ``x``. The last layer returns
``acc`` (int32).

Optional per-layer fields (issue 20, written by :mod:`rramcim.model.onnxq`; a file
without them means what it always meant). Every integer scalar may be 0-d or
1-element of any integer dtype.

Requant mode, ``scale{i}`` present (any layer, the last one too):

- ``scale{i}`` float32 [out]: the requant multiplier ``M`` of each output column,
  in ``[2**-40, 2**8)``;
- ``zp{i}`` (required with ``scale{i}``, -128..127): the output zero point;
- ``lo{i}``, ``hi{i}`` (-128..127, default -128 and 127, ``lo <= hi``): the output bounds;
- ``round{i}``: 0 rounds half to even (the default, onnxruntime), 1 half toward +infinity;
- ``shift{i}`` and ``relu{i}`` are optional; ``shift{i}`` must then be 0, and
  ``relu{i} = 1`` means ``lo = max(lo, zp)``.

The layer's output is ``clamp(rint(float32(float32(acc) * M[j])) + zp, lo, hi)``
(:func:`rramcim.model.requant.requant`, onnxruntime's arithmetic with integers),
int8 values; on the last layer they are Y's int32 values.

Convolution, ``conv{i}`` present: int [11] = (H, W, C, KH, KW, SH, SW, PT, PL,
PB, PR). The layer's input is NHWC flattened, [batch, H*W*C]; ``w{i}`` is
[KH*KW*C, out] with rows in (kh, kw, c) order; its output is NHWC flattened,
[batch, OH*OW*out], ``OH = (H + PT + PB - KH) // SH + 1`` (the same for OW).
``pad{i}`` (-128..127, default 0, only with ``conv{i}``) is the value of padding
positions: the input zero point. ``pool{i}`` (only with ``conv{i}``) int [8] =
(KH, KW, SH, SW, PT, PL, PB, PR), ``pads < kernel``: a max pool of the layer's
NHWC output (padding never wins), [batch, PH*PW*out]. The windowing is
:mod:`rramcim.model.conv`. A layer's input size must equal the previous layer's
output size (after its pool).

Fields named ``io_*`` are metadata for the host (the float input and output
quantization an importer needs: ``io_in_scale``, ``io_in_zp``, ``io_in_shape``,
...; :mod:`rramcim.model.onnxq`); the chip ignores them. One of them is read
here: ``io_korder{i}`` int [in rows], the permutation giving the order in
which onnxruntime's kernel sums the rows of ``w{i}`` (``w{i}[io_korder{i}[k]]``
is its K position ``k``), used only by ``reference(..., acc="avx2")``.
Any other field is an error.

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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .npfile import MAX_ARRAY_BYTES, NpFileError, NpzArchive, one_line, read_npy

__all__ = ["Conv", "Layer", "Net", "NetError", "Pool", "Requant", "layer_forward", "load_net", "load_inputs",
           "reference", "reference_layers", "requantize", "save_net"]

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

    def words(self, xbits: int = 8):
        """The requant vector's per-column elements ``(e0, e1)`` [out] (:func:`~.requant.rq_words`)."""
        from .requant import rq_words
        m, s = self.parts()
        e0, e1 = rq_words(m, s, self.even, self.zp, self.lo, self.hi, xbits)
        return e0, np.broadcast_to(e1, e0.shape).copy()


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
    w: np.ndarray           # int8 [in, out] ([KH*KW*C, out] for a convolution)
    b: np.ndarray           # int32 [out]
    shift: int | None       # None for the last layer (int32 out); 0 in requant mode
    relu: int               # 0 in requant mode (folded into rq.lo)
    rq: Requant | None = None       # per-column requant (replaces shift/relu; the last layer too)
    conv: Conv | None = None        # the layer is a convolution (im2col on the host)
    pool: Pool | None = None        # max pool of the layer's output
    korder: np.ndarray | None = None    # onnxruntime's K order of w's rows (acc="avx2" only)

    @property
    def inputs(self) -> int:
        """Input values per batch item (H*W*C for a convolution)."""
        return self.conv.h * self.conv.w * self.conv.c if self.conv else self.w.shape[0]

    @property
    def outputs(self) -> int:
        """Output values per batch item (after the pool)."""
        if self.conv is None:
            return self.w.shape[1]
        from .conv import conv_out_size
        return conv_out_size(self.conv, self.w.shape[1], self.pool)


@dataclass
class Net:
    layers: list
    io: dict = field(default_factory=dict)      # the ``io_*`` fields, by full name

    @property
    def inputs(self) -> int:
        return self.layers[0].inputs

    @property
    def outputs(self) -> int:
        return self.layers[-1].outputs


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


def _matmul(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Exact int8 x int8 products summed in int64. float64 BLAS is exact here (every partial sum
    is an integer below K * 2**14 << 2**53) and far faster than numpy's integer matmul."""
    return (x.astype(np.float64) @ w.astype(np.float64)).astype(np.int64)


def layer_forward(L: Layer, x: np.ndarray, last: bool, acc: str = "exact") -> np.ndarray:
    """One layer of the contract on int8 values ``x`` [batch, L.inputs]: int8 [batch, L.outputs],
    or int32 for the last layer without requant. ``acc="avx2"`` adds
    :func:`rramcim.model.onnxq.avx2_correction` to the accumulators (onnxruntime on a CPU
    that saturates, :func:`rramcim.model.onnxq.ort_saturates`)."""
    from .conv import im2col, maxpool
    x = np.asarray(x)
    rows = im2col(x, L.conv) if L.conv else x.astype(np.int8)
    a = _matmul(rows, L.w) + L.b.astype(np.int64)
    if acc == "avx2":
        from .onnxq.avx2 import avx2_correction
        a = a + avx2_correction(L, rows)
    elif acc != "exact":
        raise ValueError(f"acc must be 'exact' or 'avx2', not {acc!r}")
    a = _wrap32(a)
    if L.rq is not None:
        from .requant import requant
        m, s = L.rq.parts()
        y = requant(a, m, s, L.rq.zp, L.rq.lo, L.rq.hi, L.rq.even).astype(np.int8)
    elif last:
        y = a.astype(np.int32)
    else:
        y = requantize(a, L.shift, L.relu)
    if L.conv is not None:
        y = y.reshape(x.shape[0], -1)
        if L.pool is not None:
            y = maxpool(y, L.conv, L.pool, L.w.shape[1])
    return y


def reference_layers(net: Net, X: np.ndarray, acc: str = "exact") -> list:
    """Every layer's output (after its pool), in order: int8 [batch, outputs], the last one int32
    when it has no requant (see :func:`layer_forward` for ``acc``)."""
    outs, x = [], np.asarray(X)
    for i, L in enumerate(net.layers):
        x = layer_forward(L, x, i == len(net.layers) - 1, acc)
        outs.append(x)
    return outs


def reference(net: Net, X: np.ndarray, acc: str = "exact") -> np.ndarray:
    """The contract's semantics in numpy: int32 [batch, outputs] (int8 values when the last layer
    requantizes)."""
    return reference_layers(net, X, acc)[-1].astype(np.int32)


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


_RQ_FIELDS = ("zp", "lo", "hi", "round")
_CONV_NAMES = ("H", "W", "C", "KH", "KW", "SH", "SW", "PT", "PL", "PB", "PR")
_POOL_NAMES = ("KH", "KW", "SH", "SW", "PT", "PL", "PB", "PR")
_DIM_MAX = 1 << 15


def _names(path, z: NpzArchive, n: int) -> set:
    """The fields each layer must and may have: missing ones and misplaced ones are errors here."""
    expected = {"layers"}
    for i in range(n):
        def has(f):
            return f"{f}{i}" in z.fields
        rq = has("scale")
        need = ["w", "b"] + (["shift", "relu"] if i < n - 1 and not rq else []) + (["zp"] if rq else [])
        for f in need:
            if not has(f):
                why = f"scale{i} is given" if f == "zp" else f"layers = {n}"
                raise NetError(f"{path}: {f}{i} missing ({why})")
        may = ["scale", "lo", "hi", "round", "shift", "relu"] if rq else []
        if not rq:
            for f in _RQ_FIELDS:
                if has(f):
                    raise NetError(f"{path}: {f}{i} without scale{i} (the requant fields need the multiplier)")
        if has("conv"):
            may += ["conv", "pad", "pool"]
        else:
            for f in ("pad", "pool"):
                if has(f):
                    raise NetError(f"{path}: {f}{i} without conv{i} (only a convolution layer has one)")
        expected |= {f"{f}{i}" for f in need + may if has(f)}
    expected |= {f for f in z.fields if f.startswith("io_")}
    _unexpected(path, z, expected)
    return expected


def _geometry_shape(h, where: str, names: tuple):
    _int_shape(h, where, 1, "an integer vector")
    if h.shape != (len(names),):
        raise NetError(f"{where}: shape {h.shape}, expected ({len(names)},) = ({', '.join(names)})")


def _geometry(z: NpzArchive, field: str, where: str, names: tuple) -> list:
    """``conv{i}`` or ``pool{i}``: an integer vector of ``len(names)`` values, sizes >= 1, pads >= 0."""
    v = [int(x) for x in z.read(field, check=lambda h: _geometry_shape(h, where, names))]
    for name, x in zip(names, v):
        low = 0 if name.startswith("P") else 1
        if not low <= x <= _DIM_MAX:
            raise NetError(f"{where}: {name} = {x} outside {low}..{_DIM_MAX}")
    return v


def _read_conv(path, z: NpzArchive, i: int, w_shape: tuple) -> tuple:
    """``(Conv, Pool or None)`` of layer ``i`` (``pad`` is filled in with the data)."""
    where = f"{path}: conv{i}"
    conv = Conv(*_geometry(z, f"conv{i}", where, _CONV_NAMES))
    if conv.oh < 1 or conv.ow < 1:
        raise NetError(f"{where}: kernel {conv.kh}x{conv.kw} larger than the padded input "
                       f"{conv.h + conv.pt + conv.pb}x{conv.w + conv.pl + conv.pr}")
    if w_shape[0] != conv.kh * conv.kw * conv.c:
        raise NetError(f"{path}: w{i} shape {w_shape}, expected ({conv.kh * conv.kw * conv.c}, {w_shape[1]}) "
                       f"= (KH*KW*C, out) for conv{i}")
    if conv.oh * conv.ow * w_shape[1] > MAX_ARRAY_BYTES:
        raise NetError(f"{where}: output {conv.oh}x{conv.ow}x{w_shape[1]} per item is over the "
                       f"{MAX_ARRAY_BYTES >> 20} MiB limit")
    pool = None
    if f"pool{i}" in z.fields:
        where = f"{path}: pool{i}"
        pool = Pool(*_geometry(z, f"pool{i}", where, _POOL_NAMES))
        if not (pool.pt < pool.kh and pool.pb < pool.kh and pool.pl < pool.kw and pool.pr < pool.kw):
            raise NetError(f"{where}: pads ({pool.pt}, {pool.pl}, {pool.pb}, {pool.pr}) must be below the kernel "
                           f"{pool.kh}x{pool.kw}")
        if conv.oh + pool.pt + pool.pb < pool.kh or conv.ow + pool.pl + pool.pr < pool.kw:
            raise NetError(f"{where}: kernel {pool.kh}x{pool.kw} larger than the padded map "
                           f"{conv.oh + pool.pt + pool.pb}x{conv.ow + pool.pl + pool.pr}")
    return conv, pool


def _check_headers(path, z: NpzArchive, n: int) -> list:
    """Shapes and dtypes from the headers (and the tiny geometry vectors), before any weight is read;
    the layers' ``(Conv, Pool)`` (or ``(None, None)``)."""
    geo, prev_out, prev_name = [], None, None
    for i in range(n):
        w, b = z.header(f"w{i}"), z.header(f"b{i}")
        _int_shape(w, f"{path}: w{i}", 2, "int8")
        _int_shape(b, f"{path}: b{i}", 1, "int32")
        if b.shape != (w.shape[1],):
            raise NetError(f"{path}: b{i} shape {b.shape}, expected ({w.shape[1]},) (the outputs of w{i} {w.shape})")
        for f in ("shift", "relu", "pad") + _RQ_FIELDS:
            if f"{f}{i}" in z.fields:
                _scalar_shape(z.header(f"{f}{i}"), f"{path}: {f}{i}")
        if f"scale{i}" in z.fields:
            h = z.header(f"scale{i}")
            if h.dtype != np.float32:
                raise NetError(f"{path}: scale{i}: dtype {h.dtype}, expected float32")
            if h.shape != (w.shape[1],):
                raise NetError(f"{path}: scale{i} shape {h.shape}, expected ({w.shape[1]},) (the outputs of w{i})")
        conv, pool = _read_conv(path, z, i, w.shape) if f"conv{i}" in z.fields else (None, None)
        if prev_out is not None:
            ins = conv.h * conv.w * conv.c if conv else w.shape[0]
            if ins != prev_out:
                what = (f"conv{i} input {conv.h}x{conv.w}x{conv.c} = {ins}" if conv else f"w{i} shape {w.shape}")
                raise NetError(f"{path}: {what} does not chain: {prev_name} has {prev_out} outputs")
        if conv:
            from .conv import conv_out_size
            prev_out, prev_name = conv_out_size(conv, w.shape[1], pool), f"layer {i}" + (" after pool" if pool else "")
        else:
            prev_out, prev_name = w.shape[1], f"w{i}"
        geo.append((conv, pool))
    return geo


def _read_requant(path, z: NpzArchive, i: int) -> Requant:
    from .requant import RequantError, multiplier_parts
    scale = z.read(f"scale{i}")
    try:
        multiplier_parts(scale)
    except RequantError as e:
        raise NetError(f"{path}: scale{i}: {e}") from None

    def opt(f, lo, hi, default):
        return _scalar(z.read(f"{f}{i}"), f"{path}: {f}{i}", lo, hi) if f"{f}{i}" in z.fields else default
    zp = _scalar(z.read(f"zp{i}"), f"{path}: zp{i}", *I8)
    lo, hi, rnd = opt("lo", *I8, I8[0]), opt("hi", *I8, I8[1]), opt("round", 0, 1, 0)
    if lo > hi:
        raise NetError(f"{path}: lo{i} = {lo} above hi{i} = {hi}")
    shift, relu = opt("shift", 0, 31, 0), opt("relu", 0, 1, 0)
    if shift:
        raise NetError(f"{path}: shift{i} = {shift} with scale{i}: it must be 0 (the multiplier replaces it)")
    if relu:
        if zp > hi:
            raise NetError(f"{path}: relu{i} = 1 with zp{i} = {zp} above hi{i} = {hi}: nothing left to output")
        lo = max(lo, zp)
    return Requant(scale.astype(np.float32), zp, lo, hi, even=1 - rnd)


def _read_korder(path, z: NpzArchive, i: int, rows: int):
    where = f"{path}: io_korder{i}"
    k = _int_array(z.read(f"io_korder{i}", check=lambda h: _int_shape(h, where, 1, "an integer vector")),
                   where, 1, (0, rows - 1), "row index")
    if k.shape != (rows,) or len(np.unique(k)) != rows:
        raise NetError(f"{where}: not a permutation of the {rows} rows of w{i}")
    return k.astype(np.int64)


def _read_net(path, z: NpzArchive) -> Net:
    """The contract's checks in the order that reads least: names, then headers, then data."""
    if "layers" not in z.fields:
        raise NetError(f"{path}: no 'layers' field")
    n = _scalar(z.read("layers", check=lambda h: _scalar_shape(h, f"{path}: layers")), f"{path}: layers",
                1, 1 << 16)
    _names(path, z, n)
    geo = _check_headers(path, z, n)
    layers = []
    for i in range(n):
        w = _int_array(z.read(f"w{i}"), f"{path}: w{i}", 2, I8, "int8")
        b = _int_array(z.read(f"b{i}"), f"{path}: b{i}", 1, I32, "int32")
        rq = _read_requant(path, z, i) if f"scale{i}" in z.fields else None
        shift = relu = None
        if rq is not None:
            shift, relu = 0, 0
        elif i < n - 1:
            shift = _scalar(z.read(f"shift{i}"), f"{path}: shift{i}", 0, 31)
            relu = _scalar(z.read(f"relu{i}"), f"{path}: relu{i}", 0, 1)
        conv, pool = geo[i]
        if conv is not None and f"pad{i}" in z.fields:
            conv.pad = _scalar(z.read(f"pad{i}"), f"{path}: pad{i}", *I8)
        korder = _read_korder(path, z, i, w.shape[0]) if f"io_korder{i}" in z.fields else None
        layers.append(Layer(w.astype(np.int8), b.astype(np.int32), shift, relu or 0, rq, conv, pool, korder))
    io = {f: z.read(f) for f in z.fields if f.startswith("io_") and not re.fullmatch(r"io_korder\d+", f)}
    return Net(layers, io)


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
            c = net.layers[0].conv
            has = f"conv0 takes {c.h}x{c.w}x{c.c} = {net.inputs}" if c else f"w0 has {net.inputs}"
            raise NetError(f"{path}: shape {h.shape}, expected [batch, {net.inputs}] ({has} inputs)")
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
    """Write ``net`` as a NET.npz with every field it uses (requant, convolution, pool, ``io_*``)."""
    arrays = {"layers": np.array(len(net.layers))}
    for i, L in enumerate(net.layers):
        arrays[f"w{i}"], arrays[f"b{i}"] = L.w.astype(np.int8), L.b.astype(np.int32)
        if L.rq is not None:
            arrays[f"scale{i}"] = np.asarray(L.rq.scale, np.float32).reshape(L.w.shape[1])
            arrays[f"zp{i}"], arrays[f"lo{i}"], arrays[f"hi{i}"] = (np.array(v) for v in (L.rq.zp, L.rq.lo, L.rq.hi))
            arrays[f"round{i}"] = np.array(0 if L.rq.even else 1)
        elif L.shift is not None:
            arrays[f"shift{i}"], arrays[f"relu{i}"] = np.array(L.shift), np.array(L.relu)
        if L.conv is not None:
            c = L.conv
            arrays[f"conv{i}"] = np.array([c.h, c.w, c.c, c.kh, c.kw, c.sh, c.sw, c.pt, c.pl, c.pb, c.pr])
            arrays[f"pad{i}"] = np.array(c.pad)
            if L.pool is not None:
                p = L.pool
                arrays[f"pool{i}"] = np.array([p.kh, p.kw, p.sh, p.sw, p.pt, p.pl, p.pb, p.pr])
        if L.korder is not None:
            arrays[f"io_korder{i}"] = np.asarray(L.korder, np.int32)
    for k, v in net.io.items():
        if not k.startswith("io_"):
            raise ValueError(f"net.io: {k!r} does not start with 'io_'")
        arrays[k] = np.asarray(v)
    np.savez(path, **arrays)
