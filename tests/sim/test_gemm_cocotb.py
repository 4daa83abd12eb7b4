"""GEMMs on the whole chip's Verilog, driven only through its AXI ports, against numpy and the model.

Every GEMM is compiled (model/compiler/), run on the cycle-exact model and
on the RTL (Icarus or Verilator) by the host driver over AXI4-Lite and
AXI4-Stream with cocotbext-axi bus models, pause generators on every
channel. For every GEMM: C equal to numpy's A @ B (int32), and the cycle
count read over AXI-Lite equal to the model's for every window (start to
done), with every chip-wide counter.
"""

import numpy as np
import pytest

from rramcim.model.chip import ChipState
from rramcim.model.encoding import COUNTER_NAMES
from rramcim.model.chip_cycle import ChipCycleModel
from rramcim.model.compiler import compile_gemm
from rramcim.model.config import PRESETS
from rramcim.sim.backends.rtl import run_windows
from tests.configs import slow

TINY, DEFAULT = PRESETS["tiny"], PRESETS["default"]


def shapes(cfg, full: bool):
    """(M, K, N) of awkward GEMMs for ``cfg``."""
    R, C, T = cfg.rows, cfg.cols, cfg.tiles
    out = [(1, 1, 1), (3, R + 3, C - 1), (1, 2 * R + 1, 2 * C + 3)]
    if full:
        out += [(5, 3 * R - 2, 3 * C + 1),                     # B larger than the whole chip (T*R*C weights)
                (64, R - 3, C + 2),                           # M >= 64
                (70, 2 * R, T * C)]
    assert any(k * n > T * R * C for _, k, n in out) or not full
    return out


def _model_windows(cfg, plan, state):
    res = []
    for w in plan.windows:
        assert state.load_program(w.program) is None
        for a, words in w.gbuf.items():
            state.write_gbuf(a, words)
        r = ChipCycleModel(state).run()
        assert r.error is None
        res.append((r, [state.gbuf[a:a + n] for a, n in w.reads]))
    return res


def _run(cfg, sim, cases, seed):
    rng = np.random.default_rng(seed)
    plans, expected = [], []
    state = ChipState(cfg)                  # the model chip, persisting across GEMMs like the RTL one
    for M, K, N in cases:
        A = rng.integers(-128, 128, size=(M, K), dtype=np.int64).astype(np.int8)
        B = rng.integers(-128, 128, size=(K, N), dtype=np.int64).astype(np.int8)
        A[0, 0], B[0, 0] = -128, -128           # the extremes
        plan = compile_gemm(cfg, A, B)
        plans.append((plan, A, B))
        expected.append(_model_windows(cfg, plan, state))
    windows = [w for plan, _, _ in plans for w in plan.windows]
    out = run_windows(cfg, windows, sim, pause=0.3, seed=seed)
    assert len(out) == len(windows)
    k = 0
    for (plan, A, B), exp in zip(plans, expected):
        got = out[k:k + len(plan.windows)]
        k += len(plan.windows)
        C = plan.result([o["reads"] for o in got])
        assert C.dtype == np.int32
        assert np.array_equal(C, (A.astype(np.int64) @ B.astype(np.int64)).astype(np.int32)), (plan.M, plan.K, plan.N)
        for i, (o, (r, reads)) in enumerate(zip(got, exp)):
            where = f"GEMM {plan.M}x{plan.K}x{plan.N} window {i}"
            assert o["error"] is None, where
            assert o["cycles"] == r.cycles, f"{where}: RTL {o['cycles']} cycles, model {r.cycles}"
            for j, name in enumerate(COUNTER_NAMES):
                assert o["counters"][name] == r.counters[j], f"{where}: counter {name}"
            assert o["reads"] == reads, where
    return sum(len(p.windows) for p, _, _ in plans)


CASES = [("icarus", "tiny", True), ("verilator", "tiny", True), ("verilator", "default", False),
         slow("verilator", "default", True, ids="verilator-default-full",
              why="4 minutes: every awkward shape on the default chip's layer-by-layer flow; the tiny chip runs "
                  "them on both simulators, the default one runs one here and the MLP tests' layers"),
         slow("icarus", "default", False, ids="icarus-default",
              why="Icarus on the default chip; Verilator runs it, Icarus the tiny one")]


@pytest.mark.parametrize("sim, name, full", CASES, ids=["icarus-tiny", "verilator-tiny", "verilator-default",
                                                        "verilator-default-full", "icarus-default"])
def test_gemm_chip_axi(sim, name, full):
    cfg = PRESETS[name]
    cases = shapes(cfg, full) if full else [(2, cfg.rows + 5, cfg.cols - 3)]
    n = _run(cfg, sim, cases, seed=11)
    assert n >= len(cases)


@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_axi_interface_checks(sim, tmp_path):
    """ID and config check, framing errors, empty reads, error registers and irq, soft reset, counters."""
    from rramcim.sim.tools.build import build, run_cocotb
    b = build("chip", TINY, sim)
    res = run_cocotb(b, "rramcim.sim.tb.top_checks", dict(pause=0.3, seed=2), tmp_path)
    assert res.passed, res.describe()
    assert res.summary["checks"] == 9
