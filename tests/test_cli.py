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
