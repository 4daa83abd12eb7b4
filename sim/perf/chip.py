"""Where the chip core's time goes: a K-split GEMM in two phases, on the model (and the RTL).

Phase 1 programs every tile's RRAM (``ldw``); phase 2 is the GEMM with the
weights resident: activations in, an MVM per vector on every tile, the
partial sums chained tile to tile, the result out raw and requantized
(:func:`rramcim.model.progen.ksplit_program`). For each phase it prints the
cycles and the performance counters that say where they went, and the MAC
utilization against the peak ``tiles * rows * cols * par / xbits`` MACs per
cycle. With ``--rtl`` the same runs go through the generated Verilog, and the
bench checks cycles, every counter and the global buffer against the model.

    python -m rramcim.sim.bench_chip --config default --m 16 [--rtl verilator]
"""

from __future__ import annotations

import argparse

from ...model.chip import ChipState
from ...model.chip_cycle import ChipCycleModel
from ...model.config import load_config
from ...model.isa import assemble
from ...model.progen import ksplit_program

__all__ = ["phases", "main"]


def phases(cfg, m: int, seed: int = 1):
    """``[(name, assembly), ...]`` and the global-buffer image of the two-phase K-split GEMM."""
    text, gbuf, ref = ksplit_program(cfg, seed, m=m)
    lines = text.strip().splitlines()
    tiles = [f"{x},{y}" for y in range(cfg.mesh_y) for x in range(cfg.mesh_x)]
    fence = [f"sync {t}" for t in tiles] + ["barrier", "halt"]
    program = [ln for ln in lines if ln.startswith("ldw")] + fence
    compute = [ln for ln in lines if not ln.startswith("ldw")]
    return [("program RRAM", "\n".join(program)), (f"GEMM m={ref['m']} (weights resident)", "\n".join(compute))], \
        gbuf, ref


def _report(cfg, name, res):
    peak = cfg.peak_macs_per_cycle * cfg.tiles
    busy = [res.counter("busy", t) / res.cycles for t in range(cfg.tiles)]
    print(f"{name}: {res.cycles} cycles")
    print(f"  MACs {res.total('macs')}  utilization {res.total('macs') / (res.cycles * peak):.1%} of peak "
          f"{peak:.0f} MACs/cycle")
    print(f"  controller: {res.counter('instructions')} instructions, {res.counter('gbuf_read_bits') // cfg.flit_width}"
          f" global-buffer words sent, {res.counter('ctrl_tx_stall')} cycles stalled by the network, "
          f"{res.counter('barrier_wait')} cycles waiting at barriers")
    print(f"  network: {res.counter('noc_flits')} flits, {res.counter('noc_flit_hops')} flit-hops")
    print(f"  tiles: busy {min(busy):.0%}..{max(busy):.0%} of the cycles; {res.total('rram_pulses')} RRAM pulses, "
          f"{res.total('mvms')} MVMs, macro stalls {res.total('macro_stall')} cycles, "
          f"send stalls {res.total('tx_stall')} cycles")


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m rramcim.sim.bench_chip", description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="default", help="preset or config file (default: %(default)s)")
    ap.add_argument("--m", type=int, default=16, help="activation vectors (GEMM rows M) (default: %(default)s)")
    ap.add_argument("--rtl", choices=["icarus", "verilator"], help="also run the generated Verilog and check it")
    args = ap.parse_args(argv)
    cfg = load_config(args.config)
    runs, gbuf, _ = phases(cfg, args.m)
    st = ChipState(cfg)
    for a, w in gbuf.items():
        st.write_gbuf(a, w)
    results = []
    for name, text in runs:
        st.load_program(assemble(text))
        res = ChipCycleModel(st).run()
        results.append(res)
        _report(cfg, name, res)
    if args.rtl:
        from ..tools.build import build, run_cocotb
        b = build("core", cfg, args.rtl, log=print)
        cruns = [dict(program=assemble(text), gbuf={str(a): w for a, w in gbuf.items()} if i == 0 else {})
                 for i, (_, text) in enumerate(runs)]
        out = run_cocotb(b, "rramcim.sim.tb.chip", dict(runs=cruns, idle=0.0))   # its own work folder
        if not out.passed:
            raise SystemExit(f"RTL differs from the model: {out.describe()}")
        print(f"RTL ({args.rtl}): cycles {out.summary['cycles']}, every counter and the global buffer equal "
              f"to the model's")


if __name__ == "__main__":
    main()
