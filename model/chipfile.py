"""A kept chip: the non-volatile state of every macro, in a file (``--chip STATE.npz``).

RRAM keeps its cells and its per-row write counters without power (docs/macro.md); a run that
starts from the state the last one left needs to program only the rows whose wanted weights differ
from what they hold. This module is that state (:class:`KeptChip`), its file format, and the moves
between it and the model's :class:`~rramcim.model.chip.ChipState`. The RTL backends deposit the same
arrays into the simulated crossbars and read them back (sim/tb/top.py); the compiler takes
:attr:`KeptChip.rram` to leave out the rows that already hold their weights
(:func:`rramcim.model.compiler.compile_gemm`, ``rram=``).

File format (a ``.npz``, read with :class:`~rramcim.model.npfile.NpzArchive`; exactly these members)
-----------------------------------------------------------------------------------------------------
``format``        integer scalar, :data:`FORMAT` (1)
``config_hash``   string scalar: the SHA-256 (64 hex digits) of the config's canonical JSON
                  (:meth:`Config.key`, name included); rtl/top.py's ``CFG_HASH`` register holds its first
                  8 hex digits
``config_name``   string scalar: the config's name (for messages only; the hash decides)
``rram``          integers ``[mesh_y, mesh_x, banks * rows, cols]``: tile (x, y)'s RRAM row r (bank r // rows) holds weights
                  ``rram[y, x, r]``, each a signed ``wbits``-bit value (written as int8, or int16 for
                  ``wbits`` > 8; any integer dtype is read)
``write_counts``  integers ``[mesh_y, mesh_x, banks * rows]``: the row's write counter (programming pulses, each
                  attempt of a write-verify; 0 .. :data:`WRITE_COUNT_MAX`, the RTL counter's 32 bits)

A fresh chip (:meth:`KeptChip.fresh`) is all zeros: the power-on content of the cells and counters.
Faults are not part of the file yet (a fault map is given at elaboration, docs/macro.md).

Pure numpy and Python: no Amaranth or cocotb here.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import Config
from .macro import cells_to_weights, weights_to_cells
from .npfile import NpFileError, NpzArchive, one_line

__all__ = ["FORMAT", "FIELDS", "WRITE_COUNT_MAX", "ChipFileError", "KeptChip", "config_digest", "load_chip"]

FORMAT = 1
"""The version of the file format this module writes and reads."""
FIELDS = ("format", "config_hash", "config_name", "rram", "write_counts")
"""The members of a state file, all required, no others."""
WRITE_COUNT_MAX = (1 << 32) - 1
"""The largest write count: rtl/macro.py's per-row counters are ``WRITE_COUNT_BITS`` = 32 bits wide."""


class ChipFileError(ValueError):
    """A state file that cannot be used; the message (one line) names the file and the field."""


def config_digest(cfg: Config) -> str:
    """The SHA-256 of ``cfg``'s canonical JSON (:meth:`Config.key`), 64 hex digits."""
    return hashlib.sha256(cfg.key().encode()).hexdigest()


def _wrange(cfg: Config) -> tuple[int, int]:
    return -(1 << (cfg.wbits - 1)), (1 << (cfg.wbits - 1)) - 1


@dataclass
class KeptChip:
    """The non-volatile state of a chip of config ``cfg``.

    Members
    -------
    cfg : Config
    rram : int64 [mesh_y, mesh_x, rows, cols]
        The weights every row holds (as written: a stuck cell is not applied).
    write_counts : int64 [mesh_y, mesh_x, rows]
        Every row's write counter.
    """

    cfg: Config
    rram: np.ndarray
    write_counts: np.ndarray

    def __post_init__(self):
        cfg = self.cfg
        if not isinstance(cfg, Config):
            raise TypeError(f"cfg must be a Config, not {cfg!r}")
        self.rram = np.array(self.rram, dtype=np.int64)
        self.write_counts = np.array(self.write_counts, dtype=np.int64)
        shape = (cfg.mesh_y, cfg.mesh_x, cfg.rram_rows)
        for name, want in (("rram", shape + (cfg.cols,)), ("write_counts", shape)):
            if getattr(self, name).shape != want:
                raise ValueError(f"{name}: shape {getattr(self, name).shape}, expected {want}")
        lo, hi = _wrange(cfg)
        if self.rram.size and (self.rram.min() < lo or self.rram.max() > hi):
            raise ValueError(f"rram: weights outside the wbits={cfg.wbits} range [{lo}, {hi}]")
        if self.write_counts.size and (self.write_counts.min() < 0 or self.write_counts.max() > WRITE_COUNT_MAX):
            raise ValueError(f"write_counts: counts outside [0, {WRITE_COUNT_MAX}]")

    @classmethod
    def fresh(cls, cfg: Config) -> "KeptChip":
        """A chip as it powers up the first time: every cell and counter zero."""
        return cls(cfg, np.zeros((cfg.mesh_y, cfg.mesh_x, cfg.rram_rows, cfg.cols), np.int64),
                   np.zeros((cfg.mesh_y, cfg.mesh_x, cfg.rram_rows), np.int64))

    def copy(self) -> "KeptChip":
        return KeptChip(self.cfg, self.rram.copy(), self.write_counts.copy())

    def __eq__(self, other) -> bool:
        return (isinstance(other, KeptChip) and self.cfg == other.cfg and np.array_equal(self.rram, other.rram)
                and np.array_equal(self.write_counts, other.write_counts))

    # -- the model ------------------------------------------------------------------------------------------

    @classmethod
    def from_state(cls, state) -> "KeptChip":
        """The non-volatile part of a model :class:`~rramcim.model.chip.ChipState` (cells as written)."""
        cfg = state.cfg
        out = cls.fresh(cfg)
        for (x, y), t in state.tiles.items():
            out.rram[y, x] = cells_to_weights(t.macro.cells, cfg.wbits)
            out.write_counts[y, x] = t.macro.write_counts
        return out

    def apply(self, state) -> None:
        """Write the cells and counters into a model :class:`~rramcim.model.chip.ChipState` (same config)."""
        if state.cfg != self.cfg:
            raise ValueError(f"state: a chip of config {state.cfg.name!r}, the kept chip is {self.cfg.name!r}")
        for (x, y), t in state.tiles.items():
            t.macro.load(weights_to_cells(self.rram[y, x], self.cfg.wbits), self.write_counts[y, x])

    # -- the RTL ----------------------------------------------------------------------------------------------

    def cell_words(self) -> list:
        """Every row's cells as one integer (bit ``c*wbits + b`` = bit b of column c, as rtl/crossbar.py's
        ``cells_row{r}``): ``[y][x][r]``, plain ints (JSON for a test bench)."""
        packed = np.packbits(weights_to_cells(self.rram, self.cfg.wbits), axis=-1, bitorder="little")
        return [[[int.from_bytes(row.tobytes(), "little") for row in tile] for tile in ys] for ys in packed]

    @classmethod
    def from_cell_words(cls, cfg: Config, words, counts) -> "KeptChip":
        """The inverse of :meth:`cell_words`, with the counters ``[y][x][r]`` beside them."""
        cpr, nbytes = cfg.cells_per_row, -(-cfg.cells_per_row // 8)
        raw = b"".join(int(w).to_bytes(nbytes, "little") for ys in words for tile in ys for w in tile)
        bits = np.unpackbits(np.frombuffer(raw, np.uint8).reshape(-1, nbytes), axis=-1, bitorder="little")
        cells = bits[:, :cpr].reshape(cfg.mesh_y, cfg.mesh_x, cfg.rram_rows, cpr)
        return cls(cfg, cells_to_weights(cells, cfg.wbits), np.array(counts, dtype=np.int64))

    # -- the file ---------------------------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """The state file's bytes (module docstring), to write or to stage as an output."""
        cfg = self.cfg
        buf = io.BytesIO()
        np.savez(buf, format=np.array(FORMAT), config_hash=np.array(config_digest(cfg)),
                 config_name=np.array(cfg.name),
                 rram=self.rram.astype(np.int8 if cfg.wbits <= 8 else np.int16),
                 write_counts=self.write_counts.astype(np.uint32))
        return buf.getvalue()

    def save(self, path) -> None:
        Path(path).write_bytes(self.to_bytes())


def load_chip(path, cfg: Config, where: str | None = None) -> KeptChip:
    """Read and check a state file for ``cfg``; every problem is one :class:`ChipFileError` line naming the
    file (``where``, default ``path``) and the field. Names, then headers (dtype, shape), then data."""
    where = str(path) if where is None else where
    p = Path(path)
    if not p.is_file():
        raise ChipFileError(f"{where}: {'not a regular file' if p.exists() else 'no such file'}")
    try:
        with NpzArchive(p, where=where) as z:
            return _read(z, cfg, where)
    except ChipFileError:
        raise
    except NpFileError as e:
        raise ChipFileError(str(e)) from None
    except Exception as e:  # noqa: BLE001 - whatever else breaks while reading is one line
        raise ChipFileError(f"{where}: cannot read it ({one_line(e)})") from None


def _read(z: NpzArchive, cfg: Config, where: str) -> KeptChip:
    for f in FIELDS:
        if f not in z.fields:
            raise ChipFileError(f"{where}: {f} missing (a chip state file holds {', '.join(FIELDS)})")
    extra = [f for f in z.fields if f not in FIELDS]
    if extra:
        shown = extra[0] if len(extra[0]) <= 60 else extra[0][:60] + "..."
        raise ChipFileError(f"{where}: unexpected field {shown!r} (a chip state file holds {', '.join(FIELDS)})")

    def scalar(kind, what):
        def check(h):
            if h.dtype.kind not in kind:
                raise ChipFileError(f"{where}: {name}: dtype {h.dtype}, expected {what}")
            if h.ndim != 0:
                raise ChipFileError(f"{where}: {name}: shape {h.shape}, expected a scalar (0-d)")
        return check

    name = "format"
    fmt = int(z.read(name, check=scalar("iu", "an integer")))
    if fmt != FORMAT:
        raise ChipFileError(f"{where}: format: {fmt}, this rramcim reads format {FORMAT}")
    name = "config_hash"
    digest = str(z.read(name, check=scalar("U", "a string")))
    name = "config_name"
    file_cfg = str(z.read(name, check=scalar("U", "a string")))
    if digest != config_digest(cfg):
        shown = file_cfg if len(file_cfg) <= 64 else file_cfg[:64] + "..."
        same = " (the same name, other fields)" if file_cfg == cfg.name else ""
        raise ChipFileError(f"{where}: config_hash: the chip was kept for config {shown!r}{same}, not for this "
                            f"run's config {cfg.name!r}; use that config or another state file")
    shapes = {"rram": (cfg.mesh_y, cfg.mesh_x, cfg.rram_rows, cfg.cols), "write_counts": (cfg.mesh_y, cfg.mesh_x, cfg.rram_rows)}
    for name, shape in shapes.items():           # headers first: no data read for a wrong dtype or shape
        h = z.header(name)
        if h.dtype.kind not in "iu":
            raise ChipFileError(f"{where}: {name}: dtype {h.dtype}, expected integers")
        if h.shape != shape:
            raise ChipFileError(f"{where}: {name}: shape {h.shape}, expected {shape} "
                                "[mesh_y, mesh_x, rows" + (", cols]" if name == "rram" else "]"))
    rram = z.read("rram")
    counts = z.read("write_counts")
    for name, a, (lo, hi) in (("rram", rram, _wrange(cfg)), ("write_counts", counts, (0, WRITE_COUNT_MAX))):
        if a.size:
            amin, amax = int(a.min()), int(a.max())
            if amin < lo or amax > hi:
                bad = amin if amin < lo else amax
                raise ChipFileError(f"{where}: {name}: value {bad} outside [{lo}, {hi}]"
                                    + (f" (wbits={cfg.wbits})" if name == "rram" else " (a 32-bit counter)"))
    return KeptChip(cfg, rram, counts)
