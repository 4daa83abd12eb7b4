"""An interrupted RTL run leaves nothing behind: no simulator process, no work folder, no output.

``rramcim gemm --backend icarus`` runs as a subprocess in a session of its own, with ``TMPDIR`` a
folder of the test; once its simulator is running (a ``vvp`` among its descendants) it gets a
Ctrl-C as a terminal sends it (SIGINT to its process group) or a SIGTERM. Then: exit status
130, the simulator's process group is gone, the temp folder holds no ``rramcim-*`` folder, the
``--out`` file was not written and the inputs are unchanged. Verilator the same, when its build
of the tiny chip is in the cache or with ``RRAMCIM_SLOW=1`` (a build takes a minute or two).
A run that passes removes its work folder, or keeps it with ``RRAMCIM_KEEP_BUILD=1``.

Waits are on the processes, not on the clock: the run is interrupted as soon as its simulator
exists, and the simulated GEMM is long enough (tens of seconds) to be still running then. The
one clock bound, :data:`HANG`, only keeps a broken run from hanging the test session.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rramcim.model.config import PRESETS
from rramcim.sim.tools.build import _key, cache_root
from rramcim.model.macro import FaultMap

HANG = 600            # seconds: far beyond any run here; reached only if the run hangs
SIMULATORS = {"icarus": "vvp", "verilator": "rramcim_chip"}     # the simulator process of each


def _procs() -> dict:
    """pid -> (ppid, pgrp, comm) of every process."""
    out = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        out[int(d.name)] = (int(fields[1]), int(fields[2]), comm, fields[0])
    return out


def _descendants(pid: int, procs: dict) -> dict:
    kids, todo = {}, [pid]
    while todo:
        p = todo.pop()
        for q, info in procs.items():
            if info[0] == p and q not in kids:
                kids[q] = info
                todo.append(q)
    return kids


def _left(sims: dict) -> list:
    """The live (not zombie) processes among ``sims`` and in their process groups."""
    return [(q, info[2]) for q, info in _procs().items()
            if (q in sims or info[1] in sims) and info[3] != "Z" and (q not in sims or info[2] == sims[q][2])]


def _verilator_cached() -> bool:
    import cocotb_tools  # noqa: F401  (_key reads cocotb's library folder)
    key = _key("chip", PRESETS["tiny"], FaultMap(), "verilator", False)
    return (cache_root() / "builds" / f"chip-tiny-verilator-{key}" / "BUILT").is_file()


def _interrupt(tmp_path, simulator, how):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    rng = np.random.default_rng(3)
    a, b, out = tmp_path / "a.npy", tmp_path / "b.npy", tmp_path / "c.npy"
    np.save(a, rng.integers(-128, 128, size=(8, 40)).astype(np.int8))
    np.save(b, rng.integers(-128, 128, size=(40, 30)).astype(np.int8))
    before = {p: p.read_bytes() for p in (a, b)}
    env = dict(os.environ, TMPDIR=str(tmp))
    env.pop("RRAMCIM_KEEP_BUILD", None)
    env.pop("PYTEST_CURRENT_TEST", None)
    p = subprocess.Popen([sys.executable, "-m", "rramcim", "gemm", "--a", str(a), "--b", str(b), "--out", str(out),
                          "--config", "tiny", "--backend", simulator],
                         cwd=tmp_path, env=env, start_new_session=True, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    t0 = time.monotonic()
    sims = {}
    try:
        while not sims:
            assert p.poll() is None, f"rramcim ended before its simulator ran:\n{p.stdout.read()}"
            assert time.monotonic() - t0 < HANG, "no simulator started"
            sims = {q: info for q, info in _descendants(p.pid, _procs()).items()
                    if info[2] == SIMULATORS[simulator]}
            time.sleep(0.05)
        if how == "ctrl-c":
            os.killpg(p.pid, signal.SIGINT)          # what a terminal sends: to the foreground process group
        else:
            p.send_signal(signal.SIGTERM)
        text, _ = p.communicate(timeout=HANG)
        assert p.returncode == 130, text
        assert "interrupted" in text, text
        assert _left(sims) == [], "simulator processes left"
    finally:                                     # a failed check leaves no process behind either
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
        for q, _ in _left(sims):
            os.kill(q, signal.SIGKILL)
    assert sorted(x.name for x in tmp.iterdir()) == [], "temp folders left"
    assert not out.exists()
    assert {p: p.read_bytes() for p in (a, b)} == before


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_interrupted_icarus_run_leaves_nothing(tmp_path, how):
    _interrupt(tmp_path, "icarus", how)


def test_interrupted_verilator_run_leaves_nothing(tmp_path):
    if not (os.environ.get("RRAMCIM_SLOW") == "1" or _verilator_cached()):
        pytest.skip("the tiny chip's Verilator build is not cached (RRAMCIM_SLOW=1 builds it)")
    _interrupt(tmp_path, "verilator", "ctrl-c")


@pytest.mark.parametrize("keep", [False, True])
def test_a_finished_run_removes_its_work_folder_unless_kept(tmp_path, keep):
    """A run that passes leaves no ``rramcim-*`` folder; with ``RRAMCIM_KEEP_BUILD=1`` it keeps its one."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    np.save(tmp_path / "a.npy", np.ones((2, 3), dtype=np.int8))
    np.save(tmp_path / "b.npy", np.ones((3, 2), dtype=np.int8))
    env = dict(os.environ, TMPDIR=str(tmp), RRAMCIM_KEEP_BUILD="1" if keep else "0")
    env.pop("PYTEST_CURRENT_TEST", None)
    p = subprocess.run([sys.executable, "-m", "rramcim", "gemm", "--a", "a.npy", "--b", "b.npy", "--out", "c.npy",
                        "--config", "tiny", "--backend", "icarus"], cwd=tmp_path, env=env, capture_output=True,
                       text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    left = sorted(tmp.iterdir())
    if keep:
        assert [d.name.startswith("rramcim-chip-icarus-") for d in left] == [True]
        assert (left[0] / "sim.log").is_file() and (left[0] / "summary.json").is_file()
    else:
        assert left == []
