"""Field lists of :mod:`rramcim.model.encoding` and fields of :mod:`rramcim.model.isa` in Amaranth.

A field list (``(name, width)`` pairs, least significant first; a name starting with ``_``
is padding) becomes a ``data.StructLayout`` of the same names and widths (:func:`layout`),
so that a word of it is read by field name; :func:`pack` forms such a word from values.
:func:`instr_field` is a field of an instruction word, at the place the ISA table gives.
"""

from amaranth.hdl import Cat, Const, Value
from amaranth.lib import data

from ..model.isa import isa_field

__all__ = ["layout", "pack", "instr_field", "unpack"]


def layout(fields) -> data.StructLayout:
    """The Amaranth layout of a field list."""
    return data.StructLayout(dict(fields))


def pack(fields, **values) -> Value:
    """The word of a field list holding ``values``, each cut or zero-extended to its field;
    padding and fields not given are 0."""
    parts = []
    for name, width in fields:
        v = Value.cast(values.get(name, Const(0, width)))
        if len(v) > width:
            v = v[:width]
        elif len(v) < width:
            v = Cat(v, Const(0, width - len(v)))
        parts.append(v)
    return Cat(*parts)


def instr_field(word, op_name: str, name: str) -> Value:
    """Field ``name`` of instruction ``op_name`` in the instruction word ``word``."""
    f = isa_field(op_name, name)
    return word[f.lsb:f.lsb + f.width]


def unpack(words, n: int, bits: int, width: int) -> list:
    """The ``n`` ``bits``-wide elements packed in ``words`` (docs/isa.md, global-buffer layout)."""
    per = width // bits
    return [words[i // per][(i % per) * bits:(i % per + 1) * bits] for i in range(n)]
