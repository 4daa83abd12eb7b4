"""The network interface: packets to flits and back.

Transmit: a header (``tx_header``; its ``src`` is replaced by this node's
position) becomes the head flit, then ``length`` words from ``tx_payload``
become body flits, the last one marked ``tail``. Receive: the head flit's
data is the header (``rx_header``), the other flits' data are payload words
(``rx_payload``, ``last`` on the tail).

Both directions are combinational (a small state machine counts the payload
words): the NI adds no cycle. A header taken in cycle ``t`` enters the local
router's input FIFO in cycle ``t``.
"""

from amaranth.hdl import Module, Signal, Mux
from amaranth.lib import wiring, stream
from amaranth.lib.wiring import In, Out

from ...model.config import Config
from ...model.encoding import LENGTH_BITS
from .flit import coord_layout, flit_layout, header_layout, payload_layout

__all__ = ["NetworkInterface", "NodeSignature"]


class NodeSignature(wiring.Signature):
    """A node's side of the network, from the node (tile) side.

    Members
    -------
    tx_header : Out(stream of header_layout)
    tx_payload : Out(stream of flit_width words)
    rx_header : In(stream of header_layout)
    rx_payload : In(stream of payload_layout)
    """

    def __init__(self, cfg: Config):
        super().__init__({
            "tx_header": Out(stream.Signature(header_layout(cfg))),
            "tx_payload": Out(stream.Signature(cfg.flit_width)),
            "rx_header": In(stream.Signature(header_layout(cfg))),
            "rx_payload": In(stream.Signature(payload_layout(cfg))),
        })


class NetworkInterface(wiring.Component):
    """Parameters
    ----------
    cfg : Config
    x, y : int
        This node's position.
    controller : bool
        This is the controller's NI (its source address is ``ctrl = 1``, x = y = 0).

    Members
    -------
    node : In(NodeSignature)
        The tile's side.
    to_router : Out(stream of flits)
    from_router : In(stream of flits)
    """

    def __init__(self, cfg: Config, x: int, y: int, controller: bool = False):
        self.cfg, self.x, self.y, self.controller = cfg, x, y, bool(controller)
        hl = header_layout(cfg)
        if hl.size > cfg.flit_width:
            raise ValueError(f"flit_width {cfg.flit_width} cannot hold a {hl.size}-bit header")
        super().__init__({
            "node": In(NodeSignature(cfg)),
            "to_router": Out(stream.Signature(flit_layout(cfg))),
            "from_router": In(stream.Signature(flit_layout(cfg))),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        node, tx, rx = self.node, self.to_router, self.from_router

        # Transmit.
        in_body = Signal()
        remaining = Signal(LENGTH_BITS)
        dest = Signal(coord_layout(cfg))
        hdr = Signal(header_layout(cfg))
        m.d.comb += [
            hdr.eq(node.tx_header.payload),
            hdr.src.x.eq(self.x),
            hdr.src.y.eq(self.y),
            hdr.src.ctrl.eq(self.controller),
        ]
        with m.If(~in_body):
            m.d.comb += [
                tx.valid.eq(node.tx_header.valid),
                tx.payload.head.eq(1),
                tx.payload.tail.eq(hdr.length == 0),
                tx.payload.dest.eq(hdr.dest),
                tx.payload.data.eq(hdr.as_value()),
                node.tx_header.ready.eq(tx.ready),
            ]
            with m.If(tx.valid & tx.ready & (hdr.length != 0)):
                m.d.sync += [in_body.eq(1), remaining.eq(hdr.length), dest.eq(hdr.dest)]
        with m.Else():
            m.d.comb += [
                tx.valid.eq(node.tx_payload.valid),
                tx.payload.head.eq(0),
                tx.payload.tail.eq(remaining == 1),
                tx.payload.dest.eq(dest),
                tx.payload.data.eq(node.tx_payload.payload),
                node.tx_payload.ready.eq(tx.ready),
            ]
            with m.If(tx.valid & tx.ready):
                m.d.sync += remaining.eq(remaining - 1)
                with m.If(remaining == 1):
                    m.d.sync += in_body.eq(0)

        # Receive.
        m.d.comb += [
            node.rx_header.valid.eq(rx.valid & rx.payload.head),
            node.rx_header.payload.eq(rx.payload.data),
            node.rx_payload.valid.eq(rx.valid & ~rx.payload.head),
            node.rx_payload.payload.data.eq(rx.payload.data),
            node.rx_payload.payload.last.eq(rx.payload.tail),
            rx.ready.eq(Mux(rx.payload.head, node.rx_header.ready, node.rx_payload.ready)),
        ]
        return m
