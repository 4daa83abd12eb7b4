"""The energy model (model/energy.py): counts by hand for a small GEMM against the cycle-exact model's
counters and the energy model's events, energies by hand, the technology table, the baseline's formulas,
and checks that a wrong count or a wrong formula is caught."""

import math

import numpy as np
import pytest

from rramcim.model import energy as E
from rramcim.model.compiler import compile_gemm
from rramcim.model.config import PRESETS
from rramcim.sim.backends.model import run_on_model

TINY = PRESETS["tiny"]       # 2x2 tiles of 8x8, int8, 32-bit flits


@pytest.fixture(scope="module")
def small_gemm():
    """C[3x8] = A[3x8] @ B[8x8] on tiny: one block, replicated on tiles (0,0) and (1,0) (rows 0-1 and 2)."""
    rng = np.random.default_rng(1)
    A = rng.integers(-128, 128, (3, 8))
    B = rng.integers(-128, 128, (8, 8))
    plan = compile_gemm(TINY, A, B)
    C, rep = run_on_model(plan)
    assert np.array_equal(C, A @ B)
    return plan, rep


def hand_counters():
    """The counters of the small GEMM worked out from its two windows (program in the docstring of
    ``small_gemm``), with tiny's sizes: words_w = 8*8/32 = 2, words_x = 2, words_a = 8*32/32 = 8,
    cmd_words = 2; every packet is a header, an argument word and its words (CMD: header + 2 words,
    ACK: a header)."""
    rows_programmed = 2 * 8                                  # 8 rows on each of the 2 tiles, 1 pulse each
    ldw_flits = rows_programmed * (2 + 2)
    act_flits = 3 * (2 + 2)                                  # rows 0-1 to tile (0,0), row 2 to (1,0)
    cmd_flits = (2 + 2 + 4) * (1 + 2)                        # mvm x2, out x2, sync x4 (2 per window)
    result_flits = 3 * (2 + 8)
    ack_flits = 4
    # tile (1,0) is one hop from the controller's router (0,0); tile (0,0) none
    hops = 8 * 4 + 1 * 4 + (1 + 1 + 2) * 3 + 1 * 10 + 2 * 1
    return {
        "instructions": 12 + 10,                             # window 0: 8 ldw, 2 sync, barrier, halt; window 1: 10
        "noc_flits": ldw_flits + act_flits + cmd_flits + result_flits + ack_flits,
        "noc_flit_hops": hops,
        "gbuf_read_bits": (rows_programmed * 2 + 3 * 2) * 32,
        "gbuf_write_bits": 3 * 8 * 32,
        "macs": 3 * 8 * 8, "mvms": 3,
        "ibuf_write_bits": 3 * 8 * 8, "ibuf_read_bits": 3 * 8 * 8,
        "acc_read_bits": 3 * 8 * 32, "acc_write_bits": 3 * 8 * 32,
        "rram_pulses": rows_programmed, "rram_verify_reads": rows_programmed,
        "host_write_bits": (16 + 6) * 32, "host_read_bits": (16 + 8) * 32,
    }


def hand_events(h, cycles):
    """The energy model's events from the hand counters, by the formulas of docs/energy.md with tiny's
    numbers: popcount tree of 8 inputs 4*1 + 2*2 + 1*3 = 11 full-adder bits; shift-add per step and
    column (wbits-1)*(popcount_bits + wbits) + acc_bits = 7*(4+8) + 32 = 116; 8 steps."""
    return {
        "rram_read_bits": 3 * 8 * 8 * 8 * 8,                 # 3 MVMs x 64 weights x 8 cells x 8 input planes
        "adder_tree_bitops": 3 * (8 * 8) * 8 * 11,           # 3 MVMs x 64 physical columns x 8 planes x 11
        "shift_add_bitops": 3 * 8 * 8 * 116,                 # 3 MVMs x 8 steps x 8 columns x 116
        "macro_reg_bits": 3 * (8 * 8 * 32 + 8 * 8),          # accumulator each step + input register
        "acc_bits": h["acc_read_bits"] + h["acc_write_bits"],
        "ibuf_bits": h["ibuf_read_bits"] + h["ibuf_write_bits"],
        "gbuf_bits": h["gbuf_read_bits"] + h["gbuf_write_bits"] + h["host_write_bits"] + h["host_read_bits"],
        "noc_router_bits": (h["noc_flits"] + h["noc_flit_hops"]) * 32,
        "noc_link_bits": h["noc_flit_hops"] * 32,
        "imem_bits": h["instructions"] * 64,
        "shift_lane_bitops": 0, "requant_bitops": 0,         # int32 outputs: no post-processing lane
        "rram_pulse_bits": h["rram_pulses"] * 64,            # 64 cells in a row of 8 int8 weights
        "rram_verify_bits": h["rram_verify_reads"] * 64,
        "dram_bits": h["host_write_bits"] + h["host_read_bits"],
        "cycles": cycles, "macs": 192,
    }


def test_counters_of_a_small_gemm_match_the_hand_count(small_gemm):
    _, rep = small_gemm
    h = hand_counters()
    got = dict(rep["counters"], host_write_bits=rep["host_write_bits"], host_read_bits=rep["host_read_bits"])
    assert {k: got[k] for k in h} == h


def test_events_and_energy_of_a_small_gemm_by_hand(small_gemm):
    _, rep = small_gemm
    h = hand_counters()
    ev = E.chip_events(TINY, rep["counters"], rep["host_write_bits"], rep["host_read_bits"])
    assert ev == hand_events(h, rep["cycles"])
    # energy by hand at 22 nm: count x table entry, the link over one tile pitch
    t = {k: e.value for k, e in E.TECH["22nm"].items()}
    pitch = math.sqrt(E.chip_area(TINY, "22nm")["total"] / 4)
    x = hand_events(h, rep["cycles"])
    by_hand = {
        "RRAM array reads": x["rram_read_bits"] * t["rram_read_bit"],
        "adder trees": x["adder_tree_bitops"] * t["adder_bitop"],
        "shift-add and macro registers": x["shift_add_bitops"] * t["adder_bitop"] + x["macro_reg_bits"] * t["reg_bit"],
        "tile accumulators": x["acc_bits"] * t["reg_bit"],
        "input buffers": x["ibuf_bits"] * t["sram_bit"],
        "global buffer": x["gbuf_bits"] * t["gbuf_bit"],
        "NoC": x["noc_router_bits"] * t["noc_router_bit"] + x["noc_link_bits"] * t["wire_bit_mm"] * pitch,
        "host I/O (DRAM)": x["dram_bits"] * t["dram_bit"],
        "instruction fetch": x["imem_bits"] * t["sram_bit"],
        "RRAM programming": x["rram_pulse_bits"] * t["rram_pulse_bit"] + x["rram_verify_bits"] * t["rram_verify_bit"],
    }
    r = E.energy_report(TINY, rep, [(3, 8, 8, 32)], "22nm")
    for k, v in by_hand.items():
        assert r["breakdown_pj"][k] == pytest.approx(v, rel=1e-12), k
    a = E.chip_area(TINY, "22nm")
    # pJ per cycle: everything leaks but the RRAM cells (60% of the crossbars' area)
    leak = t["leakage_mw_mm2"] * (a["total"] - 0.6 * a["RRAM crossbars"]) * 1e3 / E.CLOCK_MHZ
    assert r["breakdown_pj"]["leakage"] == pytest.approx(rep["cycles"] * leak, rel=1e-12)
    total = sum(by_hand.values()) + rep["cycles"] * leak
    assert r["energy_pj"] == pytest.approx(total, rel=1e-12)
    assert r["tops_per_w"] == pytest.approx(2 * 192 / total, rel=1e-12)
    assert r["tops_per_mm2"] == pytest.approx(2 * 192 / (rep["cycles"] / 200e6) / 1e12 / a["total"], rel=1e-12)
    assert r["energy_ratio"] == pytest.approx(r["baseline_energy_pj"] / total, rel=1e-12)


@pytest.mark.parametrize("name", sorted(hand_counters()))
def test_a_wrong_count_is_caught(small_gemm, name):
    """Mutation: one counter off by one word changes the events or the energy, so the hand check fails."""
    _, rep = small_gemm
    counters = dict(rep["counters"])
    hw, hr = rep["host_write_bits"], rep["host_read_bits"]
    if name == "host_write_bits":
        hw += 32
    elif name == "host_read_bits":
        hr += 32
    elif name in ("macs", "mvms"):
        counters["mvms"] += 1
        counters["macs"] += 64
    else:
        counters[name] += 1
    ev = E.chip_events(TINY, counters, hw, hr)
    assert ev != hand_events(hand_counters(), rep["cycles"])
    good = E.energy_report(TINY, rep, [(3, 8, 8, 32)], "22nm")["energy_pj"]
    bad = E.energy_report(TINY, dict(rep, counters=counters, host_write_bits=hw, host_read_bits=hr),
                          [(3, 8, 8, 32)], "22nm")["energy_pj"]
    assert bad != pytest.approx(good, rel=1e-12)


def test_inconsistent_counters_and_a_wrong_formula_are_caught(small_gemm, monkeypatch):
    _, rep = small_gemm
    with pytest.raises(E.EnergyError, match="macs"):
        E.chip_events(TINY, dict(rep["counters"], macs=rep["counters"]["macs"] + 1))
    with pytest.raises(E.EnergyError, match="'rram_pulses' missing"):
        E.chip_events(TINY, {k: v for k, v in rep["counters"].items() if k != "rram_pulses"})
    with pytest.raises(E.EnergyError, match="MACs"):
        E.energy_report(TINY, rep, [(3, 8, 7, 32)], "22nm")
    # a popcount tree one adder short: the hand check sees it
    monkeypatch.setattr(E, "popcount_tree_bitops", lambda n: 10)
    ev = E.chip_events(TINY, rep["counters"], rep["host_write_bits"], rep["host_read_bits"])
    assert ev != hand_events(hand_counters(), rep["cycles"])


def test_popcount_tree_and_shift_add_formulas():
    # levels of a balanced tree: 32 inputs -> 16*1 + 8*2 + 4*3 + 2*4 + 1*5; odd counts pass a number on
    assert [E.popcount_tree_bitops(n) for n in (1, 2, 3, 8, 32)] == [0, 1, 1 + 2, 11, 16 + 16 + 12 + 8 + 5]
    assert E.popcount_tree_bitops(5) == 2 * 1 + 1 * 2 + 1 * 3     # 5 -> 3 (2 adds) -> 2 (1 add of 2) -> 1
    cfg = TINY.replace(par=2)                                        # popcount 4 bits, wbits 8
    assert E.shift_add_bitops_per_step(cfg) == 7 * 12 + 1 * (4 + 8 + 2) + 32


def test_the_table_has_every_event_for_every_node_with_a_source():
    assert set(E.NODES) >= {"22nm", "7nm"} and E.DEFAULT_NODE == "22nm"
    needed = {"rram_read_bit", "rram_pulse_bit", "rram_verify_bit", "adder_bitop", "sram_bit", "gbuf_bit",
              "noc_router_bit", "wire_bit_mm", "reg_bit", "dram_bit", "leakage_mw_mm2", "mult_8b"}
    for node in E.NODES:
        assert set(E.TECH[node]) == needed, node
        assert set(E.AREA[node]) == set(E.AREA_ITEMS), node
        for k, e in list(E.TECH[node].items()) + list(E.AREA[node].items()):
            assert e.value > 0 and e.unit is not None and len(e.source) > 20, (node, k)
            # no entry from the papers that docs/energy.md reproduces
            for banned in ("Chih", "89TOPS", "89 TOPS", "21.6", "8-Mb", "8Mb", "Hung"):
                assert banned not in e.source, (node, k, banned)
            if "scaled from 45 nm by E ~ C*V^2" in e.rule:
                f = (E.NODES[node].feature_nm / 45) * (E.NODES[node].vdd / 0.9) ** 2
                assert e.value == pytest.approx(E.TECH["45nm"][k].value * f, rel=1e-12), (node, k)
            elif "scaled from 45 nm by area" in e.rule:
                f = (E.NODES[node].feature_nm / 45) ** 2
                assert e.value == pytest.approx(E.AREA["45nm"][k].value * f, rel=1e-12), (node, k)
    # entries not measured at 22 nm say how they were scaled
    assert "scaled from 45 nm" in E.TECH["22nm"]["adder_bitop"].rule
    assert E.TECH["45nm"]["adder_bitop"].value == pytest.approx(0.03 / 8)       # Horowitz: 8-bit add 0.03 pJ
    assert E.TECH["45nm"]["sram_bit"].value == pytest.approx(10 / 64)           # 8 KB SRAM, 64 bits, 10 pJ


def test_baseline_formulas_by_hand():
    cfg = PRESETS["default"]                       # peak 4 * 32*32/8 = 512 = 16 x 32
    assert E.baseline_array(cfg) == (16, 32)
    assert E.baseline_array(TINY) == (4, 8)        # peak 32
    M, K, N = 5, 40, 70                            # Kf = 3, Nf = 3
    ev = E.baseline_events(cfg, [(M, K, N, 32)])
    macs = M * K * N
    assert ev == {
        "macs": macs, "mults": macs,
        "pe_add_bitops": macs * 32 + 2 * M * N * 32,
        "pe_reg_bits": macs * (8 + 32) + K * N * 8,
        "wbuf_bits": 2 * K * N * 8,
        "abuf_bits": M * K * 8 * (1 + 3) + 2 * M * N * 32,
        "pbuf_bits": 2 * 3 * M * N * 32,
        "dram_bits": K * N * 8 + M * K * 8 + M * N * 32,
        "cycles": 3 * 3 * (M + 16 + 32 - 2),
    }
    two = E.baseline_events(cfg, [(M, K, N, 32), (M, N, 3, 8)])
    assert two["macs"] == macs + M * N * 3 and two["dram_bits"] == ev["dram_bits"] + N * 3 * 8 + M * N * 8 + M * 3 * 8
    # a bias travels with the weights; resident weights (and biases) are not fetched again
    b = E.baseline_events(cfg, [(M, K, N, 32, 1)])
    assert b["dram_bits"] == ev["dram_bits"] + N * 32 and b["wbuf_bits"] == ev["wbuf_bits"] + 2 * N * 32
    assert b["pe_reg_bits"] == ev["pe_reg_bits"]
    r = E.baseline_events(cfg, [(M, K, N, 32, 1)], weights_resident=True)
    assert r["dram_bits"] == M * K * 8 + M * N * 32 and r["wbuf_bits"] == K * N * 8 + N * 32


def test_crossbar_area_and_voltage_scaling_by_hand():
    a = E.chip_area(TINY, "22nm")
    cell = 50 * 0.022 ** 2                                          # 50 F^2
    assert a["RRAM crossbars"] == pytest.approx(4 * 8 * 64 * cell / 0.6 * 1e-6)
    assert a["total"] == pytest.approx(sum(v for k, v in a.items() if k not in ("total", "tile_cmos_mm2",
                                                                                  "ctrl_cmos_mm2")))
    e = E.event_energies(TINY, "22nm")
    low = E.event_energies(TINY, "22nm", vdd=0.72)
    assert low["adder_tree_bitops"] == pytest.approx(e["adder_tree_bitops"] * (0.72 / 0.8) ** 2)
    assert low["dram_bits"] == e["dram_bits"] and low["rram_pulse_bits"] == e["rram_pulse_bits"]


def test_unknown_node_is_one_line():
    with pytest.raises(E.EnergyError, match="node '5nm'.*known: 45nm, 22nm, 7nm"):
        E.chip_area(TINY, "5nm")


# --- banks ------------------------------------------------------------------------------------------------------

MEMWALL = PRESETS["memwall"]     # 2x2 tiles of one 32x32 int8 macro with 1024 banks
SHARED = ("adder trees and shift-add", "macro registers", "tile buffers", "routers", "tile logic", "requant lanes",
          "requant vectors", "controller")


def _since_requant(cfg, a):
    """mm2 the requant issue added to ``chip_area(cfg, "22nm")`` ``a``: the requant lanes and vectors (the
    shift lanes, one set a tile shared by its two senders, were priced before)."""
    return a["requant lanes"] + a["requant vectors"]


def _counters(mvms, cfg):
    """Counters of ``mvms`` MVMs and nothing else, over 1000 cycles."""
    c = dict.fromkeys(E._CHIP_COUNTERS, 0)
    c.update(mvms=mvms, macs=mvms * cfg.rows * cfg.cols, cycles=1000)
    return c


def _check_bank_parts(a):
    """memwall's RRAM and bank parts from first principles: every bank's cells; what each bank beyond the first
    adds (wordline drivers, a decoder output, bank-select switches on the bitlines)."""
    T, banks, rows, cells = 4, 1024, 32, 32 * 8
    cell, gate, eff = 50 * 0.022 ** 2, 0.798 * (22 / 45) ** 2, 0.6                 # um2: 50 F^2, NAND2 scaled
    assert a["RRAM crossbars"] == pytest.approx(T * banks * rows * cells * cell / eff * 1e-6, rel=1e-12)
    assert a["wordline drivers"] == pytest.approx(T * (banks - 1) * rows * 10 * gate * 1e-6, rel=1e-12)
    assert a["bank decoders"] == pytest.approx(T * (banks - 1) * 4 * gate * 1e-6, rel=1e-12)
    assert a["bitline bank switches"] == pytest.approx(T * (banks - 1) * rows * cells / 64 * 1 * gate * 1e-6,
                                                       rel=1e-12)


def test_banked_area_by_hand():
    """memwall's area: the RRAM and bank parts by hand, the rest once per macro."""
    a = E.chip_area(MEMWALL, "22nm")
    assert MEMWALL.rram_rows == 1024 * 32 and MEMWALL.cells_per_row == 256
    _check_bank_parts(a)
    assert a["RRAM crossbars"] == pytest.approx(1.3534, abs=1e-4)                 # 33.5 M cells of 0.0242 um2
    eff = 0.6
    parts = [k for k in a if k not in ("total", "tile_cmos_mm2", "ctrl_cmos_mm2")]
    assert parts == ["RRAM crossbars", *E.BANK_PARTS, *SHARED]
    assert a["total"] == pytest.approx(sum(a[k] for k in parts), rel=1e-12)
    # the shared parts are an unbanked macro's; an unbanked chip has no bank parts and its old area
    one = E.chip_area(MEMWALL.replace(banks=1), "22nm")
    for k in SHARED:
        assert a[k] == one[k], k
    assert not set(E.BANK_PARTS) & set(one) and not set(E.BANK_PARTS) & set(E.chip_area(PRESETS["default"]))
    d = E.chip_area(PRESETS["default"])
    assert d["total"] - _since_requant(PRESETS["default"], d) == pytest.approx(0.24608665818, rel=1e-10)
    # the RRAM cells are about 38% of memwall without the post-processing lanes; what leaks is everything else
    old = a["total"] - _since_requant(MEMWALL, a)
    assert eff * a["RRAM crossbars"] / old == pytest.approx(0.377, abs=0.001)
    assert a["tile_cmos_mm2"] * 4 == pytest.approx(a["total"] - eff * a["RRAM crossbars"] - a["controller"])
    assert 2.0 < old < 2.3 and a["total"] < 2.6                                     # well under ~4 mm2


def test_doubling_banks_grows_only_the_bank_parts():
    half, full = E.chip_area(MEMWALL.replace(banks=512)), E.chip_area(MEMWALL)
    per_bank = E.bank_periphery_um2(MEMWALL.replace(banks=2))                    # exactly one extra bank
    assert full["RRAM crossbars"] == pytest.approx(2 * half["RRAM crossbars"], rel=1e-12)
    for k in E.BANK_PARTS:                                                         # 512 banks more, each the same
        assert full[k] - half[k] == pytest.approx(4 * 512 * per_bank[k] * 1e-6, rel=1e-9), k
        assert per_bank[k] > 0
    for k in SHARED:
        assert full[k] == half[k], k
    grown = sum(full[k] - half[k] for k in ("RRAM crossbars", *E.BANK_PARTS))
    assert full["total"] - half["total"] == pytest.approx(grown, rel=1e-12)
    assert E.bank_periphery_um2(MEMWALL.replace(banks=1)) == dict.fromkeys(E.BANK_PARTS, 0)


def test_a_banked_mvm_costs_an_unbanked_ones_dynamic_energy():
    """Per MAC, a banked MVM's events and their prices are an unbanked macro's; the banks add leakage (their
    periphery and their crossbars' array periphery), and the longer tile pitch the NoC links cross."""
    one = MEMWALL.replace(banks=1)
    assert E.macro_energy_per_mvm(MEMWALL, "22nm") == E.macro_energy_per_mvm(one, "22nm")
    ev, ev1 = E.chip_events(MEMWALL, _counters(7, MEMWALL)), E.chip_events(one, _counters(7, one))
    assert ev == ev1
    en, en1 = E.event_energies(MEMWALL), E.event_energies(one)
    for k in en:
        if k not in ("chip_leak_cycle", "tile_leak_cycle", "base_leak_cycle", "noc_link_bits"):
            assert en[k] == en1[k], k
    dyn = {k: v for k, v in E.price(ev, en, E.COMPONENTS).items() if k not in ("leakage", "total")}
    assert dyn == {k: v for k, v in E.price(ev1, en1, E.COMPONENTS).items() if k not in ("leakage", "total")}
    assert sum(dyn.values()) / ev["macs"] == pytest.approx(E.macro_energy_per_mvm(one, "22nm")["total"] / 1024)
    # the leakage the banks add, by hand: 3 mW/mm2 over the bank periphery and the array periphery of the
    # added cells, per 5 ns cycle
    a, a1 = E.chip_area(MEMWALL), E.chip_area(one)
    added = sum(a[k] for k in E.BANK_PARTS) + 0.4 * (a["RRAM crossbars"] - a1["RRAM crossbars"])
    assert en["chip_leak_cycle"] - en1["chip_leak_cycle"] == pytest.approx(3.0 * added * 1e3 / 200, rel=1e-9)
    # programming a row costs the same in any bank: pulses and verify reads per row of cells_per_row cells
    assert en["rram_pulse_bits"] == en1["rram_pulse_bits"] and en["rram_verify_bits"] == en1["rram_verify_bits"]


def test_the_by_hand_check_catches_a_crossbar_of_one_bank(monkeypatch):
    """An area model that counts one bank's cells (``rows``, not ``rram_rows``) fails the by-hand check."""
    _check_bank_parts(E.chip_area(MEMWALL))
    monkeypatch.setattr(type(MEMWALL), "rram_rows", property(lambda cfg: cfg.rows))
    with pytest.raises(AssertionError):
        _check_bank_parts(E.chip_area(MEMWALL))


# --- post-processing: the shift lanes and the requant unit ------------------------------------------------------

DEFAULT = PRESETS["default"]


def _requant_lane_gates_by_hand():
    """One requant lane (rtl/postproc.py, xbits = 8) in NAND2 equivalents from its cells: full adders
    4.256/0.798, half adders 3.33, 2:1 muxes 2.33, XOR2 2, AND2/OR2 1.33."""
    fa, ha, mux, xor, gate = 4.256 / 0.798, 3.33, 2.33, 2.0, 1.33
    multiplier = 25 * 24 * gate + 24 * 25 * fa                        # partial products, 24 rows of 25 adders
    negate = 32 * xor + 32 * ha
    round_a = 34 * gate + (32 + 28 + 26 + 25) * mux + 24 * ha
    round_p = (89 + 68 + 24 + 95 + 24) * gate + 49 * ha                 # smear, guard/sticky/lsb, mask; incrementer
    shift = 12 * fa + (41 + 25 + 17 + 13 + 11 + 10 + 1) * mux + 155 * gate + 9 * ha   # + the tie's select
    clamp = 9 * gate + 9 * xor + 9 * ha + 33 * fa + 24 * mux
    return multiplier + negate + round_a + round_p + shift + clamp


def test_the_requant_lane_is_counted_from_its_parts():
    g = _requant_lane_gates_by_hand()
    assert g == pytest.approx(5981.42, abs=0.01)
    for node in E.NODES:
        e = E.AREA[node]["requant_lane_gates"]
        assert e.value == pytest.approx(g, rel=1e-12) and e.unit == "NAND2-eq" and e.rule == "node-independent"
        assert "assumption" in e.source and "SB_LUT4" in e.source and "multiplier" in e.source
    # the multiplier (600 ANDs, 600 full adders) is two thirds of it
    assert (600 * 1.33 + 600 * 4.256 / 0.798) / g == pytest.approx(0.668, abs=0.001)


def test_requant_area_only_with_the_unit_and_by_lanes():
    gate, dff = 0.798 * (22 / 45) ** 2, 4.522 / 0.798
    g = _requant_lane_gates_by_hand()
    for name in ("ulx3s", "icebreaker"):                                # requant = 0: no unit, nothing priced
        cfg = PRESETS[name]
        a = E.chip_area(cfg, "22nm")
        assert not cfg.has_requant and a["requant lanes"] == 0 and a["requant vectors"] == 0, name
    for name in ("tiny", "default", "large", "memwall"):
        cfg = PRESETS[name]
        assert cfg.has_requant, name
        a = E.chip_area(cfg, "22nm")
        lanes = cfg.flit_width // cfg.xbits                             # one set, shared by the two senders
        assert a["requant lanes"] == pytest.approx(cfg.tiles * lanes * g * gate * 1e-6, rel=1e-9), name
        assert a["requant vectors"] == pytest.approx(cfg.tiles * 2 * cfg.cols * 32 * dff * gate * 1e-6, rel=1e-9)
        off = E.chip_area(cfg.replace(requant=0), "22nm")
        assert a["total"] - off["total"] == pytest.approx(a["requant lanes"] + a["requant vectors"], rel=1e-9)
    # the lanes scale with flit_width / xbits, not with the standing-sequence sender (it shares them)
    half = E.chip_area(DEFAULT.replace(flit_width=128), "22nm")
    one = E.chip_area(DEFAULT.replace(streams=0), "22nm")
    full = E.chip_area(DEFAULT, "22nm")
    assert full["requant lanes"] == pytest.approx(2 * half["requant lanes"], rel=1e-12)
    assert full["requant lanes"] == pytest.approx(one["requant lanes"], rel=1e-12)
    assert full["requant vectors"] == half["requant vectors"] == one["requant vectors"]
    # a chip whose acc_bits is not 32 cannot have the unit: no requant area
    assert E.chip_area(TINY.replace(acc_bits=24), "22nm")["requant lanes"] == 0
    # and the shift lanes are shared too (3 * acc_bits full adders each, as many with or without sequences)
    assert full["tile logic"] == pytest.approx(one["tile logic"], rel=1e-12)


def _quiet_report(macs):
    """A report of zero counters but ``macs`` (one cycle): the post-processing events alone."""
    cfg = TINY
    c = dict.fromkeys(E._CHIP_COUNTERS, 0)
    c.update(cycles=1, mvms=macs // (cfg.rows * cfg.cols), macs=macs)
    return {"counters": c, "cycles": 1, "macs": macs}


def test_a_requantized_run_costs_elements_times_the_lane():
    """The same run with rq on its layers costs exactly (requantized elements) x (one requant lane's energy): the
    lane's gates in full adders, each at adder_bitop; the shift lanes compute in both runs."""
    layers = [(5, 8, 8, 8, 1), (5, 8, 8, 8, 1)]                         # two int8-out layers, 40 elements each
    rep = _quiet_report(2 * 5 * 8 * 8)
    for node in E.NODES:
        plain = E.energy_report(TINY, rep, layers, node)
        rq = E.energy_report(TINY, rep, [L + (1,) for L in layers], node)
        one = E.energy_report(TINY, rep, [layers[0] + (1,), layers[1] + (0,)], node)
        per = (E.AREA[node]["requant_lane_gates"].value / (4.256 / 0.798)) * E.TECH[node]["adder_bitop"].value
        assert per == pytest.approx(_requant_lane_gates_by_hand() / (4.256 / 0.798)
                                    * E.TECH[node]["adder_bitop"].value, rel=1e-12)
        assert rq["energy_pj"] - plain["energy_pj"] == pytest.approx(80 * per, rel=1e-9), node
        assert one["energy_pj"] - plain["energy_pj"] == pytest.approx(40 * per, rel=1e-9), node
        assert rq["breakdown_pj"]["requant unit"] == pytest.approx(80 * per, rel=1e-12)
        assert plain["breakdown_pj"]["requant unit"] == 0
        # every int8 element goes through a shift lane: 3 * 32 full-adder bit-ops
        shift = 80 * 96 * E.TECH[node]["adder_bitop"].value
        assert plain["breakdown_pj"]["shift lanes"] == rq["breakdown_pj"]["shift lanes"] == pytest.approx(shift)
        assert rq["events"]["requant_bitops"] == pytest.approx(80 * 5981.42 / (4.256 / 0.798), rel=1e-6)
    # at 22 nm a requantized element costs about 1.6 pJ
    assert E.requant_bitops_per_element() * E.TECH["22nm"]["adder_bitop"].value == pytest.approx(1.62, abs=0.01)


def test_layers_of_four_five_and_six_and_rq_without_the_unit():
    rep = _quiet_report(5 * 8 * 8)
    four = E.energy_report(TINY, rep, [(5, 8, 8, 8)])
    five = E.energy_report(TINY, rep, [(5, 8, 8, 8, 0)])
    six = E.energy_report(TINY, rep, [(5, 8, 8, 8, 0, 0)])
    assert four["energy_pj"] == five["energy_pj"] == six["energy_pj"]
    assert four["events"]["shift_lane_bitops"] == 40 * 96 and four["events"]["requant_bitops"] == 0
    # an int32 result (out) uses no lane
    assert E.energy_report(TINY, rep, [(5, 8, 8, 32, 1)])["breakdown_pj"]["shift lanes"] == 0
    assert E.lane_elements(TINY, [(5, 8, 8, 32, 1), (3, 8, 4, 8, 1, 1), (2, 8, 8, 8)]) == (12 + 16, 12)
    with pytest.raises(E.EnergyError, match="requantized.*no requant unit"):
        E.energy_report(TINY.replace(requant=0), rep, [(5, 8, 8, 8, 1, 1)])


def test_the_rq_check_can_fail(monkeypatch):
    """Mutation: a requant lane priced without its multiplier fails the by-hand energy check."""
    rep = _quiet_report(5 * 8 * 8)
    per = _requant_lane_gates_by_hand() / (4.256 / 0.798) * E.TECH["22nm"]["adder_bitop"].value
    monkeypatch.setattr(E, "requant_bitops_per_element", lambda: (5981.42 - 3998) / (4.256 / 0.798))
    got = E.energy_report(TINY, rep, [(5, 8, 8, 8, 1, 1)])["breakdown_pj"]["requant unit"]
    assert got != pytest.approx(40 * per, rel=1e-9)


def test_run_layers_carry_rq_from_the_net():
    """rramcim run's GEMM list: the 6th element is the net layer's rq; hidden layers int8, the last int32 unless
    requantized."""
    from types import SimpleNamespace as NS

    from rramcim.commands.run import _layers
    report = {"layers": [{"layer": 0, "M": 4, "K": 64, "N": 32}, {"layer": 1, "M": 4, "K": 32, "N": 10}]}
    assert _layers(report) == [(4, 64, 32, 8, 1, 0), (4, 32, 10, 32, 1, 0)]
    net = NS(layers=[NS(rq=object()), NS(rq=None)])
    assert _layers(report, net) == [(4, 64, 32, 8, 1, 1), (4, 32, 10, 32, 1, 0)]
    net = NS(layers=[NS(rq=None), NS(rq=object())])
    assert _layers(report, net) == [(4, 64, 32, 8, 1, 0), (4, 32, 10, 8, 1, 1)]
