"""``rramcim run`` and ``rramcim gemm`` on a resident pipeline (compile_net) on the model: placement
``pipeline`` with at least half the peak on 256-bit flits (a config file sets them: nothing assumed of
the default preset's width), outputs equal to the reference, a kept chip's second run writing no RRAM
row at the energy the issue asks; the layer-by-layer fallback naming why."""

import json

import numpy as np
import pytest

from rramcim.model.config import PRESETS
from rramcim.model.mlp import save_net
from rramcim.sim.backends.jobs import PIPELINE_BACKENDS, compile_resident
from tests.test_cli import rramcim
from tests.test_run import _plain_reference, random_net


@pytest.fixture
def w256(tmp_path):
    f = tmp_path / "w256.toml"
    f.write_text('name = "w256"\nflit_width = 256\n')
    return str(f)


def _report(path):
    return json.loads(path.read_text())


def _run_net(tmp_path, net, X, config):
    """``rramcim run --net``: the process and its report, the output checked against the reference."""
    save_net(tmp_path / "net.npz", net)
    np.save(tmp_path / "x.npy", X)
    p = rramcim("run", "--net", str(tmp_path / "net.npz"), "--inputs", str(tmp_path / "x.npy"), "--out",
                str(tmp_path / "y.npy"), "--config", config, "--report", str(tmp_path / "r.json"))
    assert p.returncode == 0, p.stderr
    assert np.array_equal(np.load(tmp_path / "y.npy"), _plain_reference(net, X))
    return p, _report(tmp_path / "r.json")


def test_the_demo_runs_as_a_pipeline_and_a_kept_chip_programs_nothing_the_second_time(tmp_path, w256):
    chip = tmp_path / "s.npz"
    reps = []
    for k in (1, 2):
        rep = tmp_path / f"r{k}.json"
        p = rramcim("run", "--config", w256, "--report", str(rep), "--chip", str(chip))
        assert p.returncode == 0, p.stderr
        assert "bit for bit: yes" in p.stdout and "placement: pipeline" in p.stdout
        reps.append(_report(rep))
    r1, r2 = reps
    for r in reps:
        assert r["placement"] == "pipeline" and r["placement_reason"] is None and r["cycles_shared"]
        assert r["compute_utilization"] >= 0.5 and r["limit_cycles_per_vector"] == 8
        assert [len(L["tiles"]) for L in r["layers"]] == [2, 1]
        assert r["inference_cycles"] == r["cycles"] - r["program_cycles"]
    assert r1["rram_row_writes"] > 0 and r1["program_cycles"] > 0
    assert r2["rram_row_writes"] == 0 and r2["program_cycles"] == 0 and r2["counters"]["rram_pulses"] == 0
    assert r2["inference_cycles"] == r1["inference_cycles"]
    # a kept chip against a baseline that keeps its weights in SRAM and its activations on chip
    assert r2["energy"]["baseline_weights_resident"] and r2["energy"]["baseline_chained"]
    assert not r1["energy"]["baseline_weights_resident"]
    assert r2["energy_ratio"] >= 0.95


def test_a_net_that_fits_runs_as_a_pipeline(tmp_path, w256):
    rng = np.random.default_rng(3)
    net = random_net(rng, [64, 32, 32, 16], [9, 11])
    X = rng.integers(-128, 128, size=(96, 64)).astype(np.int8)
    _, r = _run_net(tmp_path, net, X, w256)
    assert r["placement"] == "pipeline" and r["compute_utilization"] >= 0.5
    assert r["macs"] == 96 * (64 * 32 + 32 * 32 + 32 * 16) == sum(L["macs"] for L in r["layers"])
    for k in ("cycles", "macs", "peak_macs_per_cycle", "utilization", "rram_row_writes", "noc_flits", "backend",
              "config", "program_cycles", "inference_cycles", "compute_utilization", "energy_pj", "energy_ratio"):
        assert k in r, k


def test_a_net_too_big_for_the_tiles_runs_layer_by_layer_and_says_why(tmp_path, w256):
    rng = np.random.default_rng(5)
    net = random_net(rng, [64, 64, 10], [8])          # 4 + 2 blocks of 32x32: six tiles, the chip has four
    X = rng.integers(-128, 128, size=(7, 64)).astype(np.int8)
    p, r = _run_net(tmp_path, net, X, w256)
    assert r["placement"] == "layer-by-layer" and "6 tiles" in r["placement_reason"]
    assert "placement: layer-by-layer (the network needs 6 tiles" in p.stdout
    assert r["cycles"] == sum(L["cycles"] for L in r["layers"]) and not r["cycles_shared"]


def test_backends_without_sequences_take_the_layer_by_layer_flow():
    rng = np.random.default_rng(2)
    net = random_net(rng, [32, 16], [])
    X = rng.integers(-128, 128, size=(3, 32)).astype(np.int8)
    cfg = PRESETS["default"].replace(flit_width=256)
    assert "model" in PIPELINE_BACKENDS
    plan, reason = compile_resident(cfg, net, X, "model")
    assert plan is not None and reason is None
    for backend in set(("verilator", "icarus", "fpga")) - set(PIPELINE_BACKENDS):
        plan, reason = compile_resident(cfg, net, X, backend)
        assert plan is None and backend in reason and "PIPELINE_BACKENDS" in reason
    plan, reason = compile_resident(cfg.replace(streams=0), net, X, "model")
    assert plan is None and "streams = 0" in reason


def test_a_gemm_whose_b_fits_the_tiles_runs_as_a_one_layer_pipeline(tmp_path, w256):
    rng = np.random.default_rng(9)
    A = rng.integers(-128, 128, size=(40, 64)).astype(np.int8)
    B = rng.integers(-128, 128, size=(64, 50)).astype(np.int8)      # 2 x 2 blocks: the four tiles
    np.save(tmp_path / "a.npy", A)
    np.save(tmp_path / "b.npy", B)
    for B_, want in ((B, "pipeline"), (np.concatenate([B, B], axis=1), "layer-by-layer")):
        np.save(tmp_path / "b.npy", B_)
        p = rramcim("gemm", "--a", str(tmp_path / "a.npy"), "--b", str(tmp_path / "b.npy"), "--out",
                    str(tmp_path / "c.npy"), "--config", w256, "--report", str(tmp_path / "r.json"))
        assert p.returncode == 0, p.stderr
        assert np.array_equal(np.load(tmp_path / "c.npy"), A.astype(np.int64) @ B_.astype(np.int64))
        r = _report(tmp_path / "r.json")
        assert r["placement"] == want and f"placement: {want}" in p.stdout
        assert r["macs"] == 40 * 64 * B_.shape[1] and "compute_utilization" in r and "energy_ratio" in r


def test_dataflow_plot_draws_each_workload(tmp_path):
    """The dataflow benchmark's plot (``--plot``): one PNG, a bar per workload and width."""
    from rramcim.sim.perf.dataflow import plot
    rows = [("demo", 64, 0.198, 0.201, "pipeline"), ("demo", 256, 0.556, 0.578, "pipeline"),
            ("512x512x512", 256, 0.122, 0.667, "layer-by-layer")]
    plot(rows, tmp_path / "dataflow.png")
    data = (tmp_path / "dataflow.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
