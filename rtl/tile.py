"""A tile: network port, input buffer, CIM macro, accumulators, bias, post-processing.

Behaviour and timing are those of ``_Tile`` in :mod:`rramcim.model.chip_cycle`
(docs/isa.md, "Timing"), state for state:

* ``IDLE`` takes a header; ``RECV`` takes the payload words into a receive
  buffer, one per cycle; ``EXEC`` (one cycle) writes the input buffer, the
  bias or an accumulator (partial sums), or decodes a command;
* ``PROG`` offers a row to the macro, ``PROG_WAIT`` waits for its
  write-verify response (a failed row is reported to the controller in an
  ``ERR`` packet);
* ``MVM`` streams input vectors (or a one-hot row for ``read``) into the
  macro and writes each result into its accumulator the cycle it leaves;
* ``SEND`` sends packets: accumulator vectors (``out``, ``outq``, ``psum``),
  an ``ACK`` or an ``ERR``. The model reads a packet's accumulator vector when
  its header goes; the RTL forms the data words ahead, in two register
  stages (the vector, with the bias, in the header cycle; each word while
  the one before it goes), which gives the same words in the same cycles
  because nothing a tile sends changes while it sends. The cut keeps the
  accumulator read and the post-processing lanes out of the network's
  input path (the FPGA clock, docs/fpga.md).

Input buffer and accumulators are memories with combinational reads; they,
the bias and the macro's cells keep their content across a reset.
"""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, enum, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import Out, In

from ..model.chip import TILE_COUNTER_NAMES, PacketType
from ..model.config import Config
from ..model.isa import FORMATS, Op
from ..model.macro import FaultMap
from .counters import PRE_BITS, counter_indices, pre_counters
from .macro import Macro
from .noc.ni import NodeSignature, reads_ahead, walk_packets
from .postproc import ShiftClampLane, biased

__all__ = ["Tile", "TileState", "unpack", "field"]


class TileState(enum.Enum, shape=3):
    IDLE = 0
    RECV = 1
    EXEC = 2
    PROG = 3
    PROG_WAIT = 4
    MVM = 5
    SEND = 6


class SendOp(enum.Enum, shape=2):
    OUT = 0
    OUTQ = 1
    PSUM = 2
    ONE = 3          # a single packet: ACK (no payload) or ERR (one argument word)


def field(word, op_name: str, name: str):
    """Field ``name`` of instruction ``op_name`` in the 64-bit value ``word`` (from the ISA table)."""
    for f in FORMATS[op_name][1]:
        if f.name == name:
            return word[f.lsb:f.lsb + f.width]
    raise KeyError(f"{op_name} has no field {name}")


def unpack(words, n: int, bits: int, width: int) -> list:
    """The ``n`` ``bits``-wide elements packed in ``words`` (docs/isa.md, global-buffer layout)."""
    per = width // bits
    return [words[i // per][(i % per) * bits:(i % per + 1) * bits] for i in range(n)]


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
    running : In(1)
        The chip is running: events count in the performance counters.
    clear : In(1)
        Clear the counters (``start``).
    take : In(one bit a counter)
        The counter bank takes this pre-counter in this cycle (:mod:`.counters`).
    pre : Out(array of PRE_BITS)
        The pre-counters of ``TILE_COUNTER_NAMES``, in order.
    idle : Out(1)
        Nothing in progress (state ``IDLE`` and the macro idle).
    """

    def __init__(self, cfg: Config, faults: FaultMap | None = None, *, hard_crossbar: bool = False):
        self.cfg, self.faults, self.hard_crossbar = cfg, faults, hard_crossbar
        super().__init__({
            "node": Out(NodeSignature(cfg)),
            "running": In(1),
            "clear": In(1),
            "take": In(len(TILE_COUNTER_NAMES)),
            "pre": Out(data.ArrayLayout(PRE_BITS, len(TILE_COUNTER_NAMES))),
            "idle": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        W, A, X = cfg.flit_width, cfg.acc_bits, cfg.xbits
        node = self.node
        m.submodules.macro = macro = Macro(cfg, self.faults, hard_crossbar=self.hard_crossbar)

        state = Signal(TileState)
        m.d.comb += self.idle.eq((state == TileState.IDLE) & ~macro.status.busy)

        # Memories: input buffer (rows x xbits per slot), accumulators (cols x acc_bits per slot).
        m.submodules.ibuf = ibuf = Memory(shape=unsigned(cfg.rows * X), depth=cfg.tile_ibuf_depth, init=[])
        m.submodules.accmem = accmem = Memory(shape=unsigned(cfg.cols * A), depth=cfg.tile_acc_depth, init=[])
        ibuf_r, ibuf_w = ibuf.read_port(domain="comb"), ibuf.write_port()
        acc_r, acc_w = accmem.read_port(domain="comb"), accmem.write_port()
        acc_cols = [acc_r.data[c * A:(c + 1) * A].as_signed() for c in range(cfg.cols)]
        bias = [Signal(signed(A), name=f"bias{c}", reset_less=True) for c in range(cfg.cols)]

        # Receive buffer: argument word then data words (or the command's words).
        nbuf = max(cfg.words_x, cfg.words_w, cfg.words_a) + 1
        nbuf = max(nbuf, cfg.cmd_words)
        rbuf = [Signal(W, name=f"rbuf{i}") for i in range(nbuf)]
        rx_type = Signal(4)
        rx_k = Signal(range(nbuf + 1))
        arg = rbuf[0]
        vec = rbuf[1:]
        instr = Cat(*rbuf[:cfg.cmd_words])[:64]
        opcode = instr[:6]

        # Performance counters.
        incs = {name: [] for name in TILE_COUNTER_NAMES}

        def count(name, cond, amount=1):
            incs[name].append((cond, amount))

        count("busy", state != TileState.IDLE)

        # --- receive ------------------------------------------------------------------
        m.d.comb += [
            node.rx_header.ready.eq(state == TileState.IDLE),
            node.rx_payload.ready.eq(state == TileState.RECV),
        ]
        with m.If(node.rx_header.valid & node.rx_header.ready):
            m.d.sync += [rx_type.eq(node.rx_header.payload.type), rx_k.eq(0), state.eq(TileState.RECV)]
        with m.If(node.rx_payload.valid & node.rx_payload.ready):
            with m.Switch(rx_k):
                for i in range(nbuf):
                    with m.Case(i):
                        m.d.sync += rbuf[i].eq(node.rx_payload.payload.data)
            m.d.sync += rx_k.eq(rx_k + 1)
            with m.If(node.rx_payload.payload.last):
                m.d.sync += state.eq(TileState.EXEC)

        # --- the macro's ports --------------------------------------------------------
        mv_a = Signal(12)
        mv_b = Signal(12)
        mv_count = Signal(9)
        mv_acc = Signal()
        mv_onehot = Signal()
        mv_row = Signal(12)
        mv_i = Signal(9)
        mv_j = Signal(9)
        prog_weights = unpack(vec, cfg.cols, cfg.wbits, W)
        m.d.comb += [
            macro.prog.valid.eq(state == TileState.PROG),
            macro.prog.payload.row.eq(arg[:cfg.row_bits]),
            macro.prog.payload.weights.eq(Cat(*prog_weights)),
            macro.prog_resp.ready.eq(state == TileState.PROG_WAIT),
            macro.x.valid.eq((state == TileState.MVM) & (mv_i < mv_count)),
            macro.y.ready.eq(state == TileState.MVM),
            ibuf_r.addr.eq(mv_a + mv_i),
        ]
        onehot = Cat(*[Mux(mv_row == r, Const(1, X), Const(0, X)) for r in range(cfg.rows)])
        m.d.comb += macro.x.payload.eq(Mux(mv_onehot, onehot, ibuf_r.data))
        x_fire = macro.x.valid & macro.x.ready
        y_fire = macro.y.valid & macro.y.ready
        resp_fire = macro.prog_resp.valid & macro.prog_resp.ready
        count("macro_stall", macro.x.valid & ~macro.x.ready)
        count("macs", x_fire, cfg.rows * cfg.cols)
        count("mvms", x_fire)
        count("ibuf_read_bits", x_fire & ~mv_onehot, cfg.rows * X)
        attempts = macro.prog_resp.payload.attempts
        count("rram_pulses", resp_fire, attempts)
        count("rram_verify_reads", resp_fire, attempts)
        count("acc_read_bits", y_fire & mv_acc, cfg.cols * A)
        count("acc_write_bits", y_fire, cfg.cols * A)
        in_exec = state == TileState.EXEC
        count("ibuf_write_bits", in_exec & (rx_type == PacketType.ACT), cfg.rows * X)
        exec_psum = in_exec & ((rx_type == PacketType.PSUM) | (rx_type == PacketType.PSUM_T))
        count("acc_read_bits", exec_psum, cfg.cols * A)
        count("acc_write_bits", exec_psum, cfg.cols * A)

        # --- the sender ---------------------------------------------------------------
        s_op = Signal(SendOp)
        s_type = Signal(4)
        s_dest = Signal(node.tx_header.payload.dest.shape())
        s_len = Signal(8)
        s_count = Signal(9)
        s_v = Signal(9)
        s_b = Signal(12)
        s_arg = Signal(32)
        s_step = Signal(8)
        s_hdr = Signal()
        s_k = Signal(8)
        s_bias = Signal()
        s_shift = Signal(5)
        s_relu = Signal()

        hdr = node.tx_header.payload
        m.d.comb += [
            hdr.dest.eq(s_dest),
            hdr.type.eq(s_type),
            hdr.length.eq(s_len),
            node.tx_header.valid.eq((state == TileState.SEND) & s_hdr),
            node.tx_payload.valid.eq((state == TileState.SEND) & ~s_hdr),
        ]
        # The data words, in two register stages (the accumulators, the bias and the send
        # parameters do not change while a tile sends, so the words can be formed ahead of
        # the cycle they go out, and the timing is that of a word read in the cycle it is sent):
        # * ``row_q``: in every header cycle, the packet's accumulator vector s_b + s_v, with
        #   the bias added where the word gets it (``outq``, ``out`` with bias);
        # * ``word_q``: data word j of that vector: j = 0 is formed while the argument word is
        #   offered, j + 1 in the cycle data word j is taken.
        is_hdr = (state == TileState.SEND) & s_hdr
        add_bias = (s_op == SendOp.OUTQ) | (s_bias & (s_op == SendOp.OUT))
        row_q = [Signal(signed(A), name=f"row_q{c}") for c in range(cfg.cols)]
        with m.If(is_hdr):
            m.d.sync += [r.eq(biased(cfg, acc_cols[c], Mux(add_bias, bias[c], 0))) for c, r in enumerate(row_q)]
        jn = s_k          # the data word to form next
        per_a, per_q = W // A, W // X
        zero = Const(0, signed(A))

        def element(lane, per, words):
            """The column of ``row_q`` in ``lane`` of data word ``jn`` (``per`` lanes a word)."""
            cols = [lane + per * k for k in range(words)]
            return Array([row_q[c] if c < cfg.cols else zero for c in cols])[jn]

        a_lanes = [element(lane, per_a, cfg.words_a)[:A] for lane in range(per_a)]
        q_lanes = []
        for lane in range(per_q):
            pp = ShiftClampLane(cfg)
            m.submodules[f"pp{lane}"] = pp
            m.d.comb += [
                pp.a.eq(element(lane, per_q, cfg.words_q)),
                pp.shift.eq(s_shift),
                pp.relu.eq(s_relu),
            ]
            q_lanes.append(pp.y.as_unsigned())
        # lanes past the last column of the last word are zero (the model packs only `cols` elements)
        a_mask = Array([Const(_lane_mask(cfg.cols - k * per_a, per_a, A), per_a * A) for k in range(cfg.words_a)])
        q_mask = Array([Const(_lane_mask(cfg.cols - k * per_q, per_q, X), per_q * X) for k in range(cfg.words_q)])
        word_q = Signal(W)
        form = reads_ahead(node.tx_payload.valid, s_k, node.tx_payload.ready)
        with m.If(form):
            m.d.sync += word_q.eq(Mux(s_op == SendOp.OUTQ, Cat(*q_lanes) & q_mask[jn], Cat(*a_lanes) & a_mask[jn]))
        m.d.comb += node.tx_payload.payload.eq(Mux(s_k == 0, s_arg, word_q))

        tx_offered = node.tx_header.valid | node.tx_payload.valid
        tx_taken = (node.tx_header.valid & node.tx_header.ready) | (node.tx_payload.valid & node.tx_payload.ready)
        count("tx_stall", tx_offered & ~tx_taken)
        count("acc_read_bits", node.tx_header.valid & node.tx_header.ready & (s_op != SendOp.ONE),
              cfg.cols * A)

        # --- the accumulator memory's one read and one write port ------------------------
        # What it writes, one adder a column: an MVM result added to the accumulator (or not: mvm's
        # acc = 0) in MVM, a partial sum of the packet received added to it in EXEC.
        psum_in = unpack(vec, cfg.cols, A, W)
        acc_sum = Cat(*[(Mux(in_exec | mv_acc, acc_cols[c], 0)
                         + Mux(in_exec, psum_in[c].as_signed(), macro.y.payload[c]))[:A]
                        for c in range(cfg.cols)])
        with m.Switch(state):
            with m.Case(TileState.EXEC):
                m.d.comb += acc_r.addr.eq(arg[:12])
            with m.Case(TileState.SEND):
                m.d.comb += acc_r.addr.eq(s_b + s_v)
            with m.Default():
                m.d.comb += acc_r.addr.eq(mv_b + mv_j)

        # --- the state machine ----------------------------------------------------------
        def send_one(ptype, length, payload_word):
            return [s_op.eq(SendOp.ONE), s_type.eq(ptype), s_len.eq(length), s_count.eq(1), s_v.eq(0),
                    s_hdr.eq(1), s_k.eq(0), s_arg.eq(payload_word), s_dest.ctrl.eq(1), s_dest.x.eq(0),
                    s_dest.y.eq(0), state.eq(TileState.SEND)]

        with m.Switch(state):
            with m.Case(TileState.EXEC):
                self._exec(m, cfg, state, rx_type, arg, vec, instr, opcode, ibuf_w, acc_w, acc_sum, bias,
                           send_one, dict(a=mv_a, b=mv_b, count=mv_count, acc=mv_acc, onehot=mv_onehot,
                                                 row=mv_row, i=mv_i, j=mv_j),
                           dict(op=s_op, type=s_type, dest=s_dest, len=s_len, count=s_count, v=s_v, b=s_b,
                                arg=s_arg, step=s_step, hdr=s_hdr, k=s_k, bias=s_bias, shift=s_shift,
                                relu=s_relu))
            with m.Case(TileState.PROG):
                with m.If(macro.prog.ready):
                    m.d.sync += state.eq(TileState.PROG_WAIT)
            with m.Case(TileState.PROG_WAIT):
                with m.If(resp_fire):
                    with m.If(macro.prog_resp.payload.ok):
                        m.d.sync += state.eq(TileState.IDLE)
                    with m.Else():
                        m.d.sync += send_one(PacketType.ERR, 1, Cat(arg[16:32], arg[:12]))
            with m.Case(TileState.MVM):
                with m.If(x_fire):
                    m.d.sync += mv_i.eq(mv_i + 1)
                with m.If(y_fire):
                    m.d.comb += [acc_w.addr.eq(mv_b + mv_j), acc_w.en.eq(1), acc_w.data.eq(acc_sum)]
                    m.d.sync += mv_j.eq(mv_j + 1)
                    with m.If(mv_j + 1 == mv_count):
                        m.d.sync += state.eq(TileState.IDLE)
            with m.Case(TileState.SEND):
                walk_packets(m, tx_taken, s_hdr, s_k, s_len, s_v, s_count,
                             next_packet=[s_arg.eq(s_arg + s_step)], done=[state.eq(TileState.IDLE)])

        pre = pre_counters(m, incs, period=len(counter_indices(cfg)), clear=self.clear, running=self.running,
                           take=self.take)
        m.d.comb += [self.pre[k].eq(p) for k, p in enumerate(pre)]
        return m

    def _exec(self, m, cfg, state, rx_type, arg, vec, instr, opcode, ibuf_w, acc_w, acc_sum, bias,
              send_one, mv, s):
        """``EXEC``: act on the packet just received (one cycle)."""
        W, A, X = cfg.flit_width, cfg.acc_bits, cfg.xbits
        m.d.sync += state.eq(TileState.IDLE)
        with m.Switch(rx_type):
            with m.Case(PacketType.ACT):
                m.d.comb += [ibuf_w.addr.eq(arg[:12]), ibuf_w.en.eq(1),
                             ibuf_w.data.eq(Cat(*unpack(vec, cfg.rows, X, W)))]
            with m.Case(PacketType.BIAS):
                m.d.sync += [b.eq(e.as_signed()) for b, e in zip(bias, unpack(vec, cfg.cols, A, W))]
            with m.Case(PacketType.PSUM, PacketType.PSUM_T):
                m.d.comb += [acc_w.addr.eq(arg[:12]), acc_w.en.eq(1), acc_w.data.eq(acc_sum)]
                with m.If(rx_type == PacketType.PSUM_T):
                    m.d.sync += send_one(PacketType.ACK, 0, 0)
            with m.Case(PacketType.WROW):
                m.d.sync += state.eq(TileState.PROG)
            with m.Case(PacketType.CMD):
                with m.Switch(opcode):
                    with m.Case(Op.MVM):
                        m.d.sync += [mv["a"].eq(field(instr, "mvm", "a")), mv["b"].eq(field(instr, "mvm", "b")),
                                     mv["count"].eq(field(instr, "mvm", "count")),
                                     mv["acc"].eq(field(instr, "mvm", "acc")), mv["onehot"].eq(0),
                                     mv["i"].eq(0), mv["j"].eq(0), state.eq(TileState.MVM)]
                    with m.Case(Op.READ):
                        m.d.sync += [mv["a"].eq(0), mv["b"].eq(field(instr, "read", "b")), mv["count"].eq(1),
                                     mv["acc"].eq(0), mv["onehot"].eq(1), mv["row"].eq(field(instr, "read", "row")),
                                     mv["i"].eq(0), mv["j"].eq(0), state.eq(TileState.MVM)]
                    with m.Case(Op.SYNC):
                        m.d.sync += send_one(PacketType.ACK, 0, 0)
                    for op, name in ((Op.OUT, "out"), (Op.OUTQ, "outq"), (Op.PSUM, "psum")):
                        with m.Case(op):
                            common = [s["count"].eq(field(instr, name, "count")), s["v"].eq(0),
                                      s["b"].eq(field(instr, name, "b")), s["hdr"].eq(1), s["k"].eq(0),
                                      state.eq(TileState.SEND)]
                            if op == Op.PSUM:
                                m.d.sync += common + [
                                    s["op"].eq(SendOp.PSUM), s["type"].eq(PacketType.PSUM_T),
                                    s["len"].eq(1 + cfg.words_a), s["arg"].eq(field(instr, name, "d")),
                                    s["step"].eq(1), s["dest"].x.eq(field(instr, name, "dx")),
                                    s["dest"].y.eq(field(instr, name, "dy")), s["dest"].ctrl.eq(0)]
                            else:
                                words = cfg.words_a if op == Op.OUT else cfg.words_q
                                m.d.sync += common + [
                                    s["op"].eq(SendOp.OUT if op == Op.OUT else SendOp.OUTQ),
                                    s["type"].eq(PacketType.RESULT), s["len"].eq(1 + words),
                                    s["arg"].eq(field(instr, name, "gaddr")), s["step"].eq(words),
                                    s["dest"].x.eq(0), s["dest"].y.eq(0), s["dest"].ctrl.eq(1)]
                                if op == Op.OUT:
                                    m.d.sync += [s["bias"].eq(field(instr, name, "bias"))]
                                else:
                                    m.d.sync += [s["shift"].eq(field(instr, name, "shift")),
                                                 s["relu"].eq(field(instr, name, "relu"))]


def _lane_mask(left: int, per: int, bits: int) -> int:
    """The bits of a word whose lanes hold one of the ``left`` remaining elements."""
    n = max(0, min(per, left))
    return (1 << (n * bits)) - 1
