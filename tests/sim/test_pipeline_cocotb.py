"""Resident networks as pipelines of standing sequences on the whole chip's Verilog, through its AXI ports.

Each network is compiled by :func:`~rramcim.model.compiler.net.compile_net` (K-split chains that join
partial sums, hidden layers sent tile to tile, a first layer split over N and K fed on several
channels, several inference windows, a hidden layer's vectors fanned out to the two N-blocks of the
next, a network in three copies), run on the cycle-exact model and on the RTL with pause
generators on every host stream: every window's cycles, every chip-wide and tile counter (the
sequences' ``feed_stall``, ``credit_stall`` and ``rx_overlap`` among them) and every word read
must be the model's, and the outputs the int8 reference's.
"""

import numpy as np
import pytest

from rramcim.model.compiler.net import compile_net
from rramcim.model.config import PRESETS
from rramcim.model.mlp import Layer, Net, reference
from rramcim.sim.backends.model import run_windows as run_model
from rramcim.sim.backends.rtl import run_windows as run_rtl
from tests.configs import slow


def _net(rng, sizes, shifts):
    layers = []
    for i in range(len(sizes) - 1):
        w = rng.integers(-128, 128, size=(sizes[i], sizes[i + 1])).astype(np.int8)
        b = rng.integers(-4000, 4000, size=sizes[i + 1]).astype(np.int32)
        last = i == len(sizes) - 2
        layers.append(Layer(w, b, None if last else shifts[i], 0 if last else int(rng.integers(0, 2))))
    return Net(layers)


def _check(cfg, sim, nets, seed):
    rng = np.random.default_rng(seed)
    plans, windows = [], []
    for sizes, shifts, batch, chunk, *copies in nets:
        net = _net(rng, sizes, shifts)
        X = rng.integers(-128, 128, size=(batch, sizes[0])).astype(np.int8)
        plan = compile_net(cfg, net, X, chunk=chunk, replicas=copies[0] if copies else None)
        plans.append((plan, net, X))
        windows += plan.windows
    expected = run_model(cfg, windows)          # one chip for all the networks, as the RTL's
    got = run_rtl(cfg, windows, sim, pause=0.3, seed=seed)
    assert len(got) == len(expected) == len(windows)
    for w, (o, e) in enumerate(zip(got, expected)):
        assert o["error"] is None and e["error"] is None, w
        assert o["cycles"] == e["cycles"], f"window {w}: RTL {o['cycles']} cycles, model {e['cycles']}"
        diff = {k: (o["counters"].get(k), v) for k, v in e["counters"].items() if o["counters"].get(k) != v}
        assert not diff, f"window {w}: counters (RTL, model) differ: {diff}"
        assert o["reads"] == e["reads"], w
    k = 0
    for plan, net, X in plans:
        n = len(plan.windows)
        Y = plan.result([o["reads"] for o in got[k:k + n]])
        assert np.array_equal(Y, reference(net, X))
        k += n
    # the tiles received while their macros computed
    return sum(v for e in expected for name, v in e["counters"].items() if name.startswith("rx_overlap"))


def _nets(cfg):
    R, C = cfg.rows, cfg.cols
    return [([2 * R - 3, C, C - 2, 5], [9, 0], 11, None),          # a K-split chain, then a chain of layers
            ([R, 2 * C - 1], [], 7, 3),                           # one layer split over N: two feed channels
            ([R + 1, C - 1, 3], [31], 9, 4),                       # partial blocks, several windows, shift 31
            ([R - 1, C - 2, 2 * C - 3], [6], 13, None),            # fan-out: each hidden vector to two tiles
            ([R - 2, C - 1], [], 10, 7, 3)]                        # three copies, shares of 3, 3, 1 (padded)


CASES = [("icarus", "tiny"), ("verilator", "tiny"), ("verilator", "default"),
         slow("icarus", "default", ids="icarus-default", why="Icarus on the default chip: Verilator runs it")]


@pytest.mark.parametrize("sim, name", CASES, ids=["icarus-tiny", "verilator-tiny", "verilator-default",
                                                  "icarus-default"])
def test_pipelines_on_the_chip(sim, name):
    cfg = PRESETS[name]
    # every network on both chips (Verilator runs the default chip's five in about 30 s once built)
    assert _check(cfg, sim, _nets(cfg), seed=21) > 0
