"""The chip models: ISA round trip, functional semantics against numpy, the cycle-exact
model against the functional one, hand-computed timing and counters, and every error."""

import numpy as np
import pytest

from rramcim.model.chip import ChipState, FunctionalChip, post_process
from rramcim.model.encoding import ErrorCode, PacketType, pack_vector, unpack_vector
from rramcim.model.chip_cycle import ChipCycleModel
from rramcim.model.config import PRESETS
from rramcim.model.isa import FORMATS, AsmError, assemble, decode, disassemble, encode
from rramcim.model.macro import FaultMap
from rramcim.model.progen import ksplit_program, random_program, requant_program

TINY = PRESETS["tiny"]
DEFAULT = PRESETS["default"]
ODD = PRESETS["tiny"].replace(name="odd", rows=12, cols=6, wbits=4, par=2, tile_ibuf_depth=5,
                              tile_acc_depth=7, mesh_x=3, mesh_y=1)


# --- ISA -----------------------------------------------------------------------

def test_isa_round_trip_random_words():
    rng = np.random.default_rng(0)
    for name, (op, fields, _) in FORMATS.items():
        for _ in range(50):
            ops = {f.name: int(rng.integers(0, 1 << f.width)) for f in fields}
            word = encode(name, **ops)
            ins = decode(word)
            assert ins.name == name and ins.ops == ops
            assert assemble(disassemble([word])) == [word]
            assert disassemble(assemble(ins.text())) == ins.text() + "\n"


def test_isa_rejects_and_names_the_problem():
    for text, match in [("frob 1,1", "line 1: unknown instruction 'frob'"),
                        ("nop\nmvm 0,0 a=1 count=1", "line 2: mvm: operand 'b' missing"),
                        ("ldw row=1 count=1 gaddr=0", "tile operand"),
                        ("mvm 0,0 a=4096 b=0 count=1", "a=4096 does not fit 12 bits"),
                        ("mvm 0,0 a=1 b=0 count=1 q=3", "no operand 'q'"),
                        ("sync 0,0 0,0", "cannot read operand"),
                        ("mvm 0,0 a=1 a=2 b=0 count=1", "given twice")]:
        with pytest.raises(AsmError, match=match):
            assemble(text)
    assert decode(63) is None                                  # not an opcode
    assert decode(encode("nop") | (1 << 40)) is None           # a field nop does not have
    assert disassemble([63]).startswith(".word")
    assert assemble(disassemble([63, 1 << 63])) == [63, 1 << 63]


# --- packing and post-processing --------------------------------------------------

@pytest.mark.parametrize("bits, width", [(8, 32), (8, 64), (4, 32), (32, 64), (32, 32), (5, 32)])
def test_pack_round_trip(bits, width):
    rng = np.random.default_rng(bits * width)
    v = rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), size=13)
    words = pack_vector(v, bits, width)
    assert len(words) == -(-13 // (width // bits)) and all(0 <= w < (1 << width) for w in words)
    assert np.array_equal(unpack_vector(words, 13, bits, width), v)


def _post_reference(acc, bias, shift, relu):
    """The contract, written plainly with Python integers."""
    out = []
    for a, b in zip(acc, bias):
        s = (int(a) + int(b)) % (1 << 32)
        s = s - (1 << 32) if s >= (1 << 31) else s
        y = s if shift == 0 else (s + (1 << (shift - 1))) // (1 << shift)
        y = min(max(y, -128), 127)
        out.append(max(y, 0) if relu else y)
    return out


@pytest.mark.parametrize("shift", range(32))
def test_post_process_every_shift(shift):
    rng = np.random.default_rng(shift)
    acc = np.concatenate([rng.integers(-(1 << 31), 1 << 31, size=40),
                          [2**31 - 1, -2**31, 0, 1, -1, (1 << shift) // 2, -((1 << shift) // 2)]])
    bias = np.concatenate([rng.integers(-(1 << 31), 1 << 31, size=40), [1, -1, 0, 0, 0, 0, 0]])
    for relu in (0, 1):
        got = post_process(acc, bias, shift, relu, DEFAULT)
        assert list(got) == _post_reference(acc, bias, shift, relu)


# --- functional model against numpy -------------------------------------------------

def _load(state, gbuf):
    for a, w in gbuf.items():
        state.write_gbuf(a, w)


def test_functional_k_split_across_tiles_with_psum_and_requant():
    cfg = TINY
    rng = np.random.default_rng(5)
    K, N, M = 2 * cfg.rows, cfg.cols, 3
    A = rng.integers(-128, 128, size=(M, K))
    B = rng.integers(-128, 128, size=(K, N))
    bias = rng.integers(-5000, 5000, size=N)
    g, W = {}, cfg.flit_width
    for r in range(K):
        g[r * cfg.words_w] = pack_vector(B[r], 8, W)
    xa = 100
    for m in range(M):
        for h in range(2):
            g[xa + (2 * m + h) * cfg.words_x] = pack_vector(A[m, h * cfg.rows:(h + 1) * cfg.rows], 8, W)
    g[200] = pack_vector(bias, 32, W)
    prog = assemble(f"""
        ldw 0,0 row=0 count={cfg.rows} gaddr=0
        ldw 1,0 row=0 count={cfg.rows} gaddr={cfg.rows * cfg.words_w}
        ldbias 1,0 gaddr=200
    """ + "".join(f"ldact 0,0 slot={m} count=1 gaddr={xa + 2 * m * cfg.words_x}\n"
                  f"ldact 1,0 slot={m} count=1 gaddr={xa + (2 * m + 1) * cfg.words_x}\n" for m in range(M)) + f"""
        mvm 0,0 a=0 b=0 count={M}
        mvm 1,0 a=0 b=0 count={M}
        psum 0,0 b=0 count={M} dx=1 dy=0 d=0
        barrier
        out 1,0 b=0 count={M} gaddr=300
        outq 1,0 b=0 count={M} gaddr=500 shift=9 relu=1
        sync 1,0
        barrier
        halt
    """)
    for model in (FunctionalChip, ChipCycleModel):
        st = ChipState(cfg)
        st.load_program(prog)
        _load(st, g)
        res = model(st).run()
        assert (res[1] if isinstance(res, tuple) else res.error) is None
        C = np.array([unpack_vector(st.gbuf[300 + m * cfg.words_a:], N, 32, W) for m in range(M)])
        assert np.array_equal(C, A @ B)
        Q = np.array([unpack_vector(st.gbuf[500 + m * cfg.words_q:], N, 8, W) for m in range(M)])
        assert np.array_equal(Q, np.array([_post_reference(C[m], bias, 9, 1) for m in range(M)]))


@pytest.mark.parametrize("cfg", [TINY, DEFAULT, ODD], ids=lambda c: c.name)
def test_ksplit_program_is_a_gemm_on_both_models(cfg):
    """The chained K split that the RTL tests run gives numpy's A @ B, raw and requantized."""
    text, g, ref = ksplit_program(cfg, seed=3)
    A, B, bias, m = ref["A"], ref["B"], ref["bias"], ref["m"]
    assert A.shape[1] == cfg.rows * cfg.mesh_x * cfg.mesh_y and m >= 2
    for model in (FunctionalChip, ChipCycleModel):
        st = ChipState(cfg)
        st.load_program(assemble(text))
        _load(st, g)
        res = model(st).run()
        assert (res[1] if isinstance(res, tuple) else res.error) is None
        W = cfg.flit_width
        C = np.array([unpack_vector(st.gbuf[ref["c_addr"] + i * cfg.words_a:], cfg.cols, 32, W) for i in range(m)])
        assert np.array_equal(C, A @ B)
        Q = np.array([unpack_vector(st.gbuf[ref["q_addr"] + i * cfg.words_q:], cfg.cols, 8, W) for i in range(m)])
        assert np.array_equal(Q, np.array([_post_reference(C[i], bias, 9, 1) for i in range(m)]))


@pytest.mark.parametrize("cfg", [TINY, DEFAULT], ids=lambda c: c.name)
def test_requant_program_covers_every_shift_and_relu(cfg):
    """The requantization program the RTL tests run, against the plain-integer contract."""
    text, g, ref = requant_program(cfg, seed=4)
    st = ChipState(cfg)
    st.load_program(assemble(text))
    _load(st, g)
    assert ChipCycleModel(st).run().error is None
    W = cfg.flit_width
    cases = ref["cases"]
    assert sorted((s, r) for _, s, r, *_ in cases) == [(s, r) for s in range(32) for r in (0, 1)]
    ties = 0
    for tile, shift, relu, a, vecs, bias in cases:
        for v, acc in enumerate(vecs):
            got = unpack_vector(st.gbuf[a + v * cfg.words_q:], cfg.cols, 8, W)
            assert list(got) == _post_reference(acc, bias, shift, relu), (tile, shift, relu, v)
            if shift:
                ties += sum(((int(x) + int(b)) % (1 << shift)) == (1 << (shift - 1)) for x, b in zip(acc, bias))
    assert ties >= 31 * 2                      # rounding ties at every shift
    for tile, a in ref["c_addr"].items():
        raw = unpack_vector(st.gbuf[a:], cfg.cols, 32, W)
        # out with bias=1: acc + bias wrapped to 32 bits, no shift or clamp
        want = [((int(x) + int(b) + (1 << 31)) % (1 << 32)) - (1 << 31)
                for x, b in zip(st.tiles[tile].acc[0], st.tiles[tile].bias)]
        assert list(raw) == want
    # the clamp saturates at both ends
    outs = np.concatenate([unpack_vector(st.gbuf[a:], cfg.cols, 8, W) for _, _, r, a, _, _ in cases if not r])
    assert (outs == 127).any() and (outs == -128).any()


def test_read_returns_the_stored_weights_with_faults():
    """Row 2 of tile (0,0) programmed and read back; row 5 of tile (1,1) never programmed but
    with stuck-at-1 cells, so its readback is not zero: readback sees the cells, faults included."""
    cfg = TINY
    faults = FaultMap.from_list(cfg, [(5, 3, 1), (5, 10, 1)])
    rng = np.random.default_rng(2)
    w = rng.integers(-128, 128, size=cfg.cols)
    prog = assemble("ldw 0,0 row=2 count=1 gaddr=0\nread 0,0 row=2 b=3\nout 0,0 b=3 count=1 gaddr=10\n"
                    "read 1,1 row=5 b=0\nout 1,1 b=0 count=1 gaddr=20\nsync 0,0\nsync 1,1\nbarrier\nhalt")
    for model in (FunctionalChip, ChipCycleModel):
        st = ChipState(cfg, {(1, 1): faults})
        st.load_program(prog)
        st.write_gbuf(0, pack_vector(w, 8, cfg.flit_width))
        model(st).run()
        assert np.array_equal(unpack_vector(st.gbuf[10:], cfg.cols, 32, cfg.flit_width), w)
        stuck = unpack_vector(st.gbuf[20:], cfg.cols, 32, cfg.flit_width)
        # cell 3 is bit 3 of column 0, cell 10 bit 2 of column 1 (LSB-first bit planes)
        assert list(stuck[:2]) == [8, 4] and not stuck[2:].any()


# --- cycle-exact model against the functional model -----------------------------------

@pytest.mark.parametrize("cfg", [TINY, DEFAULT, ODD], ids=lambda c: c.name)
@pytest.mark.parametrize("seed", range(5))
def test_cycle_model_equals_functional_on_random_programs(cfg, seed):
    text, g = random_program(cfg, seed, steps=60)
    prog = assemble(text)
    states = []
    for model in (FunctionalChip, ChipCycleModel):
        st = ChipState(cfg)
        st.load_program(prog)
        _load(st, g)
        r = model(st).run()
        states.append((st, r))
    (f, (n, ferr)), (c, cres) = states
    assert ferr is None and cres.error is None
    assert f.gbuf == c.gbuf
    for k in f.tiles:
        for name in ("acc", "ibuf", "bias"):
            assert np.array_equal(getattr(f.tiles[k], name), getattr(c.tiles[k], name)), (k, name)
        assert np.array_equal(f.tiles[k].macro.cells, c.tiles[k].macro.cells)
        assert np.array_equal(f.tiles[k].macro.write_counts, c.tiles[k].macro.write_counts)
    assert cres.counter("instructions") == n
    # counters that follow from the program alone
    ins = [decode(w) for w in prog]
    mvms = sum(i.ops["count"] for i in ins if i.name == "mvm") + sum(1 for i in ins if i.name == "read")
    assert cres.total("mvms") == mvms and cres.total("macs") == mvms * cfg.rows * cfg.cols
    rows_written = sum(i.ops["count"] for i in ins if i.name == "ldw")
    assert cres.total("rram_pulses") == rows_written == cres.total("rram_verify_reads")


# --- timing and counters by hand ----------------------------------------------------------

def _run(cfg, text, gbuf=None, faults=None):
    st = ChipState(cfg, faults or {})
    assert st.load_program(assemble(text) if isinstance(text, str) else text) is None
    _load(st, gbuf or {})
    return ChipCycleModel(st).run(), st


def test_timing_of_the_simplest_programs():
    assert _run(TINY, "halt")[0].cycles == 1
    assert _run(TINY, "nop\nnop\nhalt")[0].cycles == 3
    # barrier with nothing outstanding: fetch + one wait cycle
    assert _run(TINY, "barrier\nhalt")[0].cycles == 3


def test_timing_and_counters_of_one_load_by_hand():
    """ldact of one vector to tile (1,1) of tiny, then sync/barrier: every cycle accounted for."""
    cfg = TINY
    res, st = _run(cfg, "ldact 1,1 slot=0 count=1 gaddr=0\nsync 1,1\nbarrier\nhalt")
    L = 1 + cfg.words_x                # payload words of the ACT packet
    hops = 2                           # (0,0) -> (1,0) -> (1,1)
    # cycle 1: fetch ldact; header offered at 2 (one flit per cycle, no contention): last flit 2+L
    # cycle 3+L: fetch sync; its CMD packet (cmd_words = 2 on 32-bit flits) goes out at 4+L..6+L
    # cycle 7+L: fetch barrier; waits from 8+L for the ACK.
    # the tile: ACT header reaches it hops+1 cycles after it left the controller's NI (the
    # controller's link into router (0, 0) adds no cycle), payload follows back to back
    head_at_tile = 2 + hops + 1
    act_done = head_at_tile + L + 1          # exec cycle
    cmd_head = 4 + L + hops + 1
    assert cmd_head > act_done               # the tile is idle when the sync arrives
    cmd_exec = cmd_head + cfg.cmd_words + 1
    ack_sent = cmd_exec + 1                  # header offered the cycle after exec
    ack_at_ctrl = ack_sent + hops + 1        # through (1,1), (1,0), (0,0) and out north
    # outstanding drops at the end of ack_at_ctrl; the wait cycle after sees 0, then halt is fetched
    assert res.cycles == ack_at_ctrl + 2
    assert res.counter("noc_flits") == (1 + L) + (1 + cfg.cmd_words) + 1
    assert res.counter("noc_flit_hops") == hops * res.counter("noc_flits")
    assert res.counter("gbuf_read_bits") == cfg.words_x * cfg.flit_width
    assert res.counter("instructions") == 4
    assert res.counter("ibuf_write_bits", 3) == cfg.rows * cfg.xbits
    # busy: receiving the payload and the exec cycle (the header is taken while idle), and the
    # cycle the ACK is sent
    assert res.counter("busy", 3) == (L + 1) + (cfg.cmd_words + 1 + 1)
    assert res.counter("barrier_wait") == ack_at_ctrl - (7 + L)


# --- errors -----------------------------------------------------------------------------------

@pytest.mark.parametrize("text, code, pc", [
    (".word 0x3f\nhalt", ErrorCode.ILLEGAL_OPCODE, 0),
    ("nop\n.word 0x10000000001\nhalt", ErrorCode.ILLEGAL_OPCODE, 1),
    ("mvm 2,0 a=0 b=0 count=1\nhalt", ErrorCode.BAD_TILE, 0),
    ("nop\npsum 0,0 b=0 count=1 dx=0 dy=5 d=0\nhalt", ErrorCode.BAD_TILE, 1),
    ("psum 1,1 b=0 count=1 dx=1 dy=1 d=0\nhalt", ErrorCode.BAD_TILE, 0),
    ("ldact 0,0 slot=0 count=2 gaddr=1021\nhalt", ErrorCode.BAD_GBUF, 0),
    ("outq 0,0 b=0 count=1 gaddr=1023 shift=0\nhalt", ErrorCode.BAD_GBUF, 0),
    ("mvm 0,0 a=0 b=0 count=0\nhalt", ErrorCode.BAD_TILE_ADDR, 0),
    ("mvm 0,0 a=7 b=0 count=2\nhalt", ErrorCode.BAD_TILE_ADDR, 0),
    ("ldw 0,0 row=8 count=1 gaddr=0\nhalt", ErrorCode.BAD_TILE_ADDR, 0),
    ("read 0,0 row=0 b=8\nhalt", ErrorCode.BAD_TILE_ADDR, 0),
])
def test_errors_are_found_at_fetch(text, code, pc):
    res, _ = _run(TINY, text)
    assert (res.error.code, res.error.pc) == (code, pc)
    assert res.cycles == pc + 1           # nops before it, then the failing fetch
    st = ChipState(TINY)
    st.load_program(assemble(text))
    n, err = FunctionalChip(st).run()
    assert (err.code, err.pc) == (code, pc)


def test_imem_overflow():
    res, _ = _run(TINY, "nop\n" * TINY.imem_depth)
    assert (res.error.code, res.error.pc, res.cycles) == (ErrorCode.IMEM_OVERFLOW, TINY.imem_depth,
                                                         TINY.imem_depth + 1)
    st = ChipState(TINY)
    err = st.load_program([0] * (TINY.imem_depth + 1))
    assert err.code == ErrorCode.IMEM_OVERFLOW


def test_rram_verify_failure_stops_the_program():
    cfg = TINY
    faults = FaultMap.from_list(cfg, [(3, 0, 1)])          # row 3, cell 0 stuck at 1
    w = np.zeros(cfg.cols, dtype=int)                          # needs cell 0 = 0: fails
    g = {0: pack_vector(w, 8, cfg.flit_width)}
    text = "nop\nldw 1,0 row=3 count=1 gaddr=0\n" + "nop\n" * 60 + "halt"
    res, st = _run(cfg, text, g, {(1, 0): faults})
    e = res.error
    assert (e.code, e.pc, e.tile, e.row) == (ErrorCode.RRAM_VERIFY, 1, (1, 0), 3)
    assert res.counter("rram_pulses", 1) == cfg.rram_max_attempts
    assert res.cycles < 60                     # stopped at the first fetch after the report arrived
    assert st.tiles[(1, 0)].macro.verify_failures == 1
    st2 = ChipState(cfg, {(1, 0): faults})
    st2.load_program(assemble(text))
    _load(st2, g)
    _, err = FunctionalChip(st2).run()
    assert (err.code, err.pc, err.tile, err.row) == (ErrorCode.RRAM_VERIFY, 1, (1, 0), 3)


def test_rram_cells_and_counts_survive_into_the_next_run():
    cfg = TINY
    w = np.arange(cfg.cols) - 4
    res, st = _run(cfg, "ldw 0,1 row=1 count=1 gaddr=0\nsync 0,1\nbarrier\nhalt",
                   {0: pack_vector(w, 8, cfg.flit_width)})
    assert st.tiles[(0, 1)].macro.write_counts[1] == 1
    st.load_program(assemble("read 0,1 row=1 b=0\nout 0,1 b=0 count=1 gaddr=50\nsync 0,1\nbarrier\nhalt"))
    ChipCycleModel(st).run()
    assert np.array_equal(unpack_vector(st.gbuf[50:], cfg.cols, 32, cfg.flit_width), w)
    assert PacketType.ACK != PacketType.RESULT


def test_docs_show_the_encoding_table():
    from pathlib import Path
    from rramcim.model.isa import markdown_table
    doc = (Path(__file__).resolve().parents[2] / "docs" / "isa.md").read_text()
    assert markdown_table() in doc, "docs/isa.md: regenerate the table with rramcim.model.isa.markdown_table()"
