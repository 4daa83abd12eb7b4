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
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

from .encoding import (ERR_ARG, GADDR_BITS, IMEM_ADDR_BITS, LENGTH_BITS, RESULT_ARG, SLOT_ARG, SLOT_BITS, WROW_ARG,
                       fields_width, header_bits)
from .isa import INSTR_BITS, TILE_FIELDS

__all__ = ["Config", "ConfigError", "PRESETS", "load_config"]


class ConfigError(ValueError):
    """A configuration that cannot be built; the message names the field or file."""


def _ceil_log2(n: int) -> int:
    return max(0, (n - 1).bit_length())


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
        Width in bits of a NoC flit payload.
    noc_fifo_depth : int
        Depth of each router input FIFO. 16 by default: without virtual
        channels, 4 saturates a 4x4 mesh under uniform traffic at 50 % of the
        bisection bound, 16 at 61 % (docs/noc.md); ``tiny`` keeps 4.
    imem_depth : int
        Controller instruction-memory words (64-bit instructions), at most 65536.
    gbuf_words : int
        Controller global-buffer words (``flit_width`` bits each), at most 2**20.
    tile_ibuf_depth : int
        Input vectors a tile's activation buffer holds.
    tile_acc_depth : int
        Accumulator vectors (``cols`` x ``acc_bits``) a tile holds.
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
    flit_width: int = 64
    noc_fifo_depth: int = 16
    imem_depth: int = 1024
    gbuf_words: int = 4096
    tile_ibuf_depth: int = 16
    tile_acc_depth: int = 16

    def __post_init__(self):
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "name":
                if not isinstance(v, str) or not v or not v.replace("-", "").replace("_", "").isalnum():
                    raise ConfigError(f"name: must be a non-empty word of letters, digits, '-' or '_', not {v!r}")
                continue
            if isinstance(v, bool) or not isinstance(v, int):
                raise ConfigError(f"{f.name}: must be an integer, not {v!r}")
            if v <= 0:
                raise ConfigError(f"{f.name}: must be > 0, not {v}")
        for f in ("wbits", "xbits"):
            if getattr(self, f) < 2:
                raise ConfigError(f"{f}: a signed value needs at least 2 bits, not {getattr(self, f)}")
            if getattr(self, f) > 16:
                raise ConfigError(f"{f}: at most 16 bits are supported, not {getattr(self, f)}")
        if self.xbits % self.par:
            raise ConfigError(f"par: must divide xbits={self.xbits}, not {self.par}")
        if not 8 <= self.acc_bits <= 64:
            raise ConfigError(f"acc_bits: must be between 8 and 64, not {self.acc_bits}")
        if self.rows > 1 << SLOT_BITS or self.cols > 1 << SLOT_BITS:      # a row in an argument word
            field = "rows" if self.rows > 1 << SLOT_BITS else "cols"
            raise ConfigError(f"{field}: at most {1 << SLOT_BITS}, not {getattr(self, field)}")
        header = header_bits(self)              # dest, src (x, y, ctrl), type, length (model/encoding.py)
        if self.flit_width < header:
            raise ConfigError(f"flit_width: a {self.mesh_x}x{self.mesh_y} mesh needs at least {header} bits "
                              f"for a packet header, not {self.flit_width}")
        most = {"mesh_x": 1 << TILE_FIELDS[0].width, "mesh_y": 1 << TILE_FIELDS[1].width}  # the ISA's tile fields
        for field, lim in most.items():
            if getattr(self, field) > lim:
                raise ConfigError(f"{field}: at most {lim}, not {getattr(self, field)}")
        for f in ("wbits", "xbits", "acc_bits"):
            if getattr(self, f) > self.flit_width:
                raise ConfigError(f"flit_width: must hold one {f}={getattr(self, f)} element, "
                                  f"not {self.flit_width}")
        arg_bits = max(fields_width(f) for f in (SLOT_ARG, WROW_ARG, ERR_ARG, RESULT_ARG))
        if self.flit_width < arg_bits:
            raise ConfigError(f"flit_width: at least {arg_bits} (packet argument words), not {self.flit_width}")
        limits = {"imem_depth": 1 << (IMEM_ADDR_BITS - 1), "gbuf_words": 1 << GADDR_BITS,
                  "tile_ibuf_depth": 1 << SLOT_BITS, "tile_acc_depth": 1 << SLOT_BITS}
        for f, lim in limits.items():
            if getattr(self, f) > lim:
                raise ConfigError(f"{f}: at most {lim} (ISA address fields), not {getattr(self, f)}")
        for f, words in (("rows", self.words_x), ("cols", self.words_w), ("cols", self.words_a),
                         ("cols", self.words_q)):
            if words + 1 > (1 << LENGTH_BITS) - 1:        # an argument word and the vector in one packet
                raise ConfigError(f"{f}: a vector of {getattr(self, f)} elements needs {words} words of "
                                  f"flit_width={self.flit_width} bits, more than a packet's "
                                  f"{(1 << LENGTH_BITS) - 2}")

    # Derived quantities -------------------------------------------------

    @property
    def steps(self) -> int:
        """Compute cycles of one MVM: ``xbits / par``."""
        return self.xbits // self.par

    @property
    def row_bits(self) -> int:
        """Width of a crossbar row address (at least 1)."""
        return max(1, _ceil_log2(self.rows))

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
    def cmd_words(self) -> int:
        """Words of one instruction sent as a tile command."""
        return -(-INSTR_BITS // self.flit_width)

    def replace(self, **changes) -> "Config":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def key(self) -> str:
        """A short stable string that identifies every field (for build caches)."""
        return json.dumps(self.as_dict(), sort_keys=True)


PRESETS: dict[str, Config] = {
    "tiny": Config(name="tiny", mesh_x=2, mesh_y=2, rows=8, cols=8, flit_width=32,
                   noc_fifo_depth=4, imem_depth=256, gbuf_words=1024, tile_ibuf_depth=8, tile_acc_depth=8),
    "default": Config(),
    "large": Config(name="large", mesh_x=4, mesh_y=4, rows=128, cols=128, flit_width=128,
                    imem_depth=4096, gbuf_words=65536, tile_ibuf_depth=64, tile_acc_depth=64),
    # FPGA boards (docs/fpga.md, `rramcim fpga build --board NAME`).
    # ULX3S (ECP5-85F): a 2x2 mesh of 16x8 int8 macros (K = 16, N = 8 a tile) with 32-bit flits (4
    # post-processing lanes a tile, not 8); it meets its 50 MHz target. 16x16 macros take 109 % of the LUTs.
    "ulx3s": Config(name="ulx3s", rows=16, cols=8, flit_width=32, noc_fifo_depth=4, imem_depth=256,
                    gbuf_words=256, tile_ibuf_depth=8, tile_acc_depth=8),
    # iCEBreaker (iCE40 UP5K): the smallest config that still is the chip and runs int8 GEMMs: one tile of
    # a 2x2 int8 macro (K = 2, N = 2), 32-bit accumulators, one input and one accumulator slot, one-entry
    # router FIFOs, 16-word instruction memory and global buffer; 98.5 % of the UP5K's logic cells
    # (docs/fpga.md).
    "icebreaker": Config(name="icebreaker", mesh_x=1, mesh_y=1, rows=2, cols=2, flit_width=32,
                         noc_fifo_depth=1, macro_out_depth=1, imem_depth=16, gbuf_words=16, tile_ibuf_depth=1,
                         tile_acc_depth=1),
}


def _check_file_keys(data: dict, source: str) -> None:
    known = {f.name for f in fields(Config)}
    for k in data:
        if k not in known:
            raise ConfigError(f"{source}: unknown key {k!r} (known keys: {', '.join(sorted(known))})")


def load_config(spec: "str | Path | Config | None" = None) -> Config:
    """Return the configuration named by ``spec``.

    ``spec`` is a :class:`Config` (returned as is), a preset name, or the path
    of a ``.toml`` or ``.json`` file whose keys override ``default``.
    """
    if spec is None:
        return PRESETS["default"]
    if isinstance(spec, Config):
        return spec
    text = str(spec)
    if text in PRESETS:
        return PRESETS[text]
    path = Path(text)
    if path.suffix.lower() not in (".toml", ".json"):
        if not path.exists():
            raise ConfigError(
                f"config {text!r}: not a preset ({', '.join(PRESETS)}) nor an existing .toml/.json file")
        raise ConfigError(f"config {text!r}: a config file must end in .toml or .json")
    if not path.is_file():
        raise ConfigError(f"config file {text!r}: no such file")
    try:
        raw = path.read_bytes()
        if path.suffix.lower() == ".toml":
            data = tomllib.loads(raw.decode("utf-8"))
        else:
            data = json.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"config file {text!r}: cannot parse: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {text!r}: must hold a table of field = value")
    _check_file_keys(data, f"config file {text!r}")
    data.setdefault("name", path.stem.replace(".", "_"))
    try:
        return dataclasses.replace(PRESETS["default"], **data)
    except ConfigError as e:
        raise ConfigError(f"config file {text!r}: {e}") from None
