"""A chip core of several banks, as generated Verilog, on Icarus and Verilator against the cycle-exact model.

The config (``banks3``) is tiny's 8x8 macro with 3 banks (a count that is not a power of two) on a
2x1 mesh. One build a simulator, cached and reused by every run here. Each simulation is a sequence
of runs on one chip (RRAM persists): random race-free programs that program every bank of every tile,
run ``mvm`` with random banks, with and without ``reduce`` and ``acc``, and ``read`` with banks
(tests/rtl/test_banks.py, :func:`banked_program`, corners included), then a dump of every
accumulator and of every RRAM row of every bank, and again after a soft reset. The chip bench
(sim/benches/chip.py) checks every run's cycles, counters, error register and global buffer. A
model that computes with the wrong bank must make it fail. A kept chip's banks are deposited into the
whole chip's memories on Icarus and read back (sim/tb/top.py). A macro of 12-row banks (the RRAM row
divided into bank and row in the Verilog) runs the macro bench on Icarus.
"""

from types import SimpleNamespace

import numpy as np
import pytest

from rramcim.model.chipfile import KeptChip
from rramcim.model.encoding import pack_vector
from rramcim.model.isa import assemble
from rramcim.sim.backends.rtl import run_windows
from rramcim.sim.benches.chip import dump_program
from rramcim.sim.tools.build import build, lint, run_cocotb
from tests.configs import P2W4, SLOW, TINY
from tests.rtl.test_banks import banked_program

TEST_MODULE = "rramcim.sim.tb.chip"
BANKED = TINY.replace(name="banks3", mesh_x=2, mesh_y=1, banks=3, streams=0)


def _run(text, gbuf=None, soft_reset=False):
    return dict(program=assemble(text) if isinstance(text, str) else list(text),
                gbuf={str(a): w for a, w in (gbuf or {}).items()}, soft_reset=soft_reset)


def banked_runs(programs: int, steps: int, seed: int = 1) -> list:
    runs = [_run(*banked_program(BANKED, seed * 100 + k, steps)) for k in range(programs)]
    dump, _ = dump_program(BANKED)
    return runs + [_run(dump), _run(dump, soft_reset=True)]


# Verilator runs more and longer programs (once built, it is fast); Icarus a short one.
SIZES = {"verilator": (16, 200) if SLOW else (6, 120), "icarus": (1, 40)}


@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_banked_chip(sim, tmp_path):
    """Values, cycles, counters, errors and the global buffer equal to the model's, run after run."""
    b = build("core", BANKED, sim)
    runs = banked_runs(*SIZES[sim])
    res = run_cocotb(b, TEST_MODULE, dict(runs=runs, seed=11, idle=0.3), tmp_path)
    assert res.passed, res.describe()
    s = res.summary
    assert s["runs"] == len(runs) and s["errors"] == [None] * len(runs)
    assert min(s["cycles"]) > 100


def test_banked_chip_checker_catches_a_wrong_bank(tmp_path):
    """A model that computes with the next bank must make the bench fail (the build of test_banked_chip)."""
    b = build("core", BANKED, "icarus")
    res = run_cocotb(b, TEST_MODULE, dict(runs=[_run(*banked_program(BANKED, 5, steps=10))], model_bug="bank"),
                     tmp_path, waves_on_failure=False)
    assert not res.passed
    assert "global buffer word" in res.failure


def test_banked_core_lint_clean(tmp_path):
    from rramcim.rtl.verilog import block_verilog
    top, text = block_verilog("core", BANKED)
    v = tmp_path / "core.v"
    v.write_text(text)
    clean, out = lint(v, top)
    assert clean, out[:3000]


def test_banked_macro_of_12_row_banks(tmp_path):
    """12-row banks (an RRAM row splits into bank and row by division in the Verilog) on Icarus: the macro
    bench, random banks and stalls, against the model; and its Verilog lints clean."""
    from rramcim.rtl.verilog import macro_verilog
    cfg = P2W4.replace(name="p2w4b3", banks=3)
    v = tmp_path / "macro.v"
    v.write_text(macro_verilog(cfg))
    clean, out = lint(v, "rramcim_macro")
    assert clean, out[:3000]
    res = run_cocotb(build("macro", cfg, "icarus"), "rramcim.sim.tb.macro", dict(seed=3, n_mvm=100, stall=0.3),
                     tmp_path / "run")
    assert res.passed, res.describe()
    assert res.summary["mvms"] == 100 and res.summary["rows_programmed"] == 45


def test_banked_kept_chip(tmp_path):
    """A kept chip's cells and write counters in every bank go into the chip's memories before the first
    window (rows of three banks read back through ``read`` and ``out``), and come back after it with the
    one row the window programmed (bank 2, row 1 of tile 1,0) and its counter changed, nothing else."""
    cfg = BANKED
    rng = np.random.default_rng(4)
    chip = KeptChip.fresh(cfg)
    chip.rram[:] = rng.integers(-128, 128, chip.rram.shape)
    chip.write_counts[:] = rng.integers(0, 1000, chip.write_counts.shape)
    before = chip.copy()
    new = rng.integers(-128, 128, cfg.cols)
    picks = [(x, k, r) for x in range(cfg.mesh_x) for k, r in ((0, 0), (1, 5), (2, 7))]
    lines, gaddr = [], 0
    for i, (x, k, r) in enumerate(picks):
        lines += [f"read {x},0 row={r} b={i % cfg.tile_acc_depth} bank={k}",
                  f"out {x},0 b={i % cfg.tile_acc_depth} count=1 gaddr={gaddr + i * cfg.words_a}"]
    w_addr = len(picks) * cfg.words_a
    lines += [f"ldw 1,0 row=1 count=1 gaddr={w_addr} bank=2", "sync 0,0", "sync 1,0", "barrier", "halt"]
    window = SimpleNamespace(program=assemble("\n".join(lines)),
                             gbuf={w_addr: pack_vector(new, cfg.wbits, cfg.flit_width)},
                             reads=[(0, len(picks) * cfg.words_a)])
    out = run_windows(cfg, [window], "icarus", test_dir=tmp_path, chip=chip)
    want = [w for x, k, r in picks for w in pack_vector(before.rram[0, x, k * cfg.rows + r], cfg.acc_bits,
                                                         cfg.flit_width)]
    assert out[0]["error"] is None and out[0]["reads"][0] == want
    before.rram[0, 1, 2 * cfg.rows + 1] = new
    before.write_counts[0, 1, 2 * cfg.rows + 1] += 1
    assert chip == before


@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_banked_net_on_the_rtl(sim):
    """A network that needs the banks (4 blocks of 8x8 on 2 tiles; one tile holds 3 banks), compiled by the
    banked flow (model/compiler/banked.py) and run through the whole chip's AXI ports: the programming
    window and the inference window take the model's cycles and give the reference's outputs (run_net
    holds the RTL to the model, window by window), and a second run on the kept chip writes no row."""
    from rramcim.model.mlp import Layer, Net, reference
    from rramcim.sim.backends.jobs import run_net
    rng = np.random.default_rng(21)
    net = Net([Layer(rng.integers(-128, 128, (8, 16)).astype(np.int8), rng.integers(-999, 999, 16).astype(np.int32),
                     9, 1),
               Layer(rng.integers(-128, 128, (16, 8)).astype(np.int8), rng.integers(-999, 999, 8).astype(np.int32),
                     None, 0)])
    X = rng.integers(-128, 128, (3, 8)).astype(np.int8)
    chip = KeptChip.fresh(BANKED)
    for writes in (True, False):
        Y, rep = run_net(BANKED, net, X, sim, chip=chip)
        assert rep["placement"] == "banked" and rep["cycles"] == rep["model_cycles"]
        assert np.array_equal(Y, reference(net, X))
        assert (rep["rram_row_writes"] > 0) == writes
    assert int(chip.write_counts.astype(bool).reshape(2, -1).sum(axis=1).min()) > 0      # both tiles programmed
