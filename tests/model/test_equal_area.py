"""The equal-area baseline of the energy model (model/energy.py): its area equals the chip's, its SRAM grows
with the chip, weights beyond its SRAM come from DRAM on every run (bits worked out by hand from the layers'
shapes), and its SRAM energy per bit follows the cited points and rises with the capacity. No simulation: the
chip's side of a report is a set of zero counters (the baseline does not read them)."""

import math

import pytest

from rramcim.model import energy as E
from rramcim.model.config import PRESETS

TINY, DEFAULT = PRESETS["tiny"], PRESETS["default"]


def _report(macs):
    """A run report whose counters are all zero (one cycle): only the baseline's side is under test."""
    counters = dict.fromkeys(("cycles", "instructions", "noc_flits", "noc_flit_hops", "gbuf_read_bits",
                              "gbuf_write_bits", "macs", "mvms", "ibuf_write_bits", "ibuf_read_bits", "acc_read_bits",
                              "acc_write_bits", "rram_pulses", "rram_verify_reads"), 0)
    counters["cycles"] = 1
    return {"counters": counters, "cycles": 1, "macs": macs}


def _equal_area(cfg, layers, resident, node="22nm"):
    macs = sum(M * K * N for M, K, N, *_ in layers)
    return E.energy_report(cfg, _report(macs), layers, node, weights_resident=resident, baseline="equal-area")


# --- area ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("preset", ["tiny", "default", "large", "memwall"])
@pytest.mark.parametrize("node", ["45nm", "22nm", "7nm"])
def test_equal_area_baseline_has_the_chips_area(preset, node):
    cfg = PRESETS[preset]
    chip = E.chip_area(cfg, node)["total"]
    b = E.equal_area_baseline(cfg, node)
    assert b["total"] == pytest.approx(chip, rel=1e-9, abs=0)
    assert b["area_mm2"]["total"] == b["total"]
    assert sum(v for k, v in b["area_mm2"].items() if k != "total") == pytest.approx(chip, rel=1e-9, abs=0)
    # the PE array and the other buffers are the same-capacity baseline's; the weight buffer is what is left
    same = E.baseline_area(cfg, node)
    for k in ("PE array", "activation buffer", "partial-sum buffer", "controller"):
        assert b["area_mm2"][k] == same[k], k
    a = E.AREA[node]
    byte_mm2 = 8 * a["sram_bit_um2"].value / a["array_efficiency"].value * 1e-6
    left = chip - (same["total"] - same["weight buffer"])
    assert b["area_mm2"]["weight buffer"] == pytest.approx(left, rel=1e-9)
    assert b["sram_bytes"] == math.floor(left / byte_mm2) > 0
    # and the report says the same
    r = _equal_area(cfg, [(1, 8, 8, 32)], False, node)
    assert r["baseline_area_mm2"] == pytest.approx(r["area_mm2"], rel=1e-9, abs=0)
    assert r["baseline"] == "equal-area" and r["baseline_sram_bytes"] == b["sram_bytes"]


def test_sram_grows_with_the_chips_area():
    by_area = sorted((E.chip_area(PRESETS[p])["total"], E.equal_area_baseline(PRESETS[p])["sram_bytes"])
                     for p in ("tiny", "default", "large"))
    assert [b for _, b in by_area] == sorted(b for _, b in by_area) and by_area[0][1] < by_area[-1][1]
    # a chip grown by SRAM the baseline does not have (deeper tile input buffers: tiles * rows * xbits bits per
    # word) grows the baseline's weight SRAM by exactly those bits (the same SRAM per bit), give or take the
    # byte its floor drops
    base = E.equal_area_baseline(DEFAULT)["sram_bytes"]
    for extra in (16, 64, 256):
        cfg = DEFAULT.replace(tile_ibuf_depth=DEFAULT.tile_ibuf_depth + extra)
        grown = E.equal_area_baseline(cfg)["sram_bytes"]
        assert abs(grown - base - 4 * extra * 32 * 8 // 8) <= 1, extra
    # more tiles of the same macros: a larger chip and a larger baseline SRAM
    sizes = [E.equal_area_baseline(DEFAULT.replace(mesh_x=x, mesh_y=y))["sram_bytes"]
             for x, y in ((2, 2), (4, 2), (4, 4))]
    assert sizes == sorted(sizes) and len(set(sizes)) == 3


def test_no_equal_area_baseline_when_its_pes_outgrow_the_chip():
    """256x256 macros: the chip's peak in digital PEs takes more area than the whole chip (without the requant
    lanes, which would make the chip larger than that)."""
    cfg = DEFAULT.replace(rows=256, cols=256, requant=0)
    with pytest.raises(E.EnergyError, match="equal-area baseline: its PE array .* more than the chip's"):
        E.equal_area_baseline(cfg)
    with pytest.raises(E.EnergyError, match="equal-area"):
        _equal_area(cfg, [(1, 8, 8, 32)], False)


# --- weights: SRAM or DRAM -------------------------------------------------------------------------------------

def test_a_network_that_fits_fetches_no_weights():
    # 64-32-10 with int32 biases: 64*32*8 + 32*32 + 32*10*8 + 10*32 = 20288 bits = 2536 bytes, under tiny's SRAM
    layers = [(2, 64, 32, 8, 1), (2, 32, 10, 32, 1)]
    r = _equal_area(TINY, layers, True)
    assert r["baseline_sram_bytes"] > 2536
    assert r["baseline_weight_bits"] == 20288 and r["baseline_dram_weight_bits"] == 0
    ev = r["baseline_events"]
    # DRAM: the inputs and outputs only, layer by layer (not chained)
    assert ev["dram_bits"] == (2 * 64 * 8 + 2 * 32 * 8) + (2 * 32 * 8 + 2 * 10 * 32)
    assert ev["wbuf_bits"] == 20288                       # read once into the PEs, never written
    # not resident (a fresh chip programs its weights too): all of them from DRAM
    f = _equal_area(TINY, layers, False)
    assert f["baseline_dram_weight_bits"] == 20288
    assert f["baseline_events"]["dram_bits"] == ev["dram_bits"] + 20288


def test_a_network_that_does_not_fit_fetches_the_rest_every_run():
    # 256-512-64 with int32 biases: 256*512*8 + 512*32 + 512*64*8 + 64*32 = 1329152 bits (162 KiB), more than
    # the SRAM of tiny's and of default's equal-area baselines
    W = 256 * 512 * 8 + 512 * 32 + 512 * 64 * 8 + 64 * 32
    assert W == 1329152
    layers = [(3, 256, 512, 8, 1), (3, 512, 64, 32, 1)]
    io = (3 * 256 * 8 + 3 * 512 * 8) + (3 * 512 * 8 + 3 * 64 * 32)
    fetched = {}
    # (without the requant lanes, whose area would give the baselines room for more SRAM than the network)
    for name, cfg in (("tiny", TINY.replace(requant=0)), ("default", DEFAULT.replace(requant=0))):
        r = _equal_area(cfg, layers, True)
        held = 8 * r["baseline_sram_bytes"]
        assert 0 < held < W, name
        assert r["baseline_weight_bits"] == W and r["baseline_dram_weight_bits"] == W - held, name
        ev = r["baseline_events"]
        assert ev["dram_bits"] == io + W - held, name
        assert ev["wbuf_bits"] == W + (W - held), name        # all read once; the fetched ones written first
        fetched[name] = W - held
    assert fetched["default"] < fetched["tiny"]                 # the larger chip's baseline holds more


def test_resident_bits_fill_the_first_layers_first():
    cfg = DEFAULT
    layers = [(1, 40, 70, 8), (1, 70, 30, 32)]             # 22400 and 16800 weight bits
    for held, fetched in ((0, 39200), (10000, 29200), (22400, 16800), (30000, 9200), (39200, 0), (10 ** 9, 0)):
        ev = E.baseline_events(cfg, layers, resident_bits=held)
        io = (1 * 40 * 8 + 1 * 70 * 8) + (1 * 70 * 8 + 1 * 30 * 32)
        assert ev["dram_bits"] == io + fetched, held
        assert ev["wbuf_bits"] == 39200 + fetched, held
    assert E.baseline_events(cfg, layers, resident_bits=0) == E.baseline_events(cfg, layers)
    assert E.baseline_events(cfg, layers, resident_bits=39200) == E.baseline_events(cfg, layers, weights_resident=True)
    with pytest.raises(E.EnergyError, match="negative"):
        E.baseline_events(cfg, layers, resident_bits=-1)


def test_equal_area_prices_its_weight_sram_by_its_capacity_and_leaks_over_the_chips_area():
    layers = [(3, 256, 256, 8, 1), (3, 256, 64, 32, 1)]          # 665600 weight and bias bits
    r = _equal_area(TINY, layers, True)
    e = E.sram_array_bit("22nm", r["baseline_sram_bytes"]).value
    assert r["baseline_wbuf_pj_per_bit"] == e > E.TECH["22nm"]["sram_bit"].value
    assert r["baseline_breakdown_pj"]["weight buffer"] == pytest.approx(r["baseline_events"]["wbuf_bits"] * e)
    leak = E.TECH["22nm"]["leakage_mw_mm2"].value * r["area_mm2"] * 1e3 / E.CLOCK_MHZ
    assert r["baseline_breakdown_pj"]["leakage"] == pytest.approx(r["baseline_events"]["cycles"] * leak)
    # the default baseline is unchanged: same-capacity, 8 KB SRAM figure, its own area
    s = E.energy_report(TINY, _report(r["baseline_events"]["macs"]), layers, "22nm")
    assert s["baseline"] == "same-capacity" and s["baseline_wbuf_pj_per_bit"] == E.TECH["22nm"]["sram_bit"].value
    assert s["baseline_area_mm2"] == E.baseline_area(TINY)["total"]
    assert s["baseline_sram_bytes"] == 4 * 8 * 8 * 8 // 8 and s["baseline_dram_weight_bits"] == 665600
    with pytest.raises(E.EnergyError, match="baseline 'equal'"):
        E.energy_report(TINY, _report(1), [(1, 1, 1, 32)], baseline="equal")


# --- a banked chip: memwall -----------------------------------------------------------------------------------

MEMWALL = PRESETS["memwall"]


def _mlp(batch):
    """Three 1024x1024 int8 layers with int32 biases: 3 MiB of weights (and 12 KiB of biases)."""
    return [(batch, 1024, 1024, 8, 1), (batch, 1024, 1024, 8, 1), (batch, 1024, 1024, 32, 1)]


def test_the_default_baseline_is_equal_area_for_a_banked_chip():
    assert E.default_baseline(MEMWALL) == "equal-area"
    assert E.default_baseline(MEMWALL.replace(banks=2)) == "equal-area"
    for name in ("tiny", "default", "large", "ulx3s", "icebreaker"):
        assert E.default_baseline(PRESETS[name]) == "same-capacity", name
    layers = _mlp(1)
    macs = 3 * 1024 * 1024
    assert E.energy_report(MEMWALL, _report(macs), layers)["baseline"] == "equal-area"
    assert E.energy_report(MEMWALL, _report(macs), layers, baseline="same-capacity")["baseline"] == "same-capacity"
    assert E.energy_report(TINY, _report(1), [(1, 1, 1, 32)])["baseline"] == "same-capacity"


def test_memwalls_baseline_streams_what_its_sram_does_not_hold_every_batch():
    """memwall's equal-area baseline holds about half of a 3 MiB network; the rest comes from DRAM on every run,
    whatever the batch, and its weight SRAM is priced at the MB-scale figure of its capacity."""
    b = E.equal_area_baseline(MEMWALL)
    area = E.chip_area(MEMWALL)["total"]
    assert 2.0 < area < 2.4 and b["total"] == pytest.approx(area, rel=1e-9)
    assert 1 << 20 < b["sram_bytes"] < 7 << 18                                     # 1 to 1.75 MiB
    W = 3 * (1024 * 1024 * 8 + 1024 * 32)
    held = 8 * b["sram_bytes"]
    for batch in (1, 16):
        r = _equal_area(MEMWALL, _mlp(batch), True)
        assert r["baseline_weight_bits"] == W and r["baseline_dram_weight_bits"] == W - held, batch
        ev = r["baseline_events"]
        io = batch * 1024 * 8 * 3 + batch * 1024 * (8 + 8 + 32)                    # inputs and outputs, not chained
        assert ev["dram_bits"] == W - held + io and ev["wbuf_bits"] == W + (W - held), batch
        e = E.sram_array_bit("22nm", b["sram_bytes"])
        assert r["baseline_wbuf_pj_per_bit"] == e.value and "1 MB" in e.source and "Horowitz" in e.source
        assert r["baseline_breakdown_pj"]["DRAM"] == pytest.approx(ev["dram_bits"] * 3.9)
    # the same-capacity baseline holds what the chip holds, every bank's
    assert E.baseline_holds(MEMWALL, _mlp(1)) and not E.baseline_holds(MEMWALL.replace(banks=512), _mlp(1))
    s = E.energy_report(MEMWALL, _report(3 << 20), _mlp(1), weights_resident=True, baseline="same-capacity")
    assert s["baseline_sram_bytes"] == MEMWALL.weight_bytes == 4 << 20 and s["baseline_dram_weight_bits"] == 0


# --- SRAM energy by capacity -----------------------------------------------------------------------------------

def test_sram_energy_matches_the_cited_points_and_rises_with_capacity():
    # Horowitz, ISSCC 2014, 45 nm: a 64-bit read costs 10 pJ (8 KB), 20 pJ (32 KB), 100 pJ (1 MB)
    for nbytes, pj in ((8 << 10, 10), (32 << 10, 20), (1 << 20, 100)):
        e = E.sram_array_bit("45nm", nbytes)
        assert e.value == pytest.approx(pj / 64, rel=1e-12) and e.unit == "pJ/bit"
        assert "Horowitz" in e.source and "ISSCC 2014" in e.source and "1 MB" in e.source
    # between the points, log-log: 128 KB is 20 pJ x 4^(log 5 / log 32)
    assert E.sram_array_bit("45nm", 128 << 10).value == pytest.approx(20 * 4 ** (math.log(5) / math.log(32)) / 64)
    # beyond 1 MB, the last segment's slope: 4 MB is 100 pJ x 4^(log 5 / log 32)
    assert E.sram_array_bit("45nm", 4 << 20).value == pytest.approx(100 * 4 ** (math.log(5) / math.log(32)) / 64)
    # under 8 KB, the 8 KB figure; at 8 KB and 32 KB, the table's sram_bit and gbuf_bit, at every node
    assert E.sram_array_bit("45nm", 100).value == pytest.approx(10 / 64)
    for node in E.NODES:
        assert E.sram_array_bit(node, 8 << 10).value == pytest.approx(E.TECH[node]["sram_bit"].value, rel=1e-12)
        assert E.sram_array_bit(node, 32 << 10).value == pytest.approx(E.TECH[node]["gbuf_bit"].value, rel=1e-12)
        sizes = [8 << 10, 16 << 10, 100_000, 1 << 20, 3 << 20, 64 << 20]
        values = [E.sram_array_bit(node, b).value for b in sizes]
        assert all(a < b for a, b in zip(values, values[1:])), node
    # other nodes: scaled by C*V^2 like the table's CMOS entries, and they say so
    e22 = E.sram_array_bit("22nm", 1 << 20)
    assert e22.value == pytest.approx(100 / 64 * (22 / 45) * (0.8 / 0.9) ** 2, rel=1e-12)
    assert "scaled from 45 nm" in e22.rule and "1,048,576 bytes" in e22.rule
    for bad in (-1, float("nan"), "x"):
        with pytest.raises(E.EnergyError, match="SRAM of"):
            E.sram_array_bit("22nm", bad)


def test_docs_hold_the_generated_tables():
    """docs/energy.md's equal-area section is what ``python -m rramcim.sim.perf.equal_area`` writes."""
    from pathlib import Path

    from rramcim.sim.perf import equal_area as Q
    text = (Path(__file__).resolve().parents[2] / "docs" / "energy.md").read_text()
    assert "<!-- equal-area:begin -->\n" + Q.markdown() + "<!-- equal-area:end -->" in text
    # the demo's shapes the table assumes: 64 inputs, 32 hidden, 10 classes, with biases
    assert Q.demo_layers() == [(1, 64, 32, 8, 1), (1, 32, 10, 32, 1)]
    assert "| `default` | 2x2 x 32x32 | 512 |" in text and "demo's weights: 2,536 bytes" in text
    assert "| `memwall` | 2x2 x 32x32 x 1024 banks | 512 |" in text
    # the banks section: memwall's area by component
    assert "<!-- banks:begin -->\n" + Q.banks_markdown() + "<!-- banks:end -->" in text
    assert "| RRAM crossbars | 1.353 |" in text and "## Banks: the area of a banked macro" in text
