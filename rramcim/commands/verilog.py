"""``rramcim verilog``: write the Verilog of the chip or of one block for a config, and lint it."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from .common import CliError, add_config_option, add_stuck_option, config, faults, write_atomic


def add_parser(sub):
    sp = sub.add_parser("verilog", help="write the Verilog of the chip (or of one block)",
                        description="Write the Verilog of the chip (top module rramcim_chip, AXI4-Lite and "
                                    "AXI4-Stream ports) or of one block, for a config. The crossbar is emitted "
                                    "as its own module ahead of the blocks that use it. 'core' is the chip "
                                    "without its AXI interface (plain host streams).")
    add_config_option(sp)
    sp.add_argument("--block", choices=["chip", "core", "macro", "crossbar", "mesh", "router"], default="chip",
                    help="block (default: %(default)s)")
    sp.add_argument("-o", "--output", required=True, metavar="FILE.v", help="output file")
    add_stuck_option(sp, "a stuck-at cell to build into the macro (for 'core': into the last tile's; "
                         "simulation only); repeatable")
    sp.add_argument("--lint", action="store_true", help="then lint it with verilator --lint-only -Wall")
    sp.set_defaults(func=main)


def main(args):
    from ..rtl.verilog import block_verilog
    cfg = config(args.config)
    fmap = faults(cfg, args.stuck)
    out = Path(args.output)
    if out.parent and not out.parent.exists():         # before a long generation
        raise CliError(f"-o {out}: directory {out.parent} does not exist")
    t0 = time.time()
    top, text = block_verilog(args.block, cfg, fmap)
    write_atomic(out, text)
    print(f"wrote {args.output}: top module {top}, config {cfg.name}, {len(text) // 1024} KiB "
          f"in {time.time() - t0:.0f} s")
    if args.lint:
        from ..sim.tools.build import lint, waivers_file
        clean, log = lint(out, top)
        if not clean:
            print(log, file=sys.stderr)
            raise CliError(f"verilator --lint-only -Wall found problems in {args.output}")
        print(f"verilator --lint-only -Wall: clean (with the waivers in {waivers_file()})")
