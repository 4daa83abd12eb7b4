"""The RRAM crossbar: 1-bit cells and per-column digital adder trees.

This is the block a foundry flow would replace with a hard RRAM macro, so it
is emitted as its own Verilog module, once per configuration
(:func:`crossbar_module_name`), and every macro instantiates it by name.

Protocol
--------
* Cells: ``banks`` weight sets (banks) of ``rows x cols*wbits`` 1-bit RRAM
  cells, weight bit ``b`` of column ``c`` in physical column ``c*wbits + b``;
  bank ``k``'s row ``r`` is RRAM row ``k*rows + r``. They are non-volatile:
  no reset touches them; they power up as zero.
* Write: when ``wr_en`` is high at a clock edge, RRAM row ``wr_row`` takes
  ``wr_data`` (one programming pulse completes).
* Read (verify): ``rd_data`` is RRAM row ``rd_row`` as read, combinationally.
* Compute: ``x_planes`` carries ``par`` input bit-planes (bit ``r*par + q`` is
  plane ``q`` of row ``r``) applied to bank ``bank`` (a port only when
  ``banks`` > 1). One cycle later ``counts`` holds, for every physical column
  ``j`` and plane ``q``, the number of the bank's rows where the cell and the
  input bit are both 1, at bits ``(j*par + q)*popcount_bits``. One set of
  adder trees serves every bank.
* Faults: a fault map given at elaboration forces stuck cells to read 0 or 1
  in both the verify read and compute. A crossbar with faults is a different
  module (its name carries a hash of the fault map); the fault-free crossbar
  of a config is one module however many macros use it. Faults of a crossbar
  with ``banks`` > 1 are not supported yet (issue 21 will load fault maps
  when a simulation starts): :func:`check_faults` says so.

Storage
-------
With one bank the cells are ``rows`` flip-flop words of ``cols*wbits`` bits.
With ``banks`` > 1 they are a memory (:class:`~amaranth.lib.memory.Memory`)
of one word per bank, ``rows*cols*wbits`` bits (row ``r`` at bit
``r*cols*wbits``), written one row at a time (write granularity
``cols*wbits``) and read twice, combinationally: at ``bank`` for the adder
trees, and at ``rd_row``'s bank for verify. The ``memwall`` preset's 1024
banks of 32x32 int8 are 8 Mibit a crossbar, a size that only a memory keeps
the Verilog, its lint and its simulation builds small enough to make.
"""

import hashlib

import numpy as np
from amaranth.hdl import Cat, Module, Signal, Const, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..model.config import Config
from ..model.macro import FaultMap

__all__ = ["Crossbar", "crossbar_module_name", "check_faults", "popcount", "split_row"]


def crossbar_module_name(cfg: Config, faults: FaultMap | None = None) -> str:
    """The Verilog module name of the crossbar for ``cfg``: one per shape (and fault map)."""
    name = f"rramcim_crossbar_r{cfg.rows}_c{cfg.cols}_w{cfg.wbits}_p{cfg.par}"
    if cfg.banks > 1:
        name += f"_b{cfg.banks}"
    if faults:
        name += "_f" + hashlib.sha256(repr(faults.stuck).encode()).hexdigest()[:8]
    return name


def check_faults(block, cfg: Config, faults: FaultMap | None) -> None:
    """``ValueError`` for stuck cells in a crossbar of more than one bank (not supported yet); ``block`` is the
    block being made with them (a crossbar, macro or tile), which is then no unused block."""
    if faults and faults.stuck and cfg.banks > 1:
        block._MustUse__silence = True       # a rejected block is not an unused one
        raise ValueError(f"faults: stuck cells in a crossbar of {cfg.banks} banks are not supported yet (issue 21 "
                         f"will load fault maps when a simulation starts); use a config with banks = 1 or no faults")


def split_row(row, rows: int):
    """RRAM row ``row`` (a Value) as ``(bank, row of the bank)``: ``row // rows``, ``row % rows``
    (bit fields when ``rows`` is a power of two)."""
    if rows & (rows - 1) == 0:
        k = rows.bit_length() - 1
        return row[k:], row[:k]
    return row // rows, row % rows


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
        Uses ``rows``, ``cols``, ``wbits``, ``par``, ``banks``.
    faults : FaultMap or None
        Stuck-at cells (simulation only; only with one bank).

    Members
    -------
    wr_en, wr_row, wr_data : In
        RRAM row programming (one pulse completes at the clock edge); rows are ``rram_row_bits`` wide.
    rd_row : In, rd_data : Out
        Combinational verify read of one RRAM row.
    bank : In(bank_bits), only when ``banks`` > 1
        The bank ``x_planes`` compute with.
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
        check_faults(self, cfg, faults)
        self.cfg = cfg
        self.faults = faults or FaultMap()
        ports = {
            "wr_en": In(1),
            "wr_row": In(cfg.rram_row_bits),
            "wr_data": In(cfg.cells_per_row),
            "rd_row": In(cfg.rram_row_bits),
            "rd_data": Out(cfg.cells_per_row),
            "x_planes": In(cfg.rows * cfg.par),
            "counts": Out(cfg.cells_per_row * cfg.par * cfg.popcount_bits),
        }
        if cfg.banks > 1:
            ports["bank"] = In(cfg.bank_bits)
        super().__init__(ports)

    def elaborate(self, platform):
        cfg = self.cfg
        m = Module()
        eff = self._cells(m) if cfg.banks == 1 else self._banked_cells(m)
        pw = cfg.popcount_bits
        counts = Signal.like(self.counts, reset_less=True)
        m.d.comb += self.counts.eq(counts)
        for j in range(cfg.cells_per_row):
            for q in range(cfg.par):
                terms = [eff[r][j] & self.x_planes[r * cfg.par + q] for r in range(cfg.rows)]
                k = j * cfg.par + q
                m.d.sync += counts[k * pw:(k + 1) * pw].eq(popcount(terms))
        return m

    def _cells(self, m):
        """One bank: the cells as flip-flops, stuck cells forced, the verify read; returns the rows as read."""
        cfg = self.cfg
        cpr = cfg.cells_per_row
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
        return eff

    def _banked_cells(self, m):
        """Banks: the cells as a memory of one word a bank, written a row at a time, read at ``bank`` (for
        the adder trees) and at ``rd_row``'s bank (verify); returns the compute bank's rows."""
        cfg = self.cfg
        cpr, rows = cfg.cells_per_row, cfg.rows
        m.submodules.cells = cells = Memory(shape=unsigned(rows * cpr), depth=cfg.banks, init=[])
        wr = cells.write_port(granularity=cpr)
        compute, verify = cells.read_port(domain="comb"), cells.read_port(domain="comb")
        wr_bank, wr_r = split_row(self.wr_row, rows)
        rd_bank, rd_r = split_row(self.rd_row, rows)
        m.d.comb += [
            wr.addr.eq(wr_bank),
            wr.en.eq(Cat(self.wr_en & (wr_r == r) for r in range(rows))),
            wr.data.eq(self.wr_data.replicate(rows)),
            verify.addr.eq(rd_bank),
            self.rd_data.eq(verify.data.word_select(rd_r, cpr)),
            compute.addr.eq(self.bank),
        ]
        return [compute.data[r * cpr:(r + 1) * cpr] for r in range(rows)]
