"""Benchmark: latency and throughput of the 4x4 mesh under synthetic open-loop traffic.

    python -m rramcim.sim.bench_noc [--patterns P ...] [--rates R ...] [--cycles N]
                                    [--backend verilator|model-only] [--plot DIR] [--quick]

For each traffic pattern (:mod:`rramcim.model.noc_traffic`: uniform,
transpose, hotspot, neighbour) and each offered rate (flits per node per
cycle), the same packets (seed fixed) run through the cycle-exact
:class:`~rramcim.model.noc.MeshModel` and through the generated Verilog on
Verilator (:class:`~rramcim.sim.benches.noc.MeshBench`, no idle cycles on the
sources and no backpressure on the sinks). Both are measured the same way,
each from its own delivery cycles:

* latency: ``tail delivery cycle - release cycle + 1``, averaged over the
  packets released after a warm-up of ``cycles // 4``; it includes the time a
  packet waits at its source;
* accepted throughput: flits of the packets whose tail is delivered in the
  window ``[cycles // 4, cycles)``, per node per cycle.

The RTL's per-packet header and tail cycles must equal the model's (the bench
already checks this; the figures here are compared again, packet by packet).

Then, from the lowest rate of each pattern, the zero-load header latency
against the bound ``hops + 1`` (one cycle per router passed, the source's and
the destination's included), and for uniform traffic the saturation
throughput (the highest accepted throughput of the sweep) as a fraction of
the bisection bound ``4 / k`` flits per node per cycle of a k x k mesh. The
targets: one cycle per router hop at zero load; saturation at least 60 % of
the bisection bound for uniform random traffic.

Sources are open loop: past saturation they queue without bound, so the
latency there grows with ``--cycles`` and a run lasts until every packet is
delivered (about ``offered / accepted * cycles`` cycles).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...model.config import PRESETS, Config
from ...model.noc import MeshModel, hop_count
from ...model.noc_traffic import PATTERNS, generate

__all__ = ["MESH4X4", "DEFAULT_RATES", "QUICK_RATES", "PointResult", "measure", "main"]

MESH4X4 = PRESETS["default"].replace(name="mesh4x4", mesh_x=4, mesh_y=4)

DEFAULT_RATES = {
    "uniform": [0.02, 0.05, 0.1, 0.2, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7, 0.8, 1.0],
    "transpose": [0.02, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.7, 1.0],
    "hotspot": [0.02, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.7, 1.0],
    "neighbour": [0.02, 0.1, 0.2, 0.4, 0.6, 0.7, 0.8, 0.9, 1.0],
}
QUICK_RATES = {
    "uniform": [0.02, 0.1, 0.3, 0.5, 0.8],
    "transpose": [0.02, 0.2, 0.5],
    "hotspot": [0.02, 0.2, 0.5],
    "neighbour": [0.02, 0.5, 1.0],
}
DEFAULT_CYCLES, QUICK_CYCLES = 4000, 1000
MAX_LEN = 8
LATENCY_KNEE = 3.0           # saturation by latency: average latency above 3x the zero-load latency
SATURATION_TARGET = 0.60     # fraction of the bisection bound, uniform traffic
PER_HOP_TARGET = 1.0         # cycles per router at zero load


def bisection_bound(cfg: Config) -> float:
    """Uniform-traffic throughput bound of a k x k mesh from its bisection: ``4 / k`` flits/node/cycle.

    Half the traffic crosses the bisection of ``k`` links each way, carried by
    ``k*k / 2`` nodes per side: ``rate * k*k / 4 <= k``.
    """
    k = max(cfg.mesh_x, cfg.mesh_y)
    return 4 / k


@dataclass
class Measured:
    """The figures of one simulation of one point (model or RTL)."""

    latency: float                 # mean tail latency, cycles, packets released after warm-up
    accepted: float                # flits / node / cycle delivered in the window
    cycles: int                    # until the last delivery
    header_latency: dict           # hops -> list of header latencies (delivery - release), after warm-up
    timing: dict                   # (src, dest, k) -> (header cycle, tail cycle), every packet


@dataclass
class PointResult:
    pattern: str
    rate: float
    offered: float                 # flits / node / cycle created in the window
    packets: int
    model: Measured
    rtl: Measured | None = None
    rtl_error: str = ""            # the bench's failure, or the packets that disagree with the model
    mismatches: int = 0
    seconds: dict = field(default_factory=dict)

    @property
    def agree(self) -> bool | None:
        if self.rtl is None and not self.rtl_error:
            return None
        return not self.rtl_error and self.mismatches == 0


def _pair_order(packets: dict) -> dict:
    """(src, dest, k) -> packet, k counting the packets from src to dest in order."""
    out = {}
    for src, pkts in packets.items():
        count = defaultdict(int)
        for p in pkts:
            key = (tuple(src), tuple(p.dest))
            out[key + (count[key],)] = p
            count[key] += 1
    return out


def _measure(cfg: Config, by_key: dict, timing: dict, cycles: int) -> Measured:
    """Figures from ``timing``: (src, dest, k) -> (header cycle, tail cycle)."""
    warm = cycles // 4
    nodes = cfg.mesh_x * cfg.mesh_y
    lat, flits, heads = [], 0, defaultdict(list)
    for key, (hc, tc) in timing.items():
        p = by_key[key]
        if p.release >= warm:
            lat.append(tc - p.release + 1)
            heads[hop_count(p.src, p.dest)].append(hc - p.release)
        if warm <= tc < cycles:
            flits += len(p.payload) + 1
    end = max((tc for _, tc in timing.values()), default=0) + 1
    return Measured(float(np.mean(lat)) if lat else float("nan"), flits / (nodes * (cycles - warm)),
                    end, dict(heads), timing)


def measure(cfg: Config, pattern: str, rate: float, cycles: int, seed: int, backend: str,
            rtl_build=None, report=None) -> PointResult:
    """Run one point on the model (and on ``rtl_build`` unless model-only) and measure both."""
    traffic = dict(pattern=pattern, rate=rate, cycles=cycles, max_len=MAX_LEN)
    packets = generate(cfg, seed=seed, **traffic)
    by_key = _pair_order(packets)
    warm = cycles // 4
    created = sum(len(p.payload) + 1 for p in by_key.values() if p.release >= warm)
    offered = created / (cfg.mesh_x * cfg.mesh_y * (cycles - warm))
    t0 = time.time()
    deliveries, _ = MeshModel(cfg).run(packets)
    count = defaultdict(int)
    model_timing = {}
    for d in sorted(deliveries, key=lambda d: (d.packet.src, d.packet.index)):
        key = (tuple(d.packet.src), tuple(d.packet.dest))
        model_timing[key + (count[key],)] = (d.header_cycle, d.tail_cycle)
        count[key] += 1
    res = PointResult(pattern, rate, offered, len(by_key), _measure(cfg, by_key, model_timing, cycles),
                      seconds={"model": time.time() - t0})
    if backend == "model-only":
        return res
    from ..tools.build import run_cocotb
    t0 = time.time()
    last = [t0]

    def progress(done, total):
        if report and time.time() - last[0] > 15 and done < total:
            last[0] = time.time()
            report(f"    {pattern} {rate:g}: RTL {done}/{total} packets delivered, {last[0] - t0:.0f} s")

    run = run_cocotb(rtl_build, "rramcim.sim.tb.noc", dict(seed=seed, stall=0.0, traffic=traffic),
                     waves_on_failure=False, progress=progress)
    res.seconds["rtl"] = time.time() - t0
    if not run.passed:
        res.rtl_error = f"the RTL run failed: {run.failure.strip() or 'no failure text'} (log {run.log})"
        return res
    rtl_timing = {(tuple(s), tuple(d), k): (hc, tc) for s, d, k, hc, tc in run.summary["deliveries"]}
    res.rtl = _measure(cfg, by_key, rtl_timing, cycles)
    bad = sorted(k for k in set(rtl_timing) | set(model_timing) if rtl_timing.get(k) != model_timing.get(k))
    res.mismatches = len(bad)
    if bad:
        k = bad[0]
        res.rtl_error = (f"{len(bad)} of {len(by_key)} packets delivered at other cycles than the model; "
                         f"first: packet #{k[2]} from {k[0]} to {k[1]}: RTL header/tail "
                         f"{rtl_timing.get(k)}, model {model_timing.get(k)}")
    return res


# --- analysis --------------------------------------------------------------------------------


def zero_load(point: PointResult, which: str) -> dict:
    """Header latency against ``hops + 1`` at one (low) rate: per hop count and a fit."""
    m = point.model if which == "model" else point.rtl
    rows, xs, ys = [], [], []
    for h in sorted(m.header_latency):
        v = m.header_latency[h]
        rows.append((h, len(v), h + 1, min(v), float(np.mean(v))))
        xs += [h] * len(v)
        ys += v
    slope, icpt = (np.polyfit(xs, ys, 1) if len(set(xs)) > 1 else (float("nan"), float("nan")))
    at_bound = sum(y == x + 1 for x, y in zip(xs, ys)) / len(ys) if ys else float("nan")
    return dict(rows=rows, slope=float(slope), intercept=float(icpt), at_bound=at_bound,
                per_router=sum(ys) / sum(x + 1 for x in xs) if xs else float("nan"),
                minimum_at_bound=all(r[3] == r[2] for r in rows) and bool(rows))


def saturation(points: list[PointResult], which: str) -> dict:
    """Highest accepted throughput; and the last rate before latency passes 3x zero-load."""
    ms = [(p.rate, p.model if which == "model" else p.rtl) for p in points]
    ms = [(r, m) for r, m in ms if m is not None]
    if not ms:
        return {}
    best_rate, best = max(ms, key=lambda rm: rm[1].accepted)
    zl = ms[0][1].latency
    knee = next((i for i, (_, m) in enumerate(ms) if m.latency > LATENCY_KNEE * zl), None)
    below = ms[knee - 1] if knee else None
    return dict(peak=best.accepted, peak_rate=best_rate, zero_load=zl,
                knee_rate=ms[knee][0] if knee is not None else None,
                before_knee=(below[0], below[1].accepted) if below else None)


# --- output ----------------------------------------------------------------------------------


def _f(v, fmt):
    return "-" if v is None else format(v, fmt)


def print_table(pattern: str, points: list[PointResult], out=sys.stdout):
    print(f"\n{pattern} traffic", file=out)
    print(f"{'rate':>6}{'offered':>9}{'packets':>9}{'accepted':>10}{'accepted':>10}{'latency':>10}"
          f"{'latency':>10}{'cycles':>8}{'RTL=model':>11}", file=out)
    print(f"{'':>6}{'f/n/c':>9}{'':>9}{'model':>10}{'RTL':>10}{'model':>10}{'RTL':>10}{'':>8}{'':>11}",
          file=out)
    for p in points:
        rtl = p.rtl
        agree = {None: "-", True: "yes", False: "NO"}[p.agree]
        print(f"{p.rate:>6g}{p.offered:>9.3f}{p.packets:>9}{p.model.accepted:>10.3f}"
              f"{_f(rtl and rtl.accepted, '.3f'):>10}{p.model.latency:>10.1f}{_f(rtl and rtl.latency, '.1f'):>10}"
              f"{p.model.cycles:>8}{agree:>11}", file=out)


def plot(results: dict, directory: Path) -> list[Path]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for pattern, points in results.items():
        fig, ax = plt.subplots(figsize=(6, 4.2))
        rates = [p.offered for p in points]
        ax.plot(rates, [p.model.latency for p in points], "-", color="C0", label="model")
        rp = [p for p in points if p.rtl is not None]
        if rp:
            ax.plot([p.offered for p in rp], [p.rtl.latency for p in rp], "o", mfc="none", color="C1",
                    label="RTL (Verilator)")
        ax.set_yscale("log")
        ax.set_xlabel("offered load (flits / node / cycle)")
        ax.set_ylabel("average packet latency (cycles)")
        ax.set_title(f"4x4 mesh, {pattern} traffic, packets of 1..{MAX_LEN} flits")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        fig.tight_layout()
        path = directory / f"noc_latency_{pattern}.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        paths.append(path)
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for i, (pattern, points) in enumerate(results.items()):
        ax.plot([p.offered for p in points], [p.model.accepted for p in points], "-", color=f"C{i}",
                label=f"{pattern} (model)")
        rp = [p for p in points if p.rtl is not None]
        if rp:
            ax.plot([p.offered for p in rp], [p.rtl.accepted for p in rp], "o", mfc="none", color=f"C{i}",
                    label=f"{pattern} (RTL)")
    ax.axhline(bisection_bound(MESH4X4), color="grey", ls="--", lw=1, label="uniform bisection bound")
    ax.set_xlabel("offered load (flits / node / cycle)")
    ax.set_ylabel("accepted throughput (flits / node / cycle)")
    ax.set_title("4x4 mesh: accepted vs offered load")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = directory / "noc_throughput.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    paths.append(path)
    return paths


def _summary_json(results: dict) -> dict:
    def m(x):
        return None if x is None else dict(latency=x.latency, accepted=x.accepted, cycles=x.cycles)
    return {pat: [dict(rate=p.rate, offered=p.offered, packets=p.packets, model=m(p.model), rtl=m(p.rtl),
                       agree=p.agree, error=p.rtl_error, seconds=p.seconds) for p in pts]
            for pat, pts in results.items()}


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m rramcim.sim.bench_noc", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--patterns", nargs="+", choices=PATTERNS, default=list(PATTERNS), metavar="P",
                    help=f"traffic patterns (default: all of {', '.join(PATTERNS)})")
    ap.add_argument("--rates", nargs="+", type=float, metavar="R",
                    help="offered rates in flits/node/cycle for every pattern (default: a sweep per pattern)")
    ap.add_argument("--cycles", type=int, help=f"cycles of injection per point (default {DEFAULT_CYCLES}, "
                                               f"--quick {QUICK_CYCLES})")
    ap.add_argument("--backend", choices=["verilator", "model-only"], default="verilator")
    ap.add_argument("--plot", type=Path, metavar="DIR", help="write PNG plots to DIR")
    ap.add_argument("--json", type=Path, metavar="FILE", help="write the figures as JSON")
    ap.add_argument("--quick", action="store_true", help="fewer rates and cycles")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=2, help="points simulated at once (default 2)")
    return ap


def _sweep(args, cfg, sweep, cycles, rtl_build, report, started) -> tuple[dict, list]:
    """Every point of ``sweep`` ({pattern: [rates]}), ``args.jobs`` at once: ({pattern: [points]}, failures)."""
    jobs = [(pat, r) for pat, rates in sweep.items() for r in rates]
    report(f"{len(jobs)} points, {cycles} cycles of injection each, seed {args.seed}, backend {args.backend}, "
           f"{args.jobs} at once")
    results = {pat: {} for pat in sweep}
    failures = []
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futs = {pool.submit(measure, cfg, pat, r, cycles, args.seed, args.backend, rtl_build, report): (pat, r)
                for pat, r in jobs}
        for n, fut in enumerate(as_completed(futs), 1):
            pat, r = futs[fut]
            p = fut.result()
            results[pat][r] = p
            rtl = (f", RTL {p.seconds['rtl']:.1f} s latency {p.rtl.latency:.1f}" if p.rtl else "")
            report(f"[{n:>2}/{len(jobs)}] {pat:<9} rate {r:<5g} {p.packets:>6} packets, {p.model.cycles:>6} cycles: "
                   f"model latency {p.model.latency:.1f} accepted {p.model.accepted:.3f}{rtl}  "
                   f"({time.time() - started:.0f} s)")
            if p.rtl_error:
                failures.append(p)
                report(f"!!! {pat} rate {r:g}: RTL AND MODEL DISAGREE: {p.rtl_error}")
    return {pat: [pts[r] for r in sorted(pts)] for pat, pts in results.items()}, failures


def _print_zero_load(results: dict, which: list) -> None:
    print("\nzero-load header latency (header delivered - released) at the lowest rate, vs hops + 1:")
    per_hop_ok = True
    for pat, points in results.items():
        for w in which:
            if w == "rtl" and points[0].rtl is None:
                print(f"  {pat:<9} RTL: no result")
                per_hop_ok = False
                continue
            z = zero_load(points[0], w)
            per_hop_ok &= z["minimum_at_bound"]
            hops = "  ".join(f"{h}:{mean:.2f}/{b}" for h, n, b, mn, mean in z["rows"])
            fit = ("one hop count only" if np.isnan(z["slope"])
                   else f"fit over hops: {z['slope']:.3f} per hop + {z['intercept']:.2f}")
            print(f"  {pat:<9} {w:<5} rate {points[0].rate:g}: {z['per_router']:.3f} cycles per router "
                  f"({fit}); "
                  f"{100 * z['at_bound']:.0f}% of headers exactly at hops+1, minimum at the bound "
                  f"for every hop count: {'yes' if z['minimum_at_bound'] else 'NO'}")
            print(f"  {'':<9} {'':<5} mean/bound by hops: {hops}")
    print(f"  target: {PER_HOP_TARGET:g} cycle per router hop at zero load: "
          f"{'MET' if per_hop_ok else 'MISSED'} (a header that meets no contention takes exactly hops + 1 "
          f"cycles{'' if per_hop_ok else ' -- NOT for every hop count'}; the excess over the bound in the "
          "averages is contention from the other traffic)")


def _print_saturation(cfg, points: list, which: list) -> None:
    bound = bisection_bound(cfg)
    print(f"\nuniform random saturation vs the bisection bound 4/k = {bound:g} flits/node/cycle (k = 4):")
    verdict_sat = None
    for w in which:
        s = saturation(points, w)
        if not s:
            print(f"  {w}: no result")
            verdict_sat = False
            continue
        frac = s["peak"] / bound
        knee = (f"latency first exceeds {LATENCY_KNEE:g}x zero-load ({s['zero_load']:.1f} cycles) at offered "
                f"{s['knee_rate']:g}" + (f", accepted {s['before_knee'][1]:.3f} at offered {s['before_knee'][0]:g} "
                                         f"just below" if s["before_knee"] else "")
                if s["knee_rate"] is not None else f"latency stays below {LATENCY_KNEE:g}x zero-load")
        print(f"  {w:<5}: peak accepted {s['peak']:.3f} flits/node/cycle (at offered {s['peak_rate']:g}) = "
              f"{100 * frac:.1f}% of the bound; {knee}")
        ok = frac >= SATURATION_TARGET
        verdict_sat = ok if verdict_sat is None else verdict_sat and ok
    top = max(p.rate for p in points)
    if top < 0.8:
        print(f"  (the sweep stops at offered {top:g}: the peak may lie beyond it)")
    print(f"  target: saturation >= {100 * SATURATION_TARGET:.0f}% of the bisection bound: "
          f"{'MET' if verdict_sat else 'MISSED'}")


def _print_agreement(results: dict, failures: list) -> None:
    total = sum(len(v) for v in results.values())
    if failures:
        print(f"\n!!! RTL AND MODEL DISAGREE at {len(failures)} of {total} points:")
        for p in failures:
            print(f"!!!   {p.pattern} rate {p.rate:g}: {p.rtl_error}")
    else:
        n = sum(p.packets for v in results.values() for p in v)
        print(f"\nRTL = model: every one of {n} packets at {total} points delivered at the same header "
              f"and tail cycle on Verilator as in the model")


def main(argv=None):
    ap = _parser()
    args = ap.parse_args(argv)
    cycles = args.cycles or (QUICK_CYCLES if args.quick else DEFAULT_CYCLES)
    if cycles < 8:
        ap.error("--cycles must be at least 8")
    if args.jobs < 1:
        ap.error("--jobs must be at least 1")
    if args.rates and not all(0 < r <= 1 for r in args.rates):
        ap.error("--rates must lie in (0, 1] flits/node/cycle")
    cfg = MESH4X4
    sweep = {p: sorted(set(args.rates)) if args.rates else (QUICK_RATES if args.quick else DEFAULT_RATES)[p]
             for p in args.patterns}
    started = time.time()
    lock = threading.Lock()

    def report(text):
        with lock:
            print(text, flush=True)

    rtl_build = None
    if args.backend == "verilator":
        from ..tools.build import build
        report(f"building the {cfg.mesh_x}x{cfg.mesh_y} mesh for Verilator (cached after the first time) ...")
        rtl_build = build("mesh", cfg, "verilator", log=report)
    results, failures = _sweep(args, cfg, sweep, cycles, rtl_build, report, started)

    for pat, points in results.items():
        print_table(pat, points)
    which = ["model"] + (["rtl"] if args.backend == "verilator" else [])
    print("\nlatency in cycles (tail delivered - released + 1), accepted in flits/node/cycle; "
          f"both over packets released or delivered in cycles [{cycles // 4}, {cycles}); past saturation "
          "sources queue without bound, so latency there grows with --cycles")
    _print_zero_load(results, which)
    if "uniform" in results:
        _print_saturation(cfg, results["uniform"], which)
    if args.backend == "verilator":
        _print_agreement(results, failures)
    if args.plot:
        for path in plot(results, args.plot):
            print(f"plot: {path}")
    if args.json:
        args.json.write_text(json.dumps(_summary_json(results), indent=1))
        print(f"figures: {args.json}")
    print(f"run time {time.time() - started:.0f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
