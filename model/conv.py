"""Convolution as GEMM: the host-side windowing between a convolution layer's chip GEMMs.

A convolution layer of a NET.npz (:class:`rramcim.model.mlp.Conv`, field ``conv{i}``) takes its
input NHWC, flattened per batch item: ``x_flat[b, (h * W + w) * C + c]``. Its weights are a
GEMM operand ``[KH * KW * C, out]`` whose rows run in (kh, kw, c) order, which is the order of
the columns :func:`im2col` builds, so

    y[b, oh, ow, :] = im2col(x_flat, conv)[(b * OH + oh) * OW + ow] @ w + bias

and the GEMM's output rows, in (batch, oh, ow) order, are the layer's NHWC output as they come:
``y.reshape(batch, OH * OW * out)`` is the next layer's flattened input. Padding positions hold
``conv.pad``, the input's zero point (a real 0.0 of the float model), so padding folds into
nothing special: it is an input value like any other.

A max pool (:class:`rramcim.model.mlp.Pool`, ``pool{i}``) follows on the layer's NHWC output,
channel by channel; its padding never wins (each window holds at least one real position: the
NET checks ``pads < kernel``, as onnxruntime does).

(kh, kw, c) is also the K order onnxruntime's NHWC convolution kernels sum in, which matters for
:func:`rramcim.model.onnxq.avx2_correction`.

Pure numpy: no Amaranth or cocotb here.
"""

from __future__ import annotations

import numpy as np

__all__ = ["im2col", "maxpool", "conv_out_size", "pool_out_hw"]


def pool_out_hw(h: int, w: int, pool) -> tuple[int, int]:
    """The pooled height and width of an ``h`` x ``w`` map (floor, onnxruntime's ``ceil_mode=0``)."""
    return ((h + pool.pt + pool.pb - pool.kh) // pool.sh + 1,
            (w + pool.pl + pool.pr - pool.kw) // pool.sw + 1)


def conv_out_size(conv, cout: int, pool=None) -> int:
    """A convolution layer's flattened output size per batch item, after its pool if any."""
    oh, ow = conv.oh, conv.ow
    if pool is not None:
        oh, ow = pool_out_hw(oh, ow, pool)
    return oh * ow * cout


def im2col(x_flat: np.ndarray, conv) -> np.ndarray:
    """``x_flat`` [batch, H*W*C] (NHWC) -> int8 [batch*OH*OW, KH*KW*C]: one row per output
    position in (batch, oh, ow) order, its columns the window in (kh, kw, c) order."""
    x = np.asarray(x_flat)
    n = x.shape[0]
    if x.ndim != 2 or x.shape[1] != conv.h * conv.w * conv.c:
        raise ValueError(f"im2col: input shape {x.shape}, expected [batch, {conv.h * conv.w * conv.c}]")
    xp = np.full((n, conv.h + conv.pt + conv.pb, conv.w + conv.pl + conv.pr, conv.c), conv.pad, np.int8)
    xp[:, conv.pt:conv.pt + conv.h, conv.pl:conv.pl + conv.w, :] = x.reshape(n, conv.h, conv.w, conv.c)
    oh, ow = conv.oh, conv.ow
    cols = np.empty((n, oh, ow, conv.kh, conv.kw, conv.c), np.int8)
    for i in range(conv.kh):
        for j in range(conv.kw):
            cols[:, :, :, i, j, :] = xp[:, i:i + conv.sh * (oh - 1) + 1:conv.sh, j:j + conv.sw * (ow - 1) + 1:conv.sw]
    return cols.reshape(n * oh * ow, conv.kh * conv.kw * conv.c)


def maxpool(y_flat: np.ndarray, conv, pool, cout: int) -> np.ndarray:
    """Max pool of a convolution layer's output ``y_flat`` [batch, OH*OW*cout] (NHWC) ->
    [batch, PH*PW*cout] (NHWC), in ``y_flat``'s dtype."""
    y = np.asarray(y_flat)
    n, oh, ow = y.shape[0], conv.oh, conv.ow
    if y.ndim != 2 or y.shape[1] != oh * ow * cout:
        raise ValueError(f"maxpool: input shape {y.shape}, expected [batch, {oh * ow * cout}]")
    low = np.iinfo(y.dtype).min if y.dtype.kind in "iu" else -np.inf
    yp = np.full((n, oh + pool.pt + pool.pb, ow + pool.pl + pool.pr, cout), low, y.dtype)
    yp[:, pool.pt:pool.pt + oh, pool.pl:pool.pl + ow, :] = y.reshape(n, oh, ow, cout)
    ph, pw = pool_out_hw(oh, ow, pool)
    out = np.full((n, ph, pw, cout), low, y.dtype)
    for i in range(pool.kh):
        for j in range(pool.kw):
            np.maximum(out, yp[:, i:i + pool.sh * (ph - 1) + 1:pool.sh, j:j + pool.sw * (pw - 1) + 1:pool.sw], out=out)
    return out.reshape(n, ph * pw * cout)
