"""The rramcim command line: help, Verilog output, and one-line errors that leave no output."""

import subprocess
import sys

import pytest


def rramcim(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "rramcim", *args], capture_output=True, text=True, cwd=cwd)


def test_help_lists_commands():
    p = rramcim("--help")
    assert p.returncode == 0
    for word in ("demo", "verilog", "config", "asm", "disasm", "examples:"):
        assert word in p.stdout
    assert rramcim("verilog", "--help").returncode == 0


def test_verilog_macro_writes_linted_file(tmp_path):
    out = tmp_path / "macro.v"
    p = rramcim("verilog", "--block", "macro", "--config", "tiny", "-o", str(out), "--lint")
    assert p.returncode == 0, p.stderr
    text = out.read_text()
    assert "module rramcim_macro(" in text
    assert text.count("module rramcim_crossbar_r8_c8_w8_p1(") == 1
    assert "clean" in p.stdout


def _one_line_error(p, *words):
    assert p.returncode != 0
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert "Traceback" not in p.stderr
    for w in words:
        assert w in lines[0], lines[0]


@pytest.mark.parametrize("content, words", [
    ("par = 3\n", ["par", "xbits=8"]),
    ("rows = 0\n", ["rows", "> 0"]),
    ("rows = 8\nfoo = 1\n", ["unknown key 'foo'"]),
])
def test_bad_config_file(tmp_path, content, words):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(content)
    out = tmp_path / "m.v"
    p = rramcim("verilog", "--config", str(cfg), "-o", str(out))
    _one_line_error(p, *words)
    assert not out.exists()


def test_missing_config_file(tmp_path):
    out = tmp_path / "m.v"
    p = rramcim("verilog", "--config", str(tmp_path / "nope.toml"), "-o", str(out))
    _one_line_error(p, "nope.toml", "no such file")
    assert not out.exists()
    _one_line_error(rramcim("demo", "--config", "huge"), "huge", "not a preset")


def test_bad_fault_and_output_dir(tmp_path):
    out = tmp_path / "m.v"
    _one_line_error(rramcim("verilog", "--config", "tiny", "--stuck", "9,0,1", "-o", str(out)), "row 9")
    _one_line_error(rramcim("verilog", "--config", "tiny", "--stuck", "x", "-o", str(out)), "ROW,CELL,VALUE")
    assert not out.exists()
    _one_line_error(rramcim("verilog", "--config", "tiny", "-o", str(tmp_path / "no" / "m.v")), "does not exist")


def test_config_command(tmp_path):
    p = rramcim("config", "tiny")
    assert p.returncode == 0 and '"rows": 8' in p.stdout and '"steps": 8' in p.stdout


def test_asm_disasm_round_trip(tmp_path):
    from rramcim.model.progen import random_program
    from rramcim.model.config import PRESETS
    text, _ = random_program(PRESETS["default"], seed=3, steps=30)
    src = tmp_path / "p.s"
    src.write_text(text + ".word 0x3f\n")
    hexf, back, hex2 = tmp_path / "p.hex", tmp_path / "q.s", tmp_path / "q.hex"
    assert rramcim("asm", str(src), "-o", str(hexf)).returncode == 0
    assert rramcim("disasm", str(hexf), "-o", str(back)).returncode == 0
    assert rramcim("asm", str(back), "-o", str(hex2)).returncode == 0
    assert hexf.read_text() == hex2.read_text()
    assert len(hexf.read_text().splitlines()) == len([ln for ln in src.read_text().splitlines() if ln.strip()])


def test_asm_errors_name_file_and_line(tmp_path):
    src = tmp_path / "bad.s"
    src.write_text("nop\nmvm 0,0 a=0 b=0\n")
    out = tmp_path / "bad.hex"
    _one_line_error(rramcim("asm", str(src), "-o", str(out)), "bad.s", "line 2", "count")
    assert not out.exists()
    _one_line_error(rramcim("asm", str(tmp_path / "none.s"), "-o", str(out)), "none.s", "no such file")
    (tmp_path / "w.hex").write_text("12\nzz\n")
    _one_line_error(rramcim("disasm", str(tmp_path / "w.hex")), "w.hex", "line 2", "not a hex word")


# --- rramcim gemm ------------------------------------------------------------------------

def _npy(path, array):
    import numpy as np
    np.save(path, array)
    return str(path)


def _gemm_inputs(tmp_path, M=5, K=11, N=7, seed=0):
    import numpy as np
    rng = np.random.default_rng(seed)
    A = rng.integers(-128, 128, size=(M, K)).astype(np.int8)
    B = rng.integers(-128, 128, size=(K, N)).astype(np.int8)
    return A, B, _npy(tmp_path / "A.npy", A), _npy(tmp_path / "B.npy", B)


def test_gemm_on_the_model_writes_c_and_report(tmp_path):
    import json
    import numpy as np
    A, B, a, b = _gemm_inputs(tmp_path)
    out, rep = tmp_path / "C.npy", tmp_path / "r.json"
    p = rramcim("gemm", "--a", a, "--b", b, "--out", str(out), "--config", "tiny", "--report", str(rep))
    assert p.returncode == 0, p.stderr
    C = np.load(out)
    assert C.dtype == np.int32 and np.array_equal(C, A.astype(np.int64) @ B.astype(np.int64))
    r = json.loads(rep.read_text())
    for key in ("cycles", "macs", "peak_macs_per_cycle", "utilization", "rram_row_writes", "noc_flits",
                "backend", "config"):
        assert key in r, key
    assert r["macs"] == 5 * 11 * 7 and r["backend"] == "model" and r["config"] == "tiny"
    assert r["cycles"] > 0 and 0 < r["utilization"] <= 1 and r["rram_row_writes"] >= 11


@pytest.mark.parametrize("case, words", [
    ("float", ["--a", "dtype float32"]),
    ("k_mismatch", ["K mismatch"]),
    ("one_d", ["--b", "shape (6,)", "2-D"]),
    ("missing", ["--a", "no such file"]),
    ("int16_range", ["--a", "300", "int8 range", "int16"]),
    ("wbits4", ["wbits", "int8"]),
    ("not_npy", ["--b", "not a readable .npy"]),
])
def test_gemm_rejects_bad_input_in_one_line(tmp_path, case, words):
    import numpy as np
    A, B, a, b = _gemm_inputs(tmp_path, M=3, K=6, N=4)
    extra = []
    if case == "float":
        a = _npy(tmp_path / "Af.npy", A.astype(np.float32))
    elif case == "k_mismatch":
        b = _npy(tmp_path / "Bk.npy", np.zeros((5, 4), dtype=np.int8))
    elif case == "one_d":
        b = _npy(tmp_path / "B1.npy", np.zeros(6, dtype=np.int8))
    elif case == "missing":
        a = str(tmp_path / "nope.npy")
    elif case == "int16_range":
        bad = A.astype(np.int16)
        bad[1, 2] = 300
        a = _npy(tmp_path / "A16.npy", bad)
    elif case == "wbits4":
        cfg = tmp_path / "w4.toml"
        cfg.write_text("wbits = 4\n")
        extra = ["--config", str(cfg)]
    elif case == "not_npy":
        (tmp_path / "B.txt").write_text("1 2 3\n")
        b = str(tmp_path / "B.txt")
    out, rep = tmp_path / "C.npy", tmp_path / "r.json"
    p = rramcim("gemm", "--a", a, "--b", b, "--out", str(out), "--report", str(rep), *extra)
    _one_line_error(p, *words)
    assert not out.exists() and not rep.exists()
