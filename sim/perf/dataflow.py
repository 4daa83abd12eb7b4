"""The dataflow benchmark: resident pipelines and GEMMs at flit widths 64, 128 and 256 on the cycle-exact model.

``python -m rramcim.sim.perf.dataflow [--config default] [--widths 64,128,256] [--m512 512]`` runs, for each
flit width ``W`` (:func:`at_width`: ``config.replace(flit_width=W)`` with the global buffer's and the router
FIFOs' bytes kept), the workloads of issue 18 the way ``rramcim run`` and
``rramcim gemm`` run them (:func:`rramcim.sim.backends.jobs.run_net`, :func:`~rramcim.sim.backends.jobs.gemm_plan`:
a resident pipeline when it applies, else the layer-by-layer GEMM compiler):

* ``demo``: the digits MLP 64-32-10 (``model/digits.py``), batch 450;
* ``mlp 64-32-32-16``: a random int8 MLP, batch 256;
* ``mlp 64-32-64 (fan-out)``: a random int8 MLP, batch 256, whose last layer is two tiles wide (each hidden
  vector fanned out to both);
* ``N split`` (256 x 32 x 128), ``K split`` (256 x 128 x 32), ``chip-filling`` (256 x 64 x 64 on ``default``: 2 x 2
  blocks, every tile, weight-resident), ``512x512x512``, ``1x300x77``, ``65x131x70``.

Per workload and width it prints the placement, the inference cycles (programming left out), the
``compute_utilization``, the physical limit and what bounds it, the measured utilization's ratio to the
limit, and SCALE-Sim 3.0's utilization on a 32x32 array where issue 18 gives one. The limit of a pipeline is
:func:`rramcim.model.compiler.pipeline_limit` (the macros' ``steps`` cycles per MVM, the controller's port and
each tile's port at a flit a cycle); that of a GEMM the compiler places layer by layer is its port roofline
(:func:`rramcim.model.compiler.roofline`). For pipelines, the counters of where time goes (summed over tiles):
``feed_stall`` (controller feed cycles without a credit), ``ctrl_tx_stall``, ``credit_stall`` (tile results
waiting for a credit), ``macro_stall`` and ``rx_overlap`` (cycles a tile receives while its macro computes). "util, all cycles" is ``utilization``
(programming included).
Last, per width: the chip's area (routers and tile buffers grow with the flit), and the demo's energy per
inference on a kept chip against the baseline (:func:`rramcim.model.energy.energy_report`, weights in the
baseline's SRAM, activations on chip on both sides). ``--m512`` shortens the 512-cube's M (its per-row cost
is the same; 512 takes minutes a width). ``--plot DIR`` also draws ``DIR/dataflow.png``: per workload and
width, the measured ``compute_utilization`` beside its limit.
"""

from __future__ import annotations

import argparse

import numpy as np

from ...model.compiler import roofline
from ...model.config import Config, load_config
from ...model.energy import chip_area
from ...model.mlp import Layer, Net, reference
from ..backends.jobs import gemm_plan, run_net, run_plan
from .energy import demo_report

__all__ = ["SCALESIM", "at_width", "workloads", "measure", "area_energy", "plot", "main"]

SCALESIM = {"demo": "61% (ws)", "512x512x512": "84.5% ws / 89.2% os", "1x300x77": "0.8% ws",
            "65x131x70": "24.4% ws"}
"""SCALE-Sim 3.0 on a 32x32 array, as issue 18 quotes it."""


def at_width(base: Config, width: int) -> Config:
    """``base`` with ``flit_width = width`` and the same bytes of global buffer and router FIFOs (their depths
    scaled by ``base.flit_width / width``): the network alone is wider or narrower. From ``default`` (256
    bits, 1024 words, 4-deep FIFOs), 64 bits is the 64-bit ``default`` before it (4096 words, 16 deep)."""
    scale = base.flit_width / width
    return base.replace(flit_width=width, gbuf_words=max(1, round(base.gbuf_words * scale)),
                        noc_fifo_depth=max(1, round(base.noc_fifo_depth * scale)))


def _net(rng, sizes) -> Net:
    layers = []
    for i in range(len(sizes) - 1):
        last = i == len(sizes) - 2
        layers.append(Layer(rng.integers(-128, 128, (sizes[i], sizes[i + 1])).astype(np.int8),
                            rng.integers(-5000, 5000, sizes[i + 1]).astype(np.int32), None if last else 9,
                            0 if last else 1))
    return Net(layers)


def workloads(cfg: Config, m512: int = 512, seed: int = 1) -> list[tuple]:
    """``[(name, kind, operands)]``: ``("net", (net, X))`` or ``("gemm", (A, B))``."""
    from ...model.digits import train_digits
    rng = np.random.default_rng(seed)
    net, X, _, _, _ = train_digits()
    out = [("demo", "net", (net, X)),
           ("mlp 64-32-32-16", "net", (_net(rng, [64, 32, 32, 16]), rng.integers(-128, 128, (256, 64)).astype(np.int8))),
           ("mlp 64-32-64 (fan-out)", "net", (_net(rng, [64, 32, 64]),
                                              rng.integers(-128, 128, (256, 64)).astype(np.int8)))]
    R, C, T = cfg.rows, cfg.cols, cfg.tiles
    for name, M, K, N in (("N split", 256, R, T * C), ("K split", 256, T * R, C), ("chip-filling", 256, 2 * R, 2 * C),
                          ("512x512x512", m512, 512, 512), ("1x300x77", 1, 300, 77), ("65x131x70", 65, 131, 70)):
        out.append((name if name != "512x512x512" or m512 == 512 else f"{m512}x512x512", "gemm",
                    (rng.integers(-128, 128, (M, K)).astype(np.int8), rng.integers(-128, 128, (K, N)).astype(np.int8))))
    return out


def measure(cfg: Config, kind: str, ops) -> dict:
    """One workload on the model: the run's report plus ``limit_utilization``, ``limit_bound``, ``of_limit``."""
    if kind == "net":
        net, X = ops
        Y, r = run_net(cfg, net, X, "model")
        assert np.array_equal(Y, reference(net, X))
        M, K, N = X.shape[0], None, None
    else:
        A, B = ops
        plan, placement, reason = gemm_plan(cfg, A, B, "model")
        C, r = run_plan(plan, "model")
        assert np.array_equal(C, (A.astype(np.int64) @ B.astype(np.int64)).astype(np.int32))
        r.update(placement=placement, placement_reason=reason)
        M, K, N = A.shape[0], A.shape[1], B.shape[1]
    if r["placement"] != "pipeline":
        if kind == "net":       # layer by layer: the busiest layer's port roofline bounds it
            roofs = [roofline(cfg, L["M"], L["K"], L["N"], requantized=i < len(r["layers"]) - 1)
                     for i, L in enumerate(r["layers"])]
            lim = r["macs"] / sum(L["macs"] / rf for L, rf in zip(r["layers"], roofs))
        else:
            lim = roofline(cfg, M, K, N)
        r.update(limit_utilization=lim / r["peak_macs_per_cycle"], limit_bound="port roofline")
    r["of_limit"] = r["compute_utilization"] / r["limit_utilization"]
    return r


def area_energy(cfg: Config) -> dict:
    """The chip's area and the digits demo's energy per inference on a kept chip (its second run), against
    the baseline (:func:`.energy.demo_report`)."""
    e = demo_report(kept=True, cfg=cfg)
    a = chip_area(cfg)
    return {"area_mm2": a["total"], "routers_mm2": a["routers"], "tile_buffers_mm2": a["tile buffers"],
            "nj": e["energy_per_pj"] / 1e3, "baseline_nj": e["baseline_energy_per_pj"] / 1e3,
            "ratio": e["energy_ratio"], "dram_share": e["breakdown_pj"]["host I/O (DRAM)"] / e["energy_pj"]}


STALLS = ("feed_stall", "ctrl_tx_stall", "credit_stall", "macro_stall", "rx_overlap")


def plot(rows: list[tuple], path) -> None:
    """``rows`` ``[(workload, width, compute_utilization, limit_utilization, placement)]`` as grouped bars:
    per workload, a bar per width (measured) with its limit drawn as a tick above it."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = list(dict.fromkeys(r[0] for r in rows))
    widths = sorted({r[1] for r in rows})
    fig, ax = plt.subplots(figsize=(11, 4.2))
    bw = 0.8 / len(widths)
    for k, W in enumerate(widths):
        got = {r[0]: r for r in rows if r[1] == W}
        xs = [i + (k - (len(widths) - 1) / 2) * bw for i in range(len(names))]
        util = [100 * got[n][2] if n in got else 0 for n in names]
        ax.bar(xs, util, bw * 0.9, label=f"{W}-bit flits")
        for x, n in zip(xs, names):
            if n in got:
                ax.plot([x - bw * 0.45, x + bw * 0.45], [100 * got[n][3]] * 2, color="black", lw=2)
                if got[n][4] != "pipeline":
                    ax.text(x, 100 * got[n][2] + 1, "L", ha="center", fontsize=7)
    ax.set_xticks(range(len(names)), names, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("% of peak (inference cycles)")
    ax.set_title("compute utilization (bars) and its limit (black lines); L: layer by layer (limit: port roofline)")
    ax.set_ylim(0, 105)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="default")
    ap.add_argument("--widths", default="64,128,256")
    ap.add_argument("--m512", type=int, default=512, help="M of the 512x512x512 GEMM (default 512)")
    ap.add_argument("--plot", metavar="DIR", help="also draw DIR/dataflow.png (utilization beside its limit)")
    args = ap.parse_args(argv)
    base = load_config(args.config)
    widths = [int(w) for w in args.widths.split(",")]
    print(f"config '{base.name}': {base.mesh_x}x{base.mesh_y} tiles of {base.rows}x{base.cols}, peak "
          f"{base.tiles * base.peak_macs_per_cycle:g} MACs/cycle; cycles are inference cycles (programming left out)")
    print("| workload | flit | placement | inference cycles | compute util | util, all cycles | limit (bound) | of limit "
          "| SCALE-Sim 32x32 | feed_stall | ctrl_tx_stall | credit_stall | macro_stall | rx_overlap |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    per_width, drawn = {}, []
    for W in widths:
        cfg = at_width(base, W)
        for name, kind, ops in workloads(cfg, args.m512):
            r = measure(cfg, kind, ops)
            c = r["counters"]
            stalls = " | ".join(str(c.get(k, 0)) if r["placement"] == "pipeline" else "-" for k in STALLS)
            print(f"| {name} | {W} | {r['placement']} | {r['inference_cycles']} | {100 * r['compute_utilization']:.1f}% "
                  f"| {100 * r['utilization']:.1f}% | {100 * r['limit_utilization']:.1f}% ({r['limit_bound']}) | {100 * r['of_limit']:.0f}% "
                  f"| {SCALESIM.get(name, '-')} | {stalls} |", flush=True)
            drawn.append((name, W, r["compute_utilization"], r["limit_utilization"], r["placement"]))
        per_width[W] = area_energy(cfg)
    print()
    print("| flit | area mm2 | routers mm2 | tile buffers mm2 | demo, kept chip: nJ/inference | baseline nJ | "
          "baseline / chip | chip DRAM share |")
    print("|---|---|---|---|---|---|---|---|")
    for W, a in per_width.items():
        print(f"| {W} | {a['area_mm2']:.3f} | {a['routers_mm2']:.3f} | {a['tile_buffers_mm2']:.3f} | {a['nj']:.2f} "
              f"| {a['baseline_nj']:.2f} | {a['ratio']:.2f}x | {100 * a['dram_share']:.0f}% |")
    if args.plot:
        from pathlib import Path
        out = Path(args.plot)
        out.mkdir(parents=True, exist_ok=True)
        plot(drawn, out / "dataflow.png")
        print(f"wrote {out / 'dataflow.png'}")


if __name__ == "__main__":
    main()
