"""``rramcim demo``: program random weights into one macro, run MVMs on the RTL in a simulator and on the
model, and print their agreement, cycle counts and throughput."""

from __future__ import annotations

from .common import (CliError, add_config_option, add_keep_build_option, add_stuck_option, bounded, config, faults,
                     keep_build, progress_printer)

MVMS = (1, 1_000_000)
SEED = (0, 2**32 - 1)
STALL = (0.0, 0.9)     # above, a stream is idle for more than 90% of cycles: a run of minutes becomes hours


def add_parser(sub):
    sp = sub.add_parser("demo", help="program random weights into a macro and run MVMs on the RTL and the model",
                        description="Program random weights into one CIM macro, run MVMs on the generated "
                                    "Verilog in a simulator and on the golden model, and print their agreement, "
                                    "cycle counts and throughput.")
    add_config_option(sp)
    sp.add_argument("--backend", choices=["verilator", "icarus"], default="verilator",
                    help="RTL simulator (default: %(default)s)")
    sp.add_argument("--mvms", type=bounded(int, *MVMS), default=1000,
                    help=f"MVMs to run, {MVMS[0]}..{MVMS[1]} (default: %(default)s)")
    sp.add_argument("--seed", type=bounded(int, *SEED), default=1,
                    help=f"random seed, {SEED[0]}..{SEED[1]} (default: %(default)s)")
    sp.add_argument("--stall", type=bounded(float, *STALL), default=0.0,
                    help=f"probability of an idle or backpressure cycle on every stream, {STALL[0]:g}..{STALL[1]:g} "
                         "(default: 0)")
    add_stuck_option(sp, "a stuck-at cell (CELL = col*wbits + bit); repeatable")
    sp.add_argument("--no-waves", dest="waves_on_failure", action="store_false",
                    help="on a mismatch, do not re-run on Icarus to dump an FST waveform")
    add_keep_build_option(sp)
    sp.set_defaults(func=main)


def main(args):
    import numpy as np
    from ..sim.benches.macro import MacroBench
    from ..sim.tools.build import build, run_cocotb
    cfg = config(args.config)
    keep_build(args)
    fmap = faults(cfg, args.stuck)
    print(f"rramcim demo: macro {cfg.rows}x{cfg.cols}, int{cfg.wbits} weights x int{cfg.xbits} "
          f"inputs, {cfg.par} bit-plane(s)/cycle, config '{cfg.name}', backend {args.backend}")
    # The model's prediction, computed here from the same seed (the RTL run
    # computes its own in the simulator process and checks every event).
    params = dict(seed=args.seed, n_mvm=args.mvms, n_prog=cfg.rows, stall=args.stall, phases=1)
    bench = MacroBench(cfg, fmap, **params)
    mvms, progs, model_cycles, _, failures = bench.expected[0]
    ref_ok = all(np.array_equal(ev.y, _reference(bench, ev)) for ev in mvms)
    print(f"  building the {args.backend} model (cached after the first time) ...", flush=True)
    b = build("macro", cfg, args.backend, fmap, log=lambda s: print("  " + s, flush=True))
    print(f"  programming {cfg.rows} rows and running {args.mvms} MVMs on the RTL ...", flush=True)
    res = run_cocotb(b, "rramcim.sim.tb.macro", params, waves_on_failure=args.waves_on_failure,
                     progress=progress_printer("MVMs checked against the model"))
    if not res.passed:
        raise CliError(f"RTL and model disagree: {res.describe()}")
    _print_summary(args, cfg, res.summary, mvms, model_cycles, failures, ref_ok)
    if not ref_ok:
        raise CliError("the model disagrees with numpy x @ W")


def _print_summary(args, cfg, s, mvms, model_cycles, failures, ref_ok):
    first, last = mvms[0].accept_cycle, mvms[-1].out_cycle
    macs = args.mvms * cfg.rows * cfg.cols
    print(f"  model == numpy x @ W (int64):        {'yes' if ref_ok else 'NO'} ({args.mvms} MVMs)")
    print(f"  RTL == model, bit-exact, every cycle: yes ({s['mvms']} MVMs, {s['rows_programmed']} row writes)")
    print(f"  cycles, RTL / model:                  {s['cycles'][0]} / {model_cycles}")
    print(f"  verify failures (stuck cells):        {failures}")
    print(f"  MVM latency / interval:               {mvms[0].out_cycle - mvms[0].accept_cycle} / {cfg.steps} cycles")
    print(f"  MACs/cycle over the MVM stream:       {macs / (last - first + 1):.2f} "
          f"(peak {cfg.peak_macs_per_cycle:g}, {100 * macs / (last - first + 1) / cfg.peak_macs_per_cycle:.2f}%)")
    print(f"  simulated {s['cycles'][0]} cycles in {s['wall_seconds']:.2f} s on {args.backend}")


def _reference(bench, ev):
    """numpy x @ W for an MVM event, with the weights in force when it ran."""
    from ..model.macro import mvm_reference
    return mvm_reference(bench.phase_list[0].x_items[ev.index], ev.weights, bench.cfg.acc_bits)
