"""The RRAM crossbar: 1-bit cells and per-column digital adder trees.

This is the block a foundry flow would replace with a hard RRAM macro, so it
is emitted as its own Verilog module, once per configuration
(:func:`crossbar_module_name`), and every macro instantiates it by name.

Protocol
--------
* Cells: ``rows x cols*wbits`` 1-bit RRAM cells, weight bit ``b`` of column
  ``c`` in physical column ``c*wbits + b``. They are non-volatile: no reset
  touches them; they power up as zero.
* Write: when ``wr_en`` is high at a clock edge, row ``wr_row`` takes
  ``wr_data`` (one programming pulse completes).
* Read (verify): ``rd_data`` is row ``rd_row`` as read, combinationally.
* Compute: ``x_planes`` carries ``par`` input bit-planes (bit ``r*par + q`` is
  plane ``q`` of row ``r``). One cycle later ``counts`` holds, for every
  physical column ``j`` and plane ``q``, the number of rows where the cell and
  the input bit are both 1, at bits ``(j*par + q)*popcount_bits``.
* Faults: a fault map given at elaboration forces stuck cells to read 0 or 1
  in both the verify read and compute. A crossbar with faults is a different
  module (its name carries a hash of the fault map); the fault-free crossbar
  of a config is one module however many macros use it.
"""

import hashlib

import numpy as np
from amaranth.hdl import Module, Signal, Const
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..model.config import Config
from ..model.macro import FaultMap

__all__ = ["Crossbar", "crossbar_module_name", "popcount"]


def crossbar_module_name(cfg: Config, faults: FaultMap | None = None) -> str:
    """The Verilog module name of the crossbar for ``cfg``: one per shape (and fault map)."""
    name = f"rramcim_crossbar_r{cfg.rows}_c{cfg.cols}_w{cfg.wbits}_p{cfg.par}"
    if faults:
        name += "_f" + hashlib.sha256(repr(faults.stuck).encode()).hexdigest()[:8]
    return name


def popcount(bits):
    """A balanced adder tree counting the ones in a list of 1-bit values."""
    level = list(bits)
    if not level:
        return 0
    while len(level) > 1:
        nxt = [level[i] + level[i + 1] for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


class Crossbar(wiring.Component):
    """RRAM cell array with popcount read-out.

    Parameters
    ----------
    cfg : Config
        Uses ``rows``, ``cols``, ``wbits``, ``par``.
    faults : FaultMap or None
        Stuck-at cells (simulation only).

    Members
    -------
    wr_en, wr_row, wr_data : In
        Row programming (one pulse completes at the clock edge).
    rd_row : In, rd_data : Out
        Combinational verify read of one row.
    x_planes : In
        ``par`` input bit-planes.
    counts : Out
        Registered popcounts, one cycle after ``x_planes``.
    """

    def __init__(self, cfg: Config, faults: FaultMap | None = None):
        if not isinstance(cfg, Config):
            raise TypeError(f"cfg must be a Config, not {cfg!r}")
        if faults is not None and not isinstance(faults, FaultMap):
            raise TypeError(f"faults must be a FaultMap or None, not {faults!r}")
        self.cfg = cfg
        self.faults = faults or FaultMap()
        super().__init__({
            "wr_en": In(1),
            "wr_row": In(cfg.row_bits),
            "wr_data": In(cfg.cells_per_row),
            "rd_row": In(cfg.row_bits),
            "rd_data": Out(cfg.cells_per_row),
            "x_planes": In(cfg.rows * cfg.par),
            "counts": Out(cfg.cells_per_row * cfg.par * cfg.popcount_bits),
        })

    def elaborate(self, platform):
        cfg = self.cfg
        m = Module()
        cpr, pw = cfg.cells_per_row, cfg.popcount_bits
        cells = [Signal(cpr, name=f"cells_row{r}", reset_less=True) for r in range(cfg.rows)]
        stuck0, stuck1 = self.faults.masks(cfg)
        eff = []
        for r in range(cfg.rows):
            if stuck0[r].any() or stuck1[r].any():
                s0 = sum(1 << int(j) for j in np.flatnonzero(stuck0[r]))
                s1 = sum(1 << int(j) for j in np.flatnonzero(stuck1[r]))
                e = Signal(cpr, name=f"read_row{r}")
                m.d.comb += e.eq((cells[r] & ~Const(s0, cpr)) | Const(s1, cpr))
                eff.append(e)
            else:
                eff.append(cells[r])
            with m.If(self.wr_en & (self.wr_row == r)):
                m.d.sync += cells[r].eq(self.wr_data)

        with m.Switch(self.rd_row):
            for r in range(cfg.rows):
                with m.Case(r):
                    m.d.comb += self.rd_data.eq(eff[r])

        counts = Signal.like(self.counts, reset_less=True)
        m.d.comb += self.counts.eq(counts)
        for j in range(cpr):
            for q in range(cfg.par):
                terms = [eff[r][j] & self.x_planes[r * cfg.par + q] for r in range(cfg.rows)]
                k = j * cfg.par + q
                m.d.sync += counts[k * pw:(k + 1) * pw].eq(popcount(terms))
        return m
