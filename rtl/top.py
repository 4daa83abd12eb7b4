"""The chip: the core (rtl/chip.py) behind an AXI4-Lite register file and AXI4-Stream in and out.

Port names are the conventional flat AXI names (``s_axil_awaddr``,
``s_axis_tdata``, ``m_axis_tready``, ...) so that SoC integrators and bus
models find them. docs/architecture.md has the register map and the stream
framing; in short:

* AXI4-Lite (32-bit data, 8-bit byte addresses): identification and the
  config (the host driver checks it), ``CTRL`` (start, soft reset),
  ``STATUS``, the error register, and the 64-bit counters through
  ``CNT_SEL``/``CNT_LO``/``CNT_HI`` (reading ``CNT_LO`` latches the high word
  that ``CNT_HI`` returns).
* AXI4-Stream in (``s_axis``): frames ending with ``TLAST``; the first beat
  is a header ``{addr[63:32], count[31:8], type[7:0]}``. Type 1 writes the
  following beats to the instruction memory from ``addr``, type 2 to the
  global buffer, type 3 (a one-beat frame) asks for ``count`` global-buffer
  words from ``addr``, which leave on ``m_axis`` as a frame: the header beat
  again, then the words, ``TLAST`` on the last. A frame of another type is
  dropped and sets ``STATUS.frame_error``.

Beats are ``max(64, flit_width)`` bits; a word sits in the low bits.
"""

import hashlib
from typing import NamedTuple

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import enum, wiring
from amaranth.lib.wiring import In, Out

from ..model.config import Config
from ..model.encoding import ERR_TILE_REG, FRAME_HEADER, fields_width, pack_fields
from ..model.isa import INSTR_BITS
from .chip import ChipCore
from .counters import counter_count
from .fields import layout, pack

__all__ = ["ChipTop", "Reg", "FrameType", "CHIP_ID", "VERSION", "config_hash", "beat_width", "config_words",
           "AXIL_ADDR_BITS", "AXIL_DATA_BITS", "STATUS_BITS", "CTRL_BITS", "ctrl_word", "CFG_FIELDS"]

CHIP_ID = 0x5243494D            # "RCIM"
VERSION = 0x0001_0000           # 1.0: register map and framing of this file


class Reg:
    """AXI4-Lite byte addresses."""
    ID = 0x00
    VERSION = 0x04
    CFG0 = 0x08         # CFG0..CFG5: the config's fields, CFG_FIELDS below
    CFG1 = 0x0C
    CFG2 = 0x10
    CFG3 = 0x14
    CFG4 = 0x18
    CFG5 = 0x1C
    CFG_HASH = 0x20     # the first 32 bits of sha256(Config.key())
    CTRL = 0x40         # write: CTRL_BITS below (start, soft reset: one-cycle pulses)
    STATUS = 0x44       # running [0], done [1], error [2], quiet [3], tiles_idle [4], frame_error [5]
    ERR_CODE = 0x48
    ERR_PC = 0x4C
    ERR_TILE = 0x50     # x [3:0], y [7:4], row [27:16]
    CNT_SEL = 0x60
    CNT_LO = 0x64
    CNT_HI = 0x68


AXIL_ADDR_BITS = 8              # AXI4-Lite byte addresses (Reg above)
AXIL_DATA_BITS = 32             # AXI4-Lite data; a 64-bit counter is read as two words

#: ``STATUS`` bits, least significant first (the names the host driver gives them).
STATUS_BITS = ("running", "done", "error", "quiet", "tiles_idle", "frame_error")

#: ``CTRL`` bits, least significant first: run the program, reset the chip (but for the memories'
#: content), clear ``STATUS.frame_error``.
CTRL_BITS = ("start", "soft_reset", "clear_frame_error")

#: The identification registers ``CFG0``..``CFG5``: config fields, least significant first.
CFG_FIELDS = {
    Reg.CFG0: (("mesh_x", 8), ("mesh_y", 8), ("wbits", 8), ("xbits", 8)),
    Reg.CFG1: (("rows", 16), ("cols", 16)),
    Reg.CFG2: (("par", 8), ("acc_bits", 8), ("flit_width", 16)),
    Reg.CFG3: (("imem_depth", AXIL_DATA_BITS),),
    Reg.CFG4: (("gbuf_words", AXIL_DATA_BITS),),
    Reg.CFG5: (("tile_ibuf_depth", 16), ("tile_acc_depth", 16)),
}


def ctrl_word(*names: str) -> int:
    """The ``CTRL`` word that sets the bits ``names`` (of :data:`CTRL_BITS`)."""
    return sum(1 << CTRL_BITS.index(name) for name in names)


class FrameType(enum.Enum, shape=dict(FRAME_HEADER)["type"]):
    IMEM = 1
    GBUF = 2
    READ = 3


class _InState(enum.Enum, shape=2):
    """The stream input: at a frame's header, in an instruction-memory or a global-buffer
    frame's words, or dropping beats to ``TLAST`` (a read request's or a bad frame's)."""
    HEADER = 0
    IMEM = 1
    GBUF = 2
    DROP = 3


def config_hash(cfg: Config) -> int:
    return int(hashlib.sha256(cfg.key().encode()).hexdigest()[:8], 16)


def config_words(cfg: Config) -> dict:
    """The identification registers' values for ``cfg`` (what the host driver expects)."""
    return {
        Reg.ID: CHIP_ID, Reg.VERSION: VERSION,
        **{reg: pack_fields(fields, **{name: getattr(cfg, name) for name, _ in fields})
           for reg, fields in CFG_FIELDS.items()},
        Reg.CFG_HASH: config_hash(cfg),
    }


def beat_width(cfg: Config) -> int:
    """Bits of an AXI4-Stream beat: a frame header or a global-buffer word, whichever is wider."""
    return max(fields_width(FRAME_HEADER), cfg.flit_width)


class _ReadState(NamedTuple):
    """What the stream input starts and the read engine runs: the ``m_axis`` register (data and
    ``TLAST`` on top, valid) and the read request (next address, words left, busy, a word in flight)."""
    out: Signal
    out_valid: Signal
    addr: Signal
    left: Signal
    busy: Signal
    inflight: Signal


class ChipTop(wiring.Component):
    """Parameters
    ----------
    cfg : Config
    faults : dict or None
        ``(x, y) -> FaultMap`` (simulation).
    hard_crossbar : bool
        Crossbars as module instances (Verilog output).
    """

    def __init__(self, cfg: Config, faults: dict | None = None, *, hard_crossbar: bool = False):
        self.cfg = cfg
        self.core = ChipCore(cfg, faults, hard_crossbar=hard_crossbar)
        D, A, DW = beat_width(cfg), AXIL_ADDR_BITS, AXIL_DATA_BITS
        super().__init__({
            "s_axil_awaddr": In(A), "s_axil_awprot": In(3), "s_axil_awvalid": In(1), "s_axil_awready": Out(1),
            "s_axil_wdata": In(DW), "s_axil_wstrb": In(DW // 8), "s_axil_wvalid": In(1), "s_axil_wready": Out(1),
            "s_axil_bresp": Out(2), "s_axil_bvalid": Out(1), "s_axil_bready": In(1),
            "s_axil_araddr": In(A), "s_axil_arprot": In(3), "s_axil_arvalid": In(1), "s_axil_arready": Out(1),
            "s_axil_rdata": Out(DW), "s_axil_rresp": Out(2), "s_axil_rvalid": Out(1), "s_axil_rready": In(1),
            "s_axis_tdata": In(D), "s_axis_tvalid": In(1), "s_axis_tready": Out(1), "s_axis_tlast": In(1),
            "m_axis_tdata": Out(D), "m_axis_tvalid": Out(1), "m_axis_tready": In(1), "m_axis_tlast": Out(1),
            "irq": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        core = self.core
        m.submodules.core = core
        m.d.comb += self.irq.eq(core.irq)

        frame_error = Signal()
        start = Signal()
        soft_reset = Signal()
        m.d.comb += [core.start.eq(start), core.soft_reset.eq(soft_reset)]
        m.d.sync += [start.eq(0), soft_reset.eq(0)]           # one-cycle pulses from CTRL writes

        cnt_sel = self._axil_write(m, start, soft_reset, frame_error)
        self._axil_read(m, cnt_sel, frame_error)
        rd = self._stream_in(m, frame_error)
        self._read_engine(m, rd)
        return m

    def _axil_write(self, m, start, soft_reset, frame_error):
        """AXI4-Lite writes: address and data taken in any order, one response each; returns ``CNT_SEL``."""
        core = self.core
        aw_full, w_full = Signal(), Signal()
        aw_addr, w_data = Signal(AXIL_ADDR_BITS), Signal(AXIL_DATA_BITS)
        bvalid = Signal()
        m.d.comb += [
            self.s_axil_awready.eq(~aw_full), self.s_axil_wready.eq(~w_full),
            self.s_axil_bvalid.eq(bvalid), self.s_axil_bresp.eq(0),
        ]
        with m.If(self.s_axil_awvalid & ~aw_full):
            m.d.sync += [aw_full.eq(1), aw_addr.eq(self.s_axil_awaddr)]
        with m.If(self.s_axil_wvalid & ~w_full):
            m.d.sync += [w_full.eq(1), w_data.eq(self.s_axil_wdata)]
        with m.If(bvalid & self.s_axil_bready):
            m.d.sync += bvalid.eq(0)
        cnt_sel = Signal(range(counter_count(self.cfg)))
        m.d.comb += core.cnt_index.eq(cnt_sel)
        with m.If(aw_full & w_full & ~bvalid):
            m.d.sync += [aw_full.eq(0), w_full.eq(0), bvalid.eq(1)]
            with m.Switch(aw_addr):
                with m.Case(Reg.CTRL):
                    ctrl = dict(zip(CTRL_BITS, w_data))
                    m.d.sync += [start.eq(ctrl["start"]), soft_reset.eq(ctrl["soft_reset"])]
                    with m.If(ctrl["clear_frame_error"]):
                        m.d.sync += frame_error.eq(0)
                with m.Case(Reg.CNT_SEL):
                    m.d.sync += cnt_sel.eq(w_data)
        return cnt_sel

    def _axil_read(self, m, cnt_sel, frame_error):
        """AXI4-Lite reads: one at a time, the data registered; reading ``CNT_LO`` latches ``CNT_HI``."""
        core = self.core
        rvalid, rdata = Signal(), Signal(AXIL_DATA_BITS)
        cnt_hi = Signal(AXIL_DATA_BITS)
        m.d.comb += [
            self.s_axil_arready.eq(~rvalid), self.s_axil_rvalid.eq(rvalid),
            self.s_axil_rdata.eq(rdata), self.s_axil_rresp.eq(0),
        ]
        with m.If(rvalid & self.s_axil_rready):
            m.d.sync += rvalid.eq(0)
        err = core.error
        status = {"running": core.running, "done": core.done, "error": core.irq, "quiet": core.quiet,
                  "tiles_idle": core.tiles_idle, "frame_error": frame_error}
        regs = dict(config_words(self.cfg))
        regs.update({
            Reg.CTRL: 0,
            Reg.STATUS: Cat(status[name] for name in STATUS_BITS),
            Reg.ERR_CODE: err.code, Reg.ERR_PC: err.pc,
            Reg.ERR_TILE: pack(ERR_TILE_REG, x=err.x, y=err.y, row=err.row),
            Reg.CNT_SEL: cnt_sel, Reg.CNT_LO: core.cnt_value[:AXIL_DATA_BITS], Reg.CNT_HI: cnt_hi,
        })
        with m.If(self.s_axil_arvalid & ~rvalid):
            m.d.sync += rvalid.eq(1)
            with m.Switch(self.s_axil_araddr):
                for addr, value in regs.items():
                    with m.Case(addr):
                        m.d.sync += rdata.eq(value)
                with m.Default():
                    m.d.sync += rdata.eq(0)
            with m.If(self.s_axil_araddr == Reg.CNT_LO):
                m.d.sync += cnt_hi.eq(core.cnt_value[AXIL_DATA_BITS:])

    def _stream_in(self, m, frame_error):
        """AXI4-Stream in: framed writes and read requests.

        Returns the state the read engine shares, ``_ReadState``: the ``m_axis`` output register
        (a read request's header beat, then each word read, fills it) and the read request's place.
        """
        core, W = self.core, self.cfg.flit_width
        out, out_valid = Signal(beat_width(self.cfg) + 1), Signal()
        with m.If(out_valid & self.m_axis_tready):
            m.d.sync += out_valid.eq(0)
        s_in = Signal(_InState)
        widths = dict(FRAME_HEADER)
        waddr = Signal(widths["addr"])
        rd_addr = Signal(widths["addr"])
        rd_left = Signal(widths["count"])
        rd_busy = Signal()
        inflight = Signal()          # a global-buffer read issued last cycle: its word arrives now
        beat = self.s_axis_tdata
        hdr = layout(FRAME_HEADER)(beat[:fields_width(FRAME_HEADER)])
        hdr_type, hdr_count, hdr_addr = hdr.type, hdr.count, hdr.addr
        m.d.comb += [
            core.imem_wr.payload.addr.eq(waddr),
            core.imem_wr.payload.data.eq(beat[:INSTR_BITS]),     # an instruction in the low bits
            core.gbuf_wr.payload.addr.eq(waddr),
            core.gbuf_wr.payload.data.eq(beat[:W]),
        ]
        fire = self.s_axis_tvalid & self.s_axis_tready
        with m.Switch(s_in):
            with m.Case(_InState.HEADER):
                m.d.comb += self.s_axis_tready.eq(~rd_busy & ~inflight & ~out_valid)
                with m.If(fire):
                    m.d.sync += waddr.eq(hdr_addr)
                    with m.Switch(hdr_type):
                        with m.Case(FrameType.IMEM):
                            m.d.sync += s_in.eq(Mux(self.s_axis_tlast, _InState.HEADER, _InState.IMEM))
                        with m.Case(FrameType.GBUF):
                            m.d.sync += s_in.eq(Mux(self.s_axis_tlast, _InState.HEADER, _InState.GBUF))
                        with m.Case(FrameType.READ):
                            # the reply's header first, then the words
                            m.d.sync += [out.eq(Cat(beat, hdr_count == 0)), out_valid.eq(1)]
                            m.d.sync += [rd_addr.eq(hdr_addr), rd_left.eq(hdr_count), rd_busy.eq(hdr_count != 0),
                                         s_in.eq(Mux(self.s_axis_tlast, _InState.HEADER, _InState.DROP))]
                        with m.Default():
                            m.d.sync += [frame_error.eq(1),
                                         s_in.eq(Mux(self.s_axis_tlast, _InState.HEADER, _InState.DROP))]
            with m.Case(_InState.IMEM):
                m.d.comb += [self.s_axis_tready.eq(core.imem_wr.ready), core.imem_wr.valid.eq(self.s_axis_tvalid)]
            with m.Case(_InState.GBUF):
                m.d.comb += [self.s_axis_tready.eq(core.gbuf_wr.ready), core.gbuf_wr.valid.eq(self.s_axis_tvalid)]
            with m.Case(_InState.DROP):
                m.d.comb += self.s_axis_tready.eq(1)
        with m.If(fire & (s_in != _InState.HEADER)):
            m.d.sync += waddr.eq(waddr + 1)
            with m.If(self.s_axis_tlast):
                m.d.sync += s_in.eq(_InState.HEADER)
        return _ReadState(out, out_valid, rd_addr, rd_left, rd_busy, inflight)

    def _read_engine(self, m, rd):
        """The read engine: global buffer -> ``m_axis``.

        One read at a time, issued when the output register is free by the time its word
        arrives (the cycle after): a word every two cycles while ``m_axis`` takes them.
        """
        core, W, D = self.core, self.cfg.flit_width, beat_width(self.cfg)
        issue = Signal()
        m.d.comb += [
            issue.eq(rd.busy & ~rd.inflight & (~rd.out_valid | self.m_axis_tready)),
            core.gbuf_rd_addr.eq(rd.addr),
        ]
        m.d.sync += rd.inflight.eq(issue)
        last_issued = Signal()
        with m.If(issue):
            m.d.sync += [rd.addr.eq(rd.addr + 1), rd.left.eq(rd.left - 1), last_issued.eq(rd.left == 1)]
            with m.If(rd.left == 1):
                m.d.sync += rd.busy.eq(0)
        with m.If(rd.inflight):
            m.d.sync += [rd.out.eq(Cat(core.gbuf_rd_data, Const(0, D - W), last_issued)), rd.out_valid.eq(1)]
        m.d.comb += [
            self.m_axis_tvalid.eq(rd.out_valid),
            self.m_axis_tdata.eq(rd.out[:D]),
            self.m_axis_tlast.eq(rd.out[D]),
        ]
