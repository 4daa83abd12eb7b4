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

A config is a preset ({presets}) or a .toml/.json file whose keys
are the lower-case field names of rramcim.model.config.Config.
"""


class Parser(argparse.ArgumentParser):
    """argparse with its errors as one line and a hint, not the usage block (subparsers inherit it)."""

    def parse_args(self, args=None, namespace=None):
        ns, extras = self.parse_known_args(args, namespace)
        if extras:                           # named by the subcommand they were given to, with its help
            prog = " ".join([self.prog] + [v for v in (getattr(ns, "command", None),
                                                       getattr(ns, "fpga_command", None)) if v])
            print(f"{prog}: error: unrecognized arguments: {' '.join(extras)} (see '{prog} --help')",
                  file=sys.stderr)
            sys.exit(2)
        return ns

    def error(self, message):
        first = message.splitlines()[0] if message else "bad arguments"
        print(f"{self.prog}: error: {first} (see '{self.prog} --help')", file=sys.stderr)
        sys.exit(2)


def build_parser():
    from .model.config import PRESETS
    p = Parser(prog="rramcim", description=DESCRIPTION, epilog=EPILOG.replace("{presets}", ", ".join(PRESETS)),
               formatter_class=argparse.RawDescriptionHelpFormatter)
    from . import __version__
    p.add_argument("--version", action="version", version=f"rramcim {__version__}")
    add_parsers(p.add_subparsers(dest="command", metavar="COMMAND"))
    return p


def main(argv=None):
    """Run a command; returns the exit status: 0 done, 2 an error (one line on stderr), 130 interrupted
    (Ctrl-C or SIGTERM). No output file is written unless the command succeeds (commands/outputs.py)."""
    if sys.stdout is None or not _open(1):
        print("rramcim: error: standard output is closed; redirect it (>/dev/null discards it)", file=sys.stderr)
        return 2
    parser = build_parser()
    stdout, sys.stdout = sys.stdout, _GuardedStdout(sys.stdout)
    try:
        try:
            args = parser.parse_args(argv)
            if not getattr(args, "func", None):
                parser.print_help()
                return _flushed(0)
        except CliError as e:               # --help or --version on a full standard output
            print(f"rramcim: error: {e}", file=sys.stderr)
            return 2
        return _run(args)
    finally:
        sys.stdout = stdout


def _run(args) -> int:
    import signal
    old_term = signal.signal(signal.SIGTERM, _terminate)
    try:
        status = _call(args)
    finally:
        signal.signal(signal.SIGTERM, old_term)
    return _flushed(status)


def _call(args) -> int:
    from .model.config import ConfigError
    try:
        try:
            args.func(args)
        finally:
            while _PROGRESS:                 # leave the terminal clean, on an interrupt too
                _PROGRESS.pop().close()
    except KeyboardInterrupt:
        print("rramcim: interrupted; no output written", file=sys.stderr)
        return 130
    except (CliError, ConfigError) as e:
        print(f"rramcim: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except MemoryError:
        print("rramcim: error: out of memory (a smaller config or batch may fit; "
              "rramcim config FILE states the model's memory)", file=sys.stderr)
        return 2
    except OSError as e:                     # anything the commands did not name themselves: still one line
        print(f"rramcim: error: {e.filename or 'I/O error'}: {e.strerror or e}", file=sys.stderr)
        return 2
    except Exception as e:  # tools missing or failing: one line, not a traceback
        from .sim.tools.build import ToolError
        if isinstance(e, ToolError):
            print(f"rramcim: error: {_one_line(e)}", file=sys.stderr)
            return 2
        raise
    return 0


class _GuardedStdout:
    """Standard output whose write errors (full disk, closed pipe) are a one-line CliError naming it."""

    def __init__(self, stream):
        self._stream = stream

    def _guard(self, fn, *a):
        try:
            return fn(*a)
        except (OSError, ValueError) as e:
            raise CliError(f"standard output: cannot write ({getattr(e, 'strerror', None) or e})") from None

    def write(self, text):
        return self._guard(self._stream.write, text)

    def flush(self):
        return self._guard(self._stream.flush)

    def __getattr__(self, name):
        return getattr(self._stream, name)


def _terminate(signum, frame):
    """SIGTERM stops a command as Ctrl-C does: simulators killed, work folders removed, nothing written."""
    raise KeyboardInterrupt


def _open(fd) -> bool:
    import os
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False


def _one_line(e) -> str:
    """An error's message on one line (a multi-line one joined with '; ')."""
    return "; ".join(line.strip() for line in str(e).splitlines() if line.strip()) or type(e).__name__


def _flushed(status: int) -> int:
    """Flush standard output; a full or closed one is one line on stderr (not Python's exit-time traceback)."""
    import os
    try:
        sys.stdout.flush()
    except (CliError, OSError, ValueError) as e:
        try:                                 # keep the interpreter's own flush at exit from failing again
            os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
        except OSError:
            pass
        if status == 0:                      # an error already reported is not reported twice
            print(f"rramcim: error: {e}" if isinstance(e, CliError) else
                  f"rramcim: error: standard output: cannot write ({getattr(e, 'strerror', None) or e})",
                  file=sys.stderr)
        return status or 2
    return status


if __name__ == "__main__":
    sys.exit(main())
