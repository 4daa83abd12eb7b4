"""The ``rramcim`` command line: the top-level parser and the dispatcher.

Each subcommand lives in its own module under ``rramcim/commands/`` (listed in
:data:`rramcim.commands.COMMANDS`); :func:`main` parses the arguments, calls the command and turns the
errors a user can act on into one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import sys

from .commands import add_parsers
from .commands.common import PROGRESS as _PROGRESS, CliError

DESCRIPTION = """\
rramcim: a full-digital RRAM compute-in-memory chip. Amaranth RTL, a
bit-exact and cycle-exact golden model, and the harness that checks one
against the other on Icarus and Verilator.
"""

EPILOG = """\
examples:
  rramcim run                                   the demo: an int8 MLP on the digits data set, on the chip model
  rramcim run --net net.npz --inputs x.npy --out y.npy --report r.json
  rramcim demo                                  program a macro, run MVMs on RTL and model
  rramcim demo --backend icarus --config tiny   the same on Icarus
  rramcim verilog --config default -o chip.v --lint   the whole chip
  rramcim verilog --block macro --config tiny -o macro.v
  rramcim config my_chip.toml                   show a config file resolved over 'default'
  rramcim fpga build --board ulx3s              bitstream for the ULX3S (ECP5-85F) and a resource/Fmax summary
  rramcim fpga report                           print the summaries of the FPGA builds again
  rramcim gemm --a A.npy --b B.npy --out C.npy --report r.json   int8 GEMM on the chip model
  rramcim gemm --a A.npy --b B.npy --out C.npy --backend verilator   the same on the RTL
  rramcim run --backend fpga --port /dev/ttyUSB0 --config ulx3s   the demo on a board, over its UART

A config is a preset (tiny, default, large, ulx3s, icebreaker) or a .toml/.json file whose keys
are the lower-case field names of rramcim.model.config.Config.
"""


def build_parser():
    p = argparse.ArgumentParser(prog="rramcim", description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    from . import __version__
    p.add_argument("--version", action="version", version=f"rramcim {__version__}")
    add_parsers(p.add_subparsers(dest="command", metavar="COMMAND"))
    return p


def main(argv=None):
    from .model.config import ConfigError
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        try:
            args.func(args)
        finally:
            while _PROGRESS:                 # leave the terminal clean, on an interrupt too
                _PROGRESS.pop().close()
    except KeyboardInterrupt:
        print("rramcim: interrupted", file=sys.stderr)
        return 130
    except (CliError, ConfigError) as e:
        print(f"rramcim: error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # tools missing or failing: one line, not a traceback
        from .sim.tools.build import ToolError
        if isinstance(e, ToolError):
            print(f"rramcim: error: {e}", file=sys.stderr)
            return 2
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
