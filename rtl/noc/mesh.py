"""A ``mesh_x`` x ``mesh_y`` mesh of routers, links and network interfaces.

Router ``(x, y)``'s E output feeds router ``(x+1, y)``'s W input and its S
output feeds router ``(x, y+1)``'s N input (and back). Ports on the mesh edge
are tied off: their inputs never carry a flit and XY routing never sends one
to their outputs, except at router (0, 0): the controller's NI (``ctrl``)
feeds its W input and is fed by its N output (see :data:`rramcim.model.noc.CTRL`).
Each node's NI is exposed as ``n{x}_{y}`` and the controller's as ``ctrl``
(:class:`~.ni.NodeSignature`, from the mesh side).
"""

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ...model.config import Config
from ..crossbar import popcount
from .flit import Port, flit_layout
from .link import Link
from .ni import NetworkInterface, NodeSignature
from .router import Router

__all__ = ["Mesh", "node_name"]


def node_name(x: int, y: int) -> str:
    return f"n{x}_{y}"


class Mesh(wiring.Component):
    """Parameters
    ----------
    cfg : Config
        ``mesh_x``, ``mesh_y``, ``flit_width``, ``noc_fifo_depth``.
    link_cuts : int
        Register stages on every router-to-router link (default 0).

    Members
    -------
    n{x}_{y} : In(NodeSignature)
        One per node.
    ctrl : In(NodeSignature)
        The controller's node.
    flits_injected : Out
        Flits the NIs (tiles and controller) put into the network this cycle.
    flit_hops : Out
        Flits that crossed a router-to-router link this cycle (the controller's
        link is not one). Both feed the chip's performance counters.
    flits_ejected : Out
        Flits the NIs (tiles and controller) took out of the network this cycle.
    """

    def __init__(self, cfg: Config, link_cuts: int = 0):
        self.cfg, self.link_cuts = cfg, link_cuts
        members = {node_name(x, y): In(NodeSignature(cfg))
                   for y in range(cfg.mesh_y) for x in range(cfg.mesh_x)}
        members["ctrl"] = In(NodeSignature(cfg))
        nodes = cfg.mesh_x * cfg.mesh_y
        members["flits_injected"] = Out(range(nodes + 2))
        members["flit_hops"] = Out(range(4 * nodes + 1))
        members["flits_ejected"] = Out(range(nodes + 2))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        routers = {}
        injected, hops, ejected = [], [], []
        for y in range(cfg.mesh_y):
            for x in range(cfg.mesh_x):
                r = routers[x, y] = Router(cfg, x, y)
                ni = NetworkInterface(cfg, x, y)
                m.submodules[f"router_{x}_{y}"] = r
                m.submodules[f"ni_{x}_{y}"] = ni
                wiring.connect(m, wiring.flipped(getattr(self, node_name(x, y))), ni.node)
                wiring.connect(m, ni.to_router, r.i[Port.L.value])
                injected.append(ni.to_router.valid & ni.to_router.ready)
                ejected.append(ni.from_router.valid & ni.from_router.ready)
                wiring.connect(m, r.o[Port.L.value], ni.from_router)
        cni = NetworkInterface(cfg, 0, 0, controller=True)
        m.submodules.ni_ctrl = cni
        wiring.connect(m, wiring.flipped(self.ctrl), cni.node)
        wiring.connect(m, cni.to_router, routers[0, 0].i[Port.W.value])
        injected.append(cni.to_router.valid & cni.to_router.ready)
        ejected.append(cni.from_router.valid & cni.from_router.ready)
        wiring.connect(m, routers[0, 0].o[Port.N.value], cni.from_router)
        for (x, y), r in routers.items():
            for out, dx, dy, inp in ((Port.E, 1, 0, Port.W), (Port.S, 0, 1, Port.N),
                                     (Port.W, -1, 0, Port.E), (Port.N, 0, -1, Port.S)):
                nb = routers.get((x + dx, y + dy))
                if (x, y, out) == (0, 0, Port.N):
                    continue                            # the controller's
                if nb is None:
                    m.d.comb += r.o[out.value].ready.eq(0)
                    continue
                link = Link(flit_layout(cfg), self.link_cuts)
                m.submodules[f"link_{x}_{y}_{out.name}"] = link
                wiring.connect(m, r.o[out.value], link.a)
                hops.append(r.o[out.value].valid & r.o[out.value].ready)
                wiring.connect(m, link.b, nb.i[inp.value])
            for inp, dx, dy in ((Port.W, -1, 0), (Port.E, 1, 0), (Port.N, 0, -1), (Port.S, 0, 1)):
                if (x + dx, y + dy) not in routers and (x, y, inp) != (0, 0, Port.W):
                    m.d.comb += r.i[inp.value].valid.eq(0)
        m.d.comb += [self.flits_injected.eq(popcount(injected)), self.flit_hops.eq(popcount(hops)),
                     self.flits_ejected.eq(popcount(ejected))]
        return m
