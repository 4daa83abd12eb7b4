"""Simulation speed: the cycle-exact model against Verilator on the same network.

``python -m rramcim.sim.bench_speed [--config default]`` runs the digits demo
network (``rramcim run``'s) on the model and on the chip's Verilog in
Verilator, and prints simulated cycles per second for each and their ratio.
The model is timed over its runs of the compiled windows (compilation
excluded; the fastest of ``--repeat`` runs of each layer). Verilator is timed over the chip's start-to-done windows only:
the model's cycle count of each window is handed to the testbench, which
then waits that many clock cycles without touching the design (no polling,
no tracing, build and host transfers excluded), and the cycle counter read
afterwards must equal the model's.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from ...model.compiler import compile_gemm
from ...model.config import load_config
from ..backends.model import run_on_model

__all__ = ["main"]


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m rramcim.sim.bench_speed", description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="default", help="preset or config file (default: %(default)s)")
    ap.add_argument("--simulator", default="verilator", choices=["verilator", "icarus"])
    ap.add_argument("--repeat", type=int, default=3, help="model runs per layer, the fastest counted (default: %(default)s)")
    args = ap.parse_args(argv)
    cfg = load_config(args.config)
    from ...model.digits import train_digits
    from ..backends import run_windows
    net, X, _, _, _ = train_digits()
    x = X
    model_s = rtl_s = 0.0
    cycles = 0
    for i, L in enumerate(net.layers):
        plan = compile_gemm(cfg, x, L.w, bias=L.b, shift=L.shift, relu=L.relu or 0)
        best = None
        for _ in range(args.repeat):          # the model is cheap to repeat: its best time, as for a noisy machine
            t0 = time.perf_counter()
            y, rep = run_on_model(plan)
            dt = time.perf_counter() - t0
            best = dt if best is None else min(best, dt)
        model_s += best
        out = run_windows(args.simulator, cfg, plan.windows, expect_cycles=rep["window_cycles"])
        got = [o["cycles"] for o in out]
        if got != rep["window_cycles"]:
            raise SystemExit(f"layer {i}: RTL cycles {got} differ from the model's {rep['window_cycles']}")
        rtl_s += sum(o["sim_seconds"] for o in out)
        cycles += rep["cycles"]
        x = np.asarray(y)
    m, r = cycles / model_s, cycles / rtl_s
    print(f"digits MLP 64-32-10, {X.shape[0]} inputs, config {cfg.name}: {cycles} cycles")
    print(f"  model:     {m:12,.0f} cycles/s ({model_s:.2f} s)")
    print(f"  {args.simulator}: {r:12,.0f} cycles/s ({rtl_s:.2f} s over the start-to-done windows)")
    print(f"  model / {args.simulator}: {m / r:.2f}x")


if __name__ == "__main__":
    main()
