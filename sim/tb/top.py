"""cocotb test of the whole chip (rtl/top.py) driven only through its AXI ports by the host driver.

Parameters (JSON, see :func:`rramcim.sim.tb.common.params`): the config,
``windows`` (each ``program`` words, ``gbuf`` {address: [words]}, ``reads``
[[address, n], ...]), ``pause`` (probability of a pause cycle on every AXI
channel) and ``seed``. The summary holds, per window, the cycles, error,
counters and the words read, for the caller to check against the model.
"""

import cocotb

from .common import config, params, run_bench
from ..host.driver import AXI_IDLE_INPUTS, HostDriver


@cocotb.test()
async def chip_windows(dut):
    p = params()
    cfg = config(p)

    class Bench:
        async def run(self, io, progress):
            drv = HostDriver(dut, cfg, pause=p.get("pause", 0.0), seed=p.get("seed", 0))
            await drv.check_id()
            return {"windows": await drv.run_windows(p["windows"], progress)}

    await run_bench(dut, Bench(), p, AXI_IDLE_INPUTS, len(p["windows"]))
