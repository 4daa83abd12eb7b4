"""The packet sender of a tile and of the controller: a walk of ``count`` packets to the network.

A walk starts when ``job`` is taken (only while the sender is idle). Each of its ``count``
packets is a header (``dest``, ``type``, ``length``, offered on ``tx_header``) and then
``length`` payload words on ``tx_payload``, one flit offered per cycle, the next offered the
cycle after one is taken (docs/isa.md, "Timing"; the cycle-exact model's senders):

* payload word 0 is the *argument* word ``arg`` (the packet's address at its destination),
  which grows by ``step`` after each packet; in a ``raw`` walk (a command) there is none;
* every other payload word (every word of a ``raw`` packet) is ``words.data``, which the
  owner's data path forms.

The sender shows the walk to that data path on a :class:`PayloadPort` (``words``): the
packet being sent, the payload word offered, the header cycle, the end of a packet, and
``ahead``: the owner may form data word ``k`` (payload word ``k + 1``) in a register in this
cycle (while the argument word is offered, and in each cycle a payload word is taken), and
offer it the cycle after. A data word so formed a cycle ahead is the one that a read in the
cycle it goes would give, as long as what it is read from does not change meanwhile (the
tile's accumulators do not; the controller patches a global-buffer word written meanwhile),
and the read leaves the network's input path (the FPGA clock, docs/fpga.md).

``done`` is high in the cycle the last flit of the walk is taken; the sender is idle (``busy``
low) from the next cycle on. No cycle is lost between a walk's packets.
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..model.config import Config
from ..model.encoding import ARG_BITS, HEADER_TYPE_BITS, LENGTH_BITS
from ..model.isa import COUNT_MAX
from .noc.flit import coord_layout, header_layout

__all__ = ["PacketSender", "PayloadPort", "job_layout"]


def job_layout(cfg: Config, raw: bool = False) -> data.StructLayout:
    """A walk: ``count`` packets of a header (``dest``, ``type``, ``length``) and payload words.

    ``arg`` is the first packet's argument word, ``step`` what it grows by from packet to packet
    (at most a packet's words); with ``raw`` (a sender that also sends commands), a field
    ``raw``: no argument word, every payload word is the owner's.
    """
    fields = {
        "dest": coord_layout(cfg),
        "type": HEADER_TYPE_BITS,
        "length": LENGTH_BITS,
        "count": range(COUNT_MAX + 1),
        "arg": ARG_BITS,
        "step": LENGTH_BITS,
    }
    return data.StructLayout(dict(fields, raw=1) if raw else fields)


class PayloadPort(wiring.Signature):
    """The sender's walk, shown to the owner's data path, from the sender's side.

    Parameters
    ----------
    cfg : Config
    raw : bool
        The sender has raw walks (member ``raw``).

    Members
    -------
    packet : Out(range(COUNT_MAX + 1))
        The packet being sent (0, 1, ... of the walk).
    k : Out(LENGTH_BITS)
        The payload word offered (0: the argument word, unless ``raw``).
    header : Out(1)
        The header is offered in this cycle.
    ahead : Out(1)
        Form data word ``k`` (payload word ``k + 1``) now: it goes in a later cycle.
    packet_end : Out(1)
        A packet's last flit is taken in this cycle.
    raw : Out(1)
        The walk's packets have no argument word (only with ``raw``).
    data : In(flit_width)
        The payload word offered (``k >= 1``, or any ``k`` of a ``raw`` packet).
    """

    def __init__(self, cfg: Config, raw: bool = False):
        if not isinstance(cfg, Config):
            raise TypeError(f"cfg must be a Config, not {cfg!r}")
        self.cfg, self.raw = cfg, bool(raw)
        super().__init__({
            "packet": Out(range(COUNT_MAX + 1)),
            "k": Out(LENGTH_BITS),
            "header": Out(1),
            "ahead": Out(1),
            "packet_end": Out(1),
            **({"raw": Out(1)} if raw else {}),
            "data": In(cfg.flit_width),
        })

    def __eq__(self, other):
        return type(other) is PayloadPort and (other.cfg, other.raw) == (self.cfg, self.raw)

    def __repr__(self):
        return f"PayloadPort({self.cfg.name!r}, raw={self.raw})"


class PacketSender(wiring.Component):
    """Parameters
    ----------
    cfg : Config
    raw : bool
        Walks may be raw (the controller's commands): ``job.raw``, ``words.raw``.

    Members
    -------
    job : In(stream of job_layout(cfg, raw))
        A walk to send; ready while the sender is idle.
    tx_header : Out(stream of header_layout(cfg))
    tx_payload : Out(stream of flit_width words)
        To the node's network interface (the transmit half of its ``NodeSignature``).
    words : Out(PayloadPort(cfg, raw))
        The walk, to the owner's data path, which gives the data words.
    busy : Out(1)
        A walk is in progress (a flit is offered in every such cycle).
    stall : Out(1)
        A flit is offered and not taken in this cycle.
    done : Out(1)
        The walk's last flit is taken in this cycle.
    """

    def __init__(self, cfg: Config, raw: bool = False):
        if not isinstance(cfg, Config):
            raise TypeError(f"cfg must be a Config, not {cfg!r}")
        self.cfg, self.raw = cfg, bool(raw)
        super().__init__({
            "job": In(stream.Signature(job_layout(cfg, raw))),
            "tx_header": Out(stream.Signature(header_layout(cfg))),
            "tx_payload": Out(stream.Signature(cfg.flit_width)),
            "words": Out(PayloadPort(cfg, raw)),
            "busy": Out(1),
            "stall": Out(1),
            "done": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        job = Signal(job_layout(self.cfg, self.raw))   # the walk; arg: the argument of the packet sent
        busy = self.busy
        hdr = Signal()                          # the next flit is a header
        k, v = self.words.k, self.words.packet
        hv, pv = self.tx_header.valid, self.tx_payload.valid
        taken = (hv & self.tx_header.ready) | (pv & self.tx_payload.ready)
        arg_word = k == 0
        if self.raw:
            arg_word &= ~job.raw
            m.d.comb += self.words.raw.eq(job.raw)
        m.d.comb += [
            self.job.ready.eq(~busy),
            hv.eq(busy & hdr),
            pv.eq(busy & ~hdr),
            self.tx_header.payload.dest.eq(job.dest),
            self.tx_header.payload.type.eq(job.type),
            self.tx_header.payload.length.eq(job.length),
            self.tx_payload.payload.eq(Mux(arg_word, job.arg, self.words.data)),
            self.words.header.eq(hv),
            self.words.ahead.eq(pv & ((k == 0) | self.tx_payload.ready)),
            self.stall.eq(busy & ~taken),
        ]
        with m.If(self.job.valid & self.job.ready):
            m.d.sync += [job.eq(self.job.payload), busy.eq(1), hdr.eq(1), k.eq(0), v.eq(0)]

        # The walk: after the header, k counts the payload words; after a packet's last flit
        # the next header, or the end.
        with m.If(taken):
            with m.If(hdr):
                m.d.sync += [hdr.eq(0), k.eq(0)]
            with m.Else():
                m.d.sync += k.eq(k + 1)
            with m.If(Mux(hdr, job.length == 0, k + 1 == job.length)):
                m.d.comb += self.words.packet_end.eq(1)
                m.d.sync += [hdr.eq(1), v.eq(v + 1), job.arg.eq(job.arg + job.step)]
                with m.If(v + 1 == job.count):
                    m.d.comb += self.done.eq(1)
                    m.d.sync += busy.eq(0)
        return m
