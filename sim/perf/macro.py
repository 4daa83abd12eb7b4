"""Benchmark: MVM throughput of the macro in RTL simulation, against its peak.

    python -m rramcim.sim.bench_macro [--backend verilator|icarus] [--mvms 1000] [--config NAME|FILE ...]

For each config, programs every row, then streams MVMs back to back with no
idle and no backpressure through the generated Verilog, with every value and
cycle checked against the model, and prints the MACs per cycle achieved over
the stream (from the cycle the first input vector is taken to the cycle the
last result leaves, inclusive) as a fraction of the peak
``rows*cols*par/xbits``, plus the simulator's speed.
"""

import argparse
import sys

from ...model.config import load_config
from ...model.macro import mvm_latency
from ..tools.build import build, run_cocotb

DEFAULT_CONFIGS = ["tiny", "default", "default-par2", "tiny-par8", "tiny-w4par4"]


def named(spec):
    base, _, variant = spec.partition("-")
    cfg = load_config(base)
    if variant.startswith("par") and variant[3:].isdigit():
        return cfg.replace(name=spec, par=int(variant[3:]))
    if variant == "w4par4":
        return cfg.replace(name=spec, wbits=4, par=4)
    if variant:
        raise SystemExit(f"bench_macro: unknown config {spec!r}")
    return cfg


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m rramcim.sim.bench_macro", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", choices=["verilator", "icarus"], default="verilator")
    ap.add_argument("--mvms", type=int, default=1000)
    ap.add_argument("--config", action="append", metavar="NAME|FILE",
                    help=f"config(s) to measure (default: {' '.join(DEFAULT_CONFIGS)})")
    args = ap.parse_args(argv)
    print(f"{'config':<14}{'shape':>18}{'S':>4}{'lat':>5}{'peak MAC/c':>12}{'MAC/c':>10}{'% peak':>9}"
          f"{'RTL=model':>11}{'sim cyc/s':>11}")
    worst = 100.0
    for spec in args.config or DEFAULT_CONFIGS:
        cfg = named(spec)
        b = build("macro", cfg, args.backend)
        res = run_cocotb(b, "rramcim.sim.tb.macro",
                         dict(seed=1, n_mvm=args.mvms, n_prog=cfg.rows, stall=0.0, phases=1))
        if not res.passed:
            print(f"{spec}: RTL and model disagree: {res.failure}", file=sys.stderr)
            return 1
        s = res.summary
        window = s["last_out"][0] - s["first_accept"][0] + 1
        macs = args.mvms * cfg.rows * cfg.cols
        rate = macs / window
        pct = 100 * rate / cfg.peak_macs_per_cycle
        worst = min(worst, pct)
        shape = f"{cfg.rows}x{cfg.cols} w{cfg.wbits}x{cfg.xbits}p{cfg.par}"
        print(f"{spec:<14}{shape:>18}{cfg.steps:>4}{mvm_latency(cfg):>5}{cfg.peak_macs_per_cycle:>12g}"
              f"{rate:>10.2f}{pct:>8.2f}%{'yes':>11}{s['cycles'][0] / s['wall_seconds']:>11.0f}")
    print(f"worst fraction of peak over {args.mvms} back-to-back MVMs: {worst:.2f}% "
          f"({'meets' if worst >= 99 else 'MISSES'} the 99% target)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
