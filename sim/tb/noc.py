"""cocotb test of the mesh network's generated Verilog against the cycle-exact model.

Parameters (JSON, see :func:`rramcim.sim.tb.common.params`): the config, ``seed``,
``packets_per_node``, ``max_len`` (flits), ``stall``, ``inject_idle``, an
optional deliberate ``model_bug``, and ``traffic`` (a dict of
:func:`rramcim.model.noc_traffic.generate` arguments: open-loop traffic of a
named pattern, which then replaces ``packets_per_node`` and ``max_len``).
"""

import cocotb

from .common import config, params, run_bench
from ..benches.noc import MeshBench, node_port


@cocotb.test()
async def mesh_vs_model(dut):
    p = params()
    cfg = config(p)
    bench = MeshBench(cfg, seed=p.get("seed", 0), packets_per_node=p.get("packets_per_node", 50),
                      max_len=p.get("max_len", 8), stall=p.get("stall", 0.3),
                      inject_idle=p.get("inject_idle"), model_bug=p.get("model_bug"),
                      traffic=p.get("traffic"))
    idle = [node_port(n, s, sig) for n in bench.nodes
            for s, sig in (("tx_header", "valid"), ("tx_payload", "valid"),
                           ("rx_header", "ready"), ("rx_payload", "ready"))]
    await run_bench(dut, bench, p, idle, len(bench.expected))
