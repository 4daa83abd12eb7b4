"""The controller's instruction set: encoding, assembler and disassembler.

Every instruction is one 64-bit word. Bits ``[5:0]`` hold the opcode; the
other fields sit at fixed places given by :data:`FORMATS` (the single source
of the encoding: the assembler, the disassembler, the models, the RTL
decoder and docs/isa.md all read it). A field that an instruction does not
use must be zero.

Assembly syntax, one instruction per line, ``#`` starts a comment::

    ldw     1,0 row=0 count=8 gaddr=0x40     # tile (x=1, y=0)
    mvm     1,0 a=0 b=0 count=4 acc=1
    barrier
    halt

The tile operand ``x,y`` comes first; the other operands are ``name=value``
(decimal without leading zeros, or ``0x`` hex, each within its field's
width) in any order; every operand of the instruction must
be given, except ``acc``, ``bias``, ``relu``, ``shift``, ``bank`` and ``reduce``, which default to 0.
``.word 0x...`` puts a raw word (the disassembler's form of a word that is
not an instruction). The
disassembler prints the canonical form (operands in table order), so
``assemble(disassemble(words)) == words``.

Pure Python: no Amaranth or cocotb here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["OPCODE_BITS", "Field", "FORMATS", "OPCODES", "Instr", "AsmError", "encode", "decode",
           "assemble", "disassemble", "Op", "TILE_FIELDS", "COUNT_MAX", "INSTR_BITS", "isa_field"]

INSTR_BITS = 64             # an instruction word
OPCODE_BITS = 6
COUNT_MAX = 255


@dataclass(frozen=True)
class Field:
    name: str
    lsb: int
    width: int
    doc: str

    @property
    def msb(self) -> int:
        return self.lsb + self.width - 1

    def get(self, word: int) -> int:
        return (word >> self.lsb) & ((1 << self.width) - 1)


_TX = Field("tx", 6, 4, "tile x")
_TY = Field("ty", 10, 4, "tile y")
TILE_FIELDS = (_TX, _TY)


def _f(name, lsb, width, doc):
    return Field(name, lsb, width, doc)


_COUNT = _f("count", 26, 8, "vectors, 1..255")
_GADDR = _f("gaddr", 34, 20, "global-buffer word address")


class Op:
    """Opcodes."""
    NOP = 0
    HALT = 1
    LDACT = 2
    LDW = 3
    LDBIAS = 4
    LDPSUM = 5
    MVM = 6
    READ = 7
    OUT = 8
    OUTQ = 9
    PSUM = 10
    SYNC = 11
    BARRIER = 12
    LDSEQ = 13
    CHAN = 14
    FEED = 15
    LDRQ = 16


# name -> (opcode, fields after the opcode, one-line description)
FORMATS: dict[str, tuple[int, tuple[Field, ...], str]] = {
    "nop": (Op.NOP, (), "do nothing for one cycle"),
    "halt": (Op.HALT, (), "stop: the program is done"),
    "ldact": (Op.LDACT, (_TX, _TY, _f("slot", 14, 12, "first input-buffer slot"), _COUNT, _GADDR),
              "send `count` activation vectors from the global buffer to input-buffer slots `slot`.."),
    "ldw": (Op.LDW, (_TX, _TY, _f("row", 14, 12, "first crossbar row of the bank"), _COUNT, _GADDR,
                     _f("bank", 54, 10, "weight bank, 0..banks-1")),
            "program `count` RRAM rows of bank `bank`, `row`.., from weight rows in the global buffer"),
    "ldbias": (Op.LDBIAS, (_TX, _TY, _GADDR),
               "load the tile's bias vector (`acc_bits`, int32 by default, per column) from the global buffer"),
    "ldpsum": (Op.LDPSUM, (_TX, _TY, _f("slot", 14, 12, "first accumulator slot"), _COUNT, _GADDR),
               "add `count` `acc_bits` vectors from the global buffer into accumulator slots `slot`.."),
    "mvm": (Op.MVM, (_TX, _TY, _f("a", 14, 12, "first input-buffer slot"), _COUNT,
                     _f("b", 34, 12, "first accumulator slot"),
                     _f("acc", 46, 1, "1: add to the accumulator, 0: overwrite it"),
                     _f("bank", 47, 10, "weight bank, 0..banks-1"),
                     _f("reduce", 57, 1, "1: MVM i uses bank `bank+i` and adds into slot `b` (a K reduction)")),
            "`count` MVMs: accumulator[b+i] (+)= x[a+i] @ W[bank]; with `reduce`: accumulator[b] (+)= "
            "sum of x[a+i] @ W[bank+i]"),
    "read": (Op.READ, (_TX, _TY, _f("row", 14, 12, "crossbar row of the bank"),
                       _f("b", 34, 12, "accumulator slot"), _f("bank", 46, 10, "weight bank, 0..banks-1")),
             "read RRAM row `row` back (as its stored weights, faults included) into accumulator slot `b`"),
    "out": (Op.OUT, (_TX, _TY, _f("b", 14, 12, "first accumulator slot"), _COUNT, _GADDR,
                     _f("bias", 54, 1, "1: add the tile's bias vector (wrapping)")),
            "send `count` accumulator vectors, `acc_bits` each element, to the global buffer"),
    "outq": (Op.OUTQ, (_TX, _TY, _f("b", 14, 12, "first accumulator slot"), _COUNT, _GADDR,
                       _f("shift", 54, 5, "rounding arithmetic right shift, 0..31"),
                       _f("relu", 59, 1, "1: ReLU after the clamp"),
                       _f("rq", 60, 1, "1: the tile's per-column requant (`ldrq`) instead of shift, clamp, ReLU")),
             "send `count` accumulator vectors post-processed (bias, shift, clamp, ReLU; or bias, requant) to "
             "the global buffer"),
    "psum": (Op.PSUM, (_TX, _TY, _f("b", 14, 12, "first accumulator slot"), _COUNT,
                       _f("dx", 34, 4, "destination tile x"), _f("dy", 38, 4, "destination tile y"),
                       _f("d", 42, 12, "first destination accumulator slot")),
             "send `count` accumulator vectors, raw, to another tile (dx, dy), added into its slots "
             "`d`..; each is answered, so follow with `barrier`"),
    "sync": (Op.SYNC, (_TX, _TY), "the tile answers once everything sent to it before is done"),
    "barrier": (Op.BARRIER, (), "wait until every `sync`, every partial sum of a `psum` and every result a "
                                "`feed` expects has been answered"),
    "ldseq": (Op.LDSEQ, (_TX, _TY, _GADDR),
              "give the tile a standing sequence, the descriptor (`seq_words` words) at `gaddr`; the tile "
              "answers when it starts (docs/isa.md, \"Standing sequences\")"),
    "chan": (Op.CHAN, (_TX, _TY, _f("c", 14, 4, "feed channel, 0..15"),
                       _f("words", 18, 8, "words of one vector, 1..words_x"),
                       _f("credits", 26, 8, "vectors the tile's input ring holds, 1..tile_ibuf_depth"), _GADDR),
             "define feed channel `c`: vectors of `words` words from `gaddr` on to the tile's input ring"),
    "feed": (Op.FEED, (_f("count", 14, 16, "vectors per channel, 1..65535"),
                       _f("expect", 30, 16, "results the sequences send back (a barrier waits for them)")),
             "send `count` vectors on every defined channel, vector by vector, each as its ring has room; "
             "then forget the channels"),
    "ldrq": (Op.LDRQ, (_TX, _TY, _GADDR),
             "load the tile's requant vector (per column: multiplier, rounding, zero point, bounds; "
             "2 x `words_a` words) from the global buffer"),
}
OPCODES = {op: name for name, (op, _, _) in FORMATS.items()}


def isa_field(op_name: str, name: str) -> Field:
    """Field ``name`` of instruction ``op_name`` (the table above)."""
    for f in FORMATS[op_name][1]:
        if f.name == name:
            return f
    raise KeyError(f"{op_name} has no field {name}")


_DEFAULT_ZERO = {"acc", "relu", "shift", "bias", "bank", "reduce", "rq"}

for _name, (_op, _fields, _) in FORMATS.items():   # the table must not overlap itself
    _used = (1 << OPCODE_BITS) - 1
    for _fl in _fields:
        _m = ((1 << _fl.width) - 1) << _fl.lsb
        assert not _used & _m and _fl.msb < INSTR_BITS, (_name, _fl)
        _used |= _m


class AsmError(ValueError):
    """A line the assembler cannot encode; the message names the line and the operand."""


@dataclass(frozen=True)
class Instr:
    """A decoded instruction: its mnemonic and operand values (``tx``/``ty`` for the tile)."""

    name: str
    ops: dict

    @property
    def op(self) -> int:
        return FORMATS[self.name][0]

    def __getattr__(self, item):
        try:
            return self.ops[item]
        except KeyError:
            raise AttributeError(item) from None

    @property
    def tile(self):
        return (self.ops["tx"], self.ops["ty"])

    def encode(self) -> int:
        return encode(self.name, **self.ops)

    def text(self) -> str:
        _, fields, _ = FORMATS[self.name]
        parts = []
        if fields and fields[0] is _TX:
            parts.append(f"{self.ops['tx']},{self.ops['ty']}")
            fields = fields[2:]
        parts += [f"{f.name}={self.ops[f.name]}" for f in fields]
        return f"{self.name:<8}{' '.join(parts)}".rstrip()


def encode(name: str, **ops) -> int:
    if name not in FORMATS:
        raise AsmError(f"unknown instruction {name!r}")
    op, fields, _ = FORMATS[name]
    word = op
    known = {f.name for f in fields}
    for k in ops:
        if k not in known:
            raise AsmError(f"{name}: no operand {k!r} (operands: {', '.join(sorted(known)) or 'none'})")
    for f in fields:
        if f.name not in ops:
            if f.name in _DEFAULT_ZERO:
                continue
            raise AsmError(f"{name}: operand {f.name!r} missing")
        v = ops[f.name]
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < (1 << f.width):
            raise AsmError(f"{name}: {f.name}={_show(v)} does not fit {f.width} bits: out of range for field "
                           f"{f.name} (0..{(1 << f.width) - 1})")
        word |= v << f.lsb
    return word


def decode(word: int) -> Instr | None:
    """The instruction in ``word``, or None if its opcode is not one or an unused field is not zero."""
    word = int(word)
    if not 0 <= word < (1 << INSTR_BITS):
        return None
    op = word & ((1 << OPCODE_BITS) - 1)
    name = OPCODES.get(op)
    if name is None:
        return None
    _, fields, _ = FORMATS[name]
    used = (1 << OPCODE_BITS) - 1
    ops = {}
    for f in fields:
        ops[f.name] = f.get(word)
        used |= ((1 << f.width) - 1) << f.lsb
    if word & ~used:
        return None
    return Instr(name, ops)


_HEX_DIGITS = INSTR_BITS // 4          # a number: 0x and at most 16 hex digits, or at most 20 decimal digits
_DEC_DIGITS = len(str(1 << INSTR_BITS))
_HEX_RE = re.compile(rf"0[xX][0-9a-fA-F]{{1,{_HEX_DIGITS}}}", re.ASCII)
_DEC_RE = re.compile(rf"0|[1-9][0-9]{{0,{_DEC_DIGITS - 1}}}", re.ASCII)
_TILE_RE = re.compile(r"^([^,=\s]+),([^,=\s]+)$")
_KV_RE = re.compile(r"^([a-z]+)=(\S+)$", re.ASCII)


def _show(v, most: int = 24) -> str:
    """``v`` for a message, cut short: a line of the source may be anything, of any length."""
    text = str(v)
    return text if len(text) <= most else text[:most] + "..."


def _number(text: str, what: str, sep: str = "=") -> int:
    """An operand's value: decimal without leading zeros, or ``0x`` hex; checked before ``int()`` sees it."""
    if not text:
        raise AsmError(f"{what}: a number is missing")
    if _HEX_RE.fullmatch(text):
        return int(text, 16)
    if _DEC_RE.fullmatch(text):
        return int(text)
    if re.fullmatch(r"0[0-9]+", text, re.ASCII):
        why = "a leading zero (write decimal without it, or 0x hex)"
    elif re.fullmatch(r"(0[xX][0-9a-fA-F]*|[0-9]+)", text, re.ASCII):
        why = f"too many digits (at most {_DEC_DIGITS} decimal or {_HEX_DIGITS} hex)"
    else:
        why = "not a number (decimal, or 0x hex)"
    raise AsmError(f"{what}{sep}{_show(text)}: {why}")


def _tokens(rest: str) -> list[str]:
    # "1, 0 a=1" -> ["1,0", "a=1"]
    rest = re.sub(r"\s*,\s*", ",", rest.strip())
    rest = re.sub(r"\s*=\s*", "=", rest)
    return rest.split() if rest else []


def _operands(name: str, fields, toks: list[str]) -> dict:
    ops = {}
    if fields and fields[0] is _TX:
        mt = _TILE_RE.match(toks[0]) if toks else None
        if not mt:
            raise AsmError(f"{name}: the tile operand 'x,y' must come first")
        toks = toks[1:]
        ops["tx"], ops["ty"] = _number(mt.group(1), f"{name}: tx"), _number(mt.group(2), f"{name}: ty")
    for tok in toks:
        mk = _KV_RE.match(tok)
        if not mk:
            raise AsmError(f"{name}: cannot read operand {_show(tok)!r} (expected name=value)")
        if mk.group(1) in ops:
            raise AsmError(f"{name}: operand {mk.group(1)!r} given twice")
        ops[mk.group(1)] = _number(mk.group(2), f"{name}: {mk.group(1)}")
    return ops


def assemble(text: str) -> list[int]:
    """Words of an assembly program. Raises :class:`AsmError` naming the line.

    Numbers are decimal without leading zeros (``0``, ``12``) or ``0x`` hex; each is checked against the
    width of its field in :data:`FORMATS` (``row=5000`` is out of range for a 12-bit field).
    """
    words = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, _, rest = line.partition(" ")
        name = name.lower()
        try:
            if name == ".word":
                v = _number(rest.strip(), ".word", " ")
                if not 0 <= v < (1 << INSTR_BITS):
                    raise AsmError(f".word: {v:#x} does not fit {INSTR_BITS} bits")
                words.append(v)
                continue
            if name not in FORMATS:
                raise AsmError(f"unknown instruction {_show(name)!r}")
            words.append(encode(name, **_operands(name, FORMATS[name][1], _tokens(rest))))
        except AsmError as e:
            raise AsmError(f"line {lineno}: {e}") from None
    return words


def disassemble(words) -> str:
    """Canonical assembly text of ``words``; a word that is not an instruction shows as ``.word 0x...``."""
    lines = []
    for w in words:
        ins = decode(int(w))
        lines.append(ins.text() if ins is not None else f".word   {int(w):#018x}")
    return "\n".join(lines) + ("\n" if lines else "")


def markdown_table() -> str:
    """The encoding of every instruction, for docs/isa.md."""
    out = ["| opcode | mnemonic | fields (bits) | what it does |", "|---|---|---|---|"]
    for name, (op, fields, doc) in FORMATS.items():
        fs = ", ".join(f"`{f.name}` [{f.msb}:{f.lsb}]" for f in fields) or "none"
        out.append(f"| {op} | `{name}` | {fs} | {doc} |")
    return "\n".join(out) + "\n"
