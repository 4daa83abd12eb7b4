"""The 5-port wormhole router.

Ports N, E, S, W, L (see :mod:`.flit`), each an input stream and an output
stream of flits.

Micro-architecture and timing
-----------------------------
* Each input has a :class:`~.fifo.StreamFIFO` of ``noc_fifo_depth`` flits; its
  ``ready`` is "not full" (registered), so no combinational path runs from one
  router to the next.
* The flit at the front of an input FIFO, if it is a head flit, requests the
  output that :class:`~.route.RouteSelect` picks for its destination.
* Each output is free or locked to one input. A free output grants the first
  requester at or after its round-robin pointer (:class:`~.arbiter.RoundRobinArbiter`)
  and shows that flit at once; from that cycle it is locked to that input
  (so a shown flit stays until taken), the pointer moves past it, and it
  forwards that input's flits until the tail flit is taken, when it is free
  again. A locked output is valid while its input FIFO holds a flit.
* So a flit written into an input FIFO in cycle ``t`` can leave the router in
  cycle ``t+1``: one cycle per router at zero load.
"""

from amaranth.hdl import Module, Signal, Mux, Array
from amaranth.lib import wiring, stream
from amaranth.lib.wiring import In, Out

from ...model.config import Config
from .arbiter import RoundRobinArbiter
from .fifo import StreamFIFO
from .flit import Port, flit_layout
from .route import RouteSelect

__all__ = ["Router", "NPORTS"]

NPORTS = 5


class Router(wiring.Component):
    """Parameters
    ----------
    cfg : Config
        ``mesh_x``, ``mesh_y``, ``flit_width``, ``noc_fifo_depth``.
    x, y : int
        This router's position.
    data_width : int or None
        Flit data width (default ``cfg.flit_width``; formal proofs narrow it).

    Members
    -------
    i : In(stream of flits).array(5)
        Inputs, indexed by :class:`Port`.
    o : Out(stream of flits).array(5)
        Outputs, indexed by :class:`Port`.
    o_src : Out(3).array(5)
        For each output, the input its current flit comes from (for checkers).
    """

    def __init__(self, cfg: Config, x: int, y: int, data_width: int | None = None):
        self.cfg, self.x, self.y = cfg, x, y
        self.layout = flit_layout(cfg, data_width)
        if not (0 <= x < cfg.mesh_x and 0 <= y < cfg.mesh_y):
            self._MustUse__silence = True       # a rejected block is not an unused one
            raise ValueError(f"router ({x}, {y}) is outside the {cfg.mesh_x}x{cfg.mesh_y} mesh")
        super().__init__({
            "i": In(stream.Signature(self.layout)).array(NPORTS),
            "o": Out(stream.Signature(self.layout)).array(NPORTS),
            "o_src": Out(3).array(NPORTS),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        fifos, routes = [], []
        for p in range(NPORTS):
            f = StreamFIFO(self.layout, cfg.noc_fifo_depth)
            r = RouteSelect(cfg, self.x, self.y)
            m.submodules[f"fifo_{Port(p).name}"] = f
            m.submodules[f"route_{Port(p).name}"] = r
            wiring.connect(m, wiring.flipped(self.i[p]), f.w)
            m.d.comb += r.dest.eq(f.r.payload.dest)
            fifos.append(f)
            routes.append(r)
        heads = Array(f.r.payload for f in fifos)
        nonempty = Array(f.r.valid for f in fifos)
        read = [Signal(name=f"read_{Port(p).name}") for p in range(NPORTS)]

        for o in range(NPORTS):
            arb = RoundRobinArbiter(NPORTS)
            m.submodules[f"arb_{Port(o).name}"] = arb
            locked = Signal(name=f"locked_{Port(o).name}")
            owner = Signal(range(NPORTS), name=f"owner_{Port(o).name}")
            for p in range(NPORTS):
                m.d.comb += arb.requests[p].eq(
                    fifos[p].r.valid & fifos[p].r.payload.head & (routes[p].port == Port(o)))
            src = Signal(range(NPORTS), name=f"src_{Port(o).name}")
            out = self.o[o]
            m.d.comb += [
                src.eq(Mux(locked, owner, arb.grant)),
                out.valid.eq(Mux(locked, nonempty[owner], arb.valid)),
                out.payload.eq(heads[src]),
                self.o_src[o].eq(src),
                arb.advance.eq(~locked),
            ]
            fire = out.valid & out.ready
            with m.If(~locked & arb.valid & ~(fire & out.payload.tail)):
                m.d.sync += [locked.eq(1), owner.eq(arb.grant)]
            with m.If(locked & fire & out.payload.tail):
                m.d.sync += locked.eq(0)
            for p in range(NPORTS):
                with m.If(fire & (src == p)):
                    m.d.comb += read[p].eq(1)
        for p in range(NPORTS):
            m.d.comb += fifos[p].r.ready.eq(read[p])
        return m
