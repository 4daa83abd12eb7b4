"""The macro on Amaranth's simulator (fast, no build), against the golden model.

The same bench runs on the generated Verilog under cocotb in tests/sim.
"""

import numpy as np
import pytest

from rramcim.model.macro import FaultMap
from rramcim.rtl.macro import Macro
from rramcim.sim.benches.amaranth_io import run_amaranth
from rramcim.sim.benches.io import CheckError
from rramcim.sim.benches.macro import MacroBench
from tests.configs import P2W4, P3X6, TINY

CONFIGS = {"tiny": TINY, "p2w4": P2W4, "p3x6": P3X6}


@pytest.mark.parametrize("stall", [0.0, 0.4], ids=["nostall", "stall"])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_macro_amaranth(name, stall):
    cfg = CONFIGS[name]
    faults = FaultMap.random(cfg, 3, np.random.default_rng(11))
    bench = MacroBench(cfg, faults, seed=5, n_mvm=150, stall=stall, phases=2)
    summary = run_amaranth(Macro(cfg, faults), bench.run)
    assert summary["mvms"] == 300
    assert summary["verify_failures"] > 0      # the stuck cells were exercised


def test_checker_catches_a_model_bug():
    bench = MacroBench(TINY, seed=2, n_mvm=20, model_bug="sign_flip")
    with pytest.raises(CheckError, match="value mismatch"):
        run_amaranth(Macro(TINY), bench.run)



def test_power_on_and_reset_keep_rram():
    """Cells power up as zero; reset clears neither cells nor write counters (hand-checked)."""
    cfg = TINY
    dut = Macro(cfg)

    async def bench(io):
        async def mvm(x):
            io.set("x__valid", 1)
            io.set("x__payload", sum((int(v) & 0xFF) << (8 * i) for i, v in enumerate(x)))
            io.set("y__ready", 1)
            while not io.get("x__ready"):
                await io.tick()
            await io.tick()
            io.set("x__valid", 0)
            while not io.get("y__valid"):
                await io.tick()
            word = io.get("y__payload")
            await io.tick()
            return [((word >> (32 * c)) & 0xFFFFFFFF) - ((word >> (32 * c + 31) & 1) << 32) for c in range(cfg.cols)]

        assert await mvm([-128] * 8) == [0] * 8                 # power-on content is zero
        io.set("prog__valid", 1)
        io.set("prog__payload", 3 | sum((5 & 0xFF) << (3 + 8 * c) for c in range(8)))   # row 3 := 5
        io.set("prog_resp__ready", 1)
        await io.tick()
        io.set("prog__valid", 0)
        while not io.get("prog_resp__valid"):
            await io.tick()
        await io.tick()
        await io.reset()
        io.set("status__row", 3)
        assert io.get("status__write_count") == 1
        x = [0] * 8
        x[3] = -7
        assert await mvm(x) == [-35] * 8                        # the weights survived reset
        return True

    assert run_amaranth(dut, bench)


def test_stuck_cell_reports_verify_failure_by_hand():
    cfg = TINY
    faults = FaultMap.from_list(cfg, [(0, 0, 1)])              # row 0, col 0, bit 0 stuck at 1
    dut = Macro(cfg, faults)

    async def bench(io):
        io.set("prog__valid", 1)
        io.set("prog__payload", 0)                               # row 0 := all zeros
        io.set("prog_resp__ready", 1)
        t = 0
        await io.tick()
        io.set("prog__valid", 0)
        while not io.get("prog_resp__valid"):
            await io.tick()
            t += 1
        word = io.get("prog_resp__payload")
        io.set("status__row", 0)
        return t, word, io.get("status__write_count")

    t, word, count = run_amaranth(dut, bench)
    rb, ab = cfg.row_bits, 3
    assert word & 7 == 0                                         # row 0
    assert (word >> rb) & 7 == cfg.rram_max_attempts             # retried to the limit
    assert (word >> (rb + ab)) & 1 == 0                          # not ok
    assert word >> (rb + ab + 1) == 1                            # cell 0 failed
    assert count == cfg.rram_max_attempts
    # valid from cycle attempts*(write+verify)+1 after the accept (accept was cycle 0)
    assert t + 1 == cfg.rram_max_attempts * (cfg.rram_write_cycles + cfg.rram_verify_cycles) + 1
