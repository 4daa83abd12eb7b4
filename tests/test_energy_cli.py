"""rramcim run / gemm: the energy lines, the R.json energy fields, --node, the energy plot, one-line errors."""

import json

import numpy as np
import pytest

from rramcim.model.mlp import Layer, Net, save_net
from tests.test_cli import _one_line_error, rramcim

FIELDS = ("energy_pj", "tops_per_w", "tops_per_mm2", "baseline_energy_pj", "baseline_tops_per_w", "energy_ratio",
          "node")


def _gemm(tmp_path, M=4, K=10, N=9):
    rng = np.random.default_rng(2)
    np.save(tmp_path / "A.npy", rng.integers(-128, 128, (M, K)).astype(np.int8))
    np.save(tmp_path / "B.npy", rng.integers(-128, 128, (K, N)).astype(np.int8))
    return ["gemm", "--a", str(tmp_path / "A.npy"), "--b", str(tmp_path / "B.npy"), "--config", "tiny"]


def test_gemm_reports_energy_for_chip_and_baseline(tmp_path):
    reports = {}
    for node in ("45nm", "22nm", "7nm"):
        rep = tmp_path / f"r{node}.json"
        p = rramcim(*_gemm(tmp_path), "--out", str(tmp_path / f"C{node}.npy"), "--report", str(rep),
                    *(["--node", node] if node != "22nm" else []))
        assert p.returncode == 0, p.stderr
        assert f"energy ({node}" in p.stdout and "baseline (" in p.stdout and "energy ratio, baseline / chip" in p.stdout
        r = json.loads(rep.read_text())
        for k in FIELDS:
            assert k in r, k
        assert r["node"] == node
        ops = 2 * 4 * 10 * 9
        assert r["tops_per_w"] == pytest.approx(ops / r["energy_pj"])
        assert r["baseline_tops_per_w"] == pytest.approx(ops / r["baseline_energy_pj"])
        assert r["energy_ratio"] == pytest.approx(r["baseline_energy_pj"] / r["energy_pj"])
        assert r["tops_per_mm2"] > 0
        # the breakdown adds up to the total, and the events come from the run's counters
        assert sum(r["energy"]["breakdown_pj"].values()) == pytest.approx(r["energy_pj"])
        assert r["energy"]["events"]["rram_read_bits"] == r["counters"]["macs"] * 64
        reports[node] = r
    # the same run, three technology rows: smaller nodes spend less on every CMOS event
    assert reports["45nm"]["energy_pj"] > reports["22nm"]["energy_pj"] > reports["7nm"]["energy_pj"]
    assert reports["45nm"]["cycles"] == reports["7nm"]["cycles"]


@pytest.mark.parametrize("node", ["5nm", "22", ""])
def test_bad_node_is_one_line_and_writes_nothing(tmp_path, node):
    out, rep = tmp_path / "C.npy", tmp_path / "r.json"
    p = rramcim(*_gemm(tmp_path), "--out", str(out), "--report", str(rep), "--node", node)
    _one_line_error(p, "--node", "known: 45nm, 22nm, 7nm")
    assert p.stdout == "" and not out.exists() and not rep.exists()
    p = rramcim("run", "--node", node, "--config", "tiny")
    _one_line_error(p, "--node")
    assert p.stdout == ""


def test_run_reports_energy_per_inference_and_plots(tmp_path):
    rng = np.random.default_rng(5)
    w0 = rng.integers(-128, 128, (12, 9)).astype(np.int8)
    w1 = rng.integers(-128, 128, (9, 4)).astype(np.int8)
    save_net(tmp_path / "net.npz", Net([Layer(w0, np.zeros(9, np.int32), 7, 1), Layer(w1, np.zeros(4, np.int32), None, 0)]))
    np.save(tmp_path / "x.npy", rng.integers(-128, 128, (6, 12)).astype(np.int8))
    rep = tmp_path / "r.json"
    p = rramcim("run", "--net", str(tmp_path / "net.npz"), "--inputs", str(tmp_path / "x.npy"), "--out",
                str(tmp_path / "y.npy"), "--config", "tiny", "--report", str(rep), "--node", "7nm", "--plot",
                str(tmp_path / "plots"))
    assert p.returncode == 0, p.stderr
    assert "nJ per inference" in p.stdout
    r = json.loads(rep.read_text())
    assert r["node"] == "7nm" and r["energy"]["per"] == 6
    assert r["energy"]["energy_per_pj"] == pytest.approx(r["energy_pj"] / 6)
    # the baseline's GEMMs: 6x12x9 with int8 outputs, then 6x9x4 with int32 outputs, each with int32 biases
    ev = r["energy"]["baseline_events"]
    assert ev["macs"] == 6 * 12 * 9 + 6 * 9 * 4 == r["macs"]
    assert ev["dram_bits"] == (12 * 9 * 8 + 9 * 32 + 6 * 12 * 8 + 6 * 9 * 8) + (9 * 4 * 8 + 4 * 32 + 6 * 9 * 8
                                                                               + 6 * 4 * 32)
    f = tmp_path / "plots" / "energy.png"
    assert f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f.stat().st_size > 5000


def test_gemm_plot_over_a_file_is_one_line(tmp_path):
    (tmp_path / "file").write_text("x")
    out = tmp_path / "C.npy"
    p = rramcim(*_gemm(tmp_path), "--out", str(out), "--plot", str(tmp_path / "file"))
    _one_line_error(p, "--plot", "not a directory")
    assert not out.exists()


def test_reproduction_table_by_hand_and_docs_are_generated():
    """The 4b x 4b SRAM macro of the reproduction table by hand, and docs/energy.md holds the script's tables."""
    from pathlib import Path

    from rramcim.model import energy as E
    from rramcim.sim.perf import energy as R
    rows = R.reproduce()
    chih = rows[0]
    assert chih["cfg"] == dict(rows=256, cols=64, wbits=4, xbits=4, par=1) and chih["vdd"] == 0.72
    # 256 rows: popcount tree 128*1 + 64*2 + 32*3 + 16*4 + 8*5 + 4*6 + 2*7 + 1*8 = 502 full-adder bits, 9-bit
    # popcounts; shift-add per step and column (4-1)*(9+4) + 32 = 71, 4 steps; SRAM cells priced as reg_bit
    v2 = (0.72 / 0.8) ** 2
    add, reg = E.TECH["22nm"]["adder_bitop"].value * v2, E.TECH["22nm"]["reg_bit"].value * v2
    cells = 256 * 64 * 4 * 4
    energy = (cells + 4 * 64 * 32 + 256 * 4) * reg + (64 * 4 * 4 * 502 + 4 * 64 * 71) * add
    assert chih["model"] == pytest.approx(2 * 256 * 64 / energy, rel=1e-12)
    assert chih["published"] == 89.0 and rows[1]["published"] == 21.6
    doc = Path(__file__).resolve().parents[1] / "docs" / "energy.md"
    text = doc.read_text()
    assert R.repro_markdown(rows) in text and R.table_markdown() in text


AREA_KEYS = ("area_mm2", "baseline_area_mm2", "baseline_sram_bytes", "baseline_dram_weight_bits")


def test_gemm_reports_both_baselines_areas_and_names_them(tmp_path):
    from rramcim.model import energy as E
    from rramcim.model.config import PRESETS
    tiny = PRESETS["tiny"]
    reports = {}
    for which in ("same-capacity", "equal-area", None):
        rep = tmp_path / f"r{which}.json"
        p = rramcim(*_gemm(tmp_path), "--out", str(tmp_path / "C.npy"), "--report", str(rep),
                    *(["--baseline", which] if which else []))
        assert p.returncode == 0, p.stderr
        r = json.loads(rep.read_text())
        for k in AREA_KEYS:
            assert k in r, k
        assert f"baseline ({which or 'same-capacity'}: " in p.stdout
        if which == "equal-area":
            assert "SRAM in the rest of the chip's area, weights (90 B) from DRAM every run" in p.stdout
        assert r["area_mm2"] == pytest.approx(E.chip_area(tiny)["total"], rel=1e-12)
        reports[which] = r
    same, equal = reports["same-capacity"], reports["equal-area"]
    assert reports[None]["baseline"] == "same-capacity"
    assert reports[None]["baseline_energy_pj"] == pytest.approx(same["baseline_energy_pj"], rel=1e-12)
    # same capacity: the chip's RRAM (4 tiles x 8x8 int8 weights) in a smaller area; the GEMM's 10x9 int8 weights
    # from DRAM (a fresh chip programs them too)
    assert same["baseline_sram_bytes"] == 4 * 8 * 8 and same["baseline_area_mm2"] < same["area_mm2"]
    assert same["baseline_dram_weight_bits"] == 10 * 9 * 8 == equal["baseline_dram_weight_bits"]
    # equal area: the chip's area, more SRAM
    assert equal["baseline_area_mm2"] == pytest.approx(equal["area_mm2"], rel=1e-9, abs=0)
    assert equal["baseline_sram_bytes"] == E.equal_area_baseline(tiny)["sram_bytes"] > 10 * same["baseline_sram_bytes"]
    assert equal["energy"]["baseline"] == "equal-area" and equal["cycles"] == same["cycles"]


def test_run_on_a_kept_chip_against_the_equal_area_baseline(tmp_path):
    """A 12-9-4 net on tiny twice on a kept chip: the first run fetches its weights, the second keeps them."""
    rng = np.random.default_rng(6)
    w0 = rng.integers(-128, 128, (12, 9)).astype(np.int8)
    w1 = rng.integers(-128, 128, (9, 4)).astype(np.int8)
    save_net(tmp_path / "net.npz", Net([Layer(w0, np.zeros(9, np.int32), 7, 1),
                                        Layer(w1, np.zeros(4, np.int32), None, 0)]))
    np.save(tmp_path / "x.npy", rng.integers(-128, 128, (2, 12)).astype(np.int8))
    weights = 12 * 9 * 8 + 9 * 32 + 9 * 4 * 8 + 4 * 32        # int8 weights, int32 biases
    for i, dram in ((1, weights), (2, 0)):
        rep = tmp_path / f"r{i}.json"
        p = rramcim("run", "--net", str(tmp_path / "net.npz"), "--inputs", str(tmp_path / "x.npy"), "--out",
                    str(tmp_path / "y.npy"), "--config", "tiny", "--report", str(rep), "--chip",
                    str(tmp_path / "chip.npz"), "--baseline", "equal-area")
        assert p.returncode == 0, p.stderr
        r = json.loads(rep.read_text())
        for k in AREA_KEYS:
            assert k in r, k
        assert r["baseline"] == "equal-area" and r["baseline_dram_weight_bits"] == dram, i
        assert r["baseline_area_mm2"] == pytest.approx(r["area_mm2"], rel=1e-9, abs=0)
        assert "baseline (equal-area: " in p.stdout
        assert ("weights kept in it" if dram == 0 else "from DRAM every run") in p.stdout


@pytest.mark.parametrize("value", ["equal", "EQUAL-AREA", ""])
def test_bad_baseline_is_one_line_and_writes_nothing(tmp_path, value):
    out, rep = tmp_path / "C.npy", tmp_path / "r.json"
    p = rramcim(*_gemm(tmp_path), "--out", str(out), "--report", str(rep), "--baseline", value)
    _one_line_error(p, "--baseline", "same-capacity", "equal-area")
    assert p.stdout == "" and not out.exists() and not rep.exists()
    p = rramcim("run", "--config", "tiny", "--baseline", value)
    _one_line_error(p, "--baseline")
    assert p.stdout == ""


def test_equal_area_on_a_chip_too_small_for_its_pes_is_one_line(tmp_path):
    """256x256 macros: the chip's peak in digital PEs is larger than the chip; said before any work."""
    cfg = tmp_path / "big.toml"
    cfg.write_text("rows = 256\ncols = 256\nrequant = 0\n")
    out = tmp_path / "C.npy"
    p = rramcim(*_gemm(tmp_path)[:-2], "--config", str(cfg), "--out", str(out), "--baseline", "equal-area")
    _one_line_error(p, "--baseline equal-area", "more than the chip's")
    assert p.stdout == "" and not out.exists()


def test_a_banked_config_defaults_to_the_equal_area_baseline(tmp_path):
    """tiny with 4 banks a macro: without --baseline the comparison is equal-area; --baseline still chooses."""
    from rramcim.model import energy as E
    from rramcim.model.config import PRESETS
    cfg = tmp_path / "banked.toml"
    cfg.write_text("mesh_x = 2\nmesh_y = 2\nrows = 8\ncols = 8\nflit_width = 32\nnoc_fifo_depth = 4\nimem_depth = 256\n"
                   "gbuf_words = 1024\ntile_ibuf_depth = 8\ntile_acc_depth = 8\nbanks = 4\n")
    banked = PRESETS["tiny"].replace(name="banked", banks=4)
    for which in (None, "same-capacity"):
        rep = tmp_path / f"r{which}.json"
        p = rramcim(*_gemm(tmp_path)[:-1], str(cfg), "--out", str(tmp_path / "C.npy"), "--report", str(rep),
                    *(["--baseline", which] if which else []))
        assert p.returncode == 0, p.stderr
        r = json.loads(rep.read_text())
        assert r["baseline"] == (which or "equal-area") and f"baseline ({which or 'equal-area'}: " in p.stdout
        assert r["area_mm2"] == pytest.approx(E.chip_area(banked)["total"], rel=1e-12)
        assert r["area_mm2"] > E.chip_area(PRESETS["tiny"])["total"]           # every bank's cells and periphery
        if which is None:
            assert r["baseline_area_mm2"] == pytest.approx(r["area_mm2"], rel=1e-9, abs=0)
            assert r["baseline_sram_bytes"] == E.equal_area_baseline(banked)["sram_bytes"]
        else:
            assert r["baseline_sram_bytes"] == 4 * 4 * 8 * 8                    # 4 tiles x 4 banks of 8x8 int8
    # an unbanked config keeps same-capacity (test_gemm_reports_both_baselines_areas_and_names_them), and the
    # help says which default applies
    p = rramcim("gemm", "--help")
    assert "equal-area for a banked config" in " ".join(p.stdout.split())


def test_a_banked_chip_too_small_for_its_default_baseline_says_so(tmp_path):
    """256x256 macros with 2 banks: the default (equal-area) has no baseline of that area; one line, naming the
    way out, before any work."""
    cfg = tmp_path / "big.toml"
    cfg.write_text("rows = 256\ncols = 256\nbanks = 2\nrequant = 0\n")
    out = tmp_path / "C.npy"
    p = rramcim(*_gemm(tmp_path)[:-2], "--config", str(cfg), "--out", str(out))
    _one_line_error(p, "--baseline equal-area (the default for a banked config)", "more than the chip's",
                    "--baseline same-capacity")
    assert p.stdout == "" and not out.exists()


def test_run_says_which_case_it_is_in(tmp_path):
    """``case:`` in the output and ``energy_case`` in R.json: parity while the weights fit the baseline's SRAM
    (a small GEMM), the memory wall once they do not (a net on a banked chip larger than the equal-area
    baseline's SRAM, here run from a kept chip), with the byte counts that decide it."""
    from rramcim.model import energy as E
    from rramcim.model.config import PRESETS
    rep = tmp_path / "g.json"
    p = rramcim(*_gemm(tmp_path), "--out", str(tmp_path / "C.npy"), "--report", str(rep))
    assert p.returncode == 0, p.stderr
    assert "case: parity: the weights (90 B) fit the baseline's SRAM" in p.stdout
    assert json.loads(rep.read_text())["energy_case"] == "parity"
    cfg = tmp_path / "b16.toml"
    cfg.write_text("mesh_x = 2\nmesh_y = 2\nrows = 8\ncols = 8\nflit_width = 32\nimem_depth = 1024\n"
                   "gbuf_words = 1024\ntile_ibuf_depth = 8\ntile_acc_depth = 8\nbanks = 256\nrequant = 0\n")
    sram = E.equal_area_baseline(PRESETS["tiny"].replace(name="b16", banks=256, imem_depth=1024,
                                                         requant=0))["sram_bytes"]
    k = 8 * (int(sram ** 0.5) // 8 + 2)                   # one k x k layer, more bytes than the baseline's SRAM
    assert sram < k * k <= 4 * 256 * 64
    rng = np.random.default_rng(3)
    save_net(tmp_path / "net.npz", Net([Layer(rng.integers(-128, 128, (k, k)).astype(np.int8),
                                              np.zeros(k, np.int32), None, 0)]))
    np.save(tmp_path / "X.npy", rng.integers(-128, 128, (2, k)).astype(np.int8))
    args = ["run", "--config", str(cfg), "--net", str(tmp_path / "net.npz"), "--inputs", str(tmp_path / "X.npy"),
            "--out", str(tmp_path / "Y.npy"), "--chip", str(tmp_path / "chip.npz"), "--report", str(rep)]
    p = rramcim(*args)
    assert p.returncode == 0, p.stderr
    assert "case: memory wall" in p.stdout and "this run also programs the RRAM" in p.stdout
    p = rramcim(*args)
    assert p.returncode == 0, p.stderr
    assert "placement: banked" in p.stdout and "this run also programs" not in p.stdout
    assert f"case: memory wall: {(k * k + 4 * k - sram) / 1024:.3g} KiB of the" in p.stdout     # int32 biases too
    assert json.loads(rep.read_text())["energy_case"] == "memory-wall"
