"""The chip configuration: one frozen dataclass read by every part of rramcim.

The RTL generators, the golden models, the test benches and the CLI all take a
:class:`Config`. Widths that follow from it (address bits, popcount widths) are
derived here once, never typed twice.

A configuration is either a named preset (:data:`PRESETS`) or a TOML/JSON file
whose keys are the lower-case field names; a file overrides ``default`` field
by field and any unknown key is an error that names it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

from .encoding import (ERR_ARG, FEED_CHANNELS, GADDR_BITS, IMEM_ADDR_BITS, LENGTH_BITS, RESULT_ARG, RRAM_ROW_BITS, SEQ_DESC,
                       SLOT_ARG, SLOT_BITS, WROW_ARG,
                       fields_width, header_bits)
from .isa import INSTR_BITS, TILE_FIELDS

__all__ = ["Config", "ConfigError", "PRESETS", "RANGES", "load_config", "model_memory_bytes", "model_memory_parts",
           "machine_memory_bytes", "check_memory"]


class ConfigError(ValueError):
    """A configuration that cannot be built; the message names the field or file."""


def _ceil_log2(n: int) -> int:
    return max(0, (n - 1).bit_length())


NAME_MAX = 64
"""Longest config name (it names build directories and reports)."""

RANGES: dict[str, tuple[int, int, str]] = {
    "mesh_x": (1, 1 << TILE_FIELDS[0].width, "the ISA's tile x field"),
    "mesh_y": (1, 1 << TILE_FIELDS[1].width, "the ISA's tile y field"),
    "rows": (1, 1 << SLOT_BITS, "a row in an argument word"),
    "cols": (1, 1 << SLOT_BITS, "a column in an argument word"),
    "wbits": (2, 16, "a signed weight of 2 to 16 bits"),
    "xbits": (2, 16, "a signed activation of 2 to 16 bits"),
    "par": (1, 16, "input bit-planes a cycle, a divisor of xbits"),
    "acc_bits": (8, 64, "the model computes in int64"),
    "macro_out_depth": (1, 256, "result slots of the macro's output FIFO"),
    "rram_write_cycles": (1, 65535, "a 16-bit pulse counter"),
    "rram_verify_cycles": (1, 65535, "a 16-bit verify counter"),
    "rram_max_attempts": (1, 255, "pulses one row write may take"),
    "flit_width": (1, 4096, "bits of a NoC flit"),
    "noc_fifo_depth": (1, 1024, "flits of a router input FIFO"),
    "imem_depth": (1, 1 << (IMEM_ADDR_BITS - 1), "ISA address fields"),
    "gbuf_words": (1, 1 << GADDR_BITS, "ISA address fields"),
    "tile_ibuf_depth": (1, 1 << SLOT_BITS, "ISA address fields"),
    "tile_acc_depth": (1, 1 << SLOT_BITS, "ISA address fields"),
    "banks": (1, 1024, "the ISA's 10-bit bank field"),
    "streams": (0, 1, "1: tiles run standing sequences and the controller feeds them; 0: a smaller chip without"),
    "requant": (0, 1, "1: post-processing has the per-column float32-exact requant (ldrq, rq); 0: shift only"),
}
"""The allowed values of every integer field, each with its reason. Within them, only the machine's memory
bounds a config (:func:`model_memory_bytes`, checked by :func:`load_config`)."""


def _show(v) -> str:
    """A value for a message, cut short (a file may hold anything, of any size)."""
    if isinstance(v, int) and not isinstance(v, bool) and v.bit_length() > 64:
        return f"a {v.bit_length()}-bit integer"
    text = repr(v) if not isinstance(v, int) else str(v)
    return text if len(text) <= 40 else text[:40] + "..."


@dataclass(frozen=True)
class Config:
    """Parameters of the whole chip.

    Parameters
    ----------
    name : str
        Label used in build directories, reports and test ids.
    mesh_x, mesh_y : int
        Tile array size (columns and rows of the 2D mesh).
    rows : int
        Crossbar rows: the length of the input vector of one MVM (K per tile).
    cols : int
        Crossbar columns: outputs of one MVM (N per tile). Each output column
        uses ``wbits`` physical 1-bit RRAM columns.
    wbits : int
        Bits of a signed weight.
    xbits : int
        Bits of a signed activation.
    par : int
        Input bit-planes applied per compute cycle; must divide ``xbits``.
    acc_bits : int
        Width of the MVM result and of the accumulators (wraps modulo 2**acc_bits).
    macro_out_depth : int
        Result slots of the macro's output FIFO; the macro accepts a new
        input vector only while a slot is free for its result.
    rram_write_cycles : int
        Cycles of one SET/RESET programming pulse on a row.
    rram_verify_cycles : int
        Cycles of the verify read that follows every pulse.
    rram_max_attempts : int
        Pulses tried on a row before the write is reported as failed
        (1 means no retry).
    flit_width : int
        Width in bits of a NoC flit payload. 256 by default, chosen by
        measurement (docs/architecture.md, "Dataflow"): the pipelined demo on
        the cycle-exact model reaches 19.8 % of peak with 64-bit flits, 35.1 %
        with 128 and 56.6 % with 256 (its limit 57.8 %): a tile that joins
        partial sums takes its input and a 32-column int32 partial sum (1 + 4
        flits at 256 bits) within the macro's 8 cycles.
    noc_fifo_depth : int
        Depth of each router input FIFO. 4 by default: with 256-bit flits
        that is the bytes of the 16 flits of 64 bits before, and credits keep
        the pipeline's packets from waiting in the network (the demo's
        inference cycles are the same at 4 and 16). ``large`` keeps 16: without
        virtual channels, 4 saturates a 4x4 mesh under uniform traffic at
        50 % of the bisection bound, 16 at 61 % (docs/noc.md).
    imem_depth : int
        Controller instruction-memory words (64-bit instructions), at most 65536.
    gbuf_words : int
        Controller global-buffer words (``flit_width`` bits each), at most 2**20
        (``default``: 1024 words of 256 bits, the 32 KiB of 4096 64-bit words before).
    tile_ibuf_depth : int
        Input vectors a tile's activation buffer holds.
    tile_acc_depth : int
        Accumulator vectors (``cols`` x ``acc_bits``) a tile holds.
    banks : int
        Weight sets (banks) of ``rows x cols`` each macro stores in RRAM; an ``mvm`` computes with the
        one it names (``bank``), sharing the adder trees and the shift-add among them (docs/macro.md,
        "Banks"). Bank ``k``'s row ``r`` is the macro's RRAM row ``k * rows + r`` (:attr:`rram_rows`).
        1 by default: the macro of before, its modules unchanged.
    streams : int
        1: tiles run standing sequences and the controller has feed channels
        (docs/isa.md, "Standing sequences"); 0: a smaller chip without them
        (``icebreaker``: its UP5K has no room), where ``ldseq``, ``chan`` and
        ``feed`` are illegal opcodes.
    requant : int
        1: every post-processing lane also has the per-column requantization of onnxruntime
        (``ldrq``, ``outq rq=1``, a sequence's ``rq``: :mod:`rramcim.model.requant`, docs/onnx.md);
        built where the config allows it (``acc_bits = 32``, as onnxruntime's int32 accumulators,
        and ``xbits <= 10``): :attr:`has_requant`. 0: the rounding shift only (the FPGA presets:
        their boards have no room for a 24x24 multiplier a lane). Without the unit ``ldrq`` is an
        illegal opcode and ``rq`` an unused field (which must be zero).
    """

    name: str = "default"
    mesh_x: int = 2
    mesh_y: int = 2
    rows: int = 32
    cols: int = 32
    wbits: int = 8
    xbits: int = 8
    par: int = 1
    acc_bits: int = 32
    macro_out_depth: int = 4
    rram_write_cycles: int = 4
    rram_verify_cycles: int = 2
    rram_max_attempts: int = 4
    flit_width: int = 256
    noc_fifo_depth: int = 4
    imem_depth: int = 1024
    gbuf_words: int = 1024
    tile_ibuf_depth: int = 16
    tile_acc_depth: int = 16
    banks: int = 1
    streams: int = 1
    requant: int = 1

    def __post_init__(self):
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "name":
                if (not isinstance(v, str) or not v or len(v) > NAME_MAX
                        or not v.replace("-", "").replace("_", "").isalnum()):
                    raise ConfigError(f"name: must be a non-empty word of at most {NAME_MAX} letters, digits, "
                                      f"'-' or '_', not {_show(v)}")
                continue
            if isinstance(v, bool) or not isinstance(v, int):
                raise ConfigError(f"{f.name}: must be an integer, not {_show(v)}")
            lo, hi, why = RANGES[f.name]
            if v <= 0 < lo:
                raise ConfigError(f"{f.name}: must be > 0 (allowed {lo}..{hi}), not {_show(v)}")
            if not lo <= v <= hi:
                raise ConfigError(f"{f.name}: must be in {lo}..{hi} ({why}), not {_show(v)}")
        if self.xbits % self.par:
            raise ConfigError(f"par: must divide xbits={self.xbits}, not {self.par}")
        header = header_bits(self)              # dest, src (x, y, ctrl), type, length (model/encoding.py)
        if self.flit_width < header:
            raise ConfigError(f"flit_width: a {self.mesh_x}x{self.mesh_y} mesh needs at least {header} bits "
                              f"for a packet header, not {self.flit_width}")
        for f in ("wbits", "xbits", "acc_bits"):
            if getattr(self, f) > self.flit_width:
                raise ConfigError(f"flit_width: must hold one {f}={getattr(self, f)} element, "
                                  f"not {self.flit_width}")
        arg_bits = max(fields_width(f) for f in (SLOT_ARG, WROW_ARG, ERR_ARG, RESULT_ARG))
        if self.flit_width < arg_bits:
            raise ConfigError(f"flit_width: at least {arg_bits} (packet argument words), not {self.flit_width}")
        if self.rram_rows > 1 << RRAM_ROW_BITS:
            raise ConfigError(f"banks: {self.banks} banks of {self.rows} rows are {self.rram_rows} RRAM rows, more "
                              f"than the {1 << RRAM_ROW_BITS} a packet's {RRAM_ROW_BITS}-bit row field addresses")
        for f, words in (("rows", self.words_x), ("cols", self.words_w), ("cols", self.words_a),
                         ("cols", self.words_q)):
            if words + 1 > (1 << LENGTH_BITS) - 1:        # an argument word and the vector in one packet
                raise ConfigError(f"{f}: a vector of {getattr(self, f)} elements needs {words} words of "
                                  f"flit_width={self.flit_width} bits, more than a packet's "
                                  f"{(1 << LENGTH_BITS) - 2}")

    # Derived quantities -------------------------------------------------

    @property
    def has_requant(self) -> bool:
        """The chip has the requant unit (``requant = 1`` on a config that allows it)."""
        return bool(self.requant) and self.acc_bits == 32 and self.xbits <= 10

    @property
    def steps(self) -> int:
        """Compute cycles of one MVM: ``xbits / par``."""
        return self.xbits // self.par

    @property
    def row_bits(self) -> int:
        """Width of a crossbar row address (at least 1)."""
        return max(1, _ceil_log2(self.rows))

    @property
    def rram_rows(self) -> int:
        """RRAM rows of a macro: ``banks * rows`` (bank ``k``'s row ``r`` is row ``k * rows + r``)."""
        return self.banks * self.rows

    @property
    def rram_row_bits(self) -> int:
        """Width of an RRAM row address across the banks (``row_bits`` when ``banks`` is 1)."""
        return max(1, _ceil_log2(self.rram_rows))

    @property
    def bank_bits(self) -> int:
        """Width of a bank number (at least 1)."""
        return max(1, _ceil_log2(self.banks))

    @property
    def weight_bytes(self) -> int:
        """Bytes of weights the chip holds resident: every bank of every tile, ``wbits`` a weight."""
        return self.tiles * self.rram_rows * self.cols * self.wbits // 8

    @property
    def attempt_bits(self) -> int:
        """Width of a write-verify attempt count (0..rram_max_attempts)."""
        return (self.rram_max_attempts).bit_length()

    @property
    def popcount_bits(self) -> int:
        """Width of one column popcount (0..rows)."""
        return (self.rows).bit_length()

    @property
    def cells_per_row(self) -> int:
        """Physical 1-bit RRAM cells in one crossbar row."""
        return self.cols * self.wbits

    @property
    def peak_macs_per_cycle(self) -> float:
        """Peak multiply-accumulates per cycle of one macro."""
        return self.rows * self.cols * self.par / self.xbits

    @property
    def tiles(self) -> int:
        return self.mesh_x * self.mesh_y

    # Packing of vectors into flit_width-bit words (model/chip.py): element i
    # of a vector of b-bit elements sits in word i // (W // b) at bit
    # (i % (W // b)) * b, two's complement.

    def vector_words(self, n: int, bits: int) -> int:
        """Words of a vector of ``n`` elements of ``bits`` bits."""
        return -(-n // (self.flit_width // bits))

    @property
    def words_x(self) -> int:
        """Words of one input vector (``rows`` x ``xbits``)."""
        return self.vector_words(self.rows, self.xbits)

    @property
    def words_w(self) -> int:
        """Words of one weight row (``cols`` x ``wbits``)."""
        return self.vector_words(self.cols, self.wbits)

    @property
    def words_a(self) -> int:
        """Words of one accumulator vector (``cols`` x ``acc_bits``)."""
        return self.vector_words(self.cols, self.acc_bits)

    @property
    def words_q(self) -> int:
        """Words of one post-processed output vector (``cols`` x ``xbits``)."""
        return self.vector_words(self.cols, self.xbits)

    @property
    def feed_channels(self) -> int:
        """The controller's feed channels: one a tile, at most ``FEED_CHANNELS`` (none without ``streams``)."""
        return min(FEED_CHANNELS, self.tiles) if self.streams else 0

    @property
    def seq_words(self) -> int:
        """Words of a standing sequence's descriptor (``SEQ_DESC``)."""
        return -(-fields_width(SEQ_DESC) // self.flit_width)

    @property
    def cmd_words(self) -> int:
        """Words of one instruction sent as a tile command."""
        return -(-INSTR_BITS // self.flit_width)

    def replace(self, **changes) -> "Config":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    @property
    def model_memory_bytes(self) -> int:
        """An estimate of the golden model's memory for this config (:func:`model_memory_bytes`)."""
        return model_memory_bytes(self)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def key(self) -> str:
        """A short stable string that identifies every field (for build caches)."""
        return json.dumps(self.as_dict(), sort_keys=True)


PRESETS: dict[str, Config] = {
    "tiny": Config(name="tiny", mesh_x=2, mesh_y=2, rows=8, cols=8, flit_width=32,
                   noc_fifo_depth=4, imem_depth=256, gbuf_words=1024, tile_ibuf_depth=8, tile_acc_depth=8),
    "default": Config(),
    "large": Config(name="large", mesh_x=4, mesh_y=4, rows=128, cols=128, flit_width=128, noc_fifo_depth=16,
                    imem_depth=4096, gbuf_words=65536, tile_ibuf_depth=64, tile_acc_depth=64),
    # The memory wall (docs/energy.md, "The memory wall"): 4 MiB of int8 weights resident in 1024 banks of
    # 32x32 in each of 2x2 tiles, so that a multi-MB network runs at batch 1 with no weight leaving its macro.
    "memwall": Config(name="memwall", mesh_x=2, mesh_y=2, rows=32, cols=32, banks=1024, imem_depth=8192,
                      gbuf_words=4096, tile_ibuf_depth=32, tile_acc_depth=32),
    # FPGA boards (docs/fpga.md, `rramcim fpga build --board NAME`).
    # ULX3S (ECP5-85F): a 2x2 mesh of 16x8 int8 macros (K = 16, N = 8 a tile) with 32-bit flits (4
    # post-processing lanes a tile, not 8); it meets its 50 MHz target. 16x16 macros take 109 % of the LUTs.
    # Standing sequences are off (streams=0) until a board build with them is measured to fit and meet timing.
    "ulx3s": Config(name="ulx3s", rows=16, cols=8, flit_width=32, noc_fifo_depth=4, imem_depth=256,
                    gbuf_words=256, tile_ibuf_depth=8, tile_acc_depth=8, streams=0, requant=0),
    # iCEBreaker (iCE40 UP5K): the smallest config that still is the chip and runs int8 GEMMs: one tile of
    # a 2x2 int8 macro (K = 2, N = 2), 32-bit accumulators, one input and one accumulator slot, one-entry
    # router FIFOs, 16-word instruction memory and global buffer; 98.5 % of the UP5K's logic cells
    # (docs/fpga.md).
    "icebreaker": Config(name="icebreaker", mesh_x=1, mesh_y=1, rows=2, cols=2, flit_width=32,
                         noc_fifo_depth=1, macro_out_depth=1, imem_depth=16, gbuf_words=16, tile_ibuf_depth=1,
                         tile_acc_depth=1, streams=0, requant=0),
}


# -- the golden model's memory -----------------------------------------------------------------------------

def _py_int_bytes(bits: int) -> int:
    """CPython's size of a non-negative int of ``bits`` bits (30-bit digits), plus the list slot holding it."""
    return 8 + 24 + 4 * max(1, -(-bits // 30))


def model_memory_parts(cfg: Config) -> dict[str, tuple[int, tuple[str, ...]]]:
    """The golden model's memory for ``cfg`` by part: ``{part: (bytes, the fields it grows with)}``.

    Derived from what the model allocates (the sizes are numpy's item sizes and CPython's object sizes):

    - per tile (:class:`~rramcim.model.macro.MacroState`, :class:`~rramcim.model.chip.TileState`,
      :class:`~rramcim.model.macro.MacroCore`): the cells, ``uint8 [rows, cols*wbits]``; the two fault
      masks, ``bool`` of the same shape (allocated even without faults); the effective weights the
      cycle model keeps between row writes, ``int64 [rows, cols]`` a bank; the write counters, ``int64 [rows]``;
      (``rows`` here is every bank's: ``rram_rows``);
      input buffer, accumulators and bias, ``int64``;
    - once, for the macro being read or written: ``cells_to_weights`` and ``mvm_bitplane`` turn the
      cells into ``int64`` and shift them (two ``int64 [rows, cols*wbits]`` arrays) after
      ``effective_cells`` made three byte arrays of that shape: 19 bytes a cell at the peak;
    - the controller: ``imem_depth`` Python ints with their decoded and checked instructions (about
      700 bytes a word) and ``gbuf_words`` Python ints of ``flit_width`` bits;
    - the NoC: at most ``5 * (noc_fifo_depth + 2)`` flit objects (about 100 bytes and a payload int)
      a router.

    One chip state: the ``model`` backend; an RTL backend checks against a second one. The Python
    interpreter, numpy and the compiled program (which grow with the workload, not with the config) are
    not counted. Measured against tracemalloc's peak on configs from ``tiny`` to 16 tiles of 1024x1024
    (tests/model/test_config.py), it is within a factor of 2.
    """
    tiles, cells = cfg.tiles, cfg.rram_rows * cfg.cells_per_row
    banks = ("banks",) if cfg.banks > 1 else ()         # named only where it counts
    macro = ("mesh_x", "mesh_y", "rows", *banks, "cols", "wbits")
    return {
        "RRAM cells and fault maps": (tiles * 3 * cells, macro),
        "effective weights": (tiles * 8 * cfg.rram_rows * cfg.cols, ("mesh_x", "mesh_y", "rows", *banks, "cols")),
        "a macro read or written": (19 * cfg.rows * cfg.cells_per_row, ("rows", "cols", "wbits")),
        "tile buffers": (tiles * 8 * (cfg.rows * (cfg.tile_ibuf_depth + 1) + cfg.cols * (cfg.tile_acc_depth + 1)),
                         ("mesh_x", "mesh_y", "tile_ibuf_depth", "rows", "tile_acc_depth", "cols")),
        "instruction memory": (cfg.imem_depth * 700, ("imem_depth",)),
        "global buffer": (cfg.gbuf_words * _py_int_bytes(cfg.flit_width), ("gbuf_words", "flit_width")),
        "NoC": (tiles * 5 * (cfg.noc_fifo_depth + 2) * (100 + _py_int_bytes(cfg.flit_width)),
                ("mesh_x", "mesh_y", "noc_fifo_depth", "flit_width")),
    }


def model_memory_bytes(cfg: Config) -> int:
    """An estimate of the golden model's memory for ``cfg``, in bytes (:func:`model_memory_parts`)."""
    return sum(b for b, _ in model_memory_parts(cfg).values())


def machine_memory_bytes() -> tuple[int | None, str]:
    """The memory a config's model may use on this machine: ``(bytes or None if unknown, what it is)``.

    The physical memory (``SC_PHYS_PAGES * SC_PAGE_SIZE``), or a smaller cgroup limit (a container's).
    Not ``MemAvailable``: whether a config is valid should not change with what else runs at the moment;
    a config that fits physical memory but not the free memory of the moment is a busy machine, not a
    bad config.
    """
    best, what = None, "unknown"
    try:
        best, what = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), "physical memory"
    except (AttributeError, ValueError, OSError):
        pass
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and (best is None or int(text) < best):
            best, what = int(text), "cgroup memory limit"
    return best, what


def _gib(n: int) -> str:
    return f"{n / (1 << 30):.3g} GiB"


def check_memory(cfg: Config, limit: tuple[int | None, str] | None = None) -> None:
    """Raise :class:`ConfigError` if the model of ``cfg`` needs more memory than ``limit``
    (:func:`machine_memory_bytes` by default), naming the fields of the parts that make it big."""
    limit_bytes, what = machine_memory_bytes() if limit is None else limit
    need = model_memory_bytes(cfg)
    if limit_bytes is None or need <= limit_bytes:
        return
    parts = sorted(model_memory_parts(cfg).items(), key=lambda kv: -kv[1][0])
    names, big, seen = [], [], 0
    for part, (b, flds) in parts:
        big.append(f"{part} {_gib(b)}")
        names += [f for f in flds if f not in names]
        seen += b
        if seen * 2 >= need:
            break
    raise ConfigError(f"{', '.join(names)}: the golden model of config '{cfg.name}' ({cfg.mesh_x}x{cfg.mesh_y} "
                      f"tiles of {cfg.rows}x{cfg.cols} x {cfg.wbits}-bit{f' x {cfg.banks} banks' if cfg.banks > 1 else ''}) needs about {_gib(need)} "
                      f"({'; '.join(big)}), more than this machine's {what} of {_gib(limit_bytes)}")


# -- files ----------------------------------------------------------------------------------------------------

CONFIG_FILE_MAX_BYTES = 1 << 20
"""Largest config file read (a config has 19 fields)."""


def _check_file_keys(data: dict, source: str) -> None:
    known = {f.name for f in fields(Config)}
    for k in data:
        if k not in known:
            raise ConfigError(f"{source}: unknown key {_show(k)} (known keys: {', '.join(sorted(known))})")


def _default_name(path: Path) -> str:
    name = re.sub(r"[^A-Za-z0-9_-]", "_", path.stem)[:NAME_MAX]
    return name or "file"


def load_config(spec: "str | Path | Config | None" = None, check_memory_limit: bool = True) -> Config:
    """Return the configuration named by ``spec``.

    ``spec`` is a :class:`Config` (returned as is), a preset name, or the path
    of a ``.toml`` or ``.json`` file whose keys override ``default``. Every problem is one
    :class:`ConfigError` line naming the field. A preset or file config whose golden model would
    need more than this machine's memory (:func:`check_memory`) is refused unless
    ``check_memory_limit`` is False (for work that never builds the model).
    """
    if spec is None:
        return PRESETS["default"]
    if isinstance(spec, Config):
        return spec
    text = str(spec)
    if text in PRESETS:
        cfg = PRESETS[text]
        if check_memory_limit:
            check_memory(cfg)
        return cfg
    cfg = _load_file(text)
    if check_memory_limit:
        try:
            check_memory(cfg)
        except ConfigError as e:
            raise ConfigError(f"config file {text!r}: {e}") from None
    return cfg


def _load_file(text: str) -> Config:
    path = Path(text)
    shown = repr(text)           # a path from the command line: never cut short
    if path.suffix.lower() not in (".toml", ".json"):
        if not path.exists():
            raise ConfigError(
                f"config {shown}: not a preset ({', '.join(PRESETS)}) nor an existing .toml/.json file")
        raise ConfigError(f"config {shown}: a config file must end in .toml or .json")
    if not path.is_file():
        raise ConfigError(f"config file {shown}: {'not a regular file' if path.exists() else 'no such file'}")
    try:
        with path.open("rb") as f:
            raw = f.read(CONFIG_FILE_MAX_BYTES + 1)
    except OSError as e:
        raise ConfigError(f"config file {shown}: cannot read it ({e.strerror or type(e).__name__})") from None
    if len(raw) > CONFIG_FILE_MAX_BYTES:
        raise ConfigError(f"config file {shown}: larger than the limit of {CONFIG_FILE_MAX_BYTES} bytes")
    try:
        if path.suffix.lower() == ".toml":
            data = tomllib.loads(raw.decode("utf-8"))
        else:
            data = json.loads(raw.decode("utf-8"))
    except RecursionError:
        raise ConfigError(f"config file {shown}: cannot parse: nested too deeply") from None
    except Exception as e:  # noqa: BLE001 - TOMLDecodeError, JSONDecodeError, UnicodeDecodeError, ValueError, ...
        why = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "integer string conversion" in why:        # Python's int() digit limit, not the user's concern
            why = "a number of more than 4300 digits"
        raise ConfigError(f"config file {shown}: cannot parse: {why if len(why) <= 160 else why[:160] + '...'}") \
            from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {shown}: must hold a table of field = value")
    _check_file_keys(data, f"config file {shown}")
    data.setdefault("name", _default_name(path))
    try:
        return dataclasses.replace(PRESETS["default"], **data)
    except ConfigError as e:
        raise ConfigError(f"config file {shown}: {e}") from None
    except Exception as e:  # noqa: BLE001 - one line whatever the dataclass machinery raises
        raise ConfigError(f"config file {shown}: {type(e).__name__}: {_show(str(e).strip())}") from None
