"""Banks (``cfg.banks`` > 1) on Amaranth's simulator: crossbar, macro and tile against the models.

Configs: tiny with 4 banks (powers of two everywhere), tiny with 3 banks (a bank count that is
not a power of two) and p2w4 with 3 banks (12-row banks: an RRAM row splits into bank and row by
division, not by bit fields). The macro runs :class:`~rramcim.sim.benches.macro.MacroBench`
(every RRAM row written, a random bank with every vector, random stalls) against
:class:`~rramcim.model.macro.MacroCycleModel`; the tile runs the lockstep bench of
tests/rtl/test_tile.py, whose stream writes rows in every bank, names random banks in ``mvm``
and ``read``, reduces over banks with and without ``acc`` and takes the corners (the last bank,
a reduction over every bank, one of a single vector). Both benches inject a wrong bank into the
model and must then fail. :func:`banked_program` draws the chip programs of
tests/sim/test_banks_cocotb.py.
"""

import numpy as np
import pytest
from amaranth.sim import Simulator

from rramcim.model.chip import TileState
from rramcim.model.chip_cycle import TileModel
from rramcim.model.encoding import CTRL, WROW_ARG, PacketType, command_words, pack_fields, pack_header, pack_vector
from rramcim.model.isa import COUNT_MAX, encode
from rramcim.model.macro import FaultMap
from rramcim.rtl.crossbar import Crossbar, crossbar_module_name
from rramcim.rtl.macro import Macro
from rramcim.rtl.tile import Tile
from rramcim.sim.benches.amaranth_io import run_amaranth
from rramcim.sim.benches.io import CheckError
from rramcim.sim.benches.macro import MacroBench
from tests.configs import P2W4, TINY
from tests.rtl import test_tile_stream
from tests.rtl.chip_blocks import BlockMismatch, RxFeed
from tests.rtl.test_tile import run_tile

B4 = TINY.replace(name="tinyb4", banks=4)
B3 = TINY.replace(name="tinyb3", banks=3)
P2W4B3 = P2W4.replace(name="p2w4b3", banks=3)
CONFIGS = {"tinyb4": B4, "tinyb3": B3, "p2w4b3": P2W4B3}


def _pack(bits) -> int:
    return int(sum(1 << int(i) for i in np.flatnonzero(np.asarray(bits).reshape(-1))))


# -- the crossbar --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["tinyb3", "p2w4b3"])
def test_crossbar_banks(name):
    """Every RRAM row written (the first bank last: a write lands in its own bank only), read back through
    verify, and popcounts of random planes at every bank against numpy."""
    cfg = CONFIGS[name]
    rng = np.random.default_rng(3)
    cpr, pw = cfg.cells_per_row, cfg.popcount_bits
    cells = rng.integers(0, 2, size=(cfg.rram_rows, cpr))
    dut = Crossbar(cfg)

    async def bench(ctx):
        for r in reversed(range(cfg.rram_rows)):
            ctx.set(dut.wr_en, 1)
            ctx.set(dut.wr_row, r)
            ctx.set(dut.wr_data, _pack(cells[r]))
            await ctx.tick()
        ctx.set(dut.wr_en, 0)
        for r in range(cfg.rram_rows):
            ctx.set(dut.rd_row, r)
            assert ctx.get(dut.rd_data) == _pack(cells[r]), f"verify read of RRAM row {r}"
        for k in [cfg.banks - 1] + [int(v) for v in rng.integers(0, cfg.banks, 8)]:
            planes = rng.integers(0, 2, size=(cfg.rows, cfg.par))
            ctx.set(dut.bank, k)
            ctx.set(dut.x_planes, _pack(planes))
            await ctx.tick()
            counts = ctx.get(dut.counts)
            bank = cells[k * cfg.rows:(k + 1) * cfg.rows].astype(bool)
            for j in range(cpr):
                for q in range(cfg.par):
                    got = (counts >> ((j * cfg.par + q) * pw)) & ((1 << pw) - 1)
                    assert got == int((bank[:, j] & planes[:, q].astype(bool)).sum()), f"bank {k} cell {j}"

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


def test_crossbar_name_and_faults():
    """The module name carries the banks (one bank: the name of before); stuck cells with banks are refused."""
    assert crossbar_module_name(TINY) == "rramcim_crossbar_r8_c8_w8_p1"
    assert crossbar_module_name(B4) == "rramcim_crossbar_r8_c8_w8_p1_b4"
    faults = FaultMap.from_list(B4, [(9, 0, 1)])
    for make in (lambda: Crossbar(B4, faults), lambda: Macro(B4, faults), lambda: Tile(B4, faults)):
        with pytest.raises(ValueError, match="not supported yet"):
            make()


# -- the macro -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, stall", [("tinyb4", 0.0), ("tinyb4", 0.4), ("tinyb3", 0.4), ("p2w4b3", 0.3)])
def test_macro_banks(name, stall):
    """Values, cycles, responses and every RRAM row's write counter equal to the model's, a reset between
    the phases."""
    cfg = CONFIGS[name]
    bench = MacroBench(cfg, seed=5, n_mvm=60, stall=stall, phases=2)
    summary = run_amaranth(Macro(cfg), bench.run)
    assert summary["mvms"] == 120 and summary["rows_programmed"] == 2 * (cfg.rram_rows + cfg.rram_rows // 4)


def test_macro_checker_catches_a_wrong_bank():
    bench = MacroBench(B4, seed=2, n_mvm=20, model_bug="bank")
    with pytest.raises(CheckError, match="value mismatch"):
        run_amaranth(Macro(B4), bench.run)


def test_macro_banks_by_hand():
    """Hand-checked: bank 2's row 3 := 5 leaves the other banks zero; a one-hot input on row 3 reads 5 at
    bank 2 and 0 at banks 0, 1 and 3; the write counter is the RRAM row's (2*8 + 3 = 19)."""
    cfg = B4
    dut = Macro(cfg)

    async def bench(io):
        io.set("prog__valid", 1)
        io.set("prog__payload", 19 | sum(5 << (cfg.rram_row_bits + 8 * c) for c in range(cfg.cols)))
        io.set("prog_resp__ready", 1)
        await io.tick()
        io.set("prog__valid", 0)
        while not io.get("prog_resp__valid"):
            await io.tick()
        assert io.get("prog_resp__payload") & ((1 << cfg.rram_row_bits) - 1) == 19
        await io.tick()
        got = []
        for bank in (2, 0, 1, 3):
            io.set("x__valid", 1)
            io.set("x__payload", 1 << (8 * 3))
            io.set("bank", bank)
            io.set("y__ready", 1)
            while not io.get("x__ready"):
                await io.tick()
            await io.tick()
            io.set("x__valid", 0)
            io.set("bank", (bank + 1) % cfg.banks)          # only the bank at the transfer counts
            while not io.get("y__valid"):
                await io.tick()
            got.append(io.get("y__payload") & 0xFFFFFFFF)
            await io.tick()
        counts = []
        for row in (3, 19, 27):
            io.set("status__row", row)
            await io.settle()
            counts.append(io.get("status__write_count"))
        return got, counts

    assert run_amaranth(dut, bench) == ([5, 0, 0, 0], [0, 1, 0])


# -- the tile ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, seed", [("tinyb4", 1), ("tinyb3", 2), ("p2w4b3", 3)])
def test_tile_banks(name, seed):
    """The tile in lockstep with its model: every flit, cycle and counter; the final state through its port."""
    res = run_tile(CONFIGS[name], seed)
    assert res["counters"]["mvms"] > 20 and res["counters"]["acc_read_bits"] > 0


class _NextBank(TileModel):
    """A model bug: the tile's macro computes with the bank after the one asked for."""

    def __init__(self, cfg, data, pos):
        right = data.macro.effective_weights
        data.macro.effective_weights = lambda bank=0: right((bank + 1) % cfg.banks)
        super().__init__(cfg, data, pos)


def test_tile_checker_catches_a_wrong_bank():
    with pytest.raises(BlockMismatch, match="word"):
        run_tile(B4, 1, steps=10, model_cls=_NextBank)


class _AfterReduction(RxFeed):
    """The sequence bench's feed with, first, a reduction over banks 1 and 2 with acc (weights there):
    the sequence that follows must compute with bank 0 and add only where it joins."""

    def __init__(self, cfg, idle):
        super().__init__(cfg, idle)
        rng = np.random.default_rng(9)
        pos = (cfg.mesh_x - 1, cfg.mesh_y - 1)
        W = cfg.flit_width
        for r in range(cfg.rows, 3 * cfg.rows):
            w = pack_vector(rng.integers(-128, 128, cfg.cols), cfg.wbits, W)
            self.add(pack_header(cfg, pos, CTRL, PacketType.WROW, 1 + len(w)), [pack_fields(WROW_ARG, row=r)] + w)
        for slot in (0, 1):
            x = pack_vector(rng.integers(-128, 128, cfg.rows), cfg.xbits, W)
            self.add(pack_header(cfg, pos, CTRL, PacketType.ACT, 1 + len(x)), [slot] + x)
        cmd = command_words(cfg, encode("mvm", tx=pos[0], ty=pos[1], a=0, count=2, b=0, acc=1, bank=1, reduce=1))
        self.add(pack_header(cfg, pos, CTRL, PacketType.CMD, len(cmd)), cmd)


@pytest.mark.parametrize("seed", [1, 2])
def test_sequence_after_a_reduction_uses_bank_0(seed, monkeypatch):
    monkeypatch.setattr(test_tile_stream, "RxFeed", _AfterReduction)
    res = test_tile_stream.run_stream(B4, seed)
    assert res["counters"]["mvms"] == res["desc"]["count"] + 2


# -- chip programs -------------------------------------------------------------------------------------------

def banked_program(cfg, seed: int, steps: int = 60) -> tuple[str, dict]:
    """``(assembly, {gbuf address: words})``: a random race-free program for a config of several banks.

    Every bank of every tile is programmed (from random weight rows), every input slot loaded; then on
    every tile the corners: an ``mvm`` with the last bank, a reduction over every bank (as many as the
    input buffer and ``count`` allow), one with ``acc``, a reduction of one vector, a ``read`` of the last
    bank's last row, all sent out. Then random steps: ``ldw`` to random banks and rows, ``ldact``, ``mvm``
    with a random bank (half of them reductions, with or without ``acc``), ``read`` with a bank, ``out``,
    ``outq``, ``sync``, ``barrier``. Outputs go to words nothing reads; it ends with a ``sync`` to every
    tile, a ``barrier`` and ``halt``."""
    rng = np.random.default_rng(seed)
    W, R, B = cfg.flit_width, cfg.rows, cfg.banks
    IB, AC = cfg.tile_ibuf_depth, cfg.tile_acc_depth
    assert B >= 2 and IB >= 4 and AC >= 5
    gbuf, addr = {}, 0

    def region(n, words, bits, elems):
        nonlocal addr
        base = addr
        for _ in range(n):
            v = rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), size=elems)
            gbuf[addr] = pack_vector(v, bits, W)
            addr += words
        return base

    n_w = 2 * R
    w_base = region(n_w, cfg.words_w, cfg.wbits, cfg.cols)
    x_base = region(IB, cfg.words_x, cfg.xbits, cfg.rows)
    out_ptr = addr
    tiles = [f"{x},{y}" for y in range(cfg.mesh_y) for x in range(cfg.mesh_x)]
    lines = []

    def out(t, b, n, op="out"):
        nonlocal out_ptr
        words = cfg.words_a if op == "out" else cfg.words_q
        if out_ptr + n * words > cfg.gbuf_words:
            return
        extra = f" bias={int(rng.integers(2))}" if op == "out" else f" shift={int(rng.integers(32))} relu=1"
        lines.append(f"{op} {t} b={b} count={n} gaddr={out_ptr}{extra}")
        out_ptr += n * words

    for t in tiles:
        for k in range(B):
            g = w_base + int(rng.integers(0, n_w - R + 1)) * cfg.words_w
            lines.append(f"ldw {t} row=0 count={R} gaddr={g} bank={k}")
        lines.append(f"ldact {t} slot=0 count={IB} gaddr={x_base}")
    n_all = min(B, IB, COUNT_MAX)
    for t in tiles:
        lines += [f"mvm {t} a=0 count=1 b=0 bank={B - 1}",
                  f"mvm {t} a=0 count={n_all} b=1 bank={B - n_all} reduce=1",
                  f"mvm {t} a=1 count=2 b=2 bank={B - 2} reduce=1 acc=1",
                  f"mvm {t} a=3 count=1 b=3 bank={B - 1} reduce=1",
                  f"read {t} row={R - 1} b=4 bank={B - 1}"]
        out(t, 0, 5)
    ops = ["ldw", "ldact", "mvm", "mvm", "mvm", "read", "out", "outq", "sync", "barrier"]
    for _ in range(steps):
        op, t = ops[rng.integers(len(ops))], tiles[rng.integers(len(tiles))]
        if op == "ldw":
            n = int(rng.integers(1, 4))
            r = int(rng.integers(0, R - n + 1))
            g = w_base + int(rng.integers(0, n_w - n + 1)) * cfg.words_w
            lines.append(f"ldw {t} row={r} count={n} gaddr={g} bank={int(rng.integers(B))}")
        elif op == "ldact":
            n = int(rng.integers(1, 4))
            lines.append(f"ldact {t} slot={int(rng.integers(0, IB - n + 1))} count={n} "
                         f"gaddr={x_base + int(rng.integers(0, IB - n + 1)) * cfg.words_x}")
        elif op == "mvm" and rng.random() < 0.5:
            n = int(rng.integers(1, min(B, IB, COUNT_MAX) + 1))
            lines.append(f"mvm {t} a={int(rng.integers(0, IB - n + 1))} count={n} b={int(rng.integers(AC))} "
                         f"acc={int(rng.integers(2))} bank={int(rng.integers(0, B - n + 1))} reduce=1")
        elif op == "mvm":
            n = int(rng.integers(1, min(4, IB, AC) + 1))
            lines.append(f"mvm {t} a={int(rng.integers(0, IB - n + 1))} count={n} b={int(rng.integers(0, AC - n + 1))} "
                         f"acc={int(rng.integers(2))} bank={int(rng.integers(B))}")
        elif op == "read":
            lines.append(f"read {t} row={int(rng.integers(R))} b={int(rng.integers(AC))} bank={int(rng.integers(B))}")
        elif op in ("out", "outq"):
            n = int(rng.integers(1, 4))
            out(t, int(rng.integers(0, AC - n + 1)), n, op)
        elif op == "sync":
            lines.append(f"sync {t}")
        else:
            lines.append("barrier")
    lines += [f"sync {t}" for t in tiles] + ["barrier", "halt"]
    return "\n".join(lines) + "\n", gbuf


@pytest.mark.parametrize("name", ["tinyb3", "p2w4b3"])
def test_banked_programs_run_on_the_model(name):
    """The programs are legal (no error) and their corners name the last bank and reduce over every bank."""
    from rramcim.model.chip import ChipState
    from rramcim.model.chip_cycle import ChipCycleModel
    from rramcim.model.isa import assemble
    cfg = CONFIGS[name]
    text, g = banked_program(cfg, 1)
    assert f"bank={cfg.banks - 1}" in text and f"count={cfg.banks} b=1 bank=0 reduce=1" in text
    state = ChipState(cfg)
    assert state.load_program(assemble(text)) is None
    for a, words in g.items():
        state.write_gbuf(a, words)
    res = ChipCycleModel(state).run()
    assert res.error is None and res.counters
