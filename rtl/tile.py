"""A tile: network port, input buffer, CIM macro, accumulators, bias, post-processing.

Behaviour and timing are those of :class:`rramcim.model.chip_cycle.TileModel`
(docs/isa.md, "Timing"), state for state:

* ``IDLE`` takes a header; ``RECV`` takes the payload words into a receive
  buffer, one per cycle; ``EXEC`` (one cycle) writes the input buffer, the
  bias or an accumulator (partial sums), or decodes a command;
* ``PROG`` offers a row to the macro, ``PROG_WAIT`` waits for its
  write-verify response (a failed row is reported to the controller in an
  ``ERR`` packet);
* ``MVM`` streams input vectors (or a one-hot row for ``read``) into the
  macro and writes each result into its accumulator the cycle it leaves;
  with banks (``cfg.banks`` > 1) each vector goes with its bank (``bank``,
  or ``bank + i`` for vector ``i`` of an ``mvm`` with ``reduce``, whose
  results all go into slot ``b``, added to it after the first);
* ``SEND`` sends packets: accumulator vectors (``out``, ``outq``, ``psum``),
  an ``ACK`` or an ``ERR``. A :class:`~.sender.PacketSender` walks the
  packets (headers, argument words); :class:`~.tile_words.ResultWords` forms
  the data words from the accumulators, ahead of the cycle each goes, which
  gives the model's words in the model's cycles because nothing a tile sends
  changes while it sends.

Input buffer and accumulators are memories with combinational reads; they,
the bias and the macro's cells keep their content across a reset. The
performance counters' pre-counters are on ``counters`` (:mod:`.counters`).
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, enum, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import Out

from ..model.config import Config
from ..model.encoding import (ERR_ARG, HEADER_TYPE_BITS, SLOT_ARG, TILE_COUNTER_NAMES, WROW_ARG, PacketType,
                              fields_width)
from ..model.isa import COUNT_MAX, INSTR_BITS, OPCODE_BITS, Op, isa_field
from ..model.macro import FaultMap
from .counters import CounterPort, counter_indices, pre_counters
from .crossbar import check_faults
from .fields import instr_field, layout, unpack
from .macro import Macro
from .noc.ni import NodeSignature
from .postlane import RQ_BITS, PostLane
from .sender import PacketSender
from .stream import RxState, StreamPart
from .tile_words import ResultWords, SendOp, mode_layout

__all__ = ["Tile", "TileState"]


class TileState(enum.Enum, shape=3):
    IDLE = 0
    RECV = 1
    EXEC = 2
    PROG = 3
    PROG_WAIT = 4
    MVM = 5
    SEND = 6
    STREAM = 7


def mvm_layout(cfg: Config) -> data.StructLayout:
    """The MVM sequencer's registers: input-buffer slot ``a``, accumulator slot ``b``, ``count``
    vectors, ``acc`` (add to the accumulator), ``onehot`` (a ``read``: the one-hot ``row``
    instead of an input vector), ``i`` vectors offered and ``j`` results written; with banks,
    the ``bank`` and the ``reduce`` flag (the controller has checked that ``bank`` + the
    vectors of a reduction fit ``banks``, so ``bank_bits`` hold every bank used)."""
    fields = {
        "a": isa_field("mvm", "a").width, "b": isa_field("mvm", "b").width, "count": range(COUNT_MAX + 1),
        "acc": isa_field("mvm", "acc").width, "onehot": 1, "row": isa_field("read", "row").width,
        "i": range(COUNT_MAX + 1), "j": range(COUNT_MAX + 1),
    }
    if cfg.banks > 1:
        fields |= {"bank": cfg.bank_bits, "reduce": isa_field("mvm", "reduce").width}
    return data.StructLayout(fields)


class Tile(wiring.Component):
    """Parameters
    ----------
    cfg : Config
    faults : FaultMap or None
        Stuck cells of this tile's crossbar.
    hard_crossbar : bool
        Instantiate the crossbar by module name (Verilog output), see :class:`~.macro.Macro`.

    Members
    -------
    node : Out(NodeSignature)
        To the network (the tile's NI).
    counters : Out(CounterPort(len(TILE_COUNTER_NAMES)))
        The pre-counters of ``TILE_COUNTER_NAMES``, in order (:mod:`.counters`).
    idle : Out(1)
        Nothing in progress (state ``IDLE`` and the macro idle).
    """

    def __init__(self, cfg: Config, faults: FaultMap | None = None, *, hard_crossbar: bool = False):
        check_faults(self, cfg, faults)
        self.cfg, self.faults, self.hard_crossbar = cfg, faults, hard_crossbar
        super().__init__({
            "node": Out(NodeSignature(cfg)),
            "counters": Out(CounterPort(len(TILE_COUNTER_NAMES))),
            "idle": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        t = _TileLogic(self, m)
        t.receive()
        t.macro_ports()
        t.send_path()
        t.acc_port()
        t.fsm()
        t.seq.build()
        pre_counters(m, t.incs, period=len(counter_indices(self.cfg)), port=self.counters)
        return m


class _TileLogic:
    """The tile's parts and registers while it is elaborated, built into ``m`` part by part."""

    def __init__(self, tile: Tile, m: Module):
        cfg = self.cfg = tile.cfg
        self.m, self.node = m, tile.node
        X, A = cfg.xbits, cfg.acc_bits
        m.submodules.macro = self.macro = Macro(cfg, tile.faults, hard_crossbar=tile.hard_crossbar)
        m.submodules.sender = self.sender = PacketSender(cfg)
        m.submodules.words = self.words = ResultWords(cfg)

        self.state = Signal(TileState)
        m.d.comb += tile.idle.eq((self.state == TileState.IDLE) & ~self.macro.status.busy)

        # Memories: input buffer (rows x xbits per slot), accumulators (cols x acc_bits per slot).
        m.submodules.ibuf = ibuf = Memory(shape=unsigned(cfg.rows * X), depth=cfg.tile_ibuf_depth, init=[])
        m.submodules.accmem = self.accmem = accmem = Memory(shape=unsigned(cfg.cols * A), depth=cfg.tile_acc_depth,
                                                           init=[])
        self.ibuf_r, self.ibuf_w = ibuf.read_port(domain="comb"), ibuf.write_port()
        self.acc_r, self.acc_w = accmem.read_port(domain="comb"), accmem.write_port()
        self.acc_cols = [self.acc_r.data[c * A:(c + 1) * A].as_signed() for c in range(cfg.cols)]
        self.bias = Signal(data.ArrayLayout(signed(A), cfg.cols), reset_less=True)
        # the requant vector's halves (ldrq; chips with the requant unit)
        self.rq0 = Signal(data.ArrayLayout(RQ_BITS, cfg.cols), reset_less=True)
        self.rq1 = Signal(data.ArrayLayout(RQ_BITS, cfg.cols), reset_less=True)
        # the post-processing lanes' results (send_path), for the packet sender's words and the sequence's
        self.lane_y = [Signal(signed(X), name=f"lane_y{k}") for k in range(cfg.flit_width // X)]

        # Receive buffer: argument word then data words (or the command's words).
        nbuf = max(cfg.words_x, cfg.words_w, cfg.words_a, cfg.seq_words if cfg.streams else 0) + 1
        self.nbuf = max(nbuf, cfg.cmd_words)
        self.rbuf = [Signal(cfg.flit_width, name=f"rbuf{i}") for i in range(self.nbuf)]
        self.rx_type = Signal(HEADER_TYPE_BITS)
        self.arg = self.rbuf[0]
        # the argument word as an ACT / PSUM / PSUM_T packet's slot, or as a WROW packet's row and pc
        self.slot_arg = layout(SLOT_ARG)(self.arg[:fields_width(SLOT_ARG)])
        self.wrow_arg = layout(WROW_ARG)(self.arg[:fields_width(WROW_ARG)])
        self.vec = self.rbuf[1:]
        self.instr = Cat(*self.rbuf[:cfg.cmd_words])[:INSTR_BITS]
        self.mv = mv = Signal(mvm_layout(cfg))
        if cfg.banks > 1:
            # mvm with reduce: every result into slot b, the first one as acc says, the others added
            self.mv_slot = Mux(mv.reduce, mv.b, mv.b + mv.j)
            self.mv_add = mv.acc | (mv.reduce & (mv.j != 0))
        else:
            self.mv_slot, self.mv_add = mv.b + mv.j, mv.acc
        self.mode = Signal(mode_layout())        # what the sender's data words are
        self.rx_k = Signal(range(self.nbuf + 1))
        self.STREAM, self.IDLE = TileState.STREAM, TileState.IDLE
        self.seq = StreamPart(self)             # the standing sequence (STREAM)

        # Performance counters: name -> (condition, amount) terms.
        self.incs = {name: [] for name in TILE_COUNTER_NAMES}
        self.count("busy", self.state != TileState.IDLE)

    def count(self, name, cond, amount=1):
        self.incs[name].append((cond, amount))

    def receive(self):
        """``IDLE`` takes a header, ``RECV`` the payload words into ``rbuf`` (in ``STREAM``, the
        sequence's receive part decides, :class:`~.stream.StreamPart`). A ``CREDIT`` no sequence
        waits for is dropped."""
        m, node, state, seq = self.m, self.node, self.state, self.seq
        rx_k = self.rx_k
        m.d.comb += [
            node.rx_header.ready.eq((state == TileState.IDLE) | (seq.active & (seq.srx != RxState.RECV))),
            node.rx_payload.ready.eq((state == TileState.RECV) | (seq.active & (seq.srx == RxState.RECV))),
        ]
        with m.If(node.rx_header.valid & (state == TileState.IDLE)
                  & (node.rx_header.payload.type != PacketType.CREDIT)):
            m.d.sync += [self.rx_type.eq(node.rx_header.payload.type), rx_k.eq(0), state.eq(TileState.RECV)]
        with m.If(node.rx_payload.valid & node.rx_payload.ready):
            with m.Switch(rx_k):
                for i in range(self.nbuf):
                    with m.Case(i):
                        m.d.sync += self.rbuf[i].eq(node.rx_payload.payload.data)
            m.d.sync += rx_k.eq(rx_k + 1)
            with m.If(node.rx_payload.payload.last & (state == TileState.RECV)):
                m.d.sync += state.eq(TileState.EXEC)

    def macro_ports(self):
        """The macro's ports: a row to program (``PROG``), input vectors in and results out (``MVM``)."""
        m, cfg, macro, mv, state, seq = self.m, self.cfg, self.macro, self.mv, self.state, self.seq
        X, A = cfg.xbits, cfg.acc_bits
        m.d.comb += [
            macro.prog.valid.eq(state == TileState.PROG),
            macro.prog.payload.row.eq(self.wrow_arg.row),
            macro.prog.payload.weights.eq(Cat(*unpack(self.vec, cfg.cols, cfg.wbits, cfg.flit_width))),
            macro.prog_resp.ready.eq(state == TileState.PROG_WAIT),
            macro.x.valid.eq(((state == TileState.MVM) & (mv.i < mv.count)) | seq.x_valid),
            macro.y.ready.eq((state == TileState.MVM) | seq.y_ok),
            self.ibuf_r.addr.eq(Mux(seq.active, seq.ixp, mv.a + mv.i)),
        ]
        onehot = Cat(*[Mux(mv.row == r, Const(1, X), Const(0, X)) for r in range(cfg.rows)])
        m.d.comb += macro.x.payload.eq(Mux(mv.onehot, onehot, self.ibuf_r.data))
        if cfg.banks > 1:       # a standing sequence computes with bank 0 (StreamPart.start clears bank and reduce)
            m.d.comb += macro.bank.eq(Mux(mv.reduce, mv.bank + mv.i, mv.bank))
        self.x_fire = macro.x.valid & macro.x.ready
        self.y_fire = macro.y.valid & macro.y.ready
        self.resp_fire = macro.prog_resp.valid & macro.prog_resp.ready
        count = self.count
        count("macro_stall", macro.x.valid & ~macro.x.ready)
        count("macs", self.x_fire, cfg.rows * cfg.cols)
        count("mvms", self.x_fire)
        count("ibuf_read_bits", self.x_fire & ~mv.onehot, cfg.rows * X)
        attempts = macro.prog_resp.payload.attempts
        count("rram_pulses", self.resp_fire, attempts)
        count("rram_verify_reads", self.resp_fire, attempts)
        count("acc_read_bits", self.y_fire & self.mv_add, cfg.cols * A)
        count("acc_write_bits", self.y_fire, cfg.cols * A)
        in_exec = state == TileState.EXEC
        count("ibuf_write_bits", in_exec & (self.rx_type == PacketType.ACT), cfg.rows * X)
        exec_psum = in_exec & ((self.rx_type == PacketType.PSUM) | (self.rx_type == PacketType.PSUM_T))
        count("acc_read_bits", exec_psum, cfg.cols * A)
        count("acc_write_bits", exec_psum, cfg.cols * A)

    def send_path(self):
        """The sender to the node's transmit half, its data words from the accumulators."""
        m, cfg, sender, words, seq = self.m, self.cfg, self.sender, self.words, self.seq
        nh, np_, sh, sp = self.node.tx_header, self.node.tx_payload, sender.tx_header, sender.tx_payload
        # the sequence's own sender in STREAM (the packet sender is idle then)
        m.d.comb += [nh.valid.eq(Mux(seq.active, seq.hv, sh.valid)),
                     nh.payload.dest.eq(Mux(seq.active, seq.s_dest, sh.payload.dest)),
                     nh.payload.type.eq(Mux(seq.active, seq.s_type, sh.payload.type)),
                     nh.payload.length.eq(Mux(seq.active, seq.s_len, sh.payload.length)),
                     nh.payload.src.eq(sh.payload.src),
                     sh.ready.eq(nh.ready & ~seq.active),
                     np_.valid.eq(Mux(seq.active, seq.pv, sp.valid)),
                     np_.payload.eq(Mux(seq.active, seq.s_data, sp.payload)),
                     sp.ready.eq(np_.ready & ~seq.active)]
        wiring.connect(m, sender.words, words.words)
        m.d.comb += [words.mode.eq(self.mode), words.row.eq(self.acc_r.data), words.bias.eq(self.bias),
                     words.rq0.eq(self.rq0), words.rq1.eq(self.rq1)]
        # one set of post-processing lanes (shift, or requant), shared: the sequence's sender uses them in
        # STREAM, the packet sender (its data words, ResultWords) otherwise; the two never send at once
        d = seq.d
        for k, y in enumerate(self.lane_y):
            pp = PostLane(cfg)
            m.submodules[f"pp{k}"] = pp
            if seq.enabled:
                m.d.comb += [pp.a.eq(Mux(seq.active, seq.lane_a[k], words.lane_a[k])),
                             pp.shift.eq(Mux(seq.active, d.shift, self.mode.shift)),
                             pp.relu.eq(Mux(seq.active, d.relu, self.mode.relu))]
            else:
                m.d.comb += [pp.a.eq(words.lane_a[k]), pp.shift.eq(self.mode.shift), pp.relu.eq(self.mode.relu)]
            if cfg.has_requant:
                if seq.enabled:
                    m.d.comb += [pp.rq.eq(Mux(seq.active, d.rq, self.mode.rq)),
                                 pp.e0.eq(Mux(seq.active, seq.lane_e0[k], words.lane_e0[k])),
                                 pp.e1.eq(Mux(seq.active, seq.lane_e1[k], words.lane_e1[k]))]
                else:
                    m.d.comb += [pp.rq.eq(self.mode.rq), pp.e0.eq(words.lane_e0[k]), pp.e1.eq(words.lane_e1[k])]
            m.d.comb += [y.eq(pp.y), words.lane_y[k].eq(pp.y)]
        self.count("tx_stall", sender.stall)
        self.count("acc_read_bits", sender.tx_header.valid & sender.tx_header.ready & (self.mode.op != SendOp.ONE),
                   cfg.cols * cfg.acc_bits)

    def acc_port(self):
        """The accumulator memory's read address, and what its write port writes: one adder a
        column, an MVM result added to the accumulator (or not: mvm's acc = 0, the first result of
        a reduction without acc) in ``MVM``, a partial sum of the packet received added to it in
        ``EXEC``."""
        m, cfg, state = self.m, self.cfg, self.state
        in_exec = state == TileState.EXEC
        psum_in = unpack(self.vec, cfg.cols, cfg.acc_bits, cfg.flit_width)
        self.acc_sum = Cat(*[(Mux(in_exec | self.mv_add, self.acc_cols[c], 0)
                              + Mux(in_exec, psum_in[c].as_signed(), self.macro.y.payload[c]))[:cfg.acc_bits]
                             for c in range(cfg.cols)])
        with m.Switch(state):
            with m.Case(TileState.EXEC):
                m.d.comb += self.acc_r.addr.eq(self.slot_arg.slot)
            with m.Case(TileState.SEND):
                m.d.comb += self.acc_r.addr.eq(self.words.slot)
            with m.Case(TileState.STREAM):
                m.d.comb += self.acc_r.addr.eq(self.seq.sp)
            with m.Default():
                m.d.comb += self.acc_r.addr.eq(self.mv_slot)

    def send(self, mode_op, ptype, length, *, count=1, arg=0, step=0, ctrl=1, x=0, y=0):
        """Start the sender on a walk (in this cycle; it is idle) and go to ``SEND``."""
        job = self.sender.job
        self.m.d.comb += [job.valid.eq(1), job.payload.type.eq(ptype), job.payload.length.eq(length),
                          job.payload.count.eq(count), job.payload.arg.eq(arg), job.payload.step.eq(step),
                          job.payload.dest.ctrl.eq(ctrl), job.payload.dest.x.eq(x), job.payload.dest.y.eq(y)]
        self.m.d.sync += [self.mode.op.eq(mode_op), self.state.eq(TileState.SEND)]

    def fsm(self):
        """The state machine, but for ``IDLE`` and ``RECV`` (:meth:`receive`)."""
        m, state, macro, mv = self.m, self.state, self.macro, self.mv
        with m.Switch(state):
            with m.Case(TileState.EXEC):
                self.exec_packet()
            with m.Case(TileState.PROG):
                with m.If(macro.prog.ready):
                    m.d.sync += state.eq(TileState.PROG_WAIT)
            with m.Case(TileState.PROG_WAIT):
                with m.If(self.resp_fire):
                    with m.If(macro.prog_resp.payload.ok):
                        m.d.sync += state.eq(TileState.IDLE)
                    with m.Else():
                        err = Signal(layout(ERR_ARG))
                        m.d.comb += [err.pc.eq(self.wrow_arg.pc), err.row.eq(self.wrow_arg.row[:self.cfg.rram_row_bits])]
                        self.send(SendOp.ONE, PacketType.ERR, 1, arg=err)
            with m.Case(TileState.MVM):
                with m.If(self.x_fire):
                    m.d.sync += mv.i.eq(mv.i + 1)
                with m.If(self.y_fire):
                    m.d.comb += [self.acc_w.addr.eq(self.mv_slot), self.acc_w.en.eq(1),
                                 self.acc_w.data.eq(self.acc_sum)]
                    m.d.sync += mv.j.eq(mv.j + 1)
                    with m.If(mv.j + 1 == mv.count):
                        m.d.sync += state.eq(TileState.IDLE)
            with m.Case(TileState.SEND):
                with m.If(self.sender.done):
                    m.d.sync += state.eq(TileState.IDLE)

    def exec_packet(self):
        """``EXEC``: act on the packet just received (one cycle)."""
        m, cfg, rx_type, vec = self.m, self.cfg, self.rx_type, self.vec
        W, A, X = cfg.flit_width, cfg.acc_bits, cfg.xbits
        m.d.sync += self.state.eq(TileState.IDLE)
        with m.Switch(rx_type):
            with m.Case(PacketType.ACT):
                m.d.comb += [self.ibuf_w.addr.eq(self.slot_arg.slot), self.ibuf_w.en.eq(1),
                             self.ibuf_w.data.eq(Cat(*unpack(vec, cfg.rows, X, W)))]
            with m.Case(PacketType.BIAS):
                m.d.sync += [self.bias[c].eq(e.as_signed()) for c, e in enumerate(unpack(vec, cfg.cols, A, W))]
            if cfg.has_requant:
                with m.Case(PacketType.RQ):
                    for half, reg in enumerate((self.rq0, self.rq1)):
                        with m.If(self.slot_arg.slot[0] == half):
                            m.d.sync += [reg[c].eq(e) for c, e in enumerate(unpack(vec, cfg.cols, A, W))]
            with m.Case(PacketType.PSUM, PacketType.PSUM_T):
                m.d.comb += [self.acc_w.addr.eq(self.slot_arg.slot), self.acc_w.en.eq(1),
                             self.acc_w.data.eq(self.acc_sum)]
                with m.If(rx_type == PacketType.PSUM_T):
                    self.send(SendOp.ONE, PacketType.ACK, 0)
            with m.Case(PacketType.WROW):
                m.d.sync += self.state.eq(TileState.PROG)
            with m.Case(PacketType.SEQ):
                m.d.sync += self.seq.start()
            with m.Case(PacketType.CMD):
                self.exec_command()

    def exec_command(self):
        """``EXEC`` of a ``CMD`` packet: start an MVM or a read, answer a ``sync``, start sending."""
        m, instr, mv = self.m, self.instr, self.mv
        banked = self.cfg.banks > 1
        with m.Switch(instr[:OPCODE_BITS]):
            with m.Case(Op.MVM):
                m.d.sync += [mv.a.eq(instr_field(instr, "mvm", "a")), mv.b.eq(instr_field(instr, "mvm", "b")),
                             mv.count.eq(instr_field(instr, "mvm", "count")),
                             mv.acc.eq(instr_field(instr, "mvm", "acc")),
                             mv.onehot.eq(0), mv.i.eq(0), mv.j.eq(0), self.state.eq(TileState.MVM)]
                if banked:
                    m.d.sync += [mv.bank.eq(instr_field(instr, "mvm", "bank")),
                                 mv.reduce.eq(instr_field(instr, "mvm", "reduce"))]
            with m.Case(Op.READ):
                m.d.sync += [mv.a.eq(0), mv.b.eq(instr_field(instr, "read", "b")), mv.count.eq(1), mv.acc.eq(0),
                             mv.onehot.eq(1), mv.row.eq(instr_field(instr, "read", "row")), mv.i.eq(0), mv.j.eq(0),
                             self.state.eq(TileState.MVM)]
                if banked:
                    m.d.sync += [mv.bank.eq(instr_field(instr, "read", "bank")), mv.reduce.eq(0)]
            with m.Case(Op.SYNC):
                self.send(SendOp.ONE, PacketType.ACK, 0)
            for op, name in ((Op.OUT, "out"), (Op.OUTQ, "outq"), (Op.PSUM, "psum")):
                with m.Case(op):
                    self.exec_send(op, name)

    def exec_send(self, op, name):
        """``EXEC`` of ``out``, ``outq`` or ``psum``: ``count`` accumulator vectors from slot ``b``."""
        m, cfg, instr, mode = self.m, self.cfg, self.instr, self.mode
        n = instr_field(instr, name, "count")
        m.d.sync += mode.b.eq(instr_field(instr, name, "b"))
        if op == Op.PSUM:
            self.send(SendOp.PSUM, PacketType.PSUM_T, 1 + cfg.words_a, count=n, arg=instr_field(instr, name, "d"),
                      step=1, ctrl=0, x=instr_field(instr, name, "dx"), y=instr_field(instr, name, "dy"))
        elif op == Op.OUT:
            self.send(SendOp.OUT, PacketType.RESULT, 1 + cfg.words_a, count=n, arg=instr_field(instr, name, "gaddr"),
                      step=cfg.words_a)
            m.d.sync += mode.bias.eq(instr_field(instr, name, "bias"))
        else:
            self.send(SendOp.OUTQ, PacketType.RESULT, 1 + cfg.words_q, count=n, arg=instr_field(instr, name, "gaddr"),
                      step=cfg.words_q)
            m.d.sync += [mode.shift.eq(instr_field(instr, name, "shift")),
                         mode.relu.eq(instr_field(instr, name, "relu"))]
            if cfg.has_requant:
                m.d.sync += mode.rq.eq(instr_field(instr, name, "rq"))
