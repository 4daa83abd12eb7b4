"""Dimension-order (XY) route select: first along x, then along y.

Combinational: ``port`` is the output a flit for ``dest`` takes at router
``(x, y)``: E if ``dest.x > x``, W if ``dest.x < x``, else S if ``dest.y > y``,
N if ``dest.y < y``, else L. A packet never turns from y back to x, which
makes the mesh deadlock-free. The controller (``dest.ctrl``) is addressed as
if at ``(0, -1)``: W while ``x > 0``, then N out of router (0, 0).
"""

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ...model.config import Config
from .flit import Port, coord_layout

__all__ = ["RouteSelect"]


class RouteSelect(wiring.Component):
    """Parameters
    ----------
    cfg : Config
    x, y : int
        This router's position.

    Members
    -------
    dest : In(coord_layout)
    port : Out(Port)
    """

    def __init__(self, cfg: Config, x: int, y: int):
        if not (0 <= x < cfg.mesh_x and 0 <= y < cfg.mesh_y):
            self._MustUse__silence = True       # a rejected block is not an unused one
            raise ValueError(f"router ({x}, {y}) is outside the {cfg.mesh_x}x{cfg.mesh_y} mesh")
        self.x, self.y = x, y
        self.cfg = cfg
        super().__init__({"dest": In(coord_layout(cfg)), "port": Out(Port)})

    def elaborate(self, platform):
        m = Module()
        d = self.dest
        xb, yb = len(d.x), len(d.y)
        # Only the comparisons that can hold at this position (a constant one
        # is a lint warning and dead logic): no E at the east edge, and so on.
        choices = []
        if self.x < (1 << xb) - 1:
            choices.append((d.x > self.x, Port.E))
        if self.x > 0:
            choices.append((d.x < self.x, Port.W))
        if self.y < (1 << yb) - 1:
            choices.append((d.y > self.y, Port.S))
        if self.y > 0:
            choices.append((d.y < self.y, Port.N))
        m.d.comb += self.port.eq(Port.L)
        for cond, port in reversed(choices):      # the first condition has priority
            with m.If(cond):
                m.d.comb += self.port.eq(port)
        if self.x == 0:
            # only router (0, 0) has the controller beyond its north edge; in
            # column 0 elsewhere this is an ordinary move north
            with m.If(d.ctrl):
                m.d.comb += self.port.eq(Port.N)
        else:
            with m.If(d.ctrl):
                m.d.comb += self.port.eq(Port.W)
        return m
