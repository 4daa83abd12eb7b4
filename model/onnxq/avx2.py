"""onnxruntime's saturating accumulators on x86 CPUs with AVX2 and without VNNI.

On such a CPU onnxruntime's default session computes a QDQ layer's int8 products with the
U8S8 kernels (``QgemmU8S8KernelAvx2.S``, ``QgemvU8S8KernelAvx2.S``, ``ConvSymKernelAvx2.S``),
whose ``vpmaddubsw`` multiplies the raw uint8 activation bytes with the int8 weights and adds
adjacent K positions in pairs with *signed 16-bit saturation*::

    acc = sum_p sat16(u[2p] * w[2p] + u[2p+1] * w[2p+1]) - u_zp * sum_k w[k]

(``vpmaddwd`` and ``vpaddd`` after it are exact). Activations are uint8 there: an int8 model's
activations are moved to uint8 by onnxruntime's ``QDQS8ToU8Transformer`` (``u = q + 128``), a
uint8 model's are ours plus 128 (:mod:`rramcim.model.onnxq` maps them to int8 by -128). So in
our int8 domain the raw byte is always ``u = x + 128``, padding bytes ``pad + 128``, and the
accumulator onnxruntime computes is the exact one plus

    correction = sum_p (sat16(s_p) - s_p),   s_p = u[2p] * w[2p] + u[2p+1] * w[2p+1]

K runs in the kernel's order: the natural K of a Gemm or MatMul (for a Gemm after a Flatten of
an NCHW map, NCHW order, which is not the NHWC order of our rows: ``Layer.korder``), (kh, kw, c)
for a convolution, which is our im2col order. An odd K ends with a zero weight. Since
``0 <= u <= 255``, a pair can saturate only if its two weights have the same sign and
``|w0| + |w1| >= 129`` (255 * 128 = 32640 fits int16, 255 * 129 does not): the weights alone
say where a correction can be non-zero (:func:`saturating_pairs`). Per-channel models, whose
every channel reaches +-127, have many such pairs; ``reduce_range`` models (|w| <= 64) none.

VNNI CPUs (``vpdpbusds``), ARM, and sessions with ``session.x64quantprecision=1`` or
``session.qdqisint8allowed=1`` sum exactly (docs/onnx.md; measured on 120 quantized models).

Pure numpy.
"""

from __future__ import annotations

import platform

import numpy as np

__all__ = ["ort_saturates", "saturating_pairs", "avx2_correction"]

_X86 = ("x86_64", "amd64", "i386", "i686", "x86")


def ort_saturates(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether onnxruntime's default session saturates u8s8 pairs on this CPU: x86 with ``avx2``
    and with neither ``avx512_vnni`` nor ``avx_vnni`` among the flags of ``cpuinfo``."""
    if platform.machine().lower() not in _X86:
        return False
    try:
        with open(cpuinfo) as f:
            line = next((ln for ln in f if ln.startswith("flags")), "")
    except OSError:
        return False
    flags = set(line.partition(":")[2].split())
    return "avx2" in flags and not flags & {"avx512_vnni", "avx_vnni"}


def _kernel_weights(layer) -> np.ndarray:
    """The layer's weights in the kernel's K order, int64, K padded to even with a zero row."""
    w = np.asarray(layer.w, np.int64)
    if getattr(layer, "korder", None) is not None:
        w = w[np.asarray(layer.korder)]
    if w.shape[0] % 2:
        w = np.vstack([w, np.zeros((1, w.shape[1]), np.int64)])
    return w


def saturating_pairs(layer) -> np.ndarray:
    """int64 [n, 2]: the ``(pair, column)`` whose pair of K positions ``2*pair``, ``2*pair + 1``
    (kernel K order) can saturate for some input: same-sign weights with ``|w0| + |w1| >= 129``.
    Sorted by column, then pair."""
    w = _kernel_weights(layer)
    w0, w1 = w[0::2], w[1::2]
    danger = (w0 * w1 > 0) & (np.abs(w0) + np.abs(w1) >= 129)
    pj = np.argwhere(danger)
    return pj[np.lexsort((pj[:, 0], pj[:, 1]))]


def avx2_correction(layer, x_rows: np.ndarray, chunk: int = 1 << 22) -> np.ndarray:
    """int64 [rows, N]: onnxruntime's accumulator minus the exact one, for the layer's GEMM input
    rows ``x_rows`` (int8 values [rows, K] in our row order: the layer input, or its
    :func:`rramcim.model.conv.im2col` rows, padding included)."""
    x = np.asarray(x_rows)
    w = _kernel_weights(layer)
    out = np.zeros((x.shape[0], w.shape[1]), np.int64)
    pj = saturating_pairs(layer)
    if len(pj) == 0:
        return out
    k = np.asarray(layer.korder) if getattr(layer, "korder", None) is not None else np.arange(x.shape[1])
    if len(k) % 2:
        k = np.append(k, -1)                        # the zero-weight pad position (any byte)
    p, j = pj[:, 0], pj[:, 1]
    k0, k1 = k[2 * p], k[2 * p + 1]
    w0, w1 = w[2 * p, j], w[2 * p + 1, j]
    cols, starts = np.unique(j, return_index=True)
    step = max(1, chunk // len(pj))
    for r in range(0, x.shape[0], step):
        u = x[r:r + step].astype(np.int64) + 128
        s = u[:, k0] * w0 + u[:, k1] * w1          # k1 = -1 only where w1 = 0
        d = np.clip(s, -32768, 32767) - s
        out[r:r + step, cols] = np.add.reduceat(d, starts, axis=1)
    return out
