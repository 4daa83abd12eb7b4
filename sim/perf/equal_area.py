"""The equal-area baseline's figures for docs/energy.md: the SRAM energy per bit by capacity, per preset the
chip's area, the baseline's weight SRAM and whether the demo's weights fit it, and the area of a banked chip
(``memwall``) by component.

``python -m rramcim.sim.perf.equal_area`` prints the tables; ``--write docs/energy.md`` replaces the sections
between ``<!-- equal-area:begin -->`` and ``<!-- equal-area:end -->`` and between ``<!-- banks:begin -->``
and ``<!-- banks:end -->`` of that file with them. Area model only (model/energy.py:
:func:`~rramcim.model.energy.chip_area`, :func:`~rramcim.model.energy.equal_area_baseline`,
:func:`~rramcim.model.energy.sram_array_bit`): no run. ``--estimate`` prints what the energy model expects of
``memwall`` on a 3 MiB MLP (:func:`estimate`: counters worked out from the shapes, not counted by a run).
"""

from __future__ import annotations

import argparse
import inspect
import re
import sys
from pathlib import Path

from ...model import energy as E
from ...model.config import PRESETS
from ...model.digits import train_digits

PRESET_NAMES = ("tiny", "default", "large", "memwall", "ulx3s", "icebreaker")
"""The presets of the table (named, so that a preset added later changes the table only when it is added here)."""

SRAM_SIZES = (8 << 10, 32 << 10, 128 << 10, 1 << 20, 4 << 20)


def demo_layers() -> list:
    """The digits demo's GEMMs for one image, as :func:`rramcim.model.energy.baseline_events` takes them:
    64 inputs (8x8 pixels), ``train_digits``' hidden width, 10 classes, int32 biases (no training)."""
    hidden = inspect.signature(train_digits).parameters["hidden"].default
    return [(1, 64, hidden, 8, 1), (1, hidden, 10, 32, 1)]


def _size(n: float) -> str:
    return f"{n / (1 << 20):g} MiB" if n >= 1 << 20 else f"{n / 1024:.4g} KiB"


def sram_markdown() -> str:
    nodes = list(E.NODES)
    out = ["| SRAM array | " + " | ".join(f"pJ/bit at {n}" for n in nodes) + " | at 45 nm |",
           "|---|" + "---|" * len(nodes) + "---|"]
    for b in SRAM_SIZES:
        es = [E.sram_array_bit(n, b) for n in nodes]
        how = es[0].rule.split(": ", 1)[1]
        out.append(f"| {_size(b)} | " + " | ".join(f"{e.value:.4g}" for e in es) + f" | {how} |")
    return "\n".join(out) + "\n"


def presets_markdown(node: str = E.DEFAULT_NODE) -> str:
    layers = demo_layers()
    demo = E.baseline_weight_bits(PRESETS["default"], layers) / 8
    out = [f"At {node}; the demo's weights: {demo:,.0f} bytes (64-{layers[0][2]}-10, int8 weights and int32 biases).",
           "",
           "| preset | tiles x macro | peak MACs/cycle | chip area mm2 | baseline PEs and other buffers mm2 | "
           "baseline weight SRAM | its pJ/bit | chip RRAM weights | demo's weights fit the SRAM |",
           "|---|---|---|---|---|---|---|---|---|"]
    for name in PRESET_NAMES:
        cfg = PRESETS[name]
        b = E.equal_area_baseline(cfg, node)
        other = b["total"] - b["area_mm2"]["weight buffer"]
        R, C = E.baseline_array(cfg)
        fits = E.baseline_weight_bits(cfg, layers) <= 8 * b["sram_bytes"]
        macro = f"{cfg.rows}x{cfg.cols}" + (f" x {cfg.banks} banks" if cfg.banks > 1 else "")
        out.append(f"| `{name}` | {cfg.mesh_x}x{cfg.mesh_y} x {macro} | {R * C} | {b['total']:.4g} | "
                   f"{other:.4g} | {b['sram_bytes']:,} B ({_size(b['sram_bytes'])}) | "
                   f"{E.sram_array_bit(node, b['sram_bytes']).value:.4g} | "
                   f"{cfg.weight_bytes:,} B | {'yes' if fits else 'no'} |")
    return "\n".join(out) + "\n"


def markdown(node: str = E.DEFAULT_NODE) -> str:
    """The ``equal-area`` section: :func:`sram_markdown` and :func:`presets_markdown`."""
    return sram_markdown() + "\n" + presets_markdown(node)


BANKED = "memwall"
"""The banked preset of the ``banks`` section."""

NETWORK_BYTES = 3 << 20
"""The network the area's verdict is about: 3 MiB of int8 weights (issue 19's thesis workload)."""

BANK_ENTRIES = (("wl_driver_gates", "wordline drivers"), ("bank_decoder_gates", "bank decoders"),
                ("bank_switch_gates", "bitline bank switches"), ("bitline_cells", "bitline bank switches"),
                ("rram_cell_um2", "RRAM crossbars"))
"""The area entries a banked chip's area depends on, with the component each one scales (``bitline_cells``
inversely: halving it doubles the switches)."""


def _byte_mm2(node: str) -> float:
    a = E.AREA[node]
    return 8 * a["sram_bit_um2"].value / a["array_efficiency"].value * 1e-6


def banks_markdown(node: str = E.DEFAULT_NODE, name: str = BANKED) -> str:
    """The ``banks`` section: the banked preset's area by component, what one bank adds, where the equal-area
    baseline would hold :data:`NETWORK_BYTES` whole, and the area entries' sensitivity."""
    cfg = PRESETS[name]
    a = E.chip_area(cfg, node)
    eff = E.AREA[node]["array_efficiency"].value
    per_bank = E.bank_periphery_um2(cfg, node)
    extra = cfg.banks - 1
    cell_bank = cfg.rows * cfg.cells_per_row * E.AREA[node]["rram_cell_um2"].value / eff
    parts = [k for k in a if k not in ("total", "tile_cmos_mm2", "ctrl_cmos_mm2")]
    out = [f"`{name}` at {node}: {cfg.mesh_x}x{cfg.mesh_y} tiles, each one {cfg.rows}x{cfg.cols} int{cfg.wbits} macro "
           f"with {cfg.banks} banks ({cfg.rram_rows:,} RRAM rows of {cfg.cells_per_row} cells a macro; "
           f"{cfg.weight_bytes:,} bytes of weights on the chip).", "",
           "| component | mm2 | share of the chip | a macro's per bank, um2 |", "|---|---|---|---|"]
    for k in parts:
        pb = cell_bank if k == "RRAM crossbars" else per_bank[k] / extra if k in per_bank else None
        out.append(f"| {k} | {a[k]:.4g} | {100 * a[k] / a['total']:.1f}% | "
                   + ("shared" if pb is None else f"{pb:.4g}") + " |")
    out.append(f"| **total** | **{a['total']:.4g}** | 100% | |")
    bank = sum(a[k] for k in per_bank)
    cells = eff * a["RRAM crossbars"]
    b = E.equal_area_baseline(cfg, node)
    other = b["total"] - b["area_mm2"]["weight buffer"]
    need = other + NETWORK_BYTES * _byte_mm2(node)
    out += ["", f"The RRAM cells themselves are {100 * cells / a['total']:.1f}% of the chip ({cells:.4g} mm2), the "
            f"crossbars with their array periphery {100 * a['RRAM crossbars'] / a['total']:.1f}%, the banks' periphery "
            f"{100 * bank / a['total']:.1f}% ({bank:.4g} mm2); everything but the cells leaks "
            f"({a['total'] - cells:.4g} mm2). The equal-area baseline's weight SRAM: {b['sram_bytes']:,} bytes "
            f"({_size(b['sram_bytes'])}); it would hold a {_size(NETWORK_BYTES)} network whole on a chip of "
            f"{need:.3g} mm2 or more (its PEs and other buffers {other:.3g} mm2, the SRAM "
            f"{NETWORK_BYTES * _byte_mm2(node):.3g} mm2).", "",
            f"| entry | value | doubled (`bitline_cells` halved): chip mm2 | baseline SRAM | of a {_size(NETWORK_BYTES)} "
            "network it holds |", "|---|---|---|---|---|"]
    frac = min(1.0, b["sram_bytes"] / NETWORK_BYTES)
    out.append(f"| (as is) | | {a['total']:.4g} | {_size(b['sram_bytes'])} | {100 * frac:.0f}% |")
    for entry, comp in BANK_ENTRIES:
        sram = b["sram_bytes"] + int(a[comp] / _byte_mm2(node))
        out.append(f"| `{entry}` | {E.AREA[node][entry].value:.4g} {E.AREA[node][entry].unit} | "
                   f"{a['total'] + a[comp]:.4g} | {_size(sram)} | {100 * min(1.0, sram / NETWORK_BYTES):.0f}% |")
    return "\n".join(out) + "\n"


def mlp_layers(batch: int, width: int = 1024, depth: int = 3) -> list:
    """A ``depth``-layer MLP of ``width``-wide int8 layers with int32 biases, int8 hidden outputs and int32 last
    outputs, as :func:`rramcim.model.energy.baseline_events` takes it (3 layers of 1024: 3 MiB of weights)."""
    return [(batch, width, width, 8 if i < depth - 1 else 32, 1) for i in range(depth)]


def estimate(cfg, layers, utilization: float, node: str = E.DEFAULT_NODE) -> dict:
    """What the energy model expects of ``cfg`` running ``layers`` as a resident pipeline on a kept chip, against
    the equal-area baseline that keeps what its SRAM holds: an :func:`~rramcim.model.energy.energy_report` of
    counters worked out from the shapes (an estimate, not a run): every MVM a full ``rows x cols`` block, its
    input block written to and read from a tile input buffer once and its result added into a tile
    accumulator (read and write); every layer's input vector broadcast to the tiles over one hop and its
    outputs gathered, one instruction per MVM (an upper bound), the network's inputs and outputs through the
    host; ``cycles`` = MACs / (peak MACs per cycle x ``utilization``)."""
    B = layers[0][0]
    macs = sum(M * K * N for M, K, N, *_ in layers)
    mvms = macs // (cfg.rows * cfg.cols)
    fw = cfg.flit_width
    flits = sum(B * (cfg.tiles * K * cfg.xbits + N * ob) // fw for _, K, N, ob, *_ in layers)
    host_in, host_out = B * layers[0][1] * cfg.xbits, B * layers[-1][2] * layers[-1][3]
    counters = {"cycles": round(macs / (cfg.tiles * cfg.peak_macs_per_cycle * utilization)), "instructions": mvms,
                "noc_flits": flits, "noc_flit_hops": flits, "gbuf_read_bits": host_in, "gbuf_write_bits": host_out,
                "macs": mvms * cfg.rows * cfg.cols, "mvms": mvms,
                "ibuf_write_bits": mvms * cfg.rows * cfg.xbits, "ibuf_read_bits": mvms * cfg.rows * cfg.xbits,
                "acc_read_bits": mvms * cfg.cols * cfg.acc_bits, "acc_write_bits": mvms * cfg.cols * cfg.acc_bits,
                "rram_pulses": 0, "rram_verify_reads": 0}
    rep = {"counters": counters, "cycles": counters["cycles"], "macs": macs, "host_write_bits": host_in,
           "host_read_bits": host_out, "placement": "pipeline"}
    return E.energy_report(cfg, rep, layers, node, per=B, weights_resident=True, baseline="equal-area")


def banked_sram_bit(node: str, nbytes: float) -> float:
    """A cross-check of :func:`~rramcim.model.energy.sram_array_bit` for MB-scale SRAM: pJ per bit of an array
    built of 32 KB banks (Horowitz's 32 KB point, ``gbuf_bit``) plus the wire from the bank to the port, one side
    of the square array (``wire_bit_mm``)."""
    side = (nbytes * _byte_mm2(node)) ** 0.5
    return E.TECH[node]["gbuf_bit"].value + E.TECH[node]["wire_bit_mm"].value * side


def estimate_text(node: str = E.DEFAULT_NODE, name: str = BANKED, batches=(1, 16, 64)) -> str:
    """:func:`estimate` for the banked preset on :func:`mlp_layers` at 100% and 50% utilization, with the
    baseline's weight SRAM also priced by :func:`banked_sram_bit`."""
    cfg = PRESETS[name]
    sram = E.equal_area_baseline(cfg, node)["sram_bytes"]
    alt = banked_sram_bit(node, sram)
    out = [f"Estimate (counters from the shapes, not a run): `{name}` at {node}, a 3-layer MLP of 1024 "
           f"({E.baseline_weight_bits(cfg, mlp_layers(1)) / 8:,.0f} bytes of weights and biases), resident, pipelined; "
           f"equal-area baseline, its {_size(sram)} SRAM at {E.sram_array_bit(node, sram).value:.3f} pJ/bit "
           f"(sram_array_bit) or {alt:.3f} (32 KB banks + wire).", "",
           "| batch | utilization | chip pJ/MAC | of which leakage | baseline pJ/MAC | baseline DRAM weight bytes | "
           "ratio | baseline pJ/MAC, banked SRAM | ratio |", "|---|---|---|---|---|---|---|---|---|"]
    for batch in batches:
        for util in (1.0, 0.5):
            e = estimate(cfg, mlp_layers(batch), util, node)
            m = e["ops"] / 2
            b2 = e["baseline_energy_pj"] + e["baseline_events"]["wbuf_bits"] * (alt - e["baseline_wbuf_pj_per_bit"])
            out.append(f"| {batch} | {100 * util:.0f}% | {e['energy_pj'] / m:.3f} | "
                       f"{e['breakdown_pj']['leakage'] / m:.3f} | {e['baseline_energy_pj'] / m:.3f} | "
                       f"{e['baseline_dram_weight_bits'] / 8:,.0f} | {e['energy_ratio']:.1f}x | {b2 / m:.3f} | "
                       f"{b2 / e['energy_pj']:.1f}x |")
    return "\n".join(out) + "\n"


def _write(path: str, tag: str, text: str) -> bool:
    p = Path(path)
    doc = p.read_text()
    pat = re.compile(rf"(<!-- {tag}:begin -->\n).*?(<!-- {tag}:end -->)", re.S)
    if not pat.search(doc):
        print(f"equal_area: error: {path}: no <!-- {tag}:begin --> ... <!-- {tag}:end --> section", file=sys.stderr)
        return False
    p.write_text(pat.sub(lambda m: m.group(1) + text + m.group(2), doc))
    return True


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m rramcim.sim.perf.equal_area", description=__doc__.split("\n")[0])
    ap.add_argument("--node", default=E.DEFAULT_NODE, help="technology row of the tables (default: %(default)s)")
    ap.add_argument("--write", metavar="FILE.md", help="replace the <!-- equal-area --> and <!-- banks --> sections "
                                                       "of this file")
    ap.add_argument("--estimate", action="store_true", help=f"also print the energy model's estimate for `{BANKED}` "
                                                            "on a 3 MiB MLP (not written)")
    args = ap.parse_args(argv)
    if args.node not in E.NODES:
        print(f"equal_area: error: --node {args.node!r}: known {', '.join(E.NODES)}", file=sys.stderr)
        return 2
    text, banks = markdown(args.node), banks_markdown(args.node)
    print(text)
    print(banks)
    if args.estimate:
        print(estimate_text(args.node))
    if args.write:
        if not (_write(args.write, "equal-area", text) and _write(args.write, "banks", banks)):
            return 2
        print(f"wrote {args.write}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
