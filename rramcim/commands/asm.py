"""``rramcim asm``: assemble a controller program (docs/isa.md) into 64-bit hex words, one per line."""

from __future__ import annotations

from .common import CliError, read_text
from .outputs import Outputs


def add_parser(sub):
    sp = sub.add_parser("asm", help="assemble a controller program (docs/isa.md) into hex words",
                        description="Assemble a controller program (syntax and encoding in docs/isa.md) into "
                                    "64-bit words, written as hex, one per line ($readmemh-compatible).")
    sp.add_argument("source", metavar="PROG.s", help="assembly source")
    sp.add_argument("-o", "--output", required=True, metavar="PROG.hex", help="output file (- for standard output)")
    sp.set_defaults(func=main)


def main(args):
    from ..model.isa import AsmError, assemble
    outputs = Outputs([("-o", args.output)], inputs=[("PROG.s", args.source)], stdout_ok=("-o",))
    try:
        words = assemble(read_text(args.source))
    except AsmError as e:
        raise CliError(f"{args.source}: {e}") from None
    outputs.stage("-o", args.output, "".join(f"{w:016x}\n" for w in words))
    if args.output != "-":
        print(f"wrote {args.output}: {len(words)} instructions (64-bit hex words, one per line)")
    outputs.commit()
