"""rramcim run: the NET.npz contract (every field checked, one-line errors, no output), a random MLP
on the model against a plain-integer reference, and the digits demo."""

import json

import numpy as np
import pytest

from rramcim.model.mlp import Layer, Net, reference, save_net
from tests.test_cli import _one_line_error, rramcim


def _plain_reference(net, X):
    """The contract with Python integers, written independently of rramcim.model.mlp."""
    x = [[int(v) for v in row] for row in X]
    for i, L in enumerate(net.layers):
        out = []
        for row in x:
            acc = []
            for j in range(L.w.shape[1]):
                a = sum(row[k] * int(L.w[k, j]) for k in range(L.w.shape[0])) + int(L.b[j])
                a = (a + 2**31) % 2**32 - 2**31
                acc.append(a)
            if i < len(net.layers) - 1:
                y = [a if L.shift == 0 else (a + 2 ** (L.shift - 1)) // 2 ** L.shift for a in acc]
                y = [min(max(v, -128), 127) for v in y]
                acc = [max(v, 0) for v in y] if L.relu else y
            out.append(acc)
        x = out
    return np.array(x, dtype=np.int64)


def random_net(rng, sizes, shifts=None):
    layers = []
    for i in range(len(sizes) - 1):
        w = rng.integers(-128, 128, size=(sizes[i], sizes[i + 1])).astype(np.int8)
        b = rng.integers(-2**31, 2**31, size=sizes[i + 1]).astype(np.int64)
        b[rng.random(sizes[i + 1]) < 0.7] //= 2**16
        last = i == len(sizes) - 2
        shift = None if last else int(shifts[i] if shifts else rng.integers(0, 32))
        layers.append(Layer(w, b.astype(np.int32), shift, 0 if last else int(rng.integers(0, 2))))
    return Net(layers)


def test_reference_matches_the_plain_contract():
    rng = np.random.default_rng(0)
    for shifts in ([0, 31], [7, 12], [3, 1]):
        net = random_net(rng, [13, 9, 6, 4], shifts)
        X = rng.integers(-128, 128, size=(5, 13)).astype(np.int8)
        assert np.array_equal(reference(net, X), _plain_reference(net, X))


def test_run_a_random_mlp_on_the_model(tmp_path):
    rng = np.random.default_rng(3)
    net = random_net(rng, [21, 17, 9, 5], [9, 11])
    X = rng.integers(-128, 128, size=(7, 21)).astype(np.int8)
    save_net(tmp_path / "net.npz", net)
    np.save(tmp_path / "x.npy", X)
    out, rep = tmp_path / "y.npy", tmp_path / "r.json"
    p = rramcim("run", "--net", str(tmp_path / "net.npz"), "--inputs", str(tmp_path / "x.npy"), "--out", str(out),
                "--config", "tiny", "--report", str(rep))
    assert p.returncode == 0, p.stderr
    Y = np.load(out)
    assert Y.dtype == np.int32 and np.array_equal(Y, _plain_reference(net, X))
    r = json.loads(rep.read_text())
    for key in ("cycles", "macs", "peak_macs_per_cycle", "utilization", "rram_row_writes", "noc_flits",
                "backend", "config"):
        assert key in r, key
    assert r["macs"] == 7 * (21 * 17 + 17 * 9 + 9 * 5) and r["cycles"] > 0 and len(r["layers"]) == 3


def _write(tmp_path, net_fields, X=None):
    np.savez(tmp_path / "net.npz", **net_fields)
    np.save(tmp_path / "x.npy", np.zeros((2, 4), dtype=np.int8) if X is None else X)
    return str(tmp_path / "net.npz"), str(tmp_path / "x.npy")


def _good():
    return {"layers": np.array(2), "w0": np.ones((4, 3), np.int8), "b0": np.zeros(3, np.int32),
            "shift0": np.array([3]), "relu0": np.array(1, np.uint8), "w1": np.ones((3, 2), np.int8),
            "b1": np.zeros(2, np.int32)}


@pytest.mark.parametrize("change, words", [
    (lambda f: f.pop("layers"), ["layers"]),
    (lambda f: f.update(layers=np.array([2, 3])), ["layers", "scalar"]),
    (lambda f: f.update(layers=np.array(2.0)), ["layers", "dtype"]),
    (lambda f: f.pop("w1"), ["w1", "missing"]),
    (lambda f: f.update(w0=np.ones((4, 3), np.float32)), ["w0", "dtype"]),
    (lambda f: f.update(w0=np.full((4, 3), 200, np.int16)), ["w0", "200", "int8"]),
    (lambda f: f.update(b0=np.zeros(4, np.int32)), ["b0", "shape"]),
    (lambda f: f.update(b1=np.full(2, 2**33, np.int64)), ["b1", "int32"]),
    (lambda f: f.update(w1=np.ones((5, 2), np.int8)), ["w1", "chain"]),
    (lambda f: f.update(shift0=np.array(32)), ["shift0", "32"]),
    (lambda f: f.update(shift0=np.array(-1)), ["shift0"]),
    (lambda f: f.update(relu0=np.array(2)), ["relu0", "2"]),
    (lambda f: f.update(shift1=np.array(3)), ["shift1", "last layer"]),
    (lambda f: f.update(w0=np.ones(4, np.int8)), ["w0", "2-D"]),
])
def test_run_rejects_a_bad_net_in_one_line(tmp_path, change, words):
    f = _good()
    change(f)
    net, x = _write(tmp_path, f)
    out = tmp_path / "y.npy"
    _one_line_error(rramcim("run", "--net", net, "--inputs", x, "--out", str(out), "--config", "tiny"), *words)
    assert not out.exists()


@pytest.mark.parametrize("X, words", [
    (np.zeros((2, 5), np.int8), ["x.npy", "shape", "4"]),
    (np.zeros(4, np.int8), ["x.npy", "2-D"]),
    (np.full((2, 4), 128, np.int16), ["x.npy", "128", "int8"]),
    (np.zeros((2, 4), np.float64), ["x.npy", "dtype"]),
])
def test_run_rejects_bad_inputs(tmp_path, X, words):
    net, x = _write(tmp_path, _good(), X)
    out = tmp_path / "y.npy"
    _one_line_error(rramcim("run", "--net", net, "--inputs", x, "--out", str(out), "--config", "tiny"), *words)
    assert not out.exists()


def test_run_needs_all_three_files_and_an_int8_config(tmp_path):
    net, x = _write(tmp_path, _good())
    _one_line_error(rramcim("run", "--net", net, "--out", str(tmp_path / "y.npy")), "--inputs")
    _one_line_error(rramcim("run", "--net", str(tmp_path / "nope.npz"), "--inputs", x, "--out",
                            str(tmp_path / "y.npy")), "nope.npz", "no such file")
    (tmp_path / "bad.npz").write_text("not a zip")
    _one_line_error(rramcim("run", "--net", str(tmp_path / "bad.npz"), "--inputs", x, "--out",
                            str(tmp_path / "y.npy")), "bad.npz", "not a readable")
    cfg = tmp_path / "x4.toml"
    cfg.write_text("xbits = 4\n")
    _one_line_error(rramcim("run", "--net", net, "--inputs", x, "--out", str(tmp_path / "y.npy"), "--config",
                            str(cfg)), "xbits")
    assert not (tmp_path / "y.npy").exists()


def test_digits_demo():
    p = rramcim("run")
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "bit for bit: yes" in out and "inferences/s" in out
    accs = [float(line.split("%")[0].split()[-1]) for line in out.splitlines() if "accuracy" in line]
    assert len(accs) == 3 and accs[1] == accs[2] and accs[2] > 90


@pytest.mark.parametrize("sizes, batch, cfg", [([200, 97, 33, 10], 64, "default"), ([50, 7], 1, "tiny"),
                                               ([19, 40, 3], 5, "tiny")])
def test_random_networks_on_the_model(sizes, batch, cfg):
    from rramcim.model.config import PRESETS
    from rramcim.sim.backends.jobs import run_net
    rng = np.random.default_rng(len(sizes) * 100 + batch)
    net = random_net(rng, sizes)
    X = rng.integers(-128, 128, size=(batch, sizes[0])).astype(np.int8)
    Y, rep = run_net(PRESETS[cfg], net, X, "model")
    assert np.array_equal(Y, _plain_reference(net, X))
    assert rep["macs"] == batch * sum(a * b for a, b in zip(sizes, sizes[1:]))


def test_run_writes_plots(tmp_path):
    rng = np.random.default_rng(4)
    net = random_net(rng, [12, 20, 5], [6])
    save_net(tmp_path / "net.npz", net)
    np.save(tmp_path / "x.npy", rng.integers(-128, 128, size=(6, 12)).astype(np.int8))
    p = rramcim("run", "--net", str(tmp_path / "net.npz"), "--inputs", str(tmp_path / "x.npy"), "--out",
                str(tmp_path / "y.npy"), "--config", "tiny", "--plot", str(tmp_path / "plots"))
    assert p.returncode == 0, p.stderr
    for name in ("layers.png", "timeline.png"):
        f = tmp_path / "plots" / name
        assert f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f.stat().st_size > 5000


def test_tile_trace_accounts_for_every_busy_cycle():
    """The timeline's intervals add up to each tile's busy counter."""
    from rramcim.model.config import PRESETS
    from rramcim.sim.backends.jobs import run_net
    from rramcim.sim.report.plots import _intervals
    cfg = PRESETS["tiny"]
    rng = np.random.default_rng(6)
    net = random_net(rng, [10, 17, 4], [5])
    trace = []
    _, rep = run_net(cfg, net, rng.integers(-128, 128, size=(5, 10)).astype(np.int8), "model", trace=trace)
    ivs = _intervals(trace, cfg.tiles, rep["cycles"] + 1)
    busy = sum(length for t in ivs for _, length, _ in ivs[t])
    assert busy == rep["counters"]["busy"] > 0
