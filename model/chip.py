"""The whole chip: its state, its packets, and its functional (bit-exact) model.

This is the specification of the chip core (rtl/tile.py, rtl/controller.py,
rtl/chip.py) and of docs/isa.md. The cycle-exact model is
:mod:`rramcim.model.chip_cycle`; both share what is here.

The chip is a mesh of tiles (:mod:`rramcim.model.noc`) and a controller at
the mesh's controller node. A program (64-bit instructions,
:mod:`rramcim.model.isa`) in the controller's instruction memory moves vectors
between the global buffer and the tiles as packets, and sends the tiles
commands; the tiles work on their own, in the order their packets arrive.

Packets (the header's ``type`` field)
-------------------------------------
To a tile (from the controller, or ``PSUM`` from another tile); the first
payload word is an argument word, except for ``CMD``:

==========  =========================================  =====================
type        argument word                              then
==========  =========================================  =====================
``ACT``     input-buffer slot [11:0]                   ``words_x`` words
``WROW``    RRAM row [15:0], instr. address [31:16]   ``words_w`` words
``BIAS``    0                                          ``words_a`` words
``PSUM``    accumulator slot [11:0]                    ``words_a`` words
``PSUM_T``  accumulator slot [11:0]                    ``words_a`` words
``CMD``     (none: the instruction itself, low word first, ``cmd_words`` words)
==========  =========================================  =====================

``PSUM_T`` is a partial sum from another tile (``psum``): the receiving tile
answers each one with an ``ACK`` once it is added, and the controller counts
them as outstanding, so a ``barrier`` after a ``psum`` waits until every
partial sum has landed.

To the controller: ``RESULT`` (argument: global-buffer address [19:0], then
the vector's words), ``ACK`` (no payload: the answer to a ``sync``) and
``ERR`` (argument: instruction address [15:0], row [27:16]: a row that failed
write-verify).

Vectors in words
----------------
A vector of ``b``-bit elements is packed ``W // b`` elements per
``flit_width``-bit word, element ``i`` in word ``i // (W // b)`` at bit
``(i % (W // b)) * b``, two's complement (:func:`pack_vector`). Input vectors
have ``rows`` elements of ``xbits``; weight rows ``cols`` of ``wbits``;
accumulator vectors ``cols`` of ``acc_bits``; post-processed outputs ``cols``
of ``xbits``. In the global buffer vector ``v`` of an instruction starts at
``gaddr + v * words``.

Post-processing (``outq``), per column, exact: ``a = wrap(acc + bias)`` (to
``acc_bits``, two's complement); ``a`` if ``shift == 0`` else
``floor((a + 2**(shift-1)) / 2**shift)``; clamp to the ``xbits`` range; ReLU
if asked. With ``rq=1`` (chips with ``requant``): the tile's per-column requant
vector (``ldrq``) instead, onnxruntime's float32 requantization computed exactly
(:mod:`rramcim.model.requant`).

Pure numpy and Python: no Amaranth or cocotb here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .config import Config
from .encoding import LOAD_COUNT, ErrorCode, gbuf_words_of, pack_vector, unpack_vector
from .isa import COUNT_MAX, Instr, Op, decode
from .macro import FaultMap, MacroState, wrap_signed
from .requant import requant, rq_unpack

__all__ = ["ChipError", "ChipState", "TileState", "post_process", "check_instr", "FunctionalChip", "tile_limits",
           "extent", "BANK_FIELDS", "STREAM_OPS", "REQUANT_OPS", "REQUANT_FIELDS"]


@dataclass
class ChipError:
    """The error register."""

    code: int
    pc: int
    tile: tuple = (0, 0)     # RRAM_VERIFY: the tile
    row: int = 0             # RRAM_VERIFY: the row

    def __str__(self):
        s = f"error {self.code} ({ErrorCode.NAMES.get(self.code, '?')}) at instruction {self.pc}"
        if self.code == ErrorCode.RRAM_VERIFY:
            s += f", tile {self.tile} row {self.row}"
        return s


def post_process(acc: np.ndarray, bias: np.ndarray, shift: int, relu: int, cfg: Config,
                 rq: np.ndarray | None = None) -> np.ndarray:
    """``outq``'s per-column arithmetic, exact: with ``rq`` (the tile's requant vector, ``[2, cols]``
    as ``ldrq`` loads it) the requant unit (:func:`rramcim.model.requant.requant`), else the
    rounding shift, clamp and ReLU."""
    a = wrap_signed(np.asarray(acc, dtype=np.int64) + np.asarray(bias, dtype=np.int64), cfg.acc_bits)
    if rq is not None:
        p = rq_unpack(rq[0], rq[1], cfg.xbits)
        return requant(np.asarray(a, dtype=np.int64), p["m"], p["s"], p["zp"], p["lo"], p["hi"], p["even"] == 1)
    a = np.asarray(a, dtype=object)
    if shift:
        a = np.array([(int(v) + (1 << (shift - 1))) >> shift for v in a], dtype=object)
    lo, hi = -(1 << (cfg.xbits - 1)), (1 << (cfg.xbits - 1)) - 1
    y = np.array([min(max(int(v), lo), hi) for v in a], dtype=np.int64)
    if relu:
        y = np.maximum(y, 0)
    return y


STREAM_OPS = (Op.LDSEQ, Op.CHAN, Op.FEED)
"""Instructions a chip without ``streams`` does not have."""
REQUANT_OPS = (Op.LDRQ,)
"""Instructions a chip without ``requant`` does not have."""
REQUANT_FIELDS = ("rq",)
"""Fields a chip without ``requant`` does not have: unused fields there, which must be zero."""
BANK_FIELDS = ("bank", "reduce")
"""Fields a chip of one bank (``banks = 1``) does not have: there they are unused fields, which must be zero."""


def check_instr(cfg: Config, word: int) -> tuple[int, Instr | None]:
    """``(error code, decoded instruction)`` for the word the controller fetched."""
    ins = decode(word)
    if ins is None:
        return ErrorCode.ILLEGAL_OPCODE, None
    if not cfg.streams and ins.op in STREAM_OPS or not cfg.has_requant and ins.op in REQUANT_OPS:
        return ErrorCode.ILLEGAL_OPCODE, None
    o = ins.ops
    if not cfg.has_requant and any(o.get(f) for f in REQUANT_FIELDS):
        return ErrorCode.ILLEGAL_OPCODE, None
    if cfg.banks == 1 and any(o.get(f) for f in BANK_FIELDS):
        return ErrorCode.ILLEGAL_OPCODE, None
    if "tx" in o and not (o["tx"] < cfg.mesh_x and o["ty"] < cfg.mesh_y):
        return ErrorCode.BAD_TILE, ins
    if "dx" in o and not (o["dx"] < cfg.mesh_x and o["dy"] < cfg.mesh_y):
        return ErrorCode.BAD_TILE, ins
    if "dx" in o and (o["dx"], o["dy"]) == (o["tx"], o["ty"]):
        # a tile that sends to itself cannot receive while it sends: it would deadlock
        return ErrorCode.BAD_TILE, ins
    words = gbuf_words_of(cfg, ins.op)
    if words:
        n = LOAD_COUNT.get(ins.op, o.get("count", 1))
        if o["gaddr"] + n * words > cfg.gbuf_words:
            return ErrorCode.BAD_GBUF, ins
    if "count" in o and o["count"] == 0:
        return ErrorCode.BAD_TILE_ADDR, ins
    n = o.get("count", 1)
    for name, bound, ext in tile_limits(cfg).get(ins.name, []):
        if o[name] + extent(ext, n, o.get("reduce", 0)) > bound:
            return ErrorCode.BAD_TILE_ADDR, ins
    if ins.op == Op.CHAN and not (o["c"] < cfg.feed_channels and 1 <= o["words"] <= cfg.words_x
                                  and 1 <= o["credits"] <= cfg.tile_ibuf_depth):
        return ErrorCode.BAD_TILE_ADDR, ins
    return ErrorCode.NONE, ins


def tile_limits(cfg) -> dict:
    """Instruction -> ``(field, bound, extent)``: ``field + extent`` must not pass ``bound`` (else
    ``BAD_TILE_ADDR``). ``extent`` is ``"count"`` (the instruction's count), ``1``, or ``"reduce"`` /
    ``"plain"`` (the count when the ``reduce`` flag is 1 / 0, else 1): an ``mvm`` with ``reduce`` steps
    through banks into one accumulator slot, without it through slots with one bank. The RTL's
    controller checks the same table (rtl/controller.py)."""
    acc, ibuf, rows, banks = cfg.tile_acc_depth, cfg.tile_ibuf_depth, cfg.rows, cfg.banks
    if banks == 1:          # bank and reduce are zero (check_instr): the checks of a chip without banks
        bank = {"ldw": [], "mvm": [("b", acc, "count")], "read": []}
    else:
        bank = {"ldw": [("bank", banks, 1)], "mvm": [("b", acc, "plain"), ("bank", banks, "reduce")],
                "read": [("bank", banks, 1)]}
    return {"ldact": [("slot", ibuf, "count")], "ldw": [("row", rows, "count")] + bank["ldw"],
            "ldpsum": [("slot", acc, "count")],
            "mvm": [("a", ibuf, "count")] + bank["mvm"],
            "read": [("row", rows, 1), ("b", acc, 1)] + bank["read"],
            "out": [("b", acc, "count")], "outq": [("b", acc, "count")],
            "psum": [("b", acc, "count"), ("d", acc, "count")]}


def extent(ext, n: int, reduce: int) -> int:
    """The extent :func:`tile_limits` means for count ``n`` and reduce flag ``reduce``."""
    if ext == "count":
        return n
    if ext == 1:
        return 1
    return n if bool(reduce) == (ext == "reduce") else 1


assert COUNT_MAX < 256


class TileState:
    """A tile's data: the macro (non-volatile), input buffer, accumulators, bias.

    Buffers power up as zero and keep their content across a reset (they are
    memories; only control state is reset).
    """

    def __init__(self, cfg: Config, faults: FaultMap | None = None):
        self.cfg = cfg
        self.macro = MacroState(cfg, faults)
        self.ibuf = np.zeros((cfg.tile_ibuf_depth, cfg.rows), dtype=np.int64)
        self.acc = np.zeros((cfg.tile_acc_depth, cfg.cols), dtype=np.int64)
        self.bias = np.zeros(cfg.cols, dtype=np.int64)
        self.rq = np.zeros((2, cfg.cols), dtype=np.int64)     # the requant vector's two halves (ldrq)

    def onehot(self, row: int) -> np.ndarray:
        x = np.zeros(self.cfg.rows, dtype=np.int64)
        x[row] = 1
        return x

    def accumulate(self, slot: int, vec, add: bool = True):
        base = self.acc[slot] if add else 0
        self.acc[slot] = wrap_signed(np.asarray(base, dtype=np.int64) + np.asarray(vec, dtype=np.int64),
                                     self.cfg.acc_bits)

    def out_vector(self, slot: int, op: int, ops: dict) -> list[int]:
        """The words a tile sends for accumulator ``slot`` under ``out``/``outq``/``psum``."""
        cfg = self.cfg
        if op == Op.OUTQ:
            rq = self.rq if cfg.has_requant and ops.get("rq") else None
            return pack_vector(post_process(self.acc[slot], self.bias, ops["shift"], ops["relu"], cfg, rq),
                               cfg.xbits, cfg.flit_width)
        v = self.acc[slot]
        if op == Op.OUT and ops.get("bias"):
            v = wrap_signed(v + self.bias, cfg.acc_bits)
        return pack_vector(v, cfg.acc_bits, cfg.flit_width)


@dataclass
class ChipState:
    """Everything a run reads and leaves behind: the controller's memories and every tile."""

    cfg: Config
    faults: dict = field(default_factory=dict)      # (x, y) -> FaultMap

    def __post_init__(self):
        cfg = self.cfg
        self.imem = [0] * cfg.imem_depth
        self.gbuf = [0] * cfg.gbuf_words
        self.tiles = {(x, y): TileState(cfg, self.faults.get((x, y)))
                      for y in range(cfg.mesh_y) for x in range(cfg.mesh_x)}

    def load_program(self, words) -> ChipError | None:
        """Write the instruction memory from address 0, as the host streams it in: the words
        that fit are written; a word past the end is an error (its address is the error's pc)."""
        words = [int(w) for w in words]
        n = min(len(words), self.cfg.imem_depth)
        self.imem[:n] = words[:n]
        if len(words) > self.cfg.imem_depth:
            return ChipError(ErrorCode.IMEM_OVERFLOW, self.cfg.imem_depth)
        return None

    def write_gbuf(self, addr: int, words):
        words = [int(w) for w in words]
        if addr < 0 or addr + len(words) > self.cfg.gbuf_words:
            raise ValueError(f"global buffer: words {addr}..{addr + len(words) - 1} outside 0..{self.cfg.gbuf_words - 1}")
        mask = (1 << self.cfg.flit_width) - 1
        for i, w in enumerate(words):
            if not 0 <= w <= mask:
                raise ValueError(f"global buffer word {addr + i}: {w:#x} does not fit {self.cfg.flit_width} bits")
            self.gbuf[addr + i] = w


class FunctionalChip:
    """The program's meaning, instruction by instruction, in order.

    A correct program (one that ``sync``s and ``barrier``s before it uses a
    result, see docs/isa.md) leaves the same global buffer, tile state and
    error code on the cycle-exact model and on the RTL. Races the program
    leaves open are resolved here in program order.
    """

    def __init__(self, state: ChipState):
        self.state, self.cfg = state, state.cfg

    def run(self, max_instructions: int = 10_000_000) -> tuple[int, ChipError | None]:
        """Execute from address 0. Returns (instructions executed, error or None)."""
        st, cfg = self.state, self.cfg
        pc = 0
        for n in range(max_instructions):
            if pc >= cfg.imem_depth:
                return n, ChipError(ErrorCode.IMEM_OVERFLOW, pc)
            code, ins = check_instr(cfg, st.imem[pc])
            if code:
                return n, ChipError(code, pc)
            if ins.op == Op.HALT:
                return n + 1, None
            err = self._execute(ins, pc)
            if err is not None:
                return n + 1, err
            pc += 1
        raise RuntimeError(f"functional model: no halt within {max_instructions} instructions")

    def _execute(self, ins: Instr, pc: int) -> ChipError | None:
        st, cfg = self.state, self.cfg
        o, op = ins.ops, ins.op
        W = cfg.flit_width
        tile = st.tiles.get((o.get("tx"), o.get("ty")))
        n = o.get("count", 1)
        if op == Op.LDACT:
            for v in range(n):
                a = o["gaddr"] + v * cfg.words_x
                tile.ibuf[o["slot"] + v] = unpack_vector(st.gbuf[a:a + cfg.words_x], cfg.rows, cfg.xbits, W)
        elif op == Op.LDW:
            row0 = o["bank"] * cfg.rows + o["row"]          # the RRAM row across the banks
            for v in range(n):
                a = o["gaddr"] + v * cfg.words_w
                res = tile.macro.program_row(row0 + v,
                                             unpack_vector(st.gbuf[a:a + cfg.words_w], cfg.cols, cfg.wbits, W))
                if not res.ok:
                    return ChipError(ErrorCode.RRAM_VERIFY, pc, ins.tile, row0 + v)
        elif op == Op.LDBIAS:
            tile.bias[:] = unpack_vector(st.gbuf[o["gaddr"]:o["gaddr"] + cfg.words_a], cfg.cols, cfg.acc_bits, W)
        elif op == Op.LDRQ:
            for v in range(2):
                a = o["gaddr"] + v * cfg.words_a
                tile.rq[v] = unpack_vector(st.gbuf[a:a + cfg.words_a], cfg.cols, cfg.acc_bits, W)
        elif op == Op.LDPSUM:
            for v in range(n):
                a = o["gaddr"] + v * cfg.words_a
                tile.accumulate(o["slot"] + v, unpack_vector(st.gbuf[a:a + cfg.words_a], cfg.cols, cfg.acc_bits, W))
        elif op == Op.MVM:
            red = o["reduce"]
            for v in range(n):
                y = tile.macro.mvm(tile.ibuf[o["a"] + v], o["bank"] + v * red)
                tile.accumulate(o["b"] + v * (1 - red), y, add=bool(o["acc"]) or (red and v > 0))
        elif op == Op.READ:
            tile.accumulate(o["b"], tile.macro.mvm(tile.onehot(o["row"]), o["bank"]), add=False)
        elif op in (Op.OUT, Op.OUTQ):
            words = cfg.words_a if op == Op.OUT else cfg.words_q
            for v in range(n):
                st.gbuf[o["gaddr"] + v * words:o["gaddr"] + (v + 1) * words] = tile.out_vector(o["b"] + v, op, o)
        elif op == Op.PSUM:
            dest = st.tiles[(o["dx"], o["dy"])]
            for v in range(n):
                dest.accumulate(o["d"] + v, tile.acc[o["b"] + v])
        # nop, sync, barrier: nothing to compute
        return None
