"""The generated Verilog of the macro on Icarus and Verilator, against the golden model.

Each case builds (once, cached by config and source hash) and runs the cocotb
bench of rramcim.sim.tb.macro: random row writes and MVMs (extremes
included) with random idle and backpressure on every stream, two phases
separated by a reset (RRAM must survive it), stuck-at cells from a fault map,
and every value, response and cycle compared with the model.
"""

import numpy as np
import pytest

from rramcim.model.macro import FaultMap
from rramcim.sim.tools.build import build, lint, run_cocotb
from tests.configs import COCOTB_CONFIGS, slow

TEST_MODULE = "rramcim.sim.tb.macro"
CASES = [(sim, name) for sim in ("icarus", "verilator") for name in COCOTB_CONFIGS
         if (sim, name) != ("icarus", "default")]
IDS = [f"{s}-{n}" for s, n in CASES]
CASES.append(slow("icarus", "default", ids="icarus-default",
                  why="6 minutes of Icarus on the 32x32 macro; Verilator runs it"))
IDS.append("icarus-default")


def faults_for(cfg):
    return FaultMap.random(cfg, 4, np.random.default_rng(cfg.rows * 31 + cfg.cols))


@pytest.mark.parametrize("sim, name", CASES, ids=IDS)
def test_macro(sim, name, tmp_path):
    cfg = COCOTB_CONFIGS[name]
    b = build("macro", cfg, sim, faults_for(cfg))
    # the 32x32 macro's cocotb bench costs 5x a small one's per MVM (suite time): 200 a phase there
    n_mvm = 200 if cfg.rows * cfg.cols >= 1024 else 500
    res = run_cocotb(b, TEST_MODULE, dict(seed=101, n_mvm=n_mvm, stall=0.3, phases=2), tmp_path)
    assert res.passed, res.describe()
    s = res.summary
    assert s["mvms"] == 2 * n_mvm and s["rows_programmed"] > cfg.rows
    assert s["verify_failures"] > 0


@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_macro_back_to_back(sim, tmp_path):
    """No stalls: a stream of MVMs at the initiation interval, every cycle checked."""
    cfg = COCOTB_CONFIGS["p2w4"]
    b = build("macro", cfg, sim, faults_for(cfg))
    res = run_cocotb(b, TEST_MODULE, dict(seed=7, n_mvm=300, stall=0.0, phases=1), tmp_path)
    assert res.passed, res.describe()
    s = res.summary
    # every MVM after the first starts `steps` cycles after the previous one
    window = s["last_out"][0] - s["first_accept"][0] + 1
    assert window == 300 * cfg.steps + 3     # 299 intervals, then the last one's S+2 latency, inclusive


def test_checker_catches_injected_model_bug(tmp_path):
    """A model with a flipped sign bit must make the bench fail."""
    cfg = COCOTB_CONFIGS["tiny"]
    b = build("macro", cfg, "icarus", faults_for(cfg))
    res = run_cocotb(b, TEST_MODULE, dict(seed=3, n_mvm=20, stall=0.3, phases=1, model_bug="sign_flip"),
                     tmp_path, waves_on_failure=False)
    assert not res.passed
    assert "value mismatch" in res.failure


@pytest.mark.parametrize("name", list(COCOTB_CONFIGS))
def test_lint_clean(name, tmp_path):
    from rramcim.rtl.verilog import macro_verilog
    cfg = COCOTB_CONFIGS[name]
    v = tmp_path / "macro.v"
    v.write_text(macro_verilog(cfg, faults_for(cfg)))
    clean, out = lint(v, "rramcim_macro")
    assert clean, out
