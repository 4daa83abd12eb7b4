"""cocotb test of the whole chip (rtl/top.py) driven only through its AXI ports by the host driver.

Parameters (JSON, see :func:`rramcim.sim.tb.common.params`): the config,
``windows`` (each ``program`` words, ``gbuf`` {address: [words]}, ``reads``
[[address, n], ...]), ``pause`` (probability of a pause cycle on every AXI
channel) and ``seed``. The summary holds, per window, the cycles, error,
counters and the words read, for the caller to check against the model.
"""

import cocotb

from .common import run_axi_bench


@cocotb.test()
async def chip_windows(dut):
    async def steps(drv, cfg, p, progress):
        return {"windows": await drv.run_windows(p["windows"], progress)}

    await run_axi_bench(dut, steps)
