"""Issue 20's NET.npz fields: requant (scale, zp, lo, hi, round), convolution (conv, pad), max pool
(pool) and the io_ metadata; saved and loaded back, the reference held to naive loops, and every
malformed field refused in one line naming the file and the field."""

import numpy as np
import pytest

from rramcim.model.conv import conv_out_size, im2col, maxpool
from rramcim.model.mlp import (Conv, Layer, Net, NetError, Pool, Requant, load_inputs, load_net, reference,
                               reference_layers, save_net)
from rramcim.model.requant import requant_float


def _rq(rng, n, zp=None, lo=-128, hi=127, even=1):
    scale = (2.0 ** rng.uniform(-12, -7, n)).astype(np.float32)
    return Requant(scale, int(rng.integers(-20, 20)) if zp is None else zp, lo, hi, even)


def _cnn(rng):
    """conv 6x5x3 (pad 1, stride (2, 1)) -> pool 2x2 -> conv 1x1 -> dense, requant everywhere."""
    c0 = Conv(6, 5, 3, 3, 3, 2, 1, 1, 1, 1, 1, pad=-7)
    p0 = Pool(2, 2, 1, 2, 0, 1, 0, 0)
    L0 = Layer(rng.integers(-128, 128, (27, 4)).astype(np.int8), rng.integers(-3000, 3000, 4).astype(np.int32),
               0, 0, _rq(rng, 4), c0, p0)
    ph, pw = (c0.oh - 2) // 1 + 1, (c0.ow + 1 - 2) // 2 + 1
    c1 = Conv(ph, pw, 4, 1, 1, pad=3)
    L1 = Layer(rng.integers(-128, 128, (4, 5)).astype(np.int8), rng.integers(-3000, 3000, 5).astype(np.int32),
               0, 0, _rq(rng, 5, lo=-100, hi=90), c1)
    L2 = Layer(rng.integers(-128, 128, (ph * pw * 5, 7)).astype(np.int8),
               rng.integers(-3000, 3000, 7).astype(np.int32), 0, 0, _rq(rng, 7, even=0),
               korder=rng.permutation(ph * pw * 5))
    return Net([L0, L1, L2], io={"io_in_scale": np.float32(0.5), "io_in_shape": np.array([3, 6, 5])})


def _naive_conv(x, L):
    """Direct convolution, position by position (NHWC), with the padding value; then requant, then pool."""
    c, n = L.conv, x.shape[0]
    xi = x.reshape(n, c.h, c.w, c.c).astype(np.int64)
    w4 = L.w.reshape(c.kh, c.kw, c.c, -1).astype(np.int64)
    acc = np.zeros((n, c.oh, c.ow, L.w.shape[1]), np.int64)
    for oh in range(c.oh):
        for ow in range(c.ow):
            for i in range(c.kh):
                for j in range(c.kw):
                    h, w = oh * c.sh + i - c.pt, ow * c.sw + j - c.pl
                    v = xi[:, h, w, :] if 0 <= h < c.h and 0 <= w < c.w else np.full((n, c.c), c.pad)
                    acc[:, oh, ow] += v @ w4[i, j]
    acc += L.b
    y = requant_float(acc, L.rq.scale, L.rq.zp, L.rq.lo, L.rq.hi) if L.rq else acc
    if L.pool is None:
        return y.reshape(n, -1)
    p = L.pool
    ph, pw = (c.oh + p.pt + p.pb - p.kh) // p.sh + 1, (c.ow + p.pl + p.pr - p.kw) // p.sw + 1
    out = np.zeros((n, ph, pw, y.shape[3]), np.int64)
    for a in range(ph):
        for b in range(pw):
            win = [y[:, h, w] for h in range(a * p.sh - p.pt, a * p.sh - p.pt + p.kh)
                   for w in range(b * p.sw - p.pl, b * p.sw - p.pl + p.kw) if 0 <= h < c.oh and 0 <= w < c.ow]
            out[:, a, b] = np.max(win, axis=0)
    return out.reshape(n, -1)


def test_conv_layers_equal_naive_loops():
    rng = np.random.default_rng(1)
    net = _cnn(rng)
    X = rng.integers(-128, 128, (3, net.inputs)).astype(np.int8)
    outs = reference_layers(net, X)
    x = X
    for i, L in enumerate(net.layers[:2]):
        want = _naive_conv(x, L)
        assert outs[i].dtype == np.int8 and np.array_equal(outs[i], want), i
        x = outs[i]
    # requant_float has no half-up mode: layer 2 rounds half up, so check it where no tie occurs
    assert outs[2].shape == (3, 7) and np.array_equal(reference(net, X), outs[2].astype(np.int32))
    assert net.layers[0].outputs == net.layers[1].inputs and net.outputs == 7


def test_im2col_rows_and_maxpool_shapes():
    c = Conv(4, 4, 2, 3, 3, 1, 1, 1, 1, 1, 1, pad=-1)
    x = np.arange(2 * 32).reshape(2, 32).astype(np.int8)
    cols = im2col(x, c)
    assert cols.shape == (2 * 16, 18) and cols.dtype == np.int8
    assert np.array_equal(cols[0, :6], [-1] * 6)                 # top-left window: padding row
    assert np.array_equal(cols[16 + 5, 8:10], x[1, 10:12])       # item 1, (1, 1): centre = pixel (1, 1)
    p = Pool(3, 3, 2, 2, 1, 1, 1, 1)
    y = np.full((2, 16 * 5), -128, np.int8)
    out = maxpool(y, c, p, 5)
    assert out.shape == (2, 4 * 5) and (out == -128).all()       # padding never wins (it would be -128 too)
    assert conv_out_size(c, 5, p) == 20 and conv_out_size(c, 5) == 80


def test_requant_layer_and_relu_fold(tmp_path):
    rng = np.random.default_rng(2)
    L0 = Layer(rng.integers(-128, 128, (20, 6)).astype(np.int8), rng.integers(-5000, 5000, 6).astype(np.int32),
               0, 0, _rq(rng, 6, zp=-9))
    L1 = Layer(rng.integers(-128, 128, (6, 3)).astype(np.int8), np.zeros(3, np.int32), 0, 0, _rq(rng, 3, zp=4))
    X = rng.integers(-128, 128, (50, 20)).astype(np.int8)
    acc = X.astype(np.int64) @ L0.w.astype(np.int64) + L0.b
    y0 = requant_float(acc, L0.rq.scale, -9, -128, 127)
    acc1 = y0 @ L1.w.astype(np.int64)
    Y = reference(Net([L0, L1]), X)
    assert Y.dtype == np.int32 and np.array_equal(Y, requant_float(acc1, L1.rq.scale, 4, -128, 127))
    # relu{i} = 1 in requant mode: lo = max(lo, zp)
    arrays = dict(np.load(_save(tmp_path, Net([L0, L1]))))
    arrays["relu0"], arrays["lo0"] = np.array(1), np.array(-50)
    back = load_net(_savez(tmp_path, arrays))
    assert back.layers[0].rq.lo == -9 and back.layers[0].shift == 0 and back.layers[0].relu == 0
    arrays["lo0"] = np.array(-3)
    assert load_net(_savez(tmp_path, arrays)).layers[0].rq.lo == -3


def _save(tmp_path, net, name="net.npz"):
    save_net(tmp_path / name, net)
    return tmp_path / name


def _savez(tmp_path, arrays, name="edited.npz"):
    np.savez(tmp_path / name, **arrays)
    return tmp_path / name


def test_save_and_load_every_field(tmp_path):
    rng = np.random.default_rng(3)
    net = _cnn(rng)
    back = load_net(_save(tmp_path, net))
    for a, b in zip(net.layers, back.layers):
        assert np.array_equal(a.w, b.w) and np.array_equal(a.b, b.b)
        assert a.conv == b.conv and a.pool == b.pool
        assert np.array_equal(a.rq.scale, b.rq.scale) and (a.rq.zp, a.rq.lo, a.rq.hi, a.rq.even) == \
            (b.rq.zp, b.rq.lo, b.rq.hi, b.rq.even)
        assert (a.korder is None) == (b.korder is None)
    assert np.array_equal(back.layers[2].korder, net.layers[2].korder)
    assert set(back.io) == {"io_in_scale", "io_in_shape"} and back.io["io_in_scale"] == np.float32(0.5)
    X = rng.integers(-128, 128, (2, net.inputs)).astype(np.int8)
    assert np.array_equal(reference(back, X), reference(net, X))
    np.save(tmp_path / "x.npy", X)
    assert np.array_equal(load_inputs(tmp_path / "x.npy", back), X)
    np.save(tmp_path / "x.npy", X[:, :-1])
    with pytest.raises(NetError, match=r"conv0 takes 6x5x3 = 90 inputs"):
        load_inputs(tmp_path / "x.npy", back)


def test_a_net_without_the_new_fields_means_what_it_meant(tmp_path):
    rng = np.random.default_rng(4)
    net = Net([Layer(rng.integers(-128, 128, (5, 4)).astype(np.int8), rng.integers(-99, 99, 4).astype(np.int32), 3, 1),
               Layer(rng.integers(-128, 128, (4, 2)).astype(np.int8), np.zeros(2, np.int32), None, 0)])
    path = _save(tmp_path, net)
    assert sorted(np.load(path).files) == ["b0", "b1", "layers", "relu0", "shift0", "w0", "w1"]
    X = rng.integers(-128, 128, (9, 5)).astype(np.int8)
    h = np.clip((X.astype(np.int64) @ net.layers[0].w + net.layers[0].b + 4) >> 3, 0, 127)
    assert np.array_equal(reference(load_net(path), X), h @ net.layers[1].w.astype(np.int64))


# -- malformed fields: one line naming the file and the field -------------------------------------------

def _arrays(net):
    import io
    buf = io.BytesIO()
    save_net(buf, net)
    buf.seek(0)
    return dict(np.load(buf))


def _edit(**kw):
    a = _arrays(_cnn(np.random.default_rng(5)))
    for k, v in kw.items():
        if v is None:
            del a[k]
        else:
            a[k] = v
    return a


BAD = {
    "scale_float64": (dict(scale0=np.full(4, 0.01)), ["scale0", "float64", "float32"]),
    "scale_shape": (dict(scale1=np.full(4, 0.01, np.float32)), ["scale1", "(4,)", "(5,)"]),
    "scale_too_big": (dict(scale2=np.full(7, 256, np.float32)), ["scale2", "256.0", "2**8"]),
    "scale_zero": (dict(scale0=np.zeros(4, np.float32)), ["scale0", "0.0", "outside"]),
    "scale_nan": (dict(scale0=np.full(4, np.nan, np.float32)), ["scale0", "nan"]),
    "zp_missing": (dict(zp1=None), ["zp1", "missing", "scale1"]),
    "zp_range": (dict(zp0=np.array(128)), ["zp0", "128", "-128..127"]),
    "zp_float": (dict(zp0=np.array(1.0)), ["zp0", "float64", "integer"]),
    "lo_above_hi": (dict(lo1=np.array(5), hi1=np.array(4)), ["lo1", "hi1", "above"]),
    "round_2": (dict(round0=np.array(2)), ["round0", "2", "0..1"]),
    "shift_with_scale": (dict(shift0=np.array(3)), ["shift0", "must be 0"]),
    "relu_over_hi": (dict(relu1=np.array(1), zp1=np.array(100), hi1=np.array(90)), ["relu1", "zp1", "hi1"]),
    "zp_without_scale": (dict(scale2=None), ["zp2", "without scale2"]),
    "pad_without_conv": (dict(pad2=np.array(0)), ["pad2", "without conv2"]),
    "pool_without_conv": (dict(pool2=np.arange(8)), ["pool2", "without conv2"]),
    "conv_length": (dict(conv0=np.ones(10, np.int64)), ["conv0", "(10,)", "(11,)"]),
    "conv_float": (dict(conv0=np.ones(11)), ["conv0", "float64"]),
    "conv_zero_kernel": (dict(conv1=np.array([3, 3, 4, 0, 1, 1, 1, 0, 0, 0, 0])), ["conv1", "KH = 0"]),
    "conv_negative_pad": (dict(conv1=np.array([3, 3, 4, 1, 1, 1, 1, -1, 0, 0, 0])), ["conv1", "PT = -1"]),
    "conv_kernel_too_big": (dict(conv0=np.array([6, 5, 3, 9, 3, 1, 1, 1, 1, 1, 1])), ["conv0", "larger"]),
    "conv_rows": (dict(conv0=np.array([6, 5, 1, 3, 3, 2, 1, 1, 1, 1, 1])), ["w0", "(9, 4)", "conv0"]),
    "conv_chain": (dict(conv1=np.array([2, 2, 4, 1, 1, 1, 1, 0, 0, 0, 0])), ["conv1", "does not chain", "layer 0"]),
    "pool_pad": (dict(pool0=np.array([2, 2, 1, 2, 2, 1, 0, 0])), ["pool0", "below the kernel"]),
    "pool_length": (dict(pool0=np.ones(7, np.int64)), ["pool0", "(7,)", "(8,)"]),
    "pad_range": (dict(pad0=np.array(-129)), ["pad0", "-129"]),
    "korder_not_perm": (dict(io_korder2=np.zeros(30, np.int32)), ["io_korder2", "permutation"]),
    "dense_chain": (dict(w2=np.ones((29, 7), np.int8), io_korder2=None), ["w2", "does not chain", "layer 1"]),
    "unknown": (dict(scale9=np.ones(2, np.float32)), ["scale9", "unexpected"]),
}


@pytest.mark.parametrize("case", list(BAD))
def test_malformed_fields_are_one_line(tmp_path, case):
    edits, words = BAD[case]
    path = _savez(tmp_path, _edit(**edits))
    with pytest.raises(NetError) as e:
        load_net(path)
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg, msg
    for w in words:
        assert w in msg, (w, msg)
