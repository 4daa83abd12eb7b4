"""The golden model of the macro, checked against numpy and against timings worked out by hand."""

import numpy as np
import pytest

from rramcim.model.config import PRESETS, Config
from rramcim.model.macro import (FaultMap, MacroCycleModel, MacroState, StallPattern, cells_to_weights,
                                 mvm_bitplane, mvm_latency, mvm_interval, program_latency, weights_to_cells, wrap_signed)

TINY = PRESETS["tiny"]


def test_cells_layout_by_hand():
    # weight bit b of column c sits in physical column c*wbits + b, LSB first
    cells = weights_to_cells(np.array([5, -1, -8]), 4)
    assert cells.tolist() == [1, 0, 1, 0, 1, 1, 1, 1, 0, 0, 0, 1]
    assert cells_to_weights(cells, 4).tolist() == [5, -1, -8]
    with pytest.raises(ValueError):
        weights_to_cells(np.array([8]), 4)


@pytest.mark.parametrize("wbits, xbits, par", [(8, 8, 1), (8, 8, 2), (8, 8, 4), (8, 8, 8),
                                               (4, 8, 2), (5, 6, 3), (2, 2, 1), (16, 16, 4), (3, 9, 9)])
def test_bitplane_mvm_equals_matmul(wbits, xbits, par):
    cfg = Config(rows=13, cols=7, wbits=wbits, xbits=xbits, par=par)
    rng = np.random.default_rng(wbits * 100 + xbits * 10 + par)
    wl, wh = -(1 << (wbits - 1)), (1 << (wbits - 1)) - 1
    xl, xh = -(1 << (xbits - 1)), (1 << (xbits - 1)) - 1
    for trial in range(30):
        w = rng.integers(wl, wh + 1, size=(13, 7))
        x = rng.integers(xl, xh + 1, size=13)
        if trial == 0:
            w[:], x[:] = wl, xl          # most negative everywhere: the largest product
        if trial == 1:
            w[:], x[:] = wh, xl
        y = mvm_bitplane(x, weights_to_cells(w, wbits), cfg)
        assert np.array_equal(y, wrap_signed(x.astype(np.int64) @ w.astype(np.int64), 32))


def test_bitplane_wraps_like_int_acc_bits():
    cfg = Config(rows=64, cols=2, wbits=16, xbits=16, acc_bits=16, par=2)
    x = np.full(64, -32768)
    w = np.full((64, 2), -32768)
    exact = int(x[0]) * int(w[0, 0]) * 64        # 2**36, which is 0 modulo 2**16
    y = mvm_bitplane(x, weights_to_cells(w, 16), cfg)
    assert y.tolist() == [exact % (1 << 16)] * 2 == [0, 0]
    w[0, 0] = 3
    y = mvm_bitplane(x, weights_to_cells(w, 16), cfg)
    expect = (-32768 * 3 + 63 * 2**30) % (1 << 16)
    assert y[0] == (expect - (1 << 16) if expect >= 1 << 15 else expect)


def test_program_row_with_stuck_cells():
    cfg = TINY
    faults = FaultMap.from_list(cfg, [(2, 9, 1), (3, 0, 0)])    # row 2 col 1 bit 1 stuck at 1
    st = MacroState(cfg, faults)
    w = np.zeros(cfg.cols, dtype=np.int64)
    r = st.program_row(2, w)
    assert (r.attempts, r.ok, r.fail_mask) == (cfg.rram_max_attempts, False, 1 << 9)
    assert st.write_counts[2] == cfg.rram_max_attempts and st.verify_failures == 1
    assert st.effective_weights()[2].tolist() == [0, 2, 0, 0, 0, 0, 0, 0]
    w[1] = 2                                                    # the stuck value is what we want
    r = st.program_row(2, w)
    assert (r.attempts, r.ok) == (1, True)
    r = st.program_row(3, np.full(cfg.cols, -1))                # bit 0 of col 0 stuck at 0
    assert not r.ok and st.effective_weights()[3, 0] == -2
    assert st.write_counts.tolist() == [0, 0, 5, 4, 0, 0, 0, 0]


def test_power_on_zero():
    st = MacroState(TINY)
    assert not st.cells.any() and not st.write_counts.any()
    assert not st.mvm(np.full(8, -128)).any()


def _run(cfg, progs, xs, **stalls):
    st = MacroState(cfg)
    m = MacroCycleModel(cfg, st, **stalls)
    return m.run(progs, xs), st


def test_timing_by_hand():
    cfg = TINY      # S = 8, write 4, verify 2
    assert (mvm_latency(cfg), mvm_interval(cfg)) == (10, 8)
    assert program_latency(cfg, 1) == 7 and program_latency(cfg, 4) == 25
    x = np.arange(8) - 4
    (mvms, progs, end), _ = _run(cfg, [], [x, x, x])
    assert [(e.accept_cycle, e.out_cycle) for e in mvms] == [(0, 10), (8, 18), (16, 26)]
    # a row write first: response at 7, taken at once, engine idle at 8
    (mvms, progs, end), st = _run(cfg, [(0, np.full(8, 3))], [x])
    assert (progs[0].accept_cycle, progs[0].resp_cycle) == (0, 7)
    assert (mvms[0].accept_cycle, mvms[0].out_cycle) == (8, 18)
    assert mvms[0].y.tolist() == [3 * (-4)] * 8


def test_programming_has_priority_and_waits_for_response():
    cfg = TINY
    x = np.ones(8, dtype=np.int64)
    resp_stall = StallPattern([True] * 20 + [False])          # response not taken until cycle 20
    (mvms, progs, end), _ = _run(cfg, [(1, np.ones(8))], [x], resp_stall=resp_stall)
    assert (progs[0].resp_cycle, mvms[0].accept_cycle) == (20, 21)
    assert mvms[0].y.tolist() == [1] * 8


def test_output_fifo_bounds_inflight_mvms():
    cfg = TINY.replace(par=8)    # S = 1: one vector per cycle, latency 3
    y_stall = StallPattern([True] * 50 + [False] * 1000)
    (mvms, _, _), _ = _run(cfg, [], [np.zeros(8, np.int64)] * 6, y_stall=y_stall)
    acc = [e.accept_cycle for e in mvms]
    # four slots: four vectors taken back to back, the fifth waits for the first result to leave
    assert acc[:4] == [0, 1, 2, 3] and acc[4] == 51
    assert [e.out_cycle for e in mvms][:4] == [50, 51, 52, 53]


def test_stall_pattern_sources_hold_valid():
    # an input stall pattern only delays offering; an offered item is held until taken
    cfg = TINY
    x_stall = StallPattern([False, True, True, True])
    (mvms, _, _), _ = _run(cfg, [], [np.zeros(8, np.int64)] * 3, x_stall=x_stall)
    assert [e.accept_cycle for e in mvms] == [0, 8, 16]


def test_fast_core_equals_the_bit_plane_core():
    """The chip model's fast macro (wrap(x @ W), weights kept between row writes) fires the same
    events with the same results as the bit-plane macro, row writes and stuck cells included."""
    from rramcim.model.macro import MacroCore
    cfg = Config(rows=9, cols=5, wbits=8, xbits=8, par=2, acc_bits=16)
    faults = FaultMap.from_list(cfg, [(1, 3, 1), (4, 17, 0)])
    rng = np.random.default_rng(7)
    states = [MacroState(cfg, faults), MacroState(cfg, faults)]
    cores = [MacroCore(cfg, states[0]), MacroCore(cfg, states[1], fast=True)]
    ys = [[], []]
    for t in range(3000):
        p_item = x_item = None
        u = rng.random()
        if u < 0.05:
            p_item = (int(rng.integers(cfg.rows)), rng.integers(-128, 128, size=cfg.cols))
        elif u < 0.8:
            x_item = rng.integers(-128, 128, size=cfg.rows)
        y_ready = bool(rng.random() < 0.7)
        for k in range(2):
            pf, xf, mv, pe = cores[k].step(t, p_item, x_item, y_ready, True)
            if mv is not None:
                ys[k].append((mv.index, mv.out_cycle, mv.y.tolist()))
            if k == 0:
                fired = (pf, xf, pe.resp_cycle if pe else None)
            else:
                assert fired == (pf, xf, pe.resp_cycle if pe else None)
    assert len(ys[0]) > 500
    assert ys[0] == ys[1]
    assert np.array_equal(states[0].cells, states[1].cells)
