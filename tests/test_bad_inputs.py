"""Issue 17, loaders, config limits and asm operands: every bad input to the CLI (in-process, model backend,
tiny sizes) exits 2 with exactly one line ``rramcim: error: ...`` on stderr, no traceback, no output file
(an existing one left byte for byte), and its input files byte for byte as they were."""

import hashlib
import io
import struct
import zipfile

import numpy as np
import pytest
from numpy.lib import format as npformat

from rramcim.cli import main

# -- malformed files, built here --------------------------------------------------------------------------


def _npy(a) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=True)
    return buf.getvalue()


def _declares(shape, descr="|i1") -> bytes:
    buf = io.BytesIO()
    npformat.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue() + b"\0" * 64


def _net_members() -> dict:
    """A good 2-layer net, 4-3-2, as .npz members."""
    return {"layers.npy": _npy(np.array(2)), "w0.npy": _npy(np.ones((4, 3), np.int8)),
            "b0.npy": _npy(np.zeros(3, np.int32)), "shift0.npy": _npy(np.array(1)), "relu0.npy": _npy(np.array(1)),
            "w1.npy": _npy(np.ones((3, 2), np.int8)), "b1.npy": _npy(np.zeros(2, np.int32))}


def _zip(members: dict, method=zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=method) as z:
        for n, d in members.items():
            z.writestr(n, d)
    return buf.getvalue()


def _entry(data: bytes, name: str) -> tuple[int, int, int]:
    """(local header offset, central directory entry offset, data offset) of member ``name``."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        info = z.getinfo(name)
    local = info.header_offset
    n, e = struct.unpack_from("<HH", data, local + 26)
    central = data.index(b"PK\x01\x02")
    while data[central + 46:central + 46 + len(name)] != name.encode():
        central = data.index(b"PK\x01\x02", central + 4)
    return local, central, local + 30 + n + e


def _patched(data: bytes, *edits) -> bytes:
    out = bytearray(data)
    for off, fmt, v in edits:
        struct.pack_into(fmt, out, off, v)
    return bytes(out)


def _encrypted_net() -> bytes:
    data = _zip(_net_members())
    local, central, _ = _entry(data, "w1.npy")
    return _patched(data, (local + 6, "<H", 1), (central + 8, "<H", 1))


def _bomb_net() -> bytes:
    data = _zip(_net_members(), zipfile.ZIP_DEFLATED)
    local, central, _ = _entry(data, "w0.npy")
    return _patched(data, (local + 22, "<I", 2 << 30), (central + 24, "<I", 2 << 30))


def _corrupt_net() -> bytes:
    m = _net_members()
    m["w0.npy"] = _npy(np.random.default_rng(0).integers(-5, 6, (4, 3000)).astype(np.int8))
    m["b0.npy"], m["w1.npy"] = _npy(np.zeros(3000, np.int32)), _npy(np.ones((3000, 2), np.int8))
    data = bytearray(_zip(m, zipfile.ZIP_DEFLATED))
    _, _, start = _entry(bytes(data), "w0.npy")
    for i in range(start + 200, start + 260):
        data[i] ^= 0xA5
    return bytes(data)


BAD_NETS = {
    "npy_as_net": (_npy(np.ones((4, 3), np.int8)), [".npy array", "not a .npz"]),
    "text_member": (_zip(dict(_net_members(), **{"readme.txt": b"hello"})), ["readme.txt", "not a .npy"]),
    "text_as_array": (_zip(dict(_net_members(), **{"w1.npy": b"hello"})), ["w1", "not a readable .npy"]),
    "corrupt_deflate": (_corrupt_net(), ["w0", "cannot read"]),
    "bzip2": (_zip(_net_members(), zipfile.ZIP_BZIP2), ["bzip2", "not supported"]),
    "lzma": (_zip(_net_members(), zipfile.ZIP_LZMA), ["lzma", "not supported"]),
    "encrypted": (_encrypted_net(), ["w1", "encrypted"]),
    "huge_header": (_zip(dict(_net_members(), **{"w0.npy": _declares((10**12, 64))})),
                    ["w0", "1000000000000", "limit"]),
    "two_gib_member": (_bomb_net(), ["w0", "2147483648", "limit"]),
    "pickle": (_zip(dict(_net_members(), **{"b1.npy": _npy(np.array([1, None], dtype=object))})),
               ["b1", "object"]),
    "missing": (_zip({k: v for k, v in _net_members().items() if k != "relu0.npy"}), ["relu0", "missing"]),
    "unknown": (_zip(dict(_net_members(), **{"w9.npy": _npy(np.ones((2, 2), np.int8))})), ["w9", "unexpected"]),
    "not_a_zip": (b"PK\x03\x04 but nothing else", ["not a readable .npz"]),
}

BAD_ARRAYS = {                                 # for --inputs (a [batch, 4] int8 expected) and gemm's --a / --b
    "npz_as_npy": (_zip({"x.npy": _npy(np.ones((2, 4), np.int8))}), [".npz archive", "not a .npy"]),
    "huge_header": (_declares((10**12, 64)), ["(1000000000000, 64)", "256 MiB"]),
    "pickle": (_npy(np.array([[1, None]], dtype=object)), ["object"]),
    "truncated": (_npy(np.ones((2, 4), np.int8))[:-3], ["truncated"]),
    "text": (b"1 2 3 4\n", ["not a readable .npy"]),
    "bad_header": (b"\x93NUMPY\x01\x00\x10\x00{'descr': oops}\n", ["not a readable .npy"]),
    "three_d": (_npy(np.ones((2, 4, 1), np.int8)), ["shape (2, 4, 1)", "2-D"]),
    "bool": (_npy(np.ones((2, 4), bool)), ["dtype bool"]),
}

# -- the checks -------------------------------------------------------------------------------------------


def _digest(paths) -> dict:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths if p.exists()}


def _fails_in_one_line(capsys, argv, inputs, outputs, *words):
    """``rramcim argv`` exits 2 with one 'rramcim: error:' line holding ``words``; inputs unchanged, no output
    written (one that existed is unchanged)."""
    before_in, before_out = _digest(inputs), _digest(outputs)
    capsys.readouterr()
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert rc == 2, err
    assert len(lines) == 1 and lines[0].startswith("rramcim: error: "), err
    assert "Traceback" not in err
    for w in words:
        assert w in lines[0], (w, lines[0])
    assert _digest(inputs) == before_in
    assert _digest(outputs) == before_out                 # none appeared; an existing one is as it was
    return lines[0]


@pytest.fixture
def files(tmp_path):
    """A good net, inputs and gemm operands; an existing --out for some cases."""
    (tmp_path / "net.npz").write_bytes(_zip(_net_members()))
    np.save(tmp_path / "x.npy", np.ones((2, 4), np.int8))
    np.save(tmp_path / "a.npy", np.ones((3, 4), np.int8))
    np.save(tmp_path / "b.npy", np.ones((4, 2), np.int8))
    return tmp_path


@pytest.mark.parametrize("case", list(BAD_NETS))
def test_run_bad_net(capsys, files, case):
    data, words = BAD_NETS[case]
    net = files / "bad.npz"
    net.write_bytes(data)
    out = files / "y.npy"
    if case in ("corrupt_deflate", "two_gib_member"):
        out.write_bytes(b"an earlier result")
    _fails_in_one_line(capsys, ["run", "--net", net, "--inputs", files / "x.npy", "--out", out, "--config", "tiny"],
                       [net, files / "x.npy"], [out], "bad.npz", *words)


@pytest.mark.parametrize("case", list(BAD_ARRAYS))
def test_run_bad_inputs(capsys, files, case):
    data, words = BAD_ARRAYS[case]
    x = files / "bad_x.npy"
    x.write_bytes(data)
    out = files / "y.npy"
    _fails_in_one_line(capsys, ["run", "--net", files / "net.npz", "--inputs", x, "--out", out, "--config", "tiny"],
                       [files / "net.npz", x], [out], "bad_x.npy", *words)


@pytest.mark.parametrize("flag", ["--a", "--b"])
@pytest.mark.parametrize("case", list(BAD_ARRAYS))
def test_gemm_bad_operand(capsys, files, case, flag):
    data, words = BAD_ARRAYS[case]
    bad = files / "bad_m.npy"
    bad.write_bytes(data)
    a, b = (bad, files / "b.npy") if flag == "--a" else (files / "a.npy", bad)
    out, rep = files / "c.npy", files / "r.json"
    rep.write_text("{}\n")
    line = _fails_in_one_line(capsys, ["gemm", "--a", a, "--b", b, "--out", out, "--report", rep,
                                       "--config", "tiny"], [a, b], [out, rep], "bad_m.npy", *words)
    assert line.startswith(f"rramcim: error: {flag} ")


@pytest.mark.parametrize("source, words", [
    ("ldw 1,0 row=010 count=1 gaddr=0\n", ["line 1", "row=010", "leading zero"]),
    ("nop\nldw 1,0 row=" + "9" * 5000 + " count=1 gaddr=0\n", ["line 2", "row=", "too many digits"]),
    ("nop\nnop\nldw 1,0 row=5000 count=1 gaddr=0\n", ["line 3", "row=5000", "out of range for field row (0..4095)"]),
    ("mvm 0,0 a=0 b=0 count=300\n", ["count=300", "out of range for field count (0..255)"]),
    ("ldw 16,0 row=0 count=1 gaddr=0\n", ["tx=16", "field tx (0..15)"]),
    ("ldact 0,0 slot=0 count=1 gaddr=0x100000\n", ["gaddr=1048576", "(0..1048575)"]),
    ("outq 0,0 b=0 count=1 gaddr=0 shift=32\n", ["shift=32", "(0..31)"]),
    ("ldw 0,0 row=0x" + "f" * 40 + " count=1 gaddr=0\n", ["too many digits"]),
    ("ldw 0,0 row=\u0663 count=1 gaddr=0\n", ["not a number"]),
    (".word 0x10000000000000000\n", [".word", "too many digits"]),
    (".word 18446744073709551616\n", [".word", "does not fit 64 bits"]),
])
def test_asm_bad_operand(capsys, tmp_path, source, words):
    src, out = tmp_path / "prog.s", tmp_path / "prog.hex"
    src.write_text(source)
    _fails_in_one_line(capsys, ["asm", src, "-o", out], [src], [out], "prog.s", *words)
    out.write_text("0000000000000001\n")
    _fails_in_one_line(capsys, ["asm", src, "-o", out], [src], [out], *words)


@pytest.mark.parametrize("name, text, words", [
    ("deep.json", '{"rows":' * 100000 + "1" + "}" * 100000, ["deep.json", "nested too deeply"]),
    ("deep.toml", "rows = " + "[" * 100000 + "]" * 100000 + "\n", ["deep.toml", "cannot parse"]),
    ("long.json", '{"rows": ' + "9" * 100000 + "}", ["long.json", "cannot parse"]),
    ("range.toml", "noc_fifo_depth = 100000000\n", ["noc_fifo_depth", "1..1024"]),
])
def test_config_bad_file(capsys, tmp_path, name, text, words):
    p = tmp_path / name
    p.write_text(text)
    _fails_in_one_line(capsys, ["config", p], [p], [], *words)
    out = tmp_path / "y.npy"
    (tmp_path / "net.npz").write_bytes(_zip(_net_members()))
    np.save(tmp_path / "x.npy", np.ones((2, 4), np.int8))
    _fails_in_one_line(capsys, ["run", "--net", tmp_path / "net.npz", "--inputs", tmp_path / "x.npy", "--out", out,
                                "--config", p], [p, tmp_path / "net.npz", tmp_path / "x.npy"], [out], *words)


def test_config_too_big_for_the_machine(capsys, files, monkeypatch):
    import rramcim.model.config as C
    monkeypatch.setattr(C, "machine_memory_bytes", lambda: (16 << 30, "physical memory"))
    p = files / "big.toml"
    p.write_text("mesh_x = 16\nmesh_y = 16\nrows = 4096\ncols = 2048\nflit_width = 1024\n")
    words = ["big.toml", "mesh_x, mesh_y, rows, cols", "needs about", "GiB", "physical memory of 16 GiB"]
    _fails_in_one_line(capsys, ["config", p], [p], [], *words)
    out = files / "c.npy"
    _fails_in_one_line(capsys, ["gemm", "--a", files / "a.npy", "--b", files / "b.npy", "--out", out, "--config", p],
                       [p, files / "a.npy", files / "b.npy"], [out], *words)


def test_config_prints_the_memory_estimate(capsys):
    import json
    assert main(["config", "tiny"]) == 0
    d = json.loads(capsys.readouterr().out)
    tiny_cells = 4 * 8 * 8 * 8                           # 4 tiles of 8x8 int8 weights, one cell a bit
    assert d["derived"]["model_memory_bytes"] >= 3 * tiny_cells


def test_good_files_still_run(capsys, files):
    """The checks refuse only what is wrong: the same files, unbroken, run (and write their output)."""
    out = files / "y.npy"
    argv = ["run", "--net", files / "net.npz", "--inputs", files / "x.npy", "--out", out, "--config", "tiny"]
    assert main([str(a) for a in argv]) == 0, capsys.readouterr().err
    assert np.load(out).shape == (2, 2)
    argv = ["gemm", "--a", files / "a.npy", "--b", files / "b.npy", "--out", files / "c.npy", "--config", "tiny"]
    assert main([str(a) for a in argv]) == 0, capsys.readouterr().err
    assert np.array_equal(np.load(files / "c.npy"), np.full((3, 2), 4))
