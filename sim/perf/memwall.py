"""The memory wall, measured: multi-MB networks resident on a kept ``memwall`` chip against the equal-area
baseline, from counted events of runs on the cycle-exact model.

``python -m rramcim.sim.perf.memwall`` runs, per workload (:data:`WORKLOADS`):

* the programming run (a fresh chip: every RRAM row written once) and its cycles and energy;
* a batch sweep on the kept chip (no row written): cycles per inference, compute utilization beside
  its limit (the placement's balance: the busiest tile of each layer, :func:`utilization_limit`), the chip's
  and the equal-area baseline's energy per inference, their ratio, and where the chip's energy goes;
* the ratio's sensitivity to the DRAM energy per bit (half and twice the table's) and to the SRAM
  figure of the baseline's weight buffer (``sram_array_bit``, after Horowitz's 1 MB point, or built of 32 KB
  banks plus the wire to the port, :func:`~rramcim.sim.perf.equal_area.banked_sram_bit`).

Every output is checked bit for bit against the int8 numpy reference. ``--plot DIR`` draws memwall.png (the
ratio and the utilization by batch); ``--write docs/energy.md`` replaces the section between
``<!-- memwall:begin -->`` and ``<!-- memwall:end -->`` with the tables. It takes a few minutes (the
programming runs write 3 MiB of rows each on the cycle-exact model).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from ...model import energy as E
from ...model.chipfile import KeptChip
from ...model.compiler.banked import bank_placement
from ...model.config import PRESETS
from ...model.mlp import Layer, Net, reference
from ..backends.jobs import run_net
from .equal_area import _write, banked_sram_bit

CONFIG = "memwall"
BATCHES = (1, 2, 4, 8, 16, 64)
WORKLOADS = {
    "MLP 1024-1024-1024-1024 (3 MiB)": [1024, 1024, 1024, 1024],
    "decode GEMVs d=512: QKV 512x1536, 1536x512, FFN 512x2048, 2048x512 (3.5 MiB)": [512, 1536, 512, 2048, 512],
}
"""Networks of several MiB: an MLP of 1024-wide layers, and the GEMVs of a transformer block's decode step
at d = 512 chained as one network (the attention between QKV and the projection is not modeled: the
projection takes the 1536 QKV outputs)."""


def make_net(sizes, seed: int = 0) -> Net:
    """Random int8 weights and int32 biases; hidden layers requantized with a shift that keeps them in range."""
    rng = np.random.default_rng(seed)
    layers = []
    for i, (k, n) in enumerate(zip(sizes, sizes[1:])):
        last = i == len(sizes) - 2
        shift = max(0, int(np.log2(128 * 128 * np.sqrt(k))) - 6)
        layers.append(Layer(rng.integers(-128, 128, (k, n)).astype(np.int8),
                            rng.integers(-5000, 5000, n).astype(np.int32), None if last else shift, 0 if last else 1))
    return Net(layers)


def utilization_limit(cfg, net) -> float:
    """Compute utilization with every tile's macro busy from an inference's first MVM to its last but for the
    placement's imbalance: each layer takes its busiest tile's MVMs times ``steps`` cycles."""
    shares = bank_placement(cfg, [L.w.shape for L in net.layers])
    cycles = 0
    for i in range(len(net.layers)):
        cycles += max(s.nb * s.kb for s in shares if s.layer == i) * cfg.steps
    macs = sum(L.w.size for L in net.layers)
    return macs / (cycles * cfg.tiles * cfg.peak_macs_per_cycle)


def _layers(net, batch):
    n = len(net.layers)
    return [(batch, L.w.shape[0], L.w.shape[1], 8 if i < n - 1 else 32, 1) for i, L in enumerate(net.layers)]


def _energy(cfg, net, rep, batch, overrides=None):
    return E.energy_report(cfg, rep, _layers(net, batch), per=batch, baseline="equal-area", weights_resident=True,
                           overrides=overrides)


def measure(name: str, sizes, batches=BATCHES, log=print) -> dict:
    """The programming run and the batch sweep of one workload: a dict of figures (see the module docstring)."""
    cfg = PRESETS[CONFIG]
    net = make_net(sizes)
    rng = np.random.default_rng(1)
    chip = KeptChip.fresh(cfg)
    X = rng.integers(-128, 128, (1, net.inputs)).astype(np.int8)
    t0 = time.time()
    Y, rep = run_net(cfg, net, X, "model", chip=chip)
    if not np.array_equal(Y, reference(net, X)):
        raise AssertionError(f"{name}: the programming run differs from the reference")
    e = E.energy_report(cfg, rep, _layers(net, 1), per=1, baseline="equal-area")
    prog = {"rows": rep["rram_row_writes"], "cycles": rep["program_cycles"], "seconds": time.time() - t0,
            "energy_uj": e["breakdown_pj"].get("RRAM programming", 0.0) / 1e6}
    log(f"{name}: programmed {prog['rows']} rows in {prog['cycles']} cycles ({prog['seconds']:.0f} s on the model)")
    sweep = []
    for b in batches:
        X = rng.integers(-128, 128, (b, net.inputs)).astype(np.int8)
        t0 = time.time()
        Y, rep = run_net(cfg, net, X, "model", chip=chip)
        if not np.array_equal(Y, reference(net, X)) or rep["rram_row_writes"]:
            raise AssertionError(f"{name}, batch {b}: output differs from the reference or rows were written")
        e = _energy(cfg, net, rep, b)
        sens = {}
        if b in (1, 16):
            dram = E.event_energies(cfg)["dram_bits"]
            alt = banked_sram_bit(E.DEFAULT_NODE, e["baseline_sram_bytes"])
            for key, ov in (("dram x0.5", {"dram_bits": dram / 2}), ("dram x2", {"dram_bits": dram * 2}),
                            ("sram 32KB banks + wire", {"wbuf_bits": alt})):
                sens[key] = _energy(cfg, net, rep, b, ov)["energy_ratio"]
        top = sorted(e["breakdown_pj"].items(), key=lambda kv: -kv[1])[:3]
        sweep.append({"batch": b, "cycles_per_inference": rep["cycles"] / b, "utilization": rep["compute_utilization"],
                      "chip_nj": e["energy_per_pj"] / 1e3, "baseline_nj": e["baseline_energy_per_pj"] / 1e3,
                      "ratio": e["energy_ratio"], "sensitivity": sens, "seconds": time.time() - t0,
                      "dram_mib": e["baseline_dram_weight_bits"] / 8 / (1 << 20),
                      "top": [(k, v / e["energy_pj"]) for k, v in top]})
        log(f"  batch {b}: {sweep[-1]['cycles_per_inference']:.0f} cycles an inference, compute utilization "
            f"{100 * sweep[-1]['utilization']:.1f}%, ratio {e['energy_ratio']:.1f}x ({sweep[-1]['seconds']:.1f} s)")
    return {"name": name, "sizes": sizes, "weights_mib": sum(L.w.size for L in net.layers) / (1 << 20),
            "limit": utilization_limit(cfg, net), "programming": prog, "sweep": sweep,
            "sram_bytes": e["baseline_sram_bytes"], "area_mm2": e["area_mm2"]}


def markdown(results) -> str:
    """The tables of docs/energy.md's memory-wall section."""
    cfg = PRESETS[CONFIG]
    r0 = results[0]
    out = [f"`{CONFIG}`: {cfg.mesh_x}x{cfg.mesh_y} tiles of {cfg.rows}x{cfg.cols} int8 macros with {cfg.banks} banks "
           f"({cfg.weight_bytes / (1 << 20):.0f} MiB of weights), {r0['area_mm2']:.2f} mm2 at {E.DEFAULT_NODE}; the "
           f"equal-area baseline holds {r0['sram_bytes'] / (1 << 20):.2f} MiB of weights in SRAM and fetches the rest "
           "from DRAM for every batch. Runs on the cycle-exact model, a kept chip (no RRAM row written), outputs "
           "bit-exact with the int8 reference. Limit: the compute utilization with every macro busy but for the "
           "placement's imbalance.", ""]
    for r in results:
        p = r["programming"]
        out += [f"**{r['name']}** ({r['weights_mib']:.2f} MiB of weights; programmed once: {p['rows']:,} rows, "
                f"{p['cycles']:,} cycles, {p['energy_uj']:.1f} uJ)", "",
                "| batch | cycles / inference | compute utilization (limit) | chip nJ / inference | "
                "baseline nJ / inference | baseline / chip | chip energy, largest parts |",
                "|---|---|---|---|---|---|---|"]
        for s in r["sweep"]:
            parts = ", ".join(f"{k} {100 * v:.0f}%" for k, v in s["top"])
            out.append(f"| {s['batch']} | {s['cycles_per_inference']:,.0f} | {100 * s['utilization']:.1f}% "
                       f"({100 * r['limit']:.1f}%) | {s['chip_nj']:,.0f} | {s['baseline_nj']:,.0f} | "
                       f"**{s['ratio']:.1f}x** | {parts} |")
        out.append("")
        keys = list(r["sweep"][0]["sensitivity"])
        out += ["| sensitivity: baseline / chip | as measured | " + " | ".join(keys) + " |",
                "|---" * (len(keys) + 2) + "|"]
        for s in r["sweep"]:
            if s["sensitivity"]:
                out.append(f"| batch {s['batch']} | {s['ratio']:.1f}x | "
                           + " | ".join(f"{s['sensitivity'][k]:.1f}x" for k in keys) + " |")
        out.append("")
    return "\n".join(out)


def plot(results, directory) -> str:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from pathlib import Path
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    for r in results:
        bs = [s["batch"] for s in r["sweep"]]
        a1.plot(bs, [s["ratio"] for s in r["sweep"]], "o-", label=r["name"].split(":")[0].split(" (")[0])
        a2.plot(bs, [100 * s["utilization"] for s in r["sweep"]], "o-", label=r["name"].split(":")[0].split(" (")[0])
        a2.axhline(100 * r["limit"], ls=":", color=a2.lines[-1].get_color())
    a1.axhline(1, color="k", lw=0.8)
    a1.set(xscale="log", yscale="log", xlabel="batch", ylabel="baseline energy / chip energy",
           title="energy ratio vs the equal-area baseline")
    a2.set(xscale="log", xlabel="batch", ylabel="compute utilization (%)", ylim=(0, 100),
           title="utilization (dotted: placement limit)")
    a1.legend(fontsize=7)
    fig.tight_layout()
    Path(directory).mkdir(parents=True, exist_ok=True)
    path = str(Path(directory) / "memwall.png")
    fig.savefig(path, dpi=110)
    return path


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m rramcim.sim.perf.memwall", description=__doc__.split("\n")[0])
    ap.add_argument("--batches", default=",".join(map(str, BATCHES)), help="batch sizes (default: %(default)s)")
    ap.add_argument("--plot", metavar="DIR", help="write memwall.png there")
    ap.add_argument("--write", metavar="FILE.md", help="replace the <!-- memwall --> section of this file")
    args = ap.parse_args(argv)
    try:
        batches = tuple(int(b) for b in args.batches.split(","))
        if any(b < 1 for b in batches):
            raise ValueError
    except ValueError:
        print(f"memwall: error: --batches {args.batches!r}: positive integers, comma-separated", file=sys.stderr)
        return 2
    results = [measure(name, sizes, batches) for name, sizes in WORKLOADS.items()]
    text = markdown(results)
    print(text)
    if args.plot:
        print(f"wrote {plot(results, args.plot)}")
    if args.write:
        if not _write(args.write, "memwall", text):
            return 2
        print(f"wrote {args.write}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
