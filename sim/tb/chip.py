"""cocotb test of the chip core's generated Verilog against the cycle-exact chip model.

Parameters (JSON, see :func:`rramcim.sim.tb.common.params`): the config, the fault map of the
last tile (``faults``), ``runs`` (see :class:`~rramcim.sim.benches.chip.ChipBench`),
``seed``, ``idle`` and an optional deliberate ``model_bug``.
"""

import cocotb
from cocotb.triggers import First, RisingEdge, Timer
from cocotb.utils import get_sim_time

from ...model.macro import FaultMap
from ..benches.chip import ChipBench
from .common import config, params, run_bench

PERIOD_NS = 10


@cocotb.test()
async def chip_vs_model(dut):
    p = params()
    cfg = config(p)
    bench = ChipBench(cfg, p["runs"], FaultMap.from_list(cfg, p.get("faults", [])), seed=p.get("seed", 0),
                      idle=p.get("idle", 0.3), model_bug=p.get("model_bug"))

    async def wait_done(limit):
        t0 = get_sim_time("ns")
        fired = await First(RisingEdge(dut.done), Timer(limit * PERIOD_NS, unit="ns"))
        if not int(dut.done.value):
            return None
        del fired
        return round((get_sim_time("ns") - t0) / PERIOD_NS)

    class Bench:
        async def run(self, io, progress):
            return await bench.run(io, wait_done, progress)

    idle = ["imem_wr__valid", "gbuf_wr__valid", "start", "soft_reset", "cnt_index", "gbuf_rd_addr"]
    await run_bench(dut, Bench(), p, idle, len(p["runs"]))
