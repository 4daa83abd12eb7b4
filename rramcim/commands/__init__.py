"""The subcommands of ``rramcim``, one module each.

Every module in :data:`COMMANDS` has ``add_parser(subparsers)``, which adds its subparser and sets
``func`` (called with the parsed arguments; it raises :class:`~.common.CliError` for a one-line error).
Adding a command: write its module and add its name here; the order is the order of ``rramcim --help``.
Helpers several commands use (options, checks, output writing, progress) live in :mod:`.common`.
"""

from importlib import import_module

COMMANDS = ("demo", "verilog", "run", "gemm", "import_onnx", "asm", "disasm", "config", "fpga")


def add_parsers(subparsers):
    """Add the subparser of every command in :data:`COMMANDS`, in that order."""
    for name in COMMANDS:
        import_module(f".{name}", __name__).add_parser(subparsers)
