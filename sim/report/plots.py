"""Plots of a run: per-layer cycles and utilization, and a timeline of tile activity.

Written with matplotlib (Agg: no display needed) as PNG files.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["plot_net_run", "plot_energy", "STATE_COLORS"]

# tile states of the cycle-exact model (docs/isa.md, "Timing"), idle left blank
STATE_COLORS = {"recv": "#9ecae1", "exec": "#3182bd", "prog": "#fdae6b", "prog_wait": "#e6550d",
                "mvm": "#31a354", "send": "#756bb1", "stream": "#d62728"}


def _intervals(trace, tiles: int, end: int):
    """``{tile: [(start, length, state)]}`` from state changes (cycle, tile, state)."""
    out = {t: [] for t in range(tiles)}
    cur = {t: (1, "idle") for t in range(tiles)}
    for cycle, tile, state in sorted(trace, key=lambda e: (e[0], e[1])):
        start, prev = cur[tile]
        if prev != "idle" and cycle > start:
            out[tile].append((start, cycle - start, prev))
        cur[tile] = (cycle, state)
    for tile, (start, prev) in cur.items():
        if prev != "idle" and end > start:
            out[tile].append((start, end - start, prev))
    return out


def plot_net_run(report: dict, trace: list, cfg, outdir) -> list[Path]:
    """``layers.png`` (cycles and utilization per layer; in a pipeline, whose layers share the cycles, MACs
    and tiles per layer) and ``timeline.png`` (tile states over time; ``stream``: a standing sequence)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    files = []
    layers = report["layers"]
    shared = report.get("cycles_shared", False)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    names = [f"layer {L['layer']}\n{L['K']}x{L['N']}" for L in layers]
    ax2 = ax.twinx()
    if shared:           # a pipeline: every layer runs in every cycle
        ax.bar(names, [L["macs"] for L in layers], color="#3182bd")
        ax.set_ylabel("MACs")
        ax2.plot(names, [len(L["tiles"]) for L in layers], "o-", color="#e6550d")
        ax2.set_ylabel("tiles", color="#e6550d")
        ax2.set_ylim(0, 1 + max(len(L["tiles"]) for L in layers))
        what = f"pipeline, cycles shared by the layers, {100 * report['compute_utilization']:.1f}% of peak"
    else:
        ax.bar(names, [L["cycles"] for L in layers], color="#3182bd")
        ax.set_ylabel("cycles")
        ax2.plot(names, [100 * L["utilization"] for L in layers], "o-", color="#e6550d")
        ax2.set_ylabel("utilization (% of peak)", color="#e6550d")
        ax2.set_ylim(0, max(5.0, 1.2 * max(100 * L["utilization"] for L in layers)))
        what = "layer by layer"
    ax.set_title(f"{report['batch']} inputs on '{report['config']}' ({report['backend']}): {report['cycles']} "
                 f"cycles\n{what}", fontsize=9)
    fig.tight_layout()
    files.append(outdir / "layers.png")
    fig.savefig(files[-1], dpi=120)
    plt.close(fig)

    end = report["cycles"] + 1
    ivs = _intervals(trace, cfg.tiles, end)
    fig, ax = plt.subplots(figsize=(10, 1 + 0.5 * cfg.tiles))
    for t in range(cfg.tiles):
        by_state = {}
        for start, length, state in ivs[t]:
            by_state.setdefault(state, []).append((start, length))
        for state, bars in by_state.items():
            ax.broken_barh(bars, (t - 0.4, 0.8), color=STATE_COLORS.get(state, "grey"))
    start = 0
    for c in report["window_cycles"] if shared else [L["cycles"] for L in layers]:
        start += c
        ax.axvline(start, color="black", lw=0.8, ls="--")
    ax.set_yticks(range(cfg.tiles))
    ax.set_yticklabels([f"tile {t % cfg.mesh_x},{t // cfg.mesh_x}" for t in range(cfg.tiles)])
    ax.set_xlim(0, end)
    ax.set_xlabel(f"cycle (dashed: end of a {'window' if shared else 'layer'})")
    ax.legend(handles=[Patch(color=c, label=s) for s, c in STATE_COLORS.items()], ncol=7, fontsize=8,
              loc="upper center", bbox_to_anchor=(0.5, -0.35 if cfg.tiles <= 4 else -0.15))
    ax.set_title("tile activity (blank: idle)")
    fig.tight_layout()
    files.append(outdir / "timeline.png")
    fig.savefig(files[-1], dpi=120)
    plt.close(fig)
    return files


def plot_energy(energy: dict, outdir) -> Path:
    """``energy.png``: the energy of the chip and of the von Neumann baseline as stacked bars, one
    segment per component (model/energy.py), data-movement components hatched."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from ...model.energy import BASELINE_COMPONENTS, COMPONENTS, MOVEMENT
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    per, unit = energy["per"], "nJ"
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    cmap = plt.get_cmap("tab20")
    color = 0
    for x, (parts, comps) in enumerate(((energy["breakdown_pj"], COMPONENTS),
                                        (energy["baseline_breakdown_pj"], BASELINE_COMPONENTS))):
        bottom = 0.0
        for name, v in parts.items():
            h = v / per / 1e3
            ax.bar(x, h, bottom=bottom, width=0.55, color=cmap(color % 20), edgecolor="black", linewidth=0.3,
                   hatch="//" if comps[name][1] == MOVEMENT else None, label=name)
            bottom += h
            color += 1
        ax.text(x, bottom, f"{bottom:,.2f} {unit}", ha="center", va="bottom", fontsize=9)
    ax.set_xticks([0, 1])
    ax.set_xticklabels([f"RRAM CIM chip\n{energy['tops_per_w']:.3g} TOPS/W, data movement "
                        f"{100 * energy['data_movement_share']:.0f}%",
                        f"baseline {energy['baseline_array'][0]}x{energy['baseline_array'][1]} systolic\n"
                        f"{energy['baseline_tops_per_w']:.3g} TOPS/W, data movement "
                        f"{100 * energy['baseline_data_movement_share']:.0f}%"])
    ax.set_ylabel(f"{unit} per {'inference' if per > 1 else 'run'}")
    ax.set_title(f"energy at {energy['node']} (hatched: data movement); baseline / chip = "
                 f"{energy['energy_ratio']:.2f}x", fontsize=10)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    f = outdir / "energy.png"
    fig.savefig(f, dpi=120)
    plt.close(fig)
    return f
