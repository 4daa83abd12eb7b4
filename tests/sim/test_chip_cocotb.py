"""The chip core's generated Verilog (rtl/chip.py) on Icarus and Verilator, against the cycle-exact model.

Each test is one simulation of a sequence of runs on one chip (memories and
RRAM persist from run to run, as on silicon): random race-free programs that
use every instruction on every tile, a GEMM with K split over every tile and
partial sums chained between tiles, requantization at every shift 0..31 with
ReLU off and on, and dumps of every accumulator and RRAM row (also after a
soft reset). For every run the bench checks the cycle count, every
performance counter, the error register and the whole global buffer
(sim/benches/chip.py). Host streams have random idle cycles.
"""

import numpy as np
import pytest

from rramcim.model.config import PRESETS
from rramcim.model.isa import assemble
from rramcim.model.macro import FaultMap
from rramcim.model.progen import ksplit_program, random_program, requant_program
from rramcim.sim.tools.build import build, lint, run_cocotb
from rramcim.sim.benches.chip import dump_program
from tests.configs import CHIP_CONFIGS, slow

TEST_MODULE = "rramcim.sim.tb.chip"
TINY, DEFAULT = PRESETS["tiny"], PRESETS["default"]
CASES = [("icarus", "tiny"), ("verilator", "tiny"), ("icarus", "odd3x1"), ("icarus", "a16x4")]
IDS = [f"{s}-{n}" for s, n in CASES]
CASES.append(slow("verilator", "default", ids="verilator-default",
                  why="the default core's Verilator build takes 8 minutes cold; the default chip, this core "
                      "behind its AXI ports, runs on Verilator in test_gemm_cocotb and test_mlp_cocotb"))
# stuck cells of the last tile in the fault test: row 3, cell 0 stuck at 1, row 5, cell 9 stuck at 0
FAULTS = [(3, 0, 1), (5, 9, 0)]


def _run(text_or_words, gbuf=None, soft_reset=False):
    words = assemble(text_or_words) if isinstance(text_or_words, str) else list(text_or_words)
    return dict(program=words, gbuf={str(a): w for a, w in (gbuf or {}).items()}, soft_reset=soft_reset)


def racy_run(cfg, seed):
    """A program that is not race-free: the controller loads, as partial sums into tile (0,0), the
    global-buffer words that the last tile's ``out`` results are writing at the same time, while
    tile (0,0) now and then programs a row and holds the loads up (so a word the DMA has read
    ahead is overwritten before it goes, in the cycle it is read or while it waits), then dumps
    tile (0,0). The model decides every word; the RTL must send the same."""
    rng = np.random.default_rng(seed)
    W, n = cfg.flit_width, min(4, cfg.tile_acc_depth, cfg.tile_ibuf_depth)
    w_addr, x_addr = 0, cfg.rows * cfg.words_w
    res = x_addr + n * cfg.words_x
    dump = res + n * cfg.words_a
    g = {0: [int(v) for v in rng.integers(0, 1 << W, size=dump, dtype=np.uint64)]}
    tx, ty = cfg.mesh_x - 1, cfg.mesh_y - 1
    lines = [f"ldw {tx},{ty} row=0 count={cfg.rows} gaddr={w_addr}",
             f"ldact {tx},{ty} slot=0 count={n} gaddr={x_addr}",
             f"mvm {tx},{ty} a=0 count={n} b=0 acc=0", f"sync {tx},{ty}", "barrier"]
    for _ in range(60):     # results of every slot to every place in the region, loads of it meanwhile
        lines.append(f"out {tx},{ty} b={int(rng.integers(0, n))} count=1 "
                     f"gaddr={res + int(rng.integers(0, n)) * cfg.words_a}")
        if rng.random() < 0.3:  # tile (0,0) busy programming a row: the loads to it wait in the network
            lines.append(f"ldw 0,0 row={int(rng.integers(0, cfg.rows))} count=1 gaddr={w_addr}")
        c = int(rng.integers(1, n + 1))
        off = int(rng.integers(0, (n - c) * cfg.words_a + 1))
        lines.append(f"ldpsum 0,0 slot=0 count={c} gaddr={res + off}")
    lines += [f"out 0,0 b=0 count={n} gaddr={dump}", "sync 0,0", "barrier", "halt"]
    assert (tx, ty) != (0, 0) and dump + n * cfg.words_a <= cfg.gbuf_words
    return _run("\n".join(lines), g)


def program_runs(cfg, seed):
    runs = [racy_run(cfg, seed)]
    for k in range(3):
        text, g = random_program(cfg, seed * 10 + k, steps=80)
        runs.append(_run(text, g))
    text, g, _ = ksplit_program(cfg, seed)
    runs.append(_run(text, g))
    text, g, _ = requant_program(cfg, seed)
    runs.append(_run(text, g))
    dump, _ = dump_program(cfg)
    runs += [_run(dump), _run(dump, soft_reset=True)]
    return runs


def _check(res, n_runs):
    assert res.passed, res.describe()
    assert res.summary["runs"] == n_runs and len(res.summary["cycles"]) == n_runs
    return res.summary


@pytest.mark.parametrize("sim, name", CASES, ids=IDS + ["verilator-default"])
def test_chip(sim, name, tmp_path):
    """Programs on every tile: values, cycles, counters and global buffer equal to the model's."""
    cfg = CHIP_CONFIGS[name]
    b = build("core", cfg, sim)
    runs = program_runs(cfg, seed=1)
    res = run_cocotb(b, TEST_MODULE, dict(runs=runs, seed=7, idle=0.3), tmp_path)
    s = _check(res, len(runs))
    assert s["errors"] == [None] * len(runs)
    assert min(s["cycles"]) > 100


def error_runs(cfg):
    """Each error the controller finds at fetch, then a run that must work again."""
    assert cfg.name == "tiny"            # the programs name tiny's limits
    g = {0: [0x0102_0304] * (cfg.words_x * 4)}
    texts = [
        ".word 0x3f\nhalt",                                         # 1: not an opcode
        "nop\n.word 0x10000000001\nhalt",                           # 1: halt with a nonzero unused field
        "mvm 2,0 a=0 b=0 count=1\nhalt",                            # 2: tile outside the mesh
        "nop\npsum 0,0 b=0 count=1 dx=0 dy=5 d=0\nhalt",            # 2: destination outside
        "psum 1,1 b=0 count=1 dx=1 dy=1 d=0\nhalt",                 # 2: psum to itself
        "ldact 0,1 slot=0 count=2 gaddr=0\nldact 0,0 slot=0 count=2 gaddr=1021\nhalt",   # 3
        "outq 0,0 b=0 count=1 gaddr=1023 shift=0\nhalt",            # 3
        "mvm 0,0 a=0 b=0 count=0\nhalt",                            # 4: count 0
        "mvm 0,0 a=7 b=0 count=2\nhalt",                            # 4: input slots past the end
        "ldw 0,0 row=8 count=1 gaddr=0\nhalt",                      # 4: row past the end
        "read 0,0 row=0 b=8\nhalt",                                 # 4: accumulator past the end
        "ldact 1,1 slot=0 count=4 gaddr=0\nmvm 1,1 a=0 b=0 count=4\nbarrier\n" + "nop\n" * 200,  # 5: no halt
    ]
    runs = [_run(t, g) for t in texts]
    # an error while a tile is still computing and sending: a start before the chip is quiet is ignored
    runs.insert(1, dict(_run("ldact 1,1 slot=0 count=4 gaddr=0\nmvm 1,1 a=0 b=0 count=4\n"
                             "out 1,1 b=0 count=4 gaddr=100\n.word 0x3f", g), early_start=True))
    runs[-1]["program"] += [0] * (cfg.imem_depth - len(runs[-1]["program"]))  # nops up to the end
    runs.append(_run([0] * (cfg.imem_depth + 3)))                  # 5: the host loads past the end
    text, g2, _ = ksplit_program(cfg, 2)
    runs.append(_run(text, g2))                                      # works after errors
    return runs


@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_chip_errors(sim, tmp_path):
    """Every fetch-time error: right code, address and cycle on RTL and model, and the chip runs again after."""
    cfg = TINY
    b = build("core", cfg, sim)
    runs = error_runs(cfg)
    res = run_cocotb(b, TEST_MODULE, dict(runs=runs, seed=3, idle=0.2), tmp_path)
    s = _check(res, len(runs))
    assert s["errors"] == [1, 1, 1, 2, 2, 2, 3, 3, 4, 4, 4, 4, 5, 5, None]
    assert s["early_starts_refused"] == 1


@pytest.mark.parametrize("sim", ["icarus", slow("verilator", why="a second Verilator build of the tiny core, "
                                                                   "with its stuck cells; Icarus runs it")])
def test_chip_rram_verify_failure(sim, tmp_path):
    """A row that fails write-verify on the last tile stops the program with code 6, the ldw's
    address, the tile and the row, at the model's cycle; after a soft reset the RRAM still holds
    what was written (dump of every row), and programs run again."""
    cfg = TINY
    faults = FaultMap.from_list(cfg, FAULTS)
    b = build("core", cfg, sim, faults)
    x, y = cfg.mesh_x - 1, cfg.mesh_y - 1
    W = cfg.flit_width
    ok = [0x11223344 & ((1 << W) - 1)] * cfg.words_w          # a row that needs cell 0 = 0
    g = {0: ok * 4}
    runs = [
        _run(f"ldw {x},{y} row=0 count=2 gaddr=0\nsync {x},{y}\nbarrier\nhalt", g),
        _run(f"nop\nldw 0,0 row=0 count=1 gaddr=0\nldw {x},{y} row=3 count=1 gaddr=0\n" + "nop\n" * 80 + "halt", g),
        _run(f"ldw {x},{y} row=5 count=1 gaddr=0\nsync {x},{y}\nbarrier\nhalt", {0: [(1 << W) - 1] * cfg.words_w}),
        _run(dump_program(cfg)[0], soft_reset=True),
    ]
    runs.append(runs[0])                        # rows without stuck cells still program
    res = run_cocotb(b, TEST_MODULE, dict(runs=runs, seed=5, idle=0.3, faults=FAULTS), tmp_path)
    s = _check(res, len(runs))
    assert s["errors"] == [None, 6, 6, None, None]


def test_chip_checker_catches_a_late_model(tmp_path):
    """A model that predicts one cycle too many must make the bench fail."""
    b = build("core", TINY, "icarus")
    text, g = random_program(TINY, 0, steps=20)
    res = run_cocotb(b, TEST_MODULE, dict(runs=[_run(text, g)], model_bug="late"), tmp_path,
                     waves_on_failure=False)
    assert not res.passed
    assert "the RTL stopped at cycle" in res.failure and "the model at" in res.failure


@pytest.mark.parametrize("block, name", [("core", "tiny"), ("chip", "tiny"),
                                         slow("chip", "default", why="3 minutes; the same code linted at tiny")])
def test_chip_lint_clean(block, name, tmp_path):
    """The core and the whole chip (AXI top) lint clean with the project's waivers."""
    from rramcim.rtl.verilog import block_verilog
    top, text = block_verilog(block, PRESETS[name])
    v = tmp_path / f"{block}.v"
    v.write_text(text)
    clean, out = lint(v, top)
    assert clean, out[:3000]
