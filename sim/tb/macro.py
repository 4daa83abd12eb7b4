"""cocotb test of the CIM macro's generated Verilog against the golden model.

Parameters (JSON, see :func:`rramcim.sim.tb.common.params`): the config, the fault map the
Verilog was built with, ``seed``, ``n_mvm``, ``n_prog``, ``stall``,
``phases`` and an optional deliberate ``model_bug`` (:class:`~rramcim.sim.benches.macro.MacroBench`).
"""

import cocotb

from ...model.macro import FaultMap
from .common import config, params, run_bench
from ..benches.macro import MacroBench


@cocotb.test()
async def macro_vs_model(dut):
    p = params()
    cfg = config(p)
    faults = FaultMap(tuple(tuple(s) for s in p["faults"]))
    bench = MacroBench(cfg, faults, seed=p.get("seed", 0), n_mvm=p.get("n_mvm", 200),
                       n_prog=p.get("n_prog"), stall=p.get("stall", 0.3),
                       phases=p.get("phases", 1), model_bug=p.get("model_bug"))
    total = sum(len(e[0]) for e in bench.expected)
    idle = ("prog__valid", "x__valid", "y__ready", "prog_resp__ready", "status__row")
    idle += ("bank",) if cfg.banks > 1 else ()
    summary = await run_bench(dut, bench, p, idle, total)
    summary["mvms_expected"] = total
