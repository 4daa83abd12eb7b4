"""The digital RRAM CIM macro: crossbar, bit-serial shift-add engine, write-verify.

Protocol and timing are specified by :mod:`rramcim.model.macro` (the golden
model) and docs/macro.md; in short, with ``S = xbits/par``:

* ``x`` (input vector) is ready when the engine is idle or in its last
  compute step, a result slot is free (``occupancy < macro_out_depth``) and
  ``prog`` is not valid. An MVM taken in cycle ``t`` steps through the
  crossbar in cycles ``t+1 .. t+S`` (most significant input bits first), its
  popcounts are shifted and added one cycle behind, and its int result is
  valid on ``y`` from cycle ``t+S+2``. MVMs pipeline with an interval of ``S``.
* ``prog`` (row write) is ready when the engine is idle. Each attempt is a
  pulse of ``rram_write_cycles`` and a verify read of ``rram_verify_cycles``;
  a mismatch is retried up to ``rram_max_attempts`` pulses; the response
  (row, attempts, ok, failing-cell mask) is valid on ``prog_resp`` from
  ``t + attempts*(write+verify) + 1`` and the engine waits until it is taken.
* ``status``: the write counter of row ``status.row`` (combinational), the
  number of failed row writes, and ``busy``.

Cells and write counters are non-volatile: reset clears neither.

Banks: a macro of ``banks`` > 1 stores that many weight sets (docs/macro.md,
"Banks"); RRAM rows (``prog.row``, ``prog_resp.row``, ``status.row``) are
``bank * rows + row``, ``rram_row_bits`` wide. An MVM computes with the bank
on the ``bank`` input, which goes with ``x``: a source holds it with the
payload while ``x.valid`` is high, and the macro samples it when ``x`` fires
and holds it (the crossbar's compute bank) for the MVM's ``S`` steps. The
timing is the same with one bank or many. With one bank there is no ``bank``
input and the macro is the one of before, port for port.
"""


from amaranth.hdl import Module, Signal, Cat, Mux, ClockSignal, ResetSignal, Instance, Array, signed, unsigned
from amaranth.lib import wiring, stream, data, enum, fifo
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..model.config import Config
from ..model.encoding import macro_prog_fields, macro_resp_fields
from ..model.macro import FaultMap
from .crossbar import Crossbar, check_faults, crossbar_module_name
from .fields import layout

__all__ = ["Macro", "prog_layout", "prog_resp_layout", "x_layout", "y_layout", "StatusSignature"]

WRITE_COUNT_BITS = 32


def result_bits(cfg: Config) -> int:
    """Bits of the macro's accumulators: ``acc_bits``, or fewer when every MVM result fits fewer.

    A result is at most ``rows * 2**(xbits-1) * 2**(wbits-1)`` (both operands at their most
    negative) and above ``-rows * 2**(xbits-1) * (2**(wbits-1))``: it fits ``bit_length + 1``
    signed bits, and arithmetic modulo a power of two that holds it gives it exactly.
    """
    most = cfg.rows << (cfg.xbits + cfg.wbits - 2)
    return min(cfg.acc_bits, most.bit_length() + 1)


def _sext(v, width):
    """Signed ``v`` sign-extended (or kept) to ``width`` bits."""
    return v.as_signed() if len(v) == width else Cat(v, v[-1].replicate(width - len(v)))


def prog_layout(cfg: Config) -> data.StructLayout:
    """One row write: the row and its ``cols`` signed weights (:func:`~rramcim.model.encoding.macro_prog_fields`,
    the weights as an array)."""
    fields = dict(macro_prog_fields(cfg))
    assert fields["weights"] == cfg.cols * cfg.wbits
    return data.StructLayout({
        "row": fields["row"],
        "weights": data.ArrayLayout(signed(cfg.wbits), cfg.cols),
    })


def prog_resp_layout(cfg: Config) -> data.StructLayout:
    """The outcome of one row write (:func:`~rramcim.model.encoding.macro_resp_fields`)."""
    return layout(macro_resp_fields(cfg))


def x_layout(cfg: Config) -> data.ArrayLayout:
    return data.ArrayLayout(signed(cfg.xbits), cfg.rows)


def y_layout(cfg: Config) -> data.ArrayLayout:
    return data.ArrayLayout(signed(cfg.acc_bits), cfg.cols)


class StatusSignature(wiring.Signature):
    """Macro status, from the macro's side.

    Members
    -------
    row : In(rram_row_bits)
        RRAM row whose write counter is shown on ``write_count``.
    write_count : Out
        Programming pulses ever applied to ``row`` (non-volatile).
    verify_failures : Out
        Row writes that failed verify since reset.
    busy : Out
        The engine is computing or programming.
    """

    def __init__(self, cfg: Config):
        super().__init__({
            "row": In(cfg.rram_row_bits),
            "write_count": Out(WRITE_COUNT_BITS),
            "verify_failures": Out(32),
            "busy": Out(1),
        })


class Mode(enum.Enum, shape=3):
    IDLE = 0
    COMPUTE = 1
    WRITE = 2
    VERIFY = 3
    RESP = 4


class Macro(wiring.Component):
    """Digital RRAM CIM macro.

    Parameters
    ----------
    cfg : Config
        Shape and timing.
    faults : FaultMap or None
        Stuck-at cells, fixed at elaboration (they select a crossbar module
        of their own).
    hard_crossbar : bool
        If True the crossbar is an ``Instance`` of :func:`crossbar_module_name`
        (for Verilog output, where that module is emitted once beside the
        macro); if False it is an Amaranth submodule (for Amaranth's simulator).

    Members
    -------
    prog : In(stream)
        Row writes, :func:`prog_layout`.
    prog_resp : Out(stream)
        Row write outcomes, :func:`prog_resp_layout`.
    x : In(stream)
        Input vectors, :func:`x_layout`.
    bank : In(bank_bits), only when ``banks`` > 1
        The bank the vector on ``x`` computes with: held with ``x.payload``, sampled when ``x`` fires.
    y : Out(stream)
        MVM results, :func:`y_layout`.
    status : Out(StatusSignature)
    """

    def __init__(self, cfg: Config, faults: FaultMap | None = None, *, hard_crossbar: bool = False):
        if not isinstance(cfg, Config):
            raise TypeError(f"cfg must be a Config, not {cfg!r}")
        if faults is not None and not isinstance(faults, FaultMap):
            raise TypeError(f"faults must be a FaultMap or None, not {faults!r}")
        check_faults(self, cfg, faults)
        self.cfg = cfg
        self.faults = faults or FaultMap()
        self.hard_crossbar = hard_crossbar
        ports = {
            "prog": In(stream.Signature(prog_layout(cfg))),
            "prog_resp": Out(stream.Signature(prog_resp_layout(cfg))),
            "x": In(stream.Signature(x_layout(cfg))),
            "y": Out(stream.Signature(y_layout(cfg))),
            "status": Out(StatusSignature(cfg)),
        }
        if cfg.banks > 1:
            ports["bank"] = In(cfg.bank_bits)
        super().__init__(ports)

    def elaborate(self, platform):
        cfg = self.cfg
        m = Module()
        xb_ports = self._crossbar(m)

        mode = Signal(Mode)
        step = Signal(range(cfg.steps))
        idle = mode == Mode.IDLE
        last_step = (mode == Mode.COMPUTE) & (step == cfg.steps - 1)

        out_fifo, prog_fire, x_fire = self._result_queue(m, idle, last_step)

        # Compute: the input vector is a shift register; its top `par` bits
        # of every row are the bit-planes of the current step.
        xreg = [Signal(cfg.xbits, name=f"xreg{r}") for r in range(cfg.rows)]
        m.d.comb += xb_ports["x_planes"].eq(Cat(x[cfg.xbits - cfg.par:] for x in xreg))
        with m.If(x_fire):
            m.d.sync += [xreg[r].eq(self.x.payload[r]) for r in range(cfg.rows)]
        with m.Elif(mode == Mode.COMPUTE):
            m.d.sync += [xreg[r].eq(xreg[r] << cfg.par) for r in range(cfg.rows)]

        if cfg.banks > 1:
            # the MVM's bank, held for its steps (a new MVM takes it in the last step of the one before)
            bank = Signal(cfg.bank_bits)
            m.d.comb += xb_ports["bank"].eq(bank)
            with m.If(x_fire):
                m.d.sync += bank.eq(self.bank)

        self._shift_add(m, xb_ports["counts"], mode, step, last_step, out_fifo)
        self._write_verify(m, xb_ports, mode, step, idle, last_step, prog_fire)
        # A new MVM starts here; this overrides the transitions of the mode above.
        with m.If(x_fire):
            m.d.sync += [mode.eq(Mode.COMPUTE), step.eq(0)]
        return m

    def _crossbar(self, m):
        """The crossbar, as a hard macro or an Amaranth submodule; returns its ports by name."""
        cfg, cpr, par = self.cfg, self.cfg.cells_per_row, self.cfg.par
        xb_ports = {
            "wr_en": Signal(), "wr_row": Signal(cfg.rram_row_bits), "wr_data": Signal(cpr),
            "rd_row": Signal(cfg.rram_row_bits), "rd_data": Signal(cpr),
            "x_planes": Signal(cfg.rows * par), "counts": Signal(cpr * par * cfg.popcount_bits),
        }
        banked = {"bank": Signal(cfg.bank_bits)} if cfg.banks > 1 else {}
        if self.hard_crossbar:
            m.submodules.crossbar = Instance(
                crossbar_module_name(cfg, self.faults),
                i_clk=ClockSignal(), i_rst=ResetSignal(),
                i_wr_en=xb_ports["wr_en"], i_wr_row=xb_ports["wr_row"], i_wr_data=xb_ports["wr_data"],
                i_rd_row=xb_ports["rd_row"], o_rd_data=xb_ports["rd_data"],
                i_x_planes=xb_ports["x_planes"], o_counts=xb_ports["counts"],
                **{f"i_{name}": sig for name, sig in banked.items()})
        else:
            m.submodules.crossbar = xb = Crossbar(cfg, self.faults)
            m.d.comb += [
                xb.wr_en.eq(xb_ports["wr_en"]), xb.wr_row.eq(xb_ports["wr_row"]),
                xb.wr_data.eq(xb_ports["wr_data"]), xb.rd_row.eq(xb_ports["rd_row"]),
                xb_ports["rd_data"].eq(xb.rd_data), xb.x_planes.eq(xb_ports["x_planes"]),
                xb_ports["counts"].eq(xb.counts),
            ]
            m.d.comb += [getattr(xb, name).eq(sig) for name, sig in banked.items()]
        return xb_ports | banked

    def _result_queue(self, m, idle, last_step):
        """The result FIFO on ``y``, its occupancy and the ready of ``prog`` and ``x``.

        Returns ``(out_fifo, prog_fire, x_fire)``.
        """
        cfg, D = self.cfg, self.cfg.macro_out_depth
        # Results accepted but not yet taken: an MVM is taken only when its result has a slot.
        B = result_bits(cfg)        # every MVM result fits: the arithmetic mod 2**B, sign-extended
        m.submodules.out_fifo = out_fifo = fifo.SyncFIFO(width=cfg.cols * B, depth=D)
        occ = Signal(range(D + 1))
        m.d.comb += [
            self.y.valid.eq(out_fifo.r_rdy),
            self.y.payload.eq(Cat(*[_sext(out_fifo.r_data[c * B:(c + 1) * B], cfg.acc_bits)
                                    for c in range(cfg.cols)])),
            out_fifo.r_en.eq(self.y.ready),
        ]

        prog_fire = self.prog.valid & self.prog.ready
        x_fire = self.x.valid & self.x.ready
        y_fire = self.y.valid & self.y.ready
        m.d.comb += [
            self.prog.ready.eq(idle),
            self.x.ready.eq((idle | last_step) & (occ < D) & ~self.prog.valid),
        ]
        m.d.sync += occ.eq(occ + x_fire - y_fire)
        return out_fifo, prog_fire, x_fire

    def _shift_add(self, m, counts, mode, step, last_step, out_fifo):
        """Shift-and-add, one cycle behind the crossbar step; the last step's sums go to ``out_fifo``."""
        cfg = self.cfg
        acc_valid = Signal()
        acc_first = Signal()
        acc_last = Signal()
        m.d.sync += [
            acc_valid.eq(mode == Mode.COMPUTE),
            acc_first.eq((mode == Mode.COMPUTE) & (step == 0)),
            acc_last.eq(last_step),
        ]
        B = result_bits(cfg)
        acc = [Signal(signed(B), name=f"acc{c}") for c in range(cfg.cols)]
        new_acc = []
        for c in range(cfg.cols):
            nxt = Signal(signed(B), name=f"acc_next{c}")
            m.d.comb += nxt.eq(Mux(acc_first, 0, acc[c] << cfg.par) + self._step_term(counts, c, acc_first))
            new_acc.append(nxt)
            with m.If(acc_valid):
                m.d.sync += acc[c].eq(nxt)
        m.d.comb += [
            out_fifo.w_data.eq(Cat(*new_acc)),
            out_fifo.w_en.eq(acc_valid & acc_last),
        ]

    def _step_term(self, counts, c, acc_first):
        """Column ``c``'s sum of one step: its weight bit-planes' popcounts, weighted by bit and input plane."""
        cfg, par, pw = self.cfg, self.cfg.par, self.cfg.popcount_bits
        term = 0
        for q in range(par):
            w_plane = 0
            for b in range(cfg.wbits):
                j = c * cfg.wbits + b
                k = j * par + q
                cnt = counts[k * pw:(k + 1) * pw]
                w_plane = (w_plane - (cnt << b)) if b == cfg.wbits - 1 else (w_plane + (cnt << b))
            if q == par - 1:
                # The plane of the input sign bit comes in the first step only.
                term = term + Mux(acc_first, -(w_plane << q), w_plane << q)
            else:
                term = term + (w_plane << q)
        return term

    def _write_counters(self, m, prog_row):
        """The per-row write counters (non-volatile) and ``status.write_count``; returns a function that
        counts a pulse to ``prog_row``, called where the pulse completes. One bank: ``rows`` registers;
        more: a memory of ``rram_rows`` words (``memwall``'s 32768 rows would be a million flip-flops)."""
        cfg = self.cfg
        if cfg.banks == 1:
            write_counts = [Signal(WRITE_COUNT_BITS, name=f"write_count{r}", reset_less=True)
                            for r in range(cfg.rows)]
            m.d.comb += self.status.write_count.eq(Array(write_counts)[self.status.row])

            def pulse():
                for r in range(cfg.rows):
                    with m.If(prog_row == r):
                        m.d.sync += write_counts[r].eq(write_counts[r] + 1)
            return pulse
        m.submodules.write_counts = counts = Memory(shape=unsigned(WRITE_COUNT_BITS), depth=cfg.rram_rows, init=[])
        shown, current, update = counts.read_port(domain="comb"), counts.read_port(domain="comb"), counts.write_port()
        m.d.comb += [shown.addr.eq(self.status.row), self.status.write_count.eq(shown.data),
                     current.addr.eq(prog_row), update.addr.eq(prog_row), update.data.eq(current.data + 1)]

        def pulse():
            m.d.comb += update.en.eq(1)
        return pulse

    def _write_verify(self, m, xb_ports, mode, step, idle, last_step, prog_fire):
        """Programming: write-verify with retries; the mode's transitions (compute steps too) and status."""
        cfg, P, V, cpr = self.cfg, self.cfg.rram_write_cycles, self.cfg.rram_verify_cycles, self.cfg.cells_per_row
        remaining = Signal(range(max(P, V) + 1))
        attempts = Signal(self.prog_resp.payload.attempts.shape())
        prog_row = Signal(cfg.rram_row_bits)
        target = Signal(cpr)
        fail_mask = Signal(cpr)
        ok = Signal()
        verify_failures = Signal(32)
        mismatch = xb_ports["rd_data"] ^ target
        m.d.comb += [
            xb_ports["wr_row"].eq(prog_row),
            xb_ports["wr_data"].eq(target),
            xb_ports["rd_row"].eq(prog_row),
            self.prog_resp.valid.eq(mode == Mode.RESP),
            self.prog_resp.payload.row.eq(prog_row),
            self.prog_resp.payload.attempts.eq(attempts),
            self.prog_resp.payload.ok.eq(ok),
            self.prog_resp.payload.fail_mask.eq(fail_mask),
        ]
        pulse_counted = self._write_counters(m, prog_row)
        m.d.comb += [self.status.verify_failures.eq(verify_failures), self.status.busy.eq(~idle)]

        with m.Switch(mode):
            with m.Case(Mode.COMPUTE):
                with m.If(last_step):
                    m.d.sync += mode.eq(Mode.IDLE)
                with m.Else():
                    m.d.sync += step.eq(step + 1)
            with m.Case(Mode.WRITE):
                with m.If(remaining == 1):
                    m.d.comb += xb_ports["wr_en"].eq(1)
                    pulse_counted()
                    m.d.sync += [attempts.eq(attempts + 1), mode.eq(Mode.VERIFY), remaining.eq(V)]
                with m.Else():
                    m.d.sync += remaining.eq(remaining - 1)
            with m.Case(Mode.VERIFY):
                with m.If(remaining == 1):
                    with m.If((mismatch != 0) & (attempts < cfg.rram_max_attempts)):
                        m.d.sync += [mode.eq(Mode.WRITE), remaining.eq(P)]
                    with m.Else():
                        m.d.sync += [mode.eq(Mode.RESP), fail_mask.eq(mismatch), ok.eq(mismatch == 0)]
                        with m.If(mismatch != 0):
                            m.d.sync += verify_failures.eq(verify_failures + 1)
                with m.Else():
                    m.d.sync += remaining.eq(remaining - 1)
            with m.Case(Mode.RESP):
                with m.If(self.prog_resp.ready):
                    m.d.sync += mode.eq(Mode.IDLE)
            with m.Default():       # IDLE: wait for work (started below)
                pass

        # A new row write starts here; this overrides the transitions above.
        with m.If(prog_fire):
            m.d.sync += [
                mode.eq(Mode.WRITE), remaining.eq(P), attempts.eq(0),
                prog_row.eq(self.prog.payload.row),
                target.eq(self.prog.payload.weights.as_value()),
            ]
