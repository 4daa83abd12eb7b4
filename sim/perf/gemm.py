"""GEMM throughput on the cycle-exact model: weight-resident GEMMs that fill the chip, and one that reprograms.

``python -m rramcim.sim.bench_gemm [--config default] [--m 256]`` compiles each case of
:func:`cases` (:func:`rramcim.model.compiler.compile_gemm`), runs every window on the cycle-exact
model (:func:`rramcim.sim.backends.model.run_on_model`), checks ``C`` against numpy and prints, per
case: ``M, K, N``, the windows, the cycles (summed over windows, RRAM programming included), the
MACs (``M*K*N``), the utilization against the peak and against the roofline, and the share of the
cycles spent programming RRAM.

Roofline (:func:`rramcim.model.compiler.roofline`, derived in docs/architecture.md):
``min(peak, M*K*N / max(flits out, flits in))`` MACs per cycle, the controller's network port
moving one flit per cycle each way: out, an ACT packet of ``2 + words_x`` flits per row of A and
tile block that needs it (no multicast); in, a RESULT packet of ``2 + words_a`` flits per int32
result vector; ``peak = tiles * peak_macs_per_cycle``. Utilization against it is
``macs / (cycles * roofline)``, cycles summed over the windows, RRAM programming included.

Programming share: measured, not estimated. The compiler programs each pass's RRAM in windows of
their own (``ldw`` only, then ``sync`` + ``barrier`` + ``halt``); the share is their cycles over all
cycles.

Each case also shows the plan's traffic bound (:func:`rramcim.model.compiler.traffic_bound`): the
cycles no timing can beat for what the program moves (the controller's sending, its receiving, the
busiest tile), and the measured cycles' efficiency against it. A K split over tiles is
bound by it rather than by the roofline: it moves partial sums that a tile can neither receive nor
send while it computes or receives activations.

:func:`cases` gives the GEMMs (name, A, B) for any config, so that an RTL run can reuse them.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from ...model.compiler import compile_gemm, traffic_bound
from ...model.config import Config, load_config
from ..backends.model import run_on_model

__all__ = ["cases", "main", "measure"]


def cases(cfg: Config, m: int = 256, seed: int = 1) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``[(name, A, B)]``: int8 GEMMs with ``M = m``.

    * ``N split``: ``K = rows``, ``N = tiles * cols`` (default: 32 x 128): every tile holds one
      N-block, weights resident;
    * ``K split``: ``K = tiles * rows``, ``N = cols`` (default: 128 x 32): every tile holds one
      K-block, partial sums between tiles, weights resident;
    * ``reprogram``: ``K = 2 * tiles * rows``, ``N = tiles * cols`` (default: 256 x 128): eight
      times the chip's weights, RRAM reprogrammed between passes, partial sums between passes
      through the global buffer.
    """
    rng = np.random.default_rng(seed)
    T, R, C = cfg.tiles, cfg.rows, cfg.cols
    out = []
    for name, K, N in (("N split", R, T * C), ("K split", T * R, C), ("reprogram", 2 * T * R, T * C)):
        A = rng.integers(-128, 128, size=(m, K), dtype=np.int64).astype(np.int8)
        B = rng.integers(-128, 128, size=(K, N), dtype=np.int64).astype(np.int8)
        out.append((name, A, B))
    return out


def measure(cfg: Config, A, B) -> dict:
    """Compile and run one GEMM on the model; the report of ``run_on_model`` plus the plan and bounds."""
    plan = compile_gemm(cfg, A, B)
    C, rep = run_on_model(plan)
    ref = (A.astype(np.int64) @ B.astype(np.int64)).astype(np.int32)
    if not np.array_equal(C, ref):
        raise SystemExit(f"C differs from numpy in {int((C != ref).sum())} elements")
    kinds = plan.schedule["window_kinds"]
    rep.update(plan=plan, bound=traffic_bound(plan), program_windows=kinds.count("program"),
               schemes=sorted({p["scheme"] for p in plan.schedule["passes"]}))
    return rep


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m rramcim.sim.bench_gemm", description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="default", help="preset or config file (default: %(default)s)")
    ap.add_argument("--m", type=int, default=256, help="rows of A (default: %(default)s)")
    ap.add_argument("--rtl", choices=["verilator", "icarus"],
                    help="also run every case on the RTL over AXI and check its cycles and C against the model")
    ap.add_argument("--cases", default="N split,K split,reprogram", help="comma-separated case names")
    args = ap.parse_args(argv)
    cfg = load_config(args.config)
    peak = cfg.tiles * cfg.peak_macs_per_cycle
    print(f"config {cfg.name}: {cfg.mesh_x}x{cfg.mesh_y} tiles of {cfg.rows}x{cfg.cols}, peak {peak:.0f} MACs/cycle; "
          f"roofline min(peak, MACs / max(flits the controller sends, flits it receives)), one flit a cycle "
          f"each way")
    wanted = {c.strip() for c in args.cases.split(",")}
    for name, A, B in cases(cfg, args.m):
        if name not in wanted:
            continue
        M, K = A.shape
        N = B.shape[1]
        t0 = time.time()
        r = measure(cfg, A, B)
        b = r["bound"]
        c = r["counters"]
        roof = r["roofline_macs_per_cycle"]
        print(f"\n{name}: M={M} K={K} N={N}  ({len(r['plan'].schedule['passes'])} passes, partial sums: "
              f"{', '.join(r['schemes'])})")
        print(f"  windows {r['windows']} ({r['program_windows']} programming RRAM), cycles {r['cycles']}, "
              f"MACs {r['macs']}  [C equal to numpy; model {time.time() - t0:.1f} s]")
        print(f"  utilization {r['utilization']:.1%} of peak, {r['roofline_utilization']:.1%} of the roofline "
              f"{roof:.1f} ({r['macs'] / r['cycles']:.1f} MACs/cycle)")
        print(f"  programming RRAM: {r['program_share']:.1%} of the cycles ({r['program_cycles']} cycles, "
              f"{r['rram_row_writes']} rows, {r['rram_pulses']} pulses; measured on the ldw-only windows)")
        print(f"  traffic bound {b['cycles']} cycles (controller sends {b['ctrl_tx']}, receives {b['ctrl_rx']}, "
              f"busiest tile {b['tile']}): measured at {r['bound_efficiency']:.1%} of it; at most "
              f"{r['macs'] / (b['cycles'] * roof):.1%} of the roofline for this data movement")
        print(f"  counters: ctrl_tx_stall {c['ctrl_tx_stall']}, barrier_wait {c['barrier_wait']}, "
              f"noc_flits {c['noc_flits']}, tile busy {c['busy'] / (cfg.tiles * r['cycles']):.0%}")
        if args.rtl:
            from ..backends import run_windows
            t0 = time.time()
            plan = r["plan"]
            out = run_windows(args.rtl, cfg, plan.windows)
            C = plan.result([o["reads"] for o in out])
            cycles = [o["cycles"] for o in out]
            same = cycles == r["window_cycles"] and np.array_equal(C, (A.astype(np.int64) @ B.astype(np.int64))
                                                                    .astype(np.int32))
            print(f"  RTL ({args.rtl}, over AXI): cycles {sum(cycles)}, {r['macs'] / (sum(cycles) * roof):.1%} of the "
                  f"roofline; every window's cycles and C {'equal to the model' if same else 'DIFFER from the model'}"
                  f" [{time.time() - t0:.0f} s]")
            if not same:
                raise SystemExit("the RTL disagrees with the model")


if __name__ == "__main__":
    main()
