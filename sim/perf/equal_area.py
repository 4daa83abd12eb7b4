"""The equal-area baseline's figures for docs/energy.md: the SRAM energy per bit by capacity, and per preset
the chip's area, the baseline's weight SRAM and whether the demo's weights fit it.

``python -m rramcim.sim.perf.equal_area`` prints both tables; ``--write docs/energy.md`` replaces the
section between ``<!-- equal-area:begin -->`` and ``<!-- equal-area:end -->`` of that file with them.
Area model only (model/energy.py: :func:`~rramcim.model.energy.chip_area`,
:func:`~rramcim.model.energy.equal_area_baseline`, :func:`~rramcim.model.energy.sram_array_bit`): no run.
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

PRESET_NAMES = ("tiny", "default", "large", "ulx3s", "icebreaker")
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
        out.append(f"| `{name}` | {cfg.mesh_x}x{cfg.mesh_y} x {cfg.rows}x{cfg.cols} | {R * C} | {b['total']:.4g} | "
                   f"{other:.4g} | {b['sram_bytes']:,} B ({_size(b['sram_bytes'])}) | "
                   f"{E.sram_array_bit(node, b['sram_bytes']).value:.4g} | "
                   f"{cfg.tiles * cfg.rows * cfg.cells_per_row // 8:,} B | {'yes' if fits else 'no'} |")
    return "\n".join(out) + "\n"


def markdown(node: str = E.DEFAULT_NODE) -> str:
    return sram_markdown() + "\n" + presets_markdown(node)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m rramcim.sim.perf.equal_area", description=__doc__.split("\n")[0])
    ap.add_argument("--node", default=E.DEFAULT_NODE, help="technology row of the preset table (default: %(default)s)")
    ap.add_argument("--write", metavar="FILE.md", help="replace the <!-- equal-area --> section of this file")
    args = ap.parse_args(argv)
    if args.node not in E.NODES:
        print(f"equal_area: error: --node {args.node!r}: known {', '.join(E.NODES)}", file=sys.stderr)
        return 2
    text = markdown(args.node)
    print(text)
    if args.write:
        p = Path(args.write)
        doc = p.read_text()
        pat = re.compile(r"(<!-- equal-area:begin -->\n).*?(<!-- equal-area:end -->)", re.S)
        if not pat.search(doc):
            print(f"equal_area: error: {args.write}: no <!-- equal-area:begin --> ... <!-- equal-area:end --> "
                  "section", file=sys.stderr)
            return 2
        p.write_text(pat.sub(lambda m: m.group(1) + text + m.group(2), doc))
        print(f"wrote {args.write}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
