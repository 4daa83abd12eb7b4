"""Flit and packet formats of the on-chip network.

A packet is a header word followed by ``length`` payload words, each
``flit_width`` bits. On the wire every word is a flit: the header word rides in
the head flit, each payload word in a body flit, and the last flit is marked
``tail`` (a packet without payload is one flit, head and tail). As in FlooNoC,
every flit carries the destination beside its data, so a router never keeps
per-packet routing state other than the output it has granted.

Ports of a router are numbered N=0, E=1, S=2, W=3, L=4 (local); x grows east
and y grows south, so router (0, 0) is the north-west corner.
"""

from amaranth.hdl import unsigned
from amaranth.lib import data, enum

from ...model.config import Config
from ...model.encoding import HEADER_TYPE_BITS, LENGTH_BITS, coord_bits

__all__ = ["Port", "flit_layout", "header_layout", "payload_layout", "coord_layout", "OPPOSITE"]


class Port(enum.Enum, shape=3):
    N = 0
    E = 1
    S = 2
    W = 3
    L = 4


OPPOSITE = {Port.N: Port.S, Port.S: Port.N, Port.E: Port.W, Port.W: Port.E}


def coord_layout(cfg: Config) -> data.StructLayout:
    """A node address: ``x``, ``y`` and ``ctrl`` (the controller, off router (0, 0))."""
    xb, yb = coord_bits(cfg)
    return data.StructLayout({"x": unsigned(xb), "y": unsigned(yb), "ctrl": 1})


def flit_layout(cfg: Config, width: int | None = None) -> data.StructLayout:
    """A flit: ``head``, ``tail``, the packet's ``dest`` and ``width`` data bits."""
    return data.StructLayout({
        "head": 1,
        "tail": 1,
        "dest": coord_layout(cfg),
        "data": unsigned(cfg.flit_width if width is None else width),
    })


def header_layout(cfg: Config) -> data.StructLayout:
    """The header word: destination, source, packet type and payload length (in words)."""
    return data.StructLayout({
        "dest": coord_layout(cfg),
        "src": coord_layout(cfg),
        "type": unsigned(HEADER_TYPE_BITS),
        "length": unsigned(LENGTH_BITS),
    })


def payload_layout(cfg: Config) -> data.StructLayout:
    """A received payload word and whether it is the packet's last."""
    return data.StructLayout({"data": unsigned(cfg.flit_width), "last": 1})
