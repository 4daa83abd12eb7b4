"""The whole mesh on Amaranth's simulator (no build), against the cycle-exact model.

The same bench runs on the generated Verilog under cocotb in tests/sim.
"""

import pytest

from rramcim.rtl.noc.mesh import Mesh
from rramcim.sim.benches.amaranth_io import run_amaranth
from rramcim.sim.benches.io import CheckError
from rramcim.sim.benches.noc import MeshBench
from tests.configs import MESH_CONFIGS


@pytest.mark.parametrize("stall", [0.0, 0.4], ids=["nostall", "stall"])
@pytest.mark.parametrize("name", ["2x2-w32", "3x4-w64"])
def test_mesh_amaranth(name, stall):
    cfg = MESH_CONFIGS[name]
    bench = MeshBench(cfg, seed=23, packets_per_node=30, stall=stall)
    summary = run_amaranth(Mesh(cfg), bench.run)
    assert summary["packets"] == 30 * (cfg.mesh_x * cfg.mesh_y + 1)       # tiles and the controller
    assert summary["cycles"] == bench.cycles


def test_mesh_checker_catches_a_late_model():
    cfg = MESH_CONFIGS["2x2-w32"]
    bench = MeshBench(cfg, seed=2, packets_per_node=20, model_bug="late_by_one")
    with pytest.raises(CheckError, match="model"):
        run_amaranth(Mesh(cfg), bench.run)
