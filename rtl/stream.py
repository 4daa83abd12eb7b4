"""A tile's standing sequence (the ``STREAM`` state), built into the tile's module.

Behaviour and timing are those of :class:`rramcim.model.stream.StreamEngine` (docs/isa.md,
"Standing sequences"): in ``STREAM`` the tile's three parts work at once, each on its own
registers, and each cycle's next values are formed first (``*_n``) so that the end of the
sequence is seen in the cycle it happens, as the model sees it:

* receive (``srx``: idle, recv, exec): ``XS`` into the input ring, ``PS`` into the
  accumulator ring (set), ``CREDIT`` counted at its header; a header is taken in the exec
  cycle too; the receive buffer is cleared with each header, so that a packet shorter than
  a vector leaves zeros;
* compute: the macro takes input ``ix`` once it is written; result ``j`` is written into
  slot ``j % aring`` (added to the partial sum there with ``join``) through a second read
  port of the accumulators, never in a cycle that writes a ``PS``;
* send: a sender of its own, chosen combinationally when free (``ACK``, input credit,
  accumulator credit, result), so that a header goes in the cycle the model chooses it;
  the choice is held until the header is taken. The result's vector (bias added where it
  is sent with it) is loaded into ``row_q`` in every cycle the sender is free, a write to
  the slot in that cycle forwarded, and each data word is formed from it as it goes.
"""

from amaranth.hdl import Array, Cat, Const, Mux, Signal, signed
from amaranth.lib import enum

from ..model.encoding import SEQ_DESC, SEQ_FANOUT, PacketType, SeqOp, fields_width
from .fields import layout, unpack
from .postlane import RQ_BITS
from .postproc import biased

__all__ = ["StreamPart", "SendKind"]

COUNT_BITS = 17            # vectors (16-bit count) and one more for comparisons


class SendKind(enum.Enum, shape=3):
    NONE = 0
    ACK = 1
    XCRED = 2
    PCRED = 3
    RESULT = 4             # a result's header (held until taken)
    PAYLOAD = 5            # a result's payload words


class RxState(enum.Enum, shape=2):
    IDLE = 0
    RECV = 1
    EXEC = 2


class StreamPart:
    """The ``STREAM`` state of a tile (:class:`~.tile._TileLogic` ``t``), built into ``t.m``."""

    def __init__(self, t):
        self.t = t
        cfg, m = t.cfg, t.m
        self.d = Signal(layout(SEQ_DESC), name="seq_desc")
        self.enabled = bool(cfg.streams)          # a config without streams: no sequence part at all
        self.active = (t.state == t.STREAM) if self.enabled else Const(0)
        for name in ("wx", "wp", "ix", "j", "sent"):
            setattr(self, name, Signal(COUNT_BITS, name=f"seq_{name}"))
        for name, depth in (("wxp", cfg.tile_ibuf_depth), ("ixp", cfg.tile_ibuf_depth), ("wpp", cfg.tile_acc_depth),
                            ("jp", cfg.tile_acc_depth), ("sp", cfg.tile_acc_depth)):
            setattr(self, name, Signal(range(max(2, depth)), name=f"seq_{name}"))
        self.xcred = Signal(COUNT_BITS, name="seq_xcred")
        self.pcred = Signal(COUNT_BITS, name="seq_pcred")
        # credits toward each destination, and the destination of the result ``sent`` next
        self.credits = Array(Signal(COUNT_BITS, name=f"seq_credits{k}") for k in range(SEQ_FANOUT))
        self.copy = Signal(range(SEQ_FANOUT), name="seq_copy")
        self.ack = Signal(name="seq_ack")
        self.kind = Signal(SendKind, name="seq_kind")
        self.pk = Signal(8, name="seq_pk")                  # payload word offered
        self.raddr = Signal(len(self.d.gaddr) + 1, name="seq_raddr")
        self.srx = Signal(RxState, name="seq_rx")
        self.nwords = Signal(8, name="seq_nwords")          # data words of a result
        self.acc_r2 = t.accmem.read_port(domain="comb") if self.enabled else None
        self.to_ctrl = (self.d.op == SeqOp.OUT_CTRL) | (self.d.op == SeqOp.OUTQ_CTRL)
        # what the tile's other parts take from this one (driven by build())
        self.x_valid, self.y_ok = Signal(name="seq_x_valid"), Signal(name="seq_y_ok")
        self.hv, self.pv = Signal(name="seq_hv"), Signal(name="seq_pv")
        hl = t.node.tx_header.payload           # the header's fields but the source (the NI's to fill in)
        self.s_dest = Signal.like(hl.dest, name="seq_dest")
        self.s_type = Signal.like(hl.type, name="seq_type")
        self.s_len = Signal.like(hl.length, name="seq_len")
        self.s_data = Signal(cfg.flit_width, name="seq_data")
        self.quant = (self.d.op == SeqOp.XS_TILE) | (self.d.op == SeqOp.OUTQ_CTRL)
        # what the tile's post-processing lanes take while the sequence sends (it shares them: _TileLogic.send_path)
        per_q = cfg.flit_width // cfg.xbits
        self.lane_a = [Signal(signed(cfg.acc_bits), name=f"seq_lane_a{k}") for k in range(per_q)]
        self.lane_e0 = [Signal(RQ_BITS, name=f"seq_lane_e0_{k}") for k in range(per_q)]
        self.lane_e1 = [Signal(RQ_BITS, name=f"seq_lane_e1_{k}") for k in range(per_q)]

    @staticmethod
    def _wrap(reg, depth):
        """The next slot of a ring pointer over ``depth`` slots (the ring's length ``depth``)."""
        return Mux(reg + 1 == depth, 0, reg + 1)

    # --- the SEQ packet's exec cycle -----------------------------------------------------------

    def start(self):
        """Statements of the exec cycle of a ``SEQ`` packet: load the descriptor, start."""
        t, cfg = self.t, self.t.cfg
        if not self.enabled:            # the controller has no ldseq: no SEQ packet comes
            return []
        desc = Cat(*t.vec)[:fields_width(SEQ_DESC)]
        d = layout(SEQ_DESC)(desc)
        per_a, per_q = cfg.flit_width // cfg.acc_bits, cfg.flit_width // cfg.xbits
        quant = (d.op == SeqOp.XS_TILE) | (d.op == SeqOp.OUTQ_CTRL)
        nw = Mux(quant, (d.ncols + per_q - 1) // per_q, (d.ncols + per_a - 1) // per_a)
        return [self.d.eq(desc), self.nwords.eq(nw), self.raddr.eq(d.gaddr), self.copy.eq(0),
                *[c.eq(d.credits) for c in self.credits], self.ack.eq(1), self.kind.eq(SendKind.NONE), self.srx.eq(RxState.IDLE),
                *[getattr(self, n).eq(0) for n in ("wx", "wp", "ix", "j", "sent", "wxp", "ixp", "wpp", "jp", "sp",
                                                    "xcred", "pcred")],
                t.mv.onehot.eq(0), t.mv.acc.eq(d.join), t.state.eq(t.STREAM),
                # the tile's MVM registers drive the macro's bank and the adds: bank 0, no reduction
                *([t.mv.bank.eq(0), t.mv.reduce.eq(0)] if cfg.banks > 1 else [])]

    # --- the parts -------------------------------------------------------------------------------

    def build(self):
        if not self.enabled:
            return
        self.receive()
        self.compute()
        self.send()
        self.finish()

    def receive(self):
        """Headers and payload words in ``STREAM``; the exec cycle's writes."""
        t, m, cfg, d = self.t, self.t.m, self.t.cfg, self.d
        node = t.node
        rh, rp = node.rx_header, node.rx_payload
        self.h_fire = h_fire = self.active & rh.valid & (self.srx != RxState.RECV)
        self.p_fire = p_fire = self.active & rp.valid & (self.srx == RxState.RECV)
        self.credit_in = Signal(SEQ_FANOUT)   # a credit from destination k
        hsrc = rh.payload.src
        dsts = self.dests()
        match = [(hsrc.x == x[:len(hsrc.x)]) & (hsrc.y == y[:len(hsrc.y)]) & ((d.fan >= k) if k else 1)
                 for k, (x, y) in enumerate(dsts)]
        first = [match[k] & ~Cat(*match[:k]).any() if k else match[0] for k in range(SEQ_FANOUT)]
        self.srx_n = srx_n = Signal(RxState)
        m.d.comb += srx_n.eq(Mux(self.srx == RxState.EXEC, RxState.IDLE, self.srx))
        with m.If(h_fire):
            with m.If(rh.payload.type == PacketType.CREDIT):
                m.d.comb += self.credit_in.eq(Cat(*first))
            with m.Else():
                m.d.comb += srx_n.eq(RxState.RECV)
                m.d.sync += [t.rx_type.eq(rh.payload.type), t.rx_k.eq(0)] + [r.eq(0) for r in t.rbuf]
        with m.If(p_fire & rp.payload.last):
            m.d.comb += srx_n.eq(RxState.EXEC)
        with m.If(self.active):
            m.d.sync += self.srx.eq(srx_n)
        # the exec cycle: the packet's vector into its ring
        in_exec = self.active & (self.srx == RxState.EXEC)
        self.xs_exec = in_exec & (t.rx_type == PacketType.XS)
        self.ps_exec = in_exec & (t.rx_type == PacketType.PS)
        W = cfg.flit_width
        with m.If(self.xs_exec):
            m.d.comb += [t.ibuf_w.addr.eq(self.wxp), t.ibuf_w.en.eq(1),
                         t.ibuf_w.data.eq(Cat(*unpack(t.rbuf, cfg.rows, cfg.xbits, W)))]
            m.d.sync += [self.wx.eq(self.wx + 1), self.wxp.eq(self._wrap(self.wxp, d.ring))]
        with m.If(self.ps_exec):
            m.d.comb += [t.acc_w.addr.eq(self.wpp), t.acc_w.en.eq(1),
                         t.acc_w.data.eq(Cat(*unpack(t.rbuf, cfg.cols, cfg.acc_bits, W)))]
            m.d.sync += [self.wp.eq(self.wp + 1), self.wpp.eq(self._wrap(self.wpp, d.aring))]
        t.count("ibuf_write_bits", self.xs_exec, cfg.rows * cfg.xbits)
        t.count("acc_write_bits", self.ps_exec, cfg.cols * cfg.acc_bits)
        t.count("rx_overlap", (h_fire | p_fire) & (self.ix > self.j))

    def compute(self):
        """The macro's input and result in ``STREAM``."""
        t, m, cfg, d = self.t, self.t.m, self.t.cfg, self.d
        macro, A = t.macro, cfg.acc_bits
        m.d.comb += [self.x_valid.eq(self.active & (self.ix < d.count) & (self.wx > self.ix)),
                     self.y_ok.eq(self.active & ~self.ps_exec
                                  & Mux(d.join, self.wp > self.j, self.j < self.sent + d.aring))]
        m.d.comb += self.acc_r2.addr.eq(self.jp)
        self.x_inc = Signal()
        with m.If(self.active & t.x_fire):
            m.d.sync += [self.ix.eq(self.ix + 1), self.ixp.eq(self._wrap(self.ixp, d.ring))]
            m.d.comb += self.x_inc.eq(self.ix + d.ring < d.count)
        with m.If(self.active & t.y_fire):
            old = [self.acc_r2.data[c * A:(c + 1) * A].as_signed() for c in range(cfg.cols)]
            m.d.comb += [t.acc_w.addr.eq(self.jp), t.acc_w.en.eq(1),
                         t.acc_w.data.eq(Cat(*[(Mux(d.join, old[c], 0) + macro.y.payload[c])[:A]
                                               for c in range(cfg.cols)]))]
            m.d.sync += [self.j.eq(self.j + 1), self.jp.eq(self._wrap(self.jp, d.aring))]

    def dests(self):
        """The descriptor's destinations ``(x, y)``: ``dst``, ``dst1``, ..."""
        d = self.d
        return [(d.dst_x, d.dst_y)] + [(getattr(d, f"dst{k}_x"), getattr(d, f"dst{k}_y"))
                                       for k in range(1, SEQ_FANOUT)]

    def _choice(self):
        """The packet a free sender starts: (kind, dest x, dest y, dest ctrl, type, length)."""
        d = self.d
        res_ok = (self.sent < self.j) & (self.to_ctrl | (self.credits[self.copy] != 0))
        kind = Mux(self.ack, SendKind.ACK, Mux(self.xcred != 0, SendKind.XCRED,
                   Mux(self.pcred != 0, SendKind.PCRED, Mux(res_ok, SendKind.RESULT, SendKind.NONE))))
        return kind, res_ok

    def send(self):
        """The sequence's sender: header (chosen when free, held until taken), then a result's words."""
        t, m, cfg, d = self.t, self.t.m, self.t.cfg, self.d
        node, W, A, X = t.node, cfg.flit_width, cfg.acc_bits, cfg.xbits
        choice, _ = self._choice()
        sel = Signal(SendKind)
        m.d.comb += sel.eq(Mux(self.kind == SendKind.NONE, choice, self.kind))
        nh, np_ = node.tx_header, node.tx_payload
        res_type = Mux(d.op == SeqOp.PS_TILE, PacketType.PS,
                       Mux(d.op == SeqOp.XS_TILE, PacketType.XS, PacketType.RESULT_S))
        length = self.nwords + self.to_ctrl
        dest, htype = self.s_dest, self.s_type
        with m.Switch(sel):
            with m.Case(SendKind.ACK):
                m.d.comb += [dest.ctrl.eq(1), htype.eq(PacketType.ACK)]
            with m.Case(SendKind.XCRED):
                m.d.comb += [dest.x.eq(d.src_x), dest.y.eq(d.src_y), dest.ctrl.eq(d.src_ctrl),
                             htype.eq(PacketType.CREDIT)]
            with m.Case(SendKind.PCRED):
                m.d.comb += [dest.x.eq(d.psrc_x), dest.y.eq(d.psrc_y), htype.eq(PacketType.CREDIT)]
            with m.Case(SendKind.RESULT):
                dx = Array(x for x, _ in self.dests())[self.copy]
                dy = Array(y for _, y in self.dests())[self.copy]
                m.d.comb += [dest.x.eq(dx), dest.y.eq(dy), dest.ctrl.eq(self.to_ctrl),
                             htype.eq(res_type), self.s_len.eq(length)]
        m.d.comb += [self.hv.eq(self.active & (sel != SendKind.NONE) & (sel != SendKind.PAYLOAD)),
                     self.pv.eq(self.active & (self.kind == SendKind.PAYLOAD))]
        h_taken = self.hv & nh.ready
        p_taken = self.pv & np_.ready
        self.h_taken, self.p_taken = h_taken, p_taken
        # the result's words: row_q loaded while the sender is free (a write to the slot forwarded)
        row_q = [Signal(signed(A), name=f"seq_row_q{c}") for c in range(cfg.cols)]
        fwd = Mux(t.acc_w.en & (t.acc_w.addr == self.sp), t.acc_w.data, t.acc_r.data)
        add_bias = self.quant | ((d.op == SeqOp.OUT_CTRL) & d.bias)
        with m.If(self.active & (self.kind == SendKind.NONE)):
            m.d.sync += [r.eq(biased(cfg, fwd[c * A:(c + 1) * A].as_signed(), Mux(add_bias, t.bias[c], 0)))
                         for c, r in enumerate(row_q)]
        dk = Signal(8)
        m.d.comb += dk.eq(self.pk - self.to_ctrl)
        per_a, per_q = W // A, W // X
        zero = Const(0, signed(A))

        def element(lane, per, nwords, vec=row_q, pad=zero):
            cols = [lane + per * k for k in range(nwords)]
            el = Array([vec[c] if c < cfg.cols else pad for c in cols])[dk]
            return Mux(dk * per + lane < d.ncols, el, 0)
        a_word = Cat(*[element(lane, per_a, cfg.words_a)[:A] for lane in range(per_a)])
        q_lanes = []
        for lane in range(per_q):
            m.d.comb += self.lane_a[lane].eq(element(lane, per_q, cfg.words_q))
            if cfg.has_requant:
                nil = Const(0, RQ_BITS)
                m.d.comb += [self.lane_e0[lane].eq(element(lane, per_q, cfg.words_q, t.rq0, nil)),
                             self.lane_e1[lane].eq(element(lane, per_q, cfg.words_q, t.rq1, nil))]
            q_lanes.append(Mux(dk * per_q + lane < d.ncols, t.lane_y[lane].as_unsigned(), 0))
        data_word = Mux(self.quant, Cat(*q_lanes), a_word)
        m.d.comb += self.s_data.eq(Mux(self.to_ctrl & (self.pk == 0), self.raddr, data_word))
        # next values
        self.kind_n = kind_n = Signal(SendKind)
        self.res_end = Signal()                 # a result's last packet ends (sent to every destination)
        last_copy = self.to_ctrl | (self.copy == d.fan)
        m.d.comb += kind_n.eq(self.kind)
        with m.If(self.kind == SendKind.NONE):
            m.d.comb += kind_n.eq(choice)
        with m.If(h_taken):
            m.d.comb += kind_n.eq(Mux(sel == SendKind.RESULT, SendKind.PAYLOAD, SendKind.NONE))
        with m.If(p_taken):
            with m.If(self.pk + 1 == length):
                m.d.comb += [kind_n.eq(SendKind.NONE), self.res_end.eq(last_copy)]
                with m.If(self.active):
                    m.d.sync += self.copy.eq(Mux(last_copy, 0, self.copy + 1))
        with m.If(self.active):
            m.d.sync += self.kind.eq(kind_n)
            with m.If(h_taken):
                m.d.sync += self.pk.eq(0)
            with m.If(p_taken):
                m.d.sync += self.pk.eq(self.pk + 1)
            with m.If(self.res_end):
                m.d.sync += [self.raddr.eq(self.raddr + d.gstep), self.sp.eq(self._wrap(self.sp, d.aring))]
        self.ack_n = self.ack & ~(h_taken & (sel == SendKind.ACK))
        self.x_dec = h_taken & (sel == SendKind.XCRED)
        self.p_dec = h_taken & (sel == SendKind.PCRED)
        self.p_inc = self.res_end & d.join & (self.sent + d.aring < d.count)
        self.c_dec = h_taken & (sel == SendKind.RESULT) & ~self.to_ctrl
        t.count("acc_read_bits", h_taken & (sel == SendKind.RESULT), cfg.cols * cfg.acc_bits)
        t.count("tx_stall", (self.hv & ~nh.ready) | (self.pv & ~np_.ready))
        t.count("credit_stall", self.active & (self.kind == SendKind.NONE) & ~self.ack & (self.xcred == 0)
                & (self.pcred == 0) & (self.sent < self.j) & ~self.to_ctrl & (self.credits[self.copy] == 0))

    def finish(self):
        """The counters' next values, and the end of the sequence in the cycle it happens."""
        t, m, d = self.t, self.t.m, self.d
        sent_n = self.sent + self.res_end
        xcred_n = self.xcred + self.x_inc - self.x_dec
        pcred_n = self.pcred + self.p_inc - self.p_dec
        with m.If(self.active):
            m.d.sync += [self.sent.eq(sent_n), self.xcred.eq(xcred_n), self.pcred.eq(pcred_n), self.ack.eq(self.ack_n)]
            m.d.sync += [c.eq(c + self.credit_in[k] - (self.c_dec & (self.copy == k)))
                         for k, c in enumerate(self.credits)]
            with m.If((sent_n == d.count) & ~self.ack_n & (xcred_n == 0) & (pcred_n == 0)
                      & (self.kind_n == SendKind.NONE) & (self.srx_n == RxState.IDLE)):
                m.d.sync += t.state.eq(t.IDLE)

