"""What every rramcim cocotb test does: parameters in, clock and reset, progress and results out.

Parameters arrive as JSON in the file ``RRAMCIM_PARAMS_FILE`` names, or in
``RRAMCIM_PARAMS`` (see :func:`rramcim.sim.tools.build.run_cocotb`).
A test writes its measured figures to ``summary_file``, its progress
(``done total``) to ``progress_file`` and its first mismatch to ``failure_file``.
"""

import json
import os
import time

from cocotb.clock import Clock

from ...model.config import Config
from ..benches.cocotb_io import CocotbIO
from ..host.driver import AXI_IDLE_INPUTS, CLOCK_PERIOD_NS, HostDriver

__all__ = ["params", "config", "run_bench", "run_axi_bench"]


def params() -> dict:
    if "RRAMCIM_PARAMS_FILE" in os.environ:
        with open(os.environ["RRAMCIM_PARAMS_FILE"]) as f:
            return json.load(f)
    return json.loads(os.environ["RRAMCIM_PARAMS"])


def config(p: dict) -> Config:
    return Config(**p["config"])


async def run_bench(dut, bench, p: dict, idle_inputs, total: int):
    """Clock, reset with ``idle_inputs`` low, run ``bench``; record summary, progress and failure."""
    Clock(dut.clk, CLOCK_PERIOD_NS, unit="ns").start()
    io = CocotbIO(dut)
    for name in idle_inputs:
        io.set(name, 0)
    await io.reset()
    progress_file = p.get("progress_file")
    last = [0.0]
    done_before = [0]

    def progress(done, n):
        # a bench may report per phase (n < total): accumulate phases
        if done == n and n < total:
            done_before[0] += n
            overall = done_before[0]
        else:
            overall = done_before[0] + done if n < total else done
        if time.time() - last[0] > 0.5 or overall >= total:
            last[0] = time.time()
            if progress_file:
                with open(progress_file, "w") as f:
                    f.write(f"{overall} {total}\n")

    t0 = time.time()
    try:
        summary = await bench.run(io, progress)
    except AssertionError as e:
        if p.get("failure_file"):
            with open(p["failure_file"], "w") as f:
                f.write(str(e))
        raise
    summary["wall_seconds"] = time.time() - t0
    if p.get("summary_file"):
        with open(p["summary_file"], "w") as f:
            json.dump(summary, f)
    return summary


async def run_axi_bench(dut, steps, default_pause: float = 0.0):
    """Run ``await steps(drv, cfg, p, progress)`` with a host driver on the chip's AXI ports
    (after its identification check; AXI channels paused with probability ``pause``, a parameter);
    its result is the summary."""
    p = params()
    cfg = config(p)

    class Bench:
        async def run(self, io, progress):
            drv = HostDriver(dut, cfg, pause=p.get("pause", default_pause), seed=p.get("seed", 0))
            await drv.check_id()
            return await steps(drv, cfg, p, progress)

    return await run_bench(dut, Bench(), p, AXI_IDLE_INPUTS, len(p.get("windows", [])) or 1)
