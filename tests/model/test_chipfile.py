"""model/chipfile.py: a kept chip's file (round trip, the layout written out by hand, every malformed
field refused in one line naming it), its moves to and from the model and the RTL's cell words, and the
compiler leaving out the rows a kept chip already holds."""

import io
import zipfile

import numpy as np
import pytest

from rramcim.model.chip import ChipState
from rramcim.model.chipfile import ChipFileError, KeptChip, load_chip
from rramcim.model.compiler import compile_gemm
from rramcim.model.config import PRESETS
from rramcim.model.isa import Op, decode
from rramcim.rtl.macro import WRITE_COUNT_BITS

TINY = PRESETS["tiny"]


def _random_chip(cfg=TINY, seed=0):
    r = np.random.default_rng(seed)
    k = KeptChip.fresh(cfg)
    k.rram[:] = r.integers(-(1 << (cfg.wbits - 1)), 1 << (cfg.wbits - 1), k.rram.shape)
    k.write_counts[:] = r.integers(0, 2**32, k.write_counts.shape)
    return k


def _fields(k: KeptChip) -> dict:
    with np.load(io.BytesIO(k.to_bytes())) as z:
        return {f: z[f] for f in z.files}


def _save(path, fields):
    np.savez(path, **fields)
    return path


def test_round_trip_and_layout(tmp_path):
    k = _random_chip()
    p = tmp_path / "s.npz"
    k.save(p)
    assert load_chip(p, TINY) == k
    f = _fields(k)
    assert set(f) == {"format", "config_hash", "config_name", "rram", "write_counts"}
    assert f["rram"].shape == (2, 2, 8, 8) and f["rram"].dtype == np.int8
    assert f["write_counts"].shape == (2, 2, 8)
    import hashlib
    assert str(f["config_hash"]) == hashlib.sha256(TINY.key().encode()).hexdigest()
    # a file written by hand (any integer dtype) reads the same
    hand = dict(f, rram=f["rram"].astype(np.int64), write_counts=f["write_counts"].astype(np.uint64))
    assert load_chip(_save(tmp_path / "h.npz", hand), TINY) == k
    assert KeptChip.fresh(TINY) == KeptChip(TINY, np.zeros((2, 2, 8, 8)), np.zeros((2, 2, 8)))


def test_model_state_and_rtl_cell_words():
    k = _random_chip(seed=1)
    st = ChipState(TINY)
    k.apply(st)
    # the model's cells: weight bit b of column c in cell c*wbits + b, two's complement (written by hand here)
    for (x, y), t in st.tiles.items():
        for r in range(TINY.rows):
            for c in range(TINY.cols):
                u = int(k.rram[y, x, r, c]) & 0xFF
                assert [int(v) for v in t.macro.cells[r, c * 8:(c + 1) * 8]] == [(u >> b) & 1 for b in range(8)]
        assert list(t.macro.write_counts) == list(k.write_counts[y, x])
    assert KeptChip.from_state(st) == k
    words = k.cell_words()
    x, y, r = 1, 0, 5
    want = sum((int(k.rram[y, x, r, c]) & 0xFF) << (8 * c) for c in range(TINY.cols))
    assert words[y][x][r] == want
    assert KeptChip.from_cell_words(TINY, words, k.write_counts.tolist()) == k
    assert WRITE_COUNT_BITS == 32        # the file's bound on a count is the RTL counter's width


@pytest.mark.parametrize("change, words", [
    (lambda f: f.pop("rram"), ["rram", "missing"]),
    (lambda f: f.pop("config_hash"), ["config_hash", "missing"]),
    (lambda f: f.update(extra=np.zeros(2)), ["extra", "unexpected"]),
    (lambda f: f.update(rram=np.zeros((2, 2, 8, 7), np.int8)), ["rram", "shape"]),
    (lambda f: f.update(write_counts=np.zeros((2, 2, 9), np.int64)), ["write_counts", "shape"]),
    (lambda f: f.update(rram=np.zeros((2, 2, 8, 8), np.float32)), ["rram", "dtype"]),
    (lambda f: f.update(rram=np.full((2, 2, 8, 8), 200, np.int16)), ["rram", "200"]),
    (lambda f: f.update(write_counts=np.full((2, 2, 8), -1, np.int64)), ["write_counts", "-1"]),
    (lambda f: f.update(write_counts=np.full((2, 2, 8), 2**32, np.int64)), ["write_counts", "4294967296"]),
    (lambda f: f.update(format=np.array(2)), ["format", "2"]),
    (lambda f: f.update(config_hash=np.array(["ab", "cd"])), ["config_hash", "scalar"]),
    (lambda f: f.update(config_hash=np.array("0" * 64)), ["config_hash", "tiny"]),
])
def test_malformed_files_are_one_line(tmp_path, change, words):
    f = _fields(_random_chip())
    change(f)
    p = _save(tmp_path / "bad.npz", f)
    with pytest.raises(ChipFileError) as e:
        load_chip(p, TINY)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(str(p)), msg
    for w in words:
        assert w in msg, (w, msg)


def test_other_files_and_other_configs(tmp_path):
    p = tmp_path / "s.npz"
    _random_chip().save(p)
    with pytest.raises(ChipFileError, match="config_hash.*'tiny'.*'default'"):
        load_chip(p, PRESETS["default"])
    with pytest.raises(ChipFileError, match="same name, other fields"):
        load_chip(p, TINY.replace(rram_max_attempts=3))
    (tmp_path / "t.npz").write_text("not a zip")
    with pytest.raises(ChipFileError, match="not a readable .npz"):
        load_chip(tmp_path / "t.npz", TINY)
    np.save(tmp_path / "a.npy", np.zeros(3))
    with pytest.raises(ChipFileError, match="a .npy array"):
        load_chip(tmp_path / "a.npy", TINY)
    with zipfile.ZipFile(tmp_path / "z.npz", "w") as z:
        z.writestr("notes.txt", "hello")
    with pytest.raises(ChipFileError, match="notes.txt"):
        load_chip(tmp_path / "z.npz", TINY)
    with pytest.raises(ChipFileError, match="no such file"):
        load_chip(tmp_path / "none.npz", TINY)


def _ldw_rows(plan):
    """(tile, row) of every row an ldw of the plan writes."""
    out = []
    for w in plan.windows:
        for word in w.program:
            ins = decode(word)
            if ins.op == Op.LDW:
                o = ins.ops
                out += [((o["tx"], o["ty"]), o["row"] + i) for i in range(o["count"])]
    return out


def test_compiler_writes_only_the_rows_that_differ():
    r = np.random.default_rng(4)
    A = r.integers(-128, 128, (6, 16))
    B = r.integers(-128, 128, (16, 13))            # 2 x 2 blocks of 8 x 8: the four tiles, one pass
    plain = compile_gemm(TINY, A, B)
    fresh = compile_gemm(TINY, A, B, rram=KeptChip.fresh(TINY).rram)
    # on a fresh chip only the all-zero rows of B's (zero padded) blocks are left out
    zero_rows = sum(1 for k in range(16) for nb in range(2) if not B[k, nb * 8:(nb + 1) * 8].any())
    assert len(_ldw_rows(fresh)) == len(_ldw_rows(plain)) - zero_rows == 32 - zero_rows
    kept = compile_gemm(TINY, A, B, rram=fresh.rram)
    assert _ldw_rows(kept) == [] and len(kept.windows) == len(plain.windows) - 1
    assert [w.program for w in kept.windows] == [w.program for w in plain.windows[1:]]
    # three changed elements in three rows of three blocks, two more in a row already changed
    B2 = B.copy()
    for k, n in ((3, 2), (11, 12), (12, 0), (12, 1), (3, 5)):
        B2[k, n] = B2[k, n] ^ 1
    changed = {(k, n // 8) for k, n in ((3, 2), (11, 12), (12, 0), (12, 1), (3, 5))}
    again = compile_gemm(TINY, A, B2, rram=fresh.rram)
    assert len(_ldw_rows(again)) == len(changed) == 3
    assert np.array_equal(again.rram, compile_gemm(TINY, A, B2, rram=KeptChip.fresh(TINY).rram).rram)
    # the same state gives the same plan
    assert [w.program for w in compile_gemm(TINY, A, B2, rram=fresh.rram).windows] == \
        [w.program for w in again.windows]
