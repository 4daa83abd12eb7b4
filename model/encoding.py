"""Every encoding that the RTL, the models and the benches share: one home, like FlooNoC's ``floo_pkg``.

The RTL builds its Amaranth layouts from these definitions (a field list becomes a
``data.StructLayout`` of the same names and widths), the models encode and decode with
them, and the benches decode what they read from a port by field name
(:func:`unpack_fields`), never by literal shifts. Widths that depend on the chip come
from the config (:func:`coord_bits`, :func:`header_bits`).

Field lists
-----------
A *field list* is a tuple of ``(name, width)`` pairs, least significant first, as an
Amaranth ``StructLayout`` orders its members. A name starting with ``_`` is padding
(zero when packed, ignored when unpacked).

================  =================================================================
``HEADER``        a packet's header word (per config: :func:`header_fields`)
``ERROR_FIELDS``  the controller's error register (the core's ``error`` port)
``ERR_ARG``       the argument word of an ``ERR`` packet (a row that failed verify)
``WROW_ARG``      the argument word of a ``WROW`` packet (row, and the ``ldw``'s address)
``SLOT_ARG``      the argument word of ``ACT``, ``PSUM``, ``PSUM_T`` (the slot)
``RESULT_ARG``    the argument word of a ``RESULT`` packet (global-buffer address)
``ERR_TILE_REG``  the host register ``ERR_TILE`` (rtl/top.py)
``FRAME_HEADER``  the header beat of a frame on the chip's AXI4-Stream input
``imem_write_fields``, ``gbuf_write_fields``  the core's host write ports
================  =================================================================

Packet types, error codes and the performance-counter map are below; vectors are packed
by :func:`pack_vector` (docs/isa.md, "Vectors in words").

Pure Python and numpy; of the other models only :mod:`rramcim.model.isa` (the opcodes), since
:mod:`rramcim.model.config` uses this module.
"""

from __future__ import annotations

import numpy as np

from .isa import INSTR_BITS, TILE_FIELDS, Op, isa_field

__all__ = ["PacketType", "SeqOp", "FEED_CHANNELS", "SEQ_DESC", "SEQ_FANOUT", "ErrorCode", "LOAD_PACKET", "LOAD_COUNT", "vector_words", "gbuf_words_of", "command_words", "command_word",
           "HEADER_TYPE_BITS", "LENGTH_BITS", "CTRL", "coord_bits",
           "coord_size", "header_fields", "header_bits", "pack_header", "unpack_header",
           "GADDR_BITS", "IMEM_ADDR_BITS", "ARG_PC_BITS", "ARG_BITS", "ERROR_CODE_BITS", "ERROR_PC_BITS", "SLOT_BITS", "RRAM_ROW_BITS",
           "ERROR_FIELDS", "ERR_ARG", "WROW_ARG", "SLOT_ARG", "RESULT_ARG", "ERR_TILE_REG", "FRAME_HEADER",
           "imem_write_fields", "gbuf_write_fields", "macro_prog_fields", "macro_resp_fields", "fields_width",
           "field_lsb", "pack_fields", "unpack_fields",
           "COUNTER_NAMES", "TILE_COUNTER_NAMES", "TILE_COUNTER_BASE", "TILE_COUNTER_STRIDE",
           "counter_index", "counter_name", "pack_vector", "unpack_vector", "pack_lanes", "unpack_lanes"]


# --- field lists ---------------------------------------------------------------------------------

def fields_width(fields) -> int:
    """The bits a field list spans."""
    return sum(w for _, w in fields)


def field_lsb(fields, name: str) -> int:
    """The position of field ``name``'s least significant bit."""
    pos = 0
    for n, w in fields:
        if n == name:
            return pos
        pos += w
    raise KeyError(name)


def pack_fields(fields, **values) -> int:
    """The word holding ``values`` (missing fields are 0); a value that does not fit raises ValueError."""
    unknown = set(values) - {n for n, _ in fields}
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(sorted(unknown))}")
    word, pos = 0, 0
    for name, w in fields:
        v = int(values.get(name, 0))
        if not 0 <= v < (1 << w):
            raise ValueError(f"{name} = {v} does not fit {w} bits")
        word |= v << pos
        pos += w
    return word


def unpack_fields(fields, word: int) -> dict:
    """``{name: value}`` of every field that is not padding."""
    out, pos = {}, 0
    for name, w in fields:
        if not name.startswith("_"):
            out[name] = (int(word) >> pos) & ((1 << w) - 1)
        pos += w
    return out


# --- packets ---------------------------------------------------------------------------------------

class PacketType:
    """The header's ``type`` field (docs/isa.md, "Packets")."""

    ACT = 1
    WROW = 2
    BIAS = 3
    PSUM = 4
    CMD = 5
    PSUM_T = 6
    SEQ = 7          # a standing sequence's descriptor (from ldseq)
    RESULT = 8
    ACK = 9
    ERR = 10
    XS = 11          # an input vector to a standing sequence's ring (no argument word)
    PS = 12          # a partial sum to a standing sequence's accumulator ring (no argument word)
    CREDIT = 13      # a ring slot freed (header only)
    RESULT_S = 14    # a standing sequence's result to the controller (answered: a barrier waits for it)
    RQ = 15          # half of a tile's requant vector (argument word: 0 or 1), from ldrq


class SeqOp:
    """What a standing sequence does with each result (the descriptor's ``op``)."""
    PS_TILE = 0      # raw accumulator vector to another tile's accumulator ring (PS)
    XS_TILE = 1      # post-processed (bias, shift, clamp, ReLU) to another tile's input ring (XS)
    OUT_CTRL = 2     # raw (plus the bias if ``bias``) to the global buffer (RESULT_S)
    OUTQ_CTRL = 3    # post-processed to the global buffer (RESULT_S)


FEED_CHANNELS = 16
"""Feed channels of the controller (``chan`` ``c``)."""


# the packet each load instruction sends, one per vector
LOAD_PACKET = {Op.LDACT: PacketType.ACT, Op.LDW: PacketType.WROW, Op.LDBIAS: PacketType.BIAS,
               Op.LDPSUM: PacketType.PSUM, Op.LDSEQ: PacketType.SEQ, Op.LDRQ: PacketType.RQ}
# loads that send a fixed number of packets (the others: ``count``, or one): ldrq's two halves, arguments 0, 1
LOAD_COUNT = {Op.LDRQ: 2}


def vector_words(cfg, ptype: int) -> int:
    """The words of a vector in a packet of type ``ptype`` (after its argument word)."""
    return {PacketType.ACT: cfg.words_x, PacketType.WROW: cfg.words_w, PacketType.BIAS: cfg.words_a,
            PacketType.PSUM: cfg.words_a, PacketType.PSUM_T: cfg.words_a, PacketType.SEQ: cfg.seq_words,
            PacketType.RQ: cfg.words_a}[ptype]


def gbuf_words_of(cfg, op: int) -> int:
    """The words of one vector that instruction ``op`` moves through the global buffer (0: none):
    a load's vector, or an ``out`` / ``outq`` result."""
    if op in LOAD_PACKET:
        return vector_words(cfg, LOAD_PACKET[op])
    return {Op.OUT: cfg.words_a, Op.OUTQ: cfg.words_q}.get(op, 0)


def command_words(cfg, word: int) -> list[int]:
    """The payload of a ``CMD`` packet: the instruction ``word`` as ``cmd_words`` words, low first."""
    mask = (1 << cfg.flit_width) - 1
    return [(word >> (i * cfg.flit_width)) & mask for i in range(cfg.cmd_words)]


def command_word(cfg, words) -> int:
    """The instruction in the payload ``words`` of a ``CMD`` packet (:func:`command_words`)."""
    return sum(int(w) << (i * cfg.flit_width) for i, w in enumerate(words[:cfg.cmd_words])) & ((1 << INSTR_BITS) - 1)


HEADER_TYPE_BITS = 4
LENGTH_BITS = 8                 # payload words, 0..255

CTRL = "ctrl"
"""The controller's node. It sits off the mesh at router (0, 0): it sends into
that router's west input and receives from its north output, so that a packet
to or from it still follows XY order (it is addressed as if at ``(0, -1)``
and sends as if from ``(-1, 0)``). In headers and flits it is
``x = y = 0, ctrl = 1``."""


def coord_bits(cfg) -> tuple[int, int]:
    """Bits of an x and a y coordinate (at least 1 each)."""
    return max(1, (cfg.mesh_x - 1).bit_length()), max(1, (cfg.mesh_y - 1).bit_length())


def coord_size(cfg) -> int:
    """Bits of a node address: x, y and the controller flag."""
    xb, yb = coord_bits(cfg)
    return xb + yb + 1


def header_fields(cfg) -> tuple:
    """The header word: destination and source (x, y, ctrl each), type, payload length."""
    xb, yb = coord_bits(cfg)
    return (("dest_x", xb), ("dest_y", yb), ("dest_ctrl", 1), ("src_x", xb), ("src_y", yb),
            ("src_ctrl", 1), ("type", HEADER_TYPE_BITS), ("length", LENGTH_BITS))


def header_bits(cfg) -> int:
    return fields_width(header_fields(cfg))


def _addr(n) -> tuple[int, int, int]:
    return (0, 0, 1) if n == CTRL else (int(n[0]), int(n[1]), 0)


def pack_header(cfg, dest, src, ptype: int, length: int) -> int:
    """A header word; ``dest`` and ``src`` are nodes (``(x, y)`` or :data:`CTRL`)."""
    if not 0 <= length < (1 << LENGTH_BITS):
        raise ValueError(f"packet length {length} outside 0..{(1 << LENGTH_BITS) - 1}")
    if not 0 <= ptype < (1 << HEADER_TYPE_BITS):
        raise ValueError(f"packet type {ptype} outside 0..{(1 << HEADER_TYPE_BITS) - 1}")
    (dx, dy, dc), (sx, sy, sc) = _addr(dest), _addr(src)
    xb, yb = coord_bits(cfg)
    mx, my = (1 << xb) - 1, (1 << yb) - 1      # coordinates wrap to their fields, as in the RTL
    return pack_fields(header_fields(cfg), dest_x=dx & mx, dest_y=dy & my, dest_ctrl=dc,
                       src_x=sx & mx, src_y=sy & my, src_ctrl=sc, type=ptype, length=length)


def unpack_header(cfg, word: int) -> dict:
    """The header's fields, and ``dest`` and ``src`` as nodes (``(x, y)`` or :data:`CTRL`)."""
    out = unpack_fields(header_fields(cfg), word)
    out["dest"] = CTRL if out["dest_ctrl"] else (out["dest_x"], out["dest_y"])
    out["src"] = CTRL if out["src_ctrl"] else (out["src_x"], out["src_y"])
    return out


# --- argument words, the error register, host write ports ------------------------------------------

GADDR_BITS = isa_field("ldact", "gaddr").width    # a global-buffer word address
IMEM_ADDR_BITS = 17             # one more than the largest imem needs: a write past the end has an address
ERROR_PC_BITS = 17              # an overflow reports pc = imem_depth, up to 65536
SLOT_BITS = 12                  # an input-buffer or accumulator slot, or a bank's row, in an argument word
RRAM_ROW_BITS = 16              # an RRAM row across the banks (bank * rows + row) in a WROW / ERR argument word
ARG_PC_BITS = 16                # the pc of an ldw in a WROW / ERR argument word (imem_depth <= 1 << 16)
_TILE_X_BITS, _TILE_Y_BITS = (f.width for f in TILE_FIELDS)     # the ISA's tile fields

SLOT_ARG = (("slot", SLOT_BITS),)
WROW_ARG = (("row", RRAM_ROW_BITS), ("pc", ARG_PC_BITS))
ERR_ARG = (("pc", ARG_PC_BITS), ("row", RRAM_ROW_BITS))
RESULT_ARG = (("gaddr", GADDR_BITS),)
# A standing sequence's descriptor (docs/isa.md, "Standing sequences"), seq_words words from the
# global buffer: vectors, the input ring and who fills it, the partial sums that join, the
# accumulator ring, what each result becomes and where it goes.
SEQ_DESC = (("count", 16), ("ring", SLOT_BITS), ("src_x", _TILE_X_BITS), ("src_y", _TILE_Y_BITS), ("src_ctrl", 1),
            ("join", 1), ("psrc_x", _TILE_X_BITS), ("psrc_y", _TILE_Y_BITS), ("aring", SLOT_BITS), ("op", 2),
            ("dst_x", _TILE_X_BITS), ("dst_y", _TILE_Y_BITS), ("credits", SLOT_BITS), ("ncols", SLOT_BITS),
            ("shift", 5), ("relu", 1), ("bias", 1), ("gaddr", GADDR_BITS), ("gstep", SLOT_BITS),
            ("fan", 2), *((f"dst{k}_{a}", w) for k in range(1, 4) for a, w in (("x", _TILE_X_BITS), ("y", _TILE_Y_BITS))),
            ("rq", 1))
# A result sent to a tile goes to ``fan + 1`` destinations (dst, dst1, ..., one packet each, with
# credits of its own toward each): the fan-out of a layer's output block to the next layer's N-blocks.
SEQ_FANOUT = 4
# The argument word of a packet (payload word 0): the widest of them (a WROW packet's, 32 bits;
# the config asks flit_width >= ARG_BITS for it).
ARG_BITS = max(fields_width(f) for f in (SLOT_ARG, WROW_ARG, ERR_ARG, RESULT_ARG))


class ErrorCode:
    NONE = 0
    ILLEGAL_OPCODE = 1      # not an opcode, or a field the instruction does not use is not zero
    BAD_TILE = 2            # a tile (or psum destination) outside the mesh, or a psum to its own tile
    BAD_GBUF = 3            # a global-buffer range past the end
    BAD_TILE_ADDR = 4       # count 0, or slots / rows past the end of the tile's buffers
    IMEM_OVERFLOW = 5       # the program ran past the end of the instruction memory (or was loaded past it)
    RRAM_VERIFY = 6         # a row failed write-verify after rram_max_attempts pulses

    NAMES = {0: "none", 1: "illegal opcode", 2: "tile outside the mesh", 3: "global-buffer address out of range",
             4: "tile address out of range", 5: "instruction-memory overflow", 6: "RRAM verify failure"}


ERROR_CODE_BITS = 3
# the error register: code, instruction address, and for RRAM errors the tile and the row
ERROR_FIELDS = (("code", ERROR_CODE_BITS), ("pc", ERROR_PC_BITS), ("x", _TILE_X_BITS), ("y", _TILE_Y_BITS),
                ("row", RRAM_ROW_BITS))
# the host's view of the tile and row of an RRAM error (rtl/top.py Reg.ERR_TILE)
ERR_TILE_REG = (("x", _TILE_X_BITS), ("y", _TILE_Y_BITS), ("_pad", 16 - _TILE_X_BITS - _TILE_Y_BITS),
                ("row", RRAM_ROW_BITS))


# the header beat of a frame on the AXI4-Stream input (rtl/top.py FrameType: 1 imem, 2 gbuf, 3 read)
FRAME_HEADER = (("type", 8), ("count", 24), ("addr", 32))


def imem_write_fields() -> tuple:
    """The core's ``imem_wr`` payload: address, then an instruction (``INSTR_BITS``)."""
    return (("addr", IMEM_ADDR_BITS), ("data", INSTR_BITS))


def gbuf_write_fields(cfg) -> tuple:
    """The core's ``gbuf_wr`` payload: address (one bit more: a write past the end is seen), then a word."""
    return (("addr", GADDR_BITS + 1), ("data", cfg.flit_width))


def macro_prog_fields(cfg) -> tuple:
    """The macro's ``prog`` payload: the RRAM row (``bank * rows + row``), then ``cols`` weights of ``wbits`` (``weights``, packed
    as by :func:`pack_lanes`)."""
    return (("row", cfg.rram_row_bits), ("weights", cfg.cols * cfg.wbits))


def macro_resp_fields(cfg) -> tuple:
    """The macro's ``prog_resp`` payload: the row, write-verify pulses used, success, and the
    cells that still read wrong."""
    return (("row", cfg.rram_row_bits), ("attempts", cfg.attempt_bits), ("ok", 1), ("fail_mask", cfg.cells_per_row))


# --- performance counters --------------------------------------------------------------------------

# index -> name: chip-wide first, then per tile at TILE_COUNTER_BASE + tile * TILE_COUNTER_STRIDE + k
# (tile = y * mesh_x + x)
COUNTER_NAMES = ["cycles", "instructions", "noc_flits", "noc_flit_hops", "gbuf_read_bits",
                 "gbuf_write_bits", "ctrl_tx_stall", "barrier_wait", "feed_stall"]
TILE_COUNTER_NAMES = ["busy", "macs", "mvms", "ibuf_write_bits", "ibuf_read_bits", "acc_read_bits",
                      "acc_write_bits", "rram_pulses", "rram_verify_reads", "tx_stall", "macro_stall",
                      "credit_stall", "rx_overlap"]
TILE_COUNTER_BASE = 16
TILE_COUNTER_STRIDE = 16


def counter_index(name: str, tile: int | None = None) -> int:
    if tile is None:
        return COUNTER_NAMES.index(name)
    return TILE_COUNTER_BASE + tile * TILE_COUNTER_STRIDE + TILE_COUNTER_NAMES.index(name)


def counter_name(index: int) -> str | None:
    """``name`` or ``name@tile`` of a counter index, None for an unused index."""
    if index < TILE_COUNTER_BASE:
        return COUNTER_NAMES[index] if index < len(COUNTER_NAMES) else None
    t, k = divmod(index - TILE_COUNTER_BASE, TILE_COUNTER_STRIDE)
    return f"{TILE_COUNTER_NAMES[k]}@{t}" if k < len(TILE_COUNTER_NAMES) else None


# --- vectors ---------------------------------------------------------------------------------------

def pack_vector(values, bits: int, width: int) -> list[int]:
    """``values`` (signed) as words of ``width`` bits, ``width // bits`` per word, element 0 lowest."""
    per = width // bits
    mask = (1 << bits) - 1
    vals = [int(v) & mask for v in values]
    words = []
    for i in range(0, len(vals), per):
        w = 0
        for k, v in enumerate(vals[i:i + per]):
            w |= v << (k * bits)
        words.append(w)
    return words


def unpack_vector(words, n: int, bits: int, width: int) -> np.ndarray:
    """The ``n`` signed elements packed in ``words``."""
    per = width // bits
    nw = -(-n // per)
    if width <= 64 and bits <= 32 and len(words) >= nw:
        u = ((np.array([int(w) for w in words[:nw]], dtype=np.uint64)[:, None]
              >> (np.arange(per, dtype=np.uint64) * np.uint64(bits))) & np.uint64((1 << bits) - 1))
        u = u.reshape(-1)[:n].astype(np.int64)
        return np.where(u >> (bits - 1) != 0, u - (1 << bits), u)
    out = np.zeros(n, dtype=np.int64)
    for i in range(n):
        v = (int(words[i // per]) >> ((i % per) * bits)) & ((1 << bits) - 1)
        out[i] = v - (1 << bits) if v >> (bits - 1) else v
    return out


def pack_lanes(values, bits: int) -> int:
    """``values`` (signed or unsigned) as one integer of ``bits``-wide lanes, element 0 lowest
    (a port of an array layout, such as the macro's ``x`` and ``y``)."""
    out, mask = 0, (1 << bits) - 1
    for i, v in enumerate(values):
        out |= (int(v) & mask) << (i * bits)
    return out


def unpack_lanes(word: int, bits: int, count: int) -> np.ndarray:
    """``count`` signed ``bits``-wide lanes of one integer."""
    return unpack_vector([word], count, bits, bits * count)
