"""MLPs on the whole chip's Verilog through its AXI ports: outputs equal to the contract's reference,
every window's cycles equal to the model's (sim/backends/jobs.py checks them)."""

import numpy as np
import pytest

from rramcim.model.config import PRESETS
from rramcim.sim.backends.jobs import run_net
from tests.configs import slow
from tests.test_run import _plain_reference, random_net

CASES = [("icarus", "tiny"), ("verilator", "tiny"), ("verilator", "default")]


@pytest.mark.parametrize("sim, name", CASES, ids=[f"{s}-{n}" for s, n in CASES])
def test_mlp_chip(sim, name):
    cfg = PRESETS[name]
    rng = np.random.default_rng(8)
    R, C = cfg.rows, cfg.cols
    # a hidden layer larger than the whole chip, sizes that are not multiples of rows/cols, shift 0 and 31
    sizes = [R + 3, 2 * cfg.tiles * C + 1, C - 1, 3] if name == "tiny" else [R + 5, C + 7, 10]
    shifts = [13, 0, 31][:len(sizes) - 2]
    net = random_net(rng, sizes, shifts)
    X = rng.integers(-128, 128, size=(9, sizes[0])).astype(np.int8)
    Y, rep = run_net(cfg, net, X, sim)
    assert np.array_equal(Y, _plain_reference(net, X))
    assert rep["cycles"] == sum(layer["cycles"] for layer in rep["layers"]) > 0


SWEEP = [("verilator", "tiny", [23, 40, 6], 16), ("icarus", "tiny", [30, 17, 9, 5], 1),
         ("icarus", "tiny", [12, 10], 7)]
IDS = [f"{s}-{n}-{'-'.join(map(str, z))}-b{b}" for s, n, z, b in SWEEP]
SWEEP.append(slow("verilator", "default", [200, 97, 33, 10], 64, ids="verilator-default-200-97-33-10-b64",
                  why="90 s; test_mlp_chip runs the default chip on Verilator"))
IDS.append("verilator-default-200-97-33-10-b64")


@pytest.mark.parametrize("sim, name, sizes, batch", SWEEP, ids=IDS)
def test_random_network_sweep(sim, name, sizes, batch):
    """Random networks from the contract (2 to 4 layers, odd sizes, random shifts and ReLUs, batch 1 to 64)."""
    cfg = PRESETS[name]
    rng = np.random.default_rng(sum(sizes) + batch)
    net = random_net(rng, sizes)
    X = rng.integers(-128, 128, size=(batch, sizes[0])).astype(np.int8)
    Y, rep = run_net(cfg, net, X, sim)
    assert np.array_equal(Y, _plain_reference(net, X))
    assert rep["backend"] == sim and rep["cycles"] > 0
