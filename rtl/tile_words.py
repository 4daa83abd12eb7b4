"""The data words of a tile's result packets (``out``, ``outq``, ``psum``), for its sender.

The tile's :class:`~.sender.PacketSender` walks the packets; this block forms their data
words from the accumulator vector of each packet (``slot`` = ``mode.b`` + the packet), in two
register stages, ahead of the cycle each word goes (the model reads a packet's accumulator
vector when its header goes; the accumulators, the bias and the mode do not change while a
tile sends, so the words and their cycles are the same):

* ``row_q``: in every header cycle, the packet's accumulator vector (the ``row`` read at
  ``slot``), with the bias added where the words get it (``outq``, ``out`` with bias);
* ``word_q``: data word ``j`` of that vector, formed when the sender says ``ahead`` for it
  (word 0 while the argument word is offered, ``j + 1`` in the cycle word ``j`` is taken):
  ``acc_bits`` elements (``out``, ``psum``) or post-processed ``xbits`` elements (``outq``, the tile's
  post-processing lanes, :class:`~.postlane.PostLane`), lanes past the last column zero.

The cut keeps the accumulator read and the post-processing lanes out of the network's input
path (the FPGA clock, docs/fpga.md).
"""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, enum, wiring
from amaranth.lib.wiring import In, Out

from ..model.config import Config
from ..model.isa import isa_field
from .postlane import RQ_BITS
from .postproc import biased
from .sender import PayloadPort

__all__ = ["SendOp", "ResultWords", "mode_layout"]


class SendOp(enum.Enum, shape=2):
    OUT = 0
    OUTQ = 1
    PSUM = 2
    ONE = 3          # a single packet: ACK (no payload) or ERR (one argument word)


def mode_layout() -> data.StructLayout:
    """What a tile sends: the kind (``op``), the first accumulator slot ``b`` and the
    post-processing of ``out`` (``bias``) and ``outq`` (``shift``, ``relu``), as the ISA's fields."""
    return data.StructLayout({
        "op": SendOp,
        "b": isa_field("out", "b").width,
        "bias": isa_field("out", "bias").width,
        "shift": isa_field("outq", "shift").width,
        "relu": isa_field("outq", "relu").width,
        "rq": isa_field("outq", "rq").width,
    })


def _lane_mask(left: int, per: int, bits: int) -> int:
    """The bits of a word whose lanes hold one of the ``left`` remaining elements."""
    n = max(0, min(per, left))
    return (1 << (n * bits)) - 1


class ResultWords(wiring.Component):
    """Parameters
    ----------
    cfg : Config

    Members
    -------
    words : In(PayloadPort(cfg))
        The sender's walk; ``words.data`` is the data word formed.
    mode : In(mode_layout())
        What is sent; held while the tile sends.
    slot : Out(range(tile_acc_depth))
        The accumulator slot of the packet being sent, ``mode.b + words.packet``.
    row : In(cols * acc_bits)
        The accumulator vector at ``slot`` (a combinational read).
    bias : In(array of cols x signed(acc_bits))
        The tile's bias vector.
    rq0, rq1 : In(array of cols x 32)
        The tile's requant vector (``ldrq``; used with ``mode.rq`` on chips with the requant unit).
    lane_a, lane_e0, lane_e1 : Out(array of flit_width // xbits)
        What each post-processing lane takes for data word ``jn`` of an ``outq``: the column's biased
        accumulator and requant elements. The lanes (:class:`~.postlane.PostLane`) are the tile's, shared
        with its standing sequence's sender (the two never send at once, :class:`~.tile.Tile`).
    lane_y : In(array of flit_width // xbits x signed(xbits))
        The lanes' results.
    """

    def __init__(self, cfg: Config):
        if not isinstance(cfg, Config):
            raise TypeError(f"cfg must be a Config, not {cfg!r}")
        self.cfg = cfg
        super().__init__({
            "words": In(PayloadPort(cfg)),
            "mode": In(mode_layout()),
            "slot": Out(range(cfg.tile_acc_depth)),
            "row": In(unsigned(cfg.cols * cfg.acc_bits)),
            "bias": In(data.ArrayLayout(signed(cfg.acc_bits), cfg.cols)),
            "rq0": In(data.ArrayLayout(RQ_BITS, cfg.cols)),
            "rq1": In(data.ArrayLayout(RQ_BITS, cfg.cols)),
            "lane_a": Out(data.ArrayLayout(signed(cfg.acc_bits), cfg.flit_width // cfg.xbits)),
            "lane_e0": Out(data.ArrayLayout(RQ_BITS, cfg.flit_width // cfg.xbits)),
            "lane_e1": Out(data.ArrayLayout(RQ_BITS, cfg.flit_width // cfg.xbits)),
            "lane_y": In(data.ArrayLayout(signed(cfg.xbits), cfg.flit_width // cfg.xbits)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        W, A, X = cfg.flit_width, cfg.acc_bits, cfg.xbits
        mode, words = self.mode, self.words
        m.d.comb += self.slot.eq(mode.b + words.packet)

        add_bias = (mode.op == SendOp.OUTQ) | (mode.bias & (mode.op == SendOp.OUT))
        row_q = [Signal(signed(A), name=f"row_q{c}") for c in range(cfg.cols)]
        with m.If(words.header):
            m.d.sync += [r.eq(biased(cfg, self.row[c * A:(c + 1) * A].as_signed(), Mux(add_bias, self.bias[c], 0)))
                         for c, r in enumerate(row_q)]
        jn = words.k          # the data word to form next
        per_a, per_q = W // A, W // X
        zero = Const(0, signed(A))

        def element(lane, per, nwords, vec=row_q, pad=zero):
            """The column of ``vec`` in ``lane`` of data word ``jn`` (``per`` lanes a word)."""
            cols = [lane + per * k for k in range(nwords)]
            return Array([vec[c] if c < cfg.cols else pad for c in cols])[jn]

        a_lanes = [element(lane, per_a, cfg.words_a)[:A] for lane in range(per_a)]
        q_lanes = []
        for lane in range(per_q):
            m.d.comb += self.lane_a[lane].eq(element(lane, per_q, cfg.words_q))
            if cfg.has_requant:
                nil = Const(0, RQ_BITS)
                m.d.comb += [self.lane_e0[lane].eq(element(lane, per_q, cfg.words_q, self.rq0, nil)),
                             self.lane_e1[lane].eq(element(lane, per_q, cfg.words_q, self.rq1, nil))]
            q_lanes.append(self.lane_y[lane].as_unsigned())
        # lanes past the last column of the last word are zero (the model packs only `cols` elements)
        a_mask = Array([Const(_lane_mask(cfg.cols - k * per_a, per_a, A), per_a * A) for k in range(cfg.words_a)])
        q_mask = Array([Const(_lane_mask(cfg.cols - k * per_q, per_q, X), per_q * X) for k in range(cfg.words_q)])
        word_q = Signal(W)
        with m.If(words.ahead):
            m.d.sync += word_q.eq(Mux(mode.op == SendOp.OUTQ, Cat(*q_lanes) & q_mask[jn], Cat(*a_lanes) & a_mask[jn]))
        m.d.comb += words.data.eq(word_q)
        return m
