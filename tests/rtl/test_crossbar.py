"""The crossbar alone on Amaranth's simulator, against numpy popcounts."""

import numpy as np
from amaranth.sim import Simulator

from rramcim.rtl.crossbar import Crossbar, popcount
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
        s0 = rng.random((cfg.rows, cpr)) < 0.05
        s1 = (rng.random((cfg.rows, cpr)) < 0.05) & ~s0
        dut = Crossbar(cfg)
        pack = lambda a: int(sum(1 << int(i) for i in np.flatnonzero(a.reshape(-1))))

        async def bench(ctx):
            ctx.set(dut.stuck0, pack(s0))
            ctx.set(dut.stuck1, pack(s1))
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
