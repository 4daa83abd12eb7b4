"""A chip you can keep (``--chip STATE.npz``): runs on the model that program only what a kept chip does
not hold, the same state file on Verilator and Icarus (loaded when the simulation starts, read back at its
end), and bad state files refused in one line with no output written and the old file unchanged."""

import io
import json

import numpy as np
import pytest

from rramcim.model.chipfile import KeptChip, load_chip
from rramcim.model.compiler import compile_gemm
from rramcim.model.config import PRESETS
from rramcim.model.mlp import Layer, Net, reference, save_net
from rramcim.sim.backends.jobs import JobError, run_plan
from tests.test_cli import _one_line_error, rramcim

TINY = PRESETS["tiny"]


def _net(rng, sizes):
    layers = []
    for i in range(len(sizes) - 1):
        last = i == len(sizes) - 2
        layers.append(Layer(rng.integers(-128, 128, (sizes[i], sizes[i + 1])).astype(np.int8),
                            rng.integers(-5000, 5000, sizes[i + 1]).astype(np.int32),
                            None if last else 7, 0 if last else 1))
    return Net(layers)


def _no_streams(tmp_path):
    """``tiny`` without standing sequences (a config file): networks run layer by layer."""
    import dataclasses
    from rramcim.model.config import load_config
    base = PRESETS["default"]
    fields = {f.name: getattr(TINY, f.name) for f in dataclasses.fields(TINY)
              if f.name != "name" and getattr(TINY, f.name) != getattr(base, f.name)}
    f = tmp_path / "tiny_ns.toml"
    f.write_text('name = "tiny-ns"\nstreams = 0\n' + "".join(f"{k} = {v}\n" for k, v in fields.items()))
    return str(f), load_config(str(f))


def _run(tmp_path, net, X, chip, tag, config="tiny"):
    save_net(tmp_path / f"net{tag}.npz", net)
    np.save(tmp_path / "x.npy", X)
    out, rep = tmp_path / f"y{tag}.npy", tmp_path / f"r{tag}.json"
    p = rramcim("run", "--net", str(tmp_path / f"net{tag}.npz"), "--inputs", str(tmp_path / "x.npy"),
                "--out", str(out), "--config", config, "--report", str(rep), "--chip", str(chip))
    assert p.returncode == 0, p.stderr
    assert "programming:" in p.stdout and "inference:" in p.stdout
    return np.load(out), json.loads(rep.read_text())


def _holds(state, w):
    """Does some tile of ``state`` hold every 8x8 block of ``w`` (zero padded)?"""
    K, N = w.shape
    for k0 in range(0, K, 8):
        for n0 in range(0, N, 8):
            blk = np.zeros((8, 8), np.int64)
            blk[:min(8, K - k0), :min(8, N - n0)] = w[k0:k0 + 8, n0:n0 + 8]
            rows = min(8, K - k0)
            if not any(np.array_equal(state.rram[y, x, :rows], blk[:rows]) for y in range(2) for x in range(2)):
                return False
    return True


def test_a_kept_network_is_programmed_once_and_then_only_where_it_changed(tmp_path):
    rng = np.random.default_rng(7)
    net = _net(rng, [16, 8, 16])                 # 2 + 2 blocks of 8x8: the four tiles, no spare
    X = rng.integers(-128, 128, (9, 16)).astype(np.int8)
    chip = tmp_path / "s.npz"
    cfg_file, cfg = _no_streams(tmp_path)
    Y1, r1 = _run(tmp_path, net, X, chip, 1, cfg_file)
    s1 = load_chip(chip, cfg)
    # a chip without standing sequences: layer by layer, each layer on tiles of its own
    assert np.array_equal(Y1, reference(net, X)) and r1["placement"] == "layer-by-layer"
    assert r1["weights_resident"] and "no standing sequences" in r1["placement_reason"]
    written = int((s1.write_counts > 0).sum())
    assert r1["rram_row_writes"] == written > 0 and r1["program_cycles"] > 0
    assert r1["inference_cycles"] == r1["cycles"] - r1["program_cycles"]
    assert r1["compute_utilization"] == pytest.approx(r1["macs"] / (32 * r1["inference_cycles"]))
    assert all(_holds(s1, L.w) for L in net.layers)

    Y2, r2 = _run(tmp_path, net, X, chip, 2, cfg_file)
    s2 = load_chip(chip, cfg)
    assert np.array_equal(Y2, Y1)
    assert r2["rram_row_writes"] == 0 and r2["program_cycles"] == 0 and r2["cycles"] == r2["inference_cycles"]
    assert r2["counters"]["rram_pulses"] == 0 and s2 == s1
    assert r2["inference_cycles"] == r1["inference_cycles"]

    # another network: a few weights changed, in rows counted here from the changes themselves
    w0, w1 = net.layers[0].w.copy(), net.layers[1].w.copy()
    changes = [(0, 3, 2), (0, 3, 6), (0, 12, 1), (1, 0, 9), (1, 7, 15), (1, 7, 3)]
    for layer, k, n in changes:
        w = w0 if layer == 0 else w1
        w[k, n] = 5 if w[k, n] != 5 else 6
    rows = {(layer, k, n // 8) for layer, k, n in changes}
    net3 = Net([Layer(w0, net.layers[0].b, 7, 1), Layer(w1, net.layers[1].b, None, 0)])
    Y3, r3 = _run(tmp_path, net3, X, chip, 3, cfg_file)
    s3 = load_chip(chip, cfg)
    assert np.array_equal(Y3, reference(net3, X))
    assert r3["rram_row_writes"] == len(rows) == 5 and 0 < r3["program_cycles"] < r1["program_cycles"]
    grew = s3.write_counts != s2.write_counts
    assert grew.sum() == len(rows) and np.array_equal(grew, (s3.rram != s2.rram).any(axis=-1))
    assert (s3.write_counts[grew] > s2.write_counts[grew]).all()


def _gemm_operands():
    r = np.random.default_rng(11)
    A = r.integers(-128, 128, (5, 16)).astype(np.int8)
    B = r.integers(-128, 128, (16, 12)).astype(np.int8)
    B2 = B.copy()
    B2[2, 1], B2[9, 10] = B2[2, 1] ^ 1, B2[9, 10] ^ 1          # two rows of two blocks
    return A, B, B2


@pytest.fixture(scope="module")
def model_state(tmp_path_factory):
    """A state file written by the model backend through the CLI (a fresh chip, a GEMM: placed as a
    one-layer pipeline, whose tiles differ from compile_gemm's; see :func:`_start`)."""
    d = tmp_path_factory.mktemp("kept")
    A, B, _ = _gemm_operands()
    np.save(d / "a.npy", A)
    np.save(d / "b.npy", B)
    p = rramcim("gemm", "--a", str(d / "a.npy"), "--b", str(d / "b.npy"), "--out", str(d / "c.npy"),
                "--config", "tiny", "--chip", str(d / "s.npz"))
    assert p.returncode == 0, p.stderr
    return d


def _start(model_state):
    """The CLI's state file after compile_gemm's plan of B ran on it on the model: B where compile_gemm
    places it (this test holds compile_gemm's layer-by-layer plans to the kept-chip contract on the RTL)."""
    A, B, _ = _gemm_operands()
    start = load_chip(model_state / "s.npz", TINY)
    run_plan(compile_gemm(TINY, A, B, rram=start.rram), "model", chip=start)
    return start


@pytest.mark.parametrize("sim", ["verilator", "icarus"])
def test_the_state_file_round_trips_through_the_rtl(model_state, sim):
    A, B, B2 = _gemm_operands()
    start = _start(model_state)
    for b, rows in ((B, 0), (B2, 2)):
        on_model, on_rtl = start.copy(), start.copy()
        C_m, rep_m = run_plan(compile_gemm(TINY, A, b, rram=start.rram), "model", chip=on_model)
        C_r, rep_r = run_plan(compile_gemm(TINY, A, b, rram=start.rram), sim, chip=on_rtl)
        assert np.array_equal(C_r, A.astype(np.int64) @ b.astype(np.int64)) and np.array_equal(C_r, C_m)
        assert rep_r["cycles"] == rep_m["cycles"] and rep_r["rram_row_writes"] == rows
        assert (rep_r["program_cycles"] == 0) == (rows == 0)
        assert on_rtl == on_model                      # read back from the simulation at its end
        assert int((on_rtl.write_counts - start.write_counts).sum()) >= rows


def test_a_wrong_deposit_fails_the_run(model_state, monkeypatch):
    """The RTL must start from the file's cells: a chip loaded one bit off gives other results."""
    A, B, _ = _gemm_operands()
    start = _start(model_state)
    words = KeptChip.cell_words

    def off_by_one_bit(self):
        w = words(self)
        w[0][0][1] ^= 1 << 3
        return w
    monkeypatch.setattr(KeptChip, "cell_words", off_by_one_bit)
    with pytest.raises(JobError, match="disagrees with the model"):
        run_plan(compile_gemm(TINY, A, B, rram=start.rram), "verilator", chip=start.copy())


def _other_config(path):
    KeptChip.fresh(PRESETS["default"]).save(path)


def _fields(path, drop=(), **changes):
    with np.load(io.BytesIO(KeptChip.fresh(TINY).to_bytes())) as z:
        np.savez(path, **({f: z[f] for f in z.files if f not in drop} | changes))


@pytest.mark.parametrize("make, words", [
    (_other_config, ["config_hash", "'default'", "'tiny'"]),
    (lambda p: _fields(p, drop=("write_counts",)), ["write_counts", "missing"]),
    (lambda p: _fields(p, rram=np.zeros((2, 2, 8), np.int8)), ["rram", "shape"]),
    (lambda p: p.write_text("not an npz"), ["not a readable .npz"]),
])
def test_bad_state_files_are_one_line_and_leave_everything(tmp_path, make, words):
    A, B, _ = _gemm_operands()
    np.save(tmp_path / "a.npy", A)
    np.save(tmp_path / "b.npy", B)
    state, out, rep = tmp_path / "s.npz", tmp_path / "c.npy", tmp_path / "r.json"
    make(state)
    before = state.read_bytes()
    gemm = ["gemm", "--a", str(tmp_path / "a.npy"), "--b", str(tmp_path / "b.npy"), "--out", str(out)]
    for cmd in (gemm, ["run"]):                 # run: the demo
        _one_line_error(rramcim(*cmd, "--config", "tiny", "--report", str(rep), "--chip", str(state)),
                        f"--chip {state}", *words)
        assert not out.exists() and not rep.exists()
        assert state.read_bytes() == before


def test_fpga_refuses_a_kept_chip(tmp_path):
    A, B, _ = _gemm_operands()
    np.save(tmp_path / "a.npy", A)
    np.save(tmp_path / "b.npy", B)
    _one_line_error(rramcim("gemm", "--a", str(tmp_path / "a.npy"), "--b", str(tmp_path / "b.npy"), "--out",
                            str(tmp_path / "c.npy"), "--config", "tiny", "--backend", "fpga", "--port", "/dev/null",
                            "--chip", str(tmp_path / "s.npz")), "--chip", "fpga")
    assert not (tmp_path / "c.npy").exists() and not (tmp_path / "s.npz").exists()
