"""The generated Verilog of the mesh network on Icarus and Verilator, against the cycle-exact model.

Every node sends random packets (1 to 8 flits, random destinations, data and
types) with random idle on both of its transmit streams and random
backpressure on both receive streams, drawn in advance from a seed and given
to the model too. The bench checks that every packet arrives exactly once,
intact, in order per source-destination pair, with its header and tail
delivered at the cycles the model predicts.
"""

import pytest

from rramcim.sim.tools.build import build, lint, run_cocotb
from tests.configs import MESH_CONFIGS, slow

TEST_MODULE = "rramcim.sim.tb.noc"
# Icarus on every mesh; Verilator on the 2x2 mesh and the one-entry FIFOs (the other three, 1-3 minutes of
# Verilator build each cold, with RRAMCIM_SLOW=1)
VERILATOR_SLOW = ("2x2-w64", "3x4-w32", "3x4-w64")
CASES = [(sim, name) for sim in ("icarus", "verilator") for name in MESH_CONFIGS
         if not (sim == "verilator" and name in VERILATOR_SLOW)]
IDS = [f"{s}-{n}" for s, n in CASES]
CASES += [slow("verilator", n, ids=f"verilator-{n}", why="a Verilator build of 2-3 minutes; Icarus runs it")
          for n in VERILATOR_SLOW]
IDS += [f"verilator-{n}" for n in VERILATOR_SLOW]
# thousands of packets per mesh
PACKETS_PER_NODE = {"2x2": 500, "3x4": 200}


@pytest.mark.parametrize("sim, name", CASES, ids=IDS)
def test_mesh(sim, name, tmp_path):
    cfg = MESH_CONFIGS[name]
    b = build("mesh", cfg, sim)
    ppn = PACKETS_PER_NODE[name.split("-")[0]]
    res = run_cocotb(b, TEST_MODULE, dict(seed=17, packets_per_node=ppn, stall=0.3), tmp_path)
    assert res.passed, res.describe()
    assert res.summary["packets"] == ppn * (cfg.mesh_x * cfg.mesh_y + 1) >= 2000   # tiles and the controller
    assert res.summary["cycles"] == res.summary["model_cycles"]


@pytest.mark.parametrize("sim, name", [("icarus", "3x4-w64"), ("verilator", "2x2-w32")])
def test_mesh_saturated(sim, name, tmp_path):
    """No idle and no backpressure: every node injects as fast as the mesh takes flits."""
    cfg = MESH_CONFIGS[name]
    b = build("mesh", cfg, sim)
    res = run_cocotb(b, TEST_MODULE, dict(seed=5, packets_per_node=100, stall=0.0), tmp_path)
    assert res.passed, res.describe()


def test_mesh_checker_catches_a_late_model(tmp_path):
    """A model that predicts some deliveries a cycle late must make the bench fail."""
    cfg = MESH_CONFIGS["2x2-w32"]
    b = build("mesh", cfg, "icarus")
    res = run_cocotb(b, TEST_MODULE, dict(seed=3, packets_per_node=20, stall=0.3, model_bug="late_by_one"),
                     tmp_path, waves_on_failure=False)
    assert not res.passed
    assert "model" in res.failure and "delivered" in res.failure


@pytest.mark.parametrize("name", ["2x2-w32", "3x4-w64"])
def test_mesh_lint_clean(name, tmp_path):
    from rramcim.rtl.verilog import mesh_verilog, router_verilog
    cfg = MESH_CONFIGS[name]
    for top, text in (("rramcim_mesh", mesh_verilog(cfg)), ("rramcim_router", router_verilog(cfg))):
        v = tmp_path / f"{top}.v"
        v.write_text(text)
        clean, out = lint(v, top)
        assert clean, out
