"""The crossbar alone on Amaranth's simulator, against numpy popcounts."""

import numpy as np
from amaranth.sim import Simulator

from rramcim.model.macro import FaultMap
from rramcim.rtl.crossbar import Crossbar, crossbar_module_name, popcount
from tests.configs import P2W4, TINY


def test_popcount_tree_sizes():
    assert popcount([]) == 0
    for n in (1, 2, 3, 7, 8, 13):
        from amaranth.hdl import Const
        bits = [Const(1, 1)] * n
        assert popcount(bits).shape().width >= n.bit_length()


def _bits(word, n):
    return np.array([(word >> i) & 1 for i in range(n)], dtype=np.int64)


def test_crossbar_counts_and_faults():
    for cfg in (TINY, P2W4):
        rng = np.random.default_rng(7)
        cpr = cfg.cells_per_row
        faults = FaultMap.random(cfg, 12, rng)
        s0, s1 = faults.masks(cfg)
        assert s0.any() and s1.any()
        dut = Crossbar(cfg, faults)
        pack = lambda a: int(sum(1 << int(i) for i in np.flatnonzero(a.reshape(-1))))

        async def bench(ctx):
            cells = rng.integers(0, 2, size=(cfg.rows, cpr))
            for r in range(cfg.rows):
                ctx.set(dut.wr_en, 1)
                ctx.set(dut.wr_row, r)
                ctx.set(dut.wr_data, pack(cells[r]))
                await ctx.tick()
            ctx.set(dut.wr_en, 0)
            eff = (cells.astype(bool) & ~s0) | s1
            for r in range(cfg.rows):
                ctx.set(dut.rd_row, r)
                assert ctx.get(dut.rd_data) == pack(eff[r])
            for _ in range(20):
                planes = rng.integers(0, 2, size=(cfg.rows, cfg.par))
                ctx.set(dut.x_planes, pack(planes))
                await ctx.tick()
                counts = ctx.get(dut.counts)
                pw = cfg.popcount_bits
                for j in range(cpr):
                    for q in range(cfg.par):
                        k = j * cfg.par + q
                        got = (counts >> (k * pw)) & ((1 << pw) - 1)
                        assert got == int((eff[:, j] & planes[:, q].astype(bool)).sum())

        sim = Simulator(dut)
        sim.add_clock(1e-8)
        sim.add_testbench(bench)
        sim.run()


def test_module_name_per_shape_and_fault_map():
    assert crossbar_module_name(TINY) == "rramcim_crossbar_r8_c8_w8_p1"
    f1 = FaultMap.from_list(TINY, [(0, 0, 1)])
    f2 = FaultMap.from_list(TINY, [(0, 0, 0)])
    names = {crossbar_module_name(TINY, f) for f in (None, FaultMap(), f1, f2)}
    assert len(names) == 3
