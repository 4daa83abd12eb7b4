"""The FPGA board core (the chip behind the UART bridge) on Icarus and Verilator, driven only over its UART pins.

cocotbext-uart on ``uart_rx``/``uart_tx`` at the core's divisor (``SIM_DIVISOR``
clocks per bit, at most 16), through the host driver with the bridge's
transport: the same code that drives a real board over pyserial. A GEMM with
K > ROWS and N > COLS runs window by window; C must equal numpy's and every
window's cycle count and chip-wide counters, read through the bridge, the
model's. The bridge's protocol (error reply, flags, split frames, reads cut
at TLAST, a break on the line) is checked on its own, and the checker is
shown to fail on a wrong model.
"""

import numpy as np
import pytest

from rramcim.fpga.board_core import SIM_DIVISOR
from rramcim.model.chip import ChipState
from rramcim.model.encoding import COUNTER_NAMES
from rramcim.model.chip_cycle import ChipCycleModel
from rramcim.model.compiler import compile_gemm
from rramcim.model.config import PRESETS
from rramcim.sim.tools.build import build, lint, run_cocotb
from tests.configs import slow

TINY = PRESETS["tiny"]
SIMS = ["icarus", "verilator"]


def _model(plan):
    """Per window: the model's result (cycles, counters) and the words of its reads."""
    state, out = ChipState(plan.cfg), []
    for w in plan.windows:
        assert state.load_program(w.program) is None
        for a, words in w.gbuf.items():
            state.write_gbuf(a, words)
        r = ChipCycleModel(state).run()
        assert r.error is None
        out.append({"cycles": r.cycles, "counters": {n: r.counters[j] for j, n in enumerate(COUNTER_NAMES)},
                    "reads": [[int(v) for v in state.gbuf[a:a + n]] for a, n in w.reads]})
    return out


def check_windows(plan, A, B, got, expected):
    """The checker: C against numpy, every window's cycles, chip-wide counters and reads against the model."""
    assert len(got) == len(expected) == len(plan.windows), "window count"
    C = plan.result([o["reads"] for o in got])
    ref = (A.astype(np.int64) @ B.astype(np.int64)).astype(np.int32)
    assert C.dtype == np.int32 and np.array_equal(C, ref), f"C differs from numpy in {int((C != ref).sum())} places"
    for i, (o, e) in enumerate(zip(got, expected)):
        assert o["error"] is None, f"window {i}: chip error {o['error']}"
        assert o["cycles"] == e["cycles"], f"window {i}: board {o['cycles']} cycles, model {e['cycles']}"
        for name in COUNTER_NAMES:
            assert o["counters"][name] == e["counters"][name], f"window {i}: counter {name}"
        assert o["reads"] == e["reads"], f"window {i}: reads"


# (simulator, config, GEMM shape M, K, N): K > ROWS and N > COLS in every case. Besides ``tiny``, the
# configs of the board presets: ``icebreaker`` (one 2x2 tile, 16-word global buffer, one-entry router FIFOs: many windows) and
# ``ulx3s`` (2x2 tiles of 16x8).
GEMMS = [("icarus", "tiny", (3, 13, 19)), ("verilator", "tiny", (3, 13, 19)),
         ("icarus", "icebreaker", (2, 7, 9)), ("icarus", "ulx3s", (2, 21, 19))]


def _gemm(cfg, M, K, N, seed=5):
    rng = np.random.default_rng(seed)
    A = rng.integers(-128, 128, size=(M, K)).astype(np.int8)
    B = rng.integers(-128, 128, size=(K, N)).astype(np.int8)
    A[0, 0], B[0, 0] = -128, -128
    return A, B, compile_gemm(cfg, A, B)


_RUNS = {}


def _run_board_gemm(sim, name, shape, tmp_path):
    if (sim, name) not in _RUNS:
        cfg = PRESETS[name]
        A, B, plan = _gemm(cfg, *shape)
        assert plan.K > cfg.rows and plan.N > cfg.cols and len(plan.windows) > 1
        windows = [dict(program=[int(v) for v in w.program],
                        gbuf={str(a): [int(v) for v in ws] for a, ws in w.gbuf.items()},
                        reads=[[int(a), int(n)] for a, n in w.reads]) for w in plan.windows]
        b = build("board", cfg, sim)
        res = run_cocotb(b, "rramcim.sim.tb.board", dict(mode="windows", divisor=SIM_DIVISOR, windows=windows),
                         tmp_path, waves_on_failure=False)
        assert res.passed, res.describe()
        _RUNS[sim, name] = (A, B, plan, res.summary)
    return _RUNS[sim, name]


def test_sim_divisor():
    assert SIM_DIVISOR <= 16


@pytest.mark.parametrize("sim, name, shape", GEMMS[:3] + [
    slow(*GEMMS[3], ids="icarus-ulx3s", why="75 s of Icarus; the ulx3s preset is a 2x2 chip like tiny")],
    ids=[f"{s}-{n}" for s, n, _ in GEMMS])
def test_board_gemm_over_uart(sim, name, shape, tmp_path):
    A, B, plan, summary = _run_board_gemm(sim, name, shape, tmp_path)
    check_windows(plan, A, B, summary["windows"], _model(plan))
    assert summary["bytes_sent"] > 1000        # the whole job went over the line


@pytest.mark.parametrize("sim", SIMS)
def test_board_protocol(sim, tmp_path):
    b = build("board", TINY, sim)
    res = run_cocotb(b, "rramcim.sim.tb.board", dict(mode="protocol", divisor=SIM_DIVISOR), tmp_path,
                     waves_on_failure=False)
    assert res.passed, res.describe()
    assert res.summary["checks"] == 9


@pytest.mark.parametrize("bug", ["cycles", "counter", "result"])
def test_checker_catches_a_wrong_model(bug, tmp_path):
    """The checker fails when the model is wrong by one cycle, one counter event or one result word."""
    A, B, plan, summary = _run_board_gemm(*GEMMS[0], tmp_path)
    expected = _model(plan)
    check_windows(plan, A, B, summary["windows"], expected)
    w = len(expected) - 1
    if bug == "cycles":
        expected[w]["cycles"] += 1
        match = "cycles"
    elif bug == "counter":
        expected[0]["counters"]["noc_flits"] += 1
        match = "noc_flits"
    else:
        got = [dict(o, reads=[list(r) for r in o["reads"]]) for o in summary["windows"]]
        got[w]["reads"][0][0] ^= 1              # the board returned one wrong bit: C no longer matches
        summary = dict(summary, windows=got)
        match = "C differs"
    with pytest.raises(AssertionError, match=match):
        check_windows(plan, A, B, summary["windows"], expected)


def test_board_verilog_lints_clean():
    b = build("board", TINY, "icarus")
    clean, out = lint(b.verilog, "rramcim_board")
    assert clean, out[:3000]


def test_cli_fpga_backend_on_a_simulated_board(tmp_path, capsys, monkeypatch):
    """``rramcim gemm --backend fpga`` end to end, the board being the board core on Verilator behind a
    TCP socket (pyserial's ``socket://``): CLI, job, serial link, bridge, chip; C and cycles checked.

    Every wait is on the simulator, not on the clock: the host waits for the board's replies as long
    as the simulated board lives (a closed socket ends the wait at once), and the simulated board for
    its host until the test connects (the CLI or, if it failed before that, the test itself).
    """
    import json
    import socket
    import threading
    import time

    import rramcim.sim.backends.fpga as fpga_backend
    from rramcim.cli import main
    monkeypatch.setattr(fpga_backend, "DEFAULT_SERIAL_TIMEOUT", 3600.0)
    b = build("board", TINY, "verilator")
    port_file = tmp_path / "port"
    result = {}
    sim = threading.Thread(target=lambda: result.update(res=run_cocotb(
        b, "rramcim.sim.tb.board", dict(mode="socket", divisor=SIM_DIVISOR, port_file=str(port_file),
                                        accept_timeout_s=3600),
        tmp_path / "sim", waves_on_failure=False)), daemon=True)
    sim.start()
    while not port_file.exists():
        assert sim.is_alive(), "the simulated board did not start"
        time.sleep(0.1)
    port = int(port_file.read_text())
    A, B, _ = _gemm(TINY, 2, TINY.rows + 3, TINY.cols + 2, seed=9)
    np.save(tmp_path / "a.npy", A)
    np.save(tmp_path / "b.npy", B)
    try:
        rc = main(["gemm", "--a", str(tmp_path / "a.npy"), "--b", str(tmp_path / "b.npy"),
                   "--out", str(tmp_path / "c.npy"), "--report", str(tmp_path / "r.json"), "--config", "tiny",
                   "--backend", "fpga", "--port", f"socket://127.0.0.1:{port}"])
    finally:
        try:                                     # a host that closes at once: the board ends if none came
            socket.create_connection(("127.0.0.1", port)).close()
        except OSError:                          # the board has ended already
            pass
        sim.join()
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert result["res"].passed, result["res"].describe()
    C = np.load(tmp_path / "c.npy")
    assert np.array_equal(C, (A.astype(np.int64) @ B.astype(np.int64)).astype(np.int32))
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["backend"] == "fpga" and report["cycles"] == report["model_cycles"] > 0
    assert result["res"].summary["bytes_sent"] > 500
