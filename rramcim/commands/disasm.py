"""``rramcim disasm``: disassemble 64-bit hex words into canonical assembly (``rramcim asm`` of the result
gives the same words)."""

from __future__ import annotations

from .common import CliError, read_text
from .outputs import Outputs


def add_parser(sub):
    sp = sub.add_parser("disasm", help="disassemble hex words into a controller program",
                        description="Disassemble 64-bit hex words (one per line) into canonical assembly; "
                                    "rramcim asm of the result gives the same words.")
    sp.add_argument("program", metavar="PROG.hex", help="hex words, one per line")
    sp.add_argument("-o", "--output", metavar="PROG.s", help="output file (default: standard output)")
    sp.set_defaults(func=main)


def main(args):
    from ..model.isa import disassemble
    output = args.output or "-"
    outputs = Outputs([("-o", output)], inputs=[("PROG.hex", args.program)], stdout_ok=("-o",))
    text = disassemble(read_hex_words(args.program))
    outputs.stage("-o", output, text)
    if output != "-":
        print(f"wrote {output}")
    outputs.commit()


def read_hex_words(path: str) -> list[int]:
    """64-bit words from a hex file (one per line, as ``rramcim asm`` writes; ``#`` comments)."""
    words = []
    for n, line in enumerate(read_text(path).splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            w = int(line, 16)
        except ValueError:
            raise CliError(f"{path}: line {n}: {line!r} is not a hex word") from None
        if not 0 <= w < (1 << 64):
            raise CliError(f"{path}: line {n}: {line!r} does not fit 64 bits")
        words.append(w)
    return words
