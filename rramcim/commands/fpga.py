"""``rramcim fpga build|report``: build the chip behind its UART host bridge for an FPGA board with the
YoWASP tools, and print the resource and Fmax summaries of earlier builds (docs/fpga.md)."""

from __future__ import annotations

from pathlib import Path

from .common import CliError, bounded, config
from .outputs import Outputs

CLOCK_MHZ = (1.0, 1000.0)


def add_parser(sub):
    sp = sub.add_parser("fpga", help="build the chip for an FPGA board (ULX3S, iCEBreaker) with open tools",
                        description="Synthesize the chip behind its UART host bridge for an FPGA board with the "
                                    "YoWASP tools from PyPI (yosys, nextpnr, ecppack/icepack) and summarize "
                                    "resources and Fmax against the board's target clock (docs/fpga.md).")
    fsub = sp.add_subparsers(dest="fpga_command", metavar="STEP", required=True)
    fb = fsub.add_parser("build", help="Verilog, synthesis, place and route, bitstream and summary for a board",
                         description="Run the whole flow for a board; output under --out (default "
                                     "build/BOARD/): top.bit or top.bin, logs, report.json, summary.json.")
    fb.add_argument("--board", required=True, metavar="BOARD", help="ulx3s or icebreaker")
    fb.add_argument("--config", metavar="NAME|FILE", help="preset or .toml/.json file (default: the board's preset)")
    fb.add_argument("--out", metavar="DIR", help="output directory (default: build/BOARD)")
    fb.add_argument("--clock", type=bounded(float, *CLOCK_MHZ), metavar="MHZ",
                    help=f"the chip's clock and timing target, {CLOCK_MHZ[0]:g}..{CLOCK_MHZ[1]:g} "
                         "(default: the board's, ulx3s 50, icebreaker 12)")
    fb.set_defaults(func=main_build)
    fr = fsub.add_parser("report", help="print the summary of earlier builds again",
                         description="Print the resource and Fmax summary of earlier builds (summary.json).")
    fr.add_argument("--board", metavar="BOARD", help="one board (default: every board built under build/)")
    fr.add_argument("--out", metavar="DIR", help="the build directory (default: build/BOARD)")
    fr.set_defaults(func=main_report)


def main_build(args):
    from ..fpga.build import BuildError, build, format_summary
    b = _board(args.board)
    if args.clock is not None:
        try:
            b = b.with_clock(args.clock)
        except ValueError as e:
            raise CliError(f"--{e}") from None
    cfg = config(args.config or b.name)
    out = Path(args.out) if args.out else Path("build") / b.name
    Outputs([], inputs=[("--config", args.config)], dirs=[("--out", out, ("top.v", "summary.json", "report.json"))])
    print(f"rramcim fpga build: board {b.name}, config '{cfg.name}', output {out}/")
    try:
        summary = build(b, cfg, out)
    except BuildError as e:
        raise CliError(str(e)) from None
    print(format_summary(summary))
    print(f"wrote {summary['bitstream']} and {out / 'summary.json'}; program the board with: {summary['program']}")
    if not summary["timing_met"]:
        raise CliError(f"timing not met: Fmax {summary['fmax_mhz']:.1f} MHz < target {summary['target_mhz']:.1f} MHz "
                       f"(the bitstream is written but may not work; log: {out / 'nextpnr.log'})")


def main_report(args):
    from ..fpga.boards import BOARDS
    from ..fpga.build import BuildError, format_summary, read_summary
    if args.board:
        names = [_board(args.board).name]
    elif args.out:
        raise CliError("--out needs --board")
    else:
        names = [n for n in BOARDS if (Path("build") / n / "summary.json").is_file()]
        if not names:
            raise CliError("no FPGA build under build/: run rramcim fpga build --board BOARD first")
    texts = []
    for name in names:
        out = Path(args.out) if args.out else Path("build") / name
        try:
            texts.append(format_summary(read_summary(out)))
        except BuildError as e:
            raise CliError(str(e)) from None
    print("\n\n".join(texts))


def _board(name):
    from ..fpga.boards import board
    try:
        return board(name)
    except ValueError as e:
        raise CliError(f"--board: {e}") from None
