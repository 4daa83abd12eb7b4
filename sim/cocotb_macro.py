"""cocotb test of the CIM macro's generated Verilog against the golden model.

Parameters arrive as JSON in ``RRAMCIM_PARAMS`` (see :func:`rramcim.sim.build.run_cocotb`):
the config, the fault map the Verilog was built with, the seed, the number of
MVMs, the stall probability, the number of reset-separated phases and an
optional deliberate model bug. The test writes its measured figures to
``summary_file`` and the first mismatch to ``failure_file``.
"""

import json
import os
import time

import cocotb
from cocotb.clock import Clock

from ..model.config import Config
from ..model.macro import FaultMap
from .cocotb_io import CocotbIO
from .macro_bench import MacroBench


@cocotb.test()
async def macro_vs_model(dut):
    p = json.loads(os.environ["RRAMCIM_PARAMS"])
    cfg = Config(**p["config"])
    faults = FaultMap(tuple(tuple(s) for s in p["faults"]))
    bench = MacroBench(cfg, faults, seed=p.get("seed", 0), n_mvm=p.get("n_mvm", 200),
                       n_prog=p.get("n_prog"), stall=p.get("stall", 0.3),
                       phases=p.get("phases", 1), model_bug=p.get("model_bug"))
    Clock(dut.clk, 10, unit="ns").start()
    io = CocotbIO(dut)
    for name in ("prog__valid", "x__valid", "y__ready", "prog_resp__ready", "status__row"):
        io.set(name, 0)
    await io.reset()
    total = sum(len(e[0]) for e in bench.expected)
    last = [time.time()]

    progress_file = p.get("progress_file")
    done_before = [0]

    def progress(done, n):
        # n counts one phase; report over all phases.
        if time.time() - last[0] > 0.5 or done == n:
            last[0] = time.time()
            if done == n:
                done_before[0] += n
            total_done = done_before[0] + (0 if done == n else done)
            if progress_file:
                with open(progress_file, "w") as f:
                    f.write(f"{total_done} {total}\n")
            dut._log.info("%d/%d results checked", total_done, total)

    t0 = time.time()
    try:
        summary = await bench.run(io, progress)
    except AssertionError as e:
        if p.get("failure_file"):
            with open(p["failure_file"], "w") as f:
                f.write(str(e))
        raise
    summary["wall_seconds"] = time.time() - t0
    summary["mvms_expected"] = total
    if p.get("summary_file"):
        with open(p["summary_file"], "w") as f:
            json.dump(summary, f)
