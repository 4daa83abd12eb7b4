"""The chip core: controller, a mesh of tiles and the network, with host-facing streams and registers.

The controller sits on the network's controller node, off router (0, 0)
(docs/noc.md); tile ``(x, y)`` on node ``(x, y)``. The host side is plain
streams and registers (the AXI interface of a later issue wraps them):

* ``imem_wr``, ``gbuf_wr``: write the instruction memory and the global
  buffer while the chip is not running;
* ``gbuf_rd_addr`` -> ``gbuf_rd_data``: read a global-buffer word, one cycle later;
* ``start``, ``running``, ``done``, ``irq``, ``error`` (docs/isa.md, "Errors");
* ``cnt_index`` -> ``cnt_value``: performance counter ``cnt_index``
  (docs/isa.md numbering), one cycle later;
* ``tiles_idle``: no tile has work in progress;
* ``quiet``: nothing in flight anywhere (network empty, tiles idle, the
  controller not sending); ``start`` is taken only when quiet, so a run never
  sees packets of the one before;
* ``soft_reset``: clears all control state (controller, tiles, network,
  counters, error register) for as long as it is high; the memories (instruction memory, global
  buffer, input buffers, accumulators), the bias registers and the RRAM
  cells with their write counters keep their content.
"""

from amaranth.hdl import Module, ResetInserter, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..model.config import Config
from .controller import Controller
from .counters import COUNTER_BITS, CounterBank, counter_count, counter_indices
from .noc.mesh import Mesh, node_name
from .tile import Tile

__all__ = ["ChipCore"]


class _Core(wiring.Component):
    """Controller + tiles + mesh (the part that ``soft_reset`` resets)."""

    def __init__(self, cfg, faults, hard_crossbar):
        self.cfg, self.faults, self.hard_crossbar = cfg, faults, hard_crossbar
        self.controller = Controller(cfg)
        self.tiles = {(x, y): Tile(cfg, faults.get((x, y)), hard_crossbar=hard_crossbar)
                      for y in range(cfg.mesh_y) for x in range(cfg.mesh_x)}
        super().__init__({"tiles_idle": Out(1), "quiet": Out(1), "cnt_index": In(range(counter_count(cfg))),
                          "cnt_value": Out(COUNTER_BITS)})

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        ctl = self.controller
        m.submodules.controller = ctl
        m.submodules.mesh = mesh = Mesh(cfg)
        wiring.connect(m, ctl.node, mesh.ctrl)
        m.d.comb += [ctl.noc_flits.eq(mesh.flits_injected), ctl.noc_hops.eq(mesh.flit_hops)]
        idle = 1
        quiet = Signal()
        for (x, y), t in self.tiles.items():
            m.submodules[f"tile_{x}_{y}"] = t
            wiring.connect(m, t.node, getattr(mesh, node_name(x, y)))
            idle = idle & t.idle
        # Flits in the network: injected minus ejected. Quiet: nothing in the network, no
        # tile working, the controller not sending (its receive side holds no state that matters).
        in_flight = Signal(range(cfg.mesh_x * cfg.mesh_y * 5 * (cfg.noc_fifo_depth + 2) + cfg.mesh_x * cfg.mesh_y + 2))
        m.d.sync += in_flight.eq(in_flight + mesh.flits_injected - mesh.flits_ejected)
        m.d.comb += quiet.eq(idle & (in_flight == 0) & ~ctl.sending)
        m.d.comb += [self.tiles_idle.eq(idle), self.quiet.eq(quiet), ctl.quiet.eq(quiet)]
        # The counters' totals (docs/isa.md numbering), read one cycle after the index is given.
        # The bank's sources, in counter_indices order: the controller's, then tile by tile; the bank
        # gives each the controller's running and clearing.
        sources = [ctl] + [self.tiles[(t % cfg.mesh_x, t // cfg.mesh_x)] for t in range(cfg.mesh_x * cfg.mesh_y)]
        m.submodules.counters = bank = CounterBank(counter_indices(cfg), counter_count(cfg),
                                                   [src.counters.signature.n for src in sources])
        m.d.comb += [bank.running.eq(ctl.running), bank.clear.eq(ctl.clearing), bank.index.eq(self.cnt_index),
                     self.cnt_value.eq(bank.value)]
        for s, src in enumerate(sources):
            wiring.connect(m, getattr(bank, f"source{s}"), src.counters)
        return m


class ChipCore(wiring.Component):
    """Parameters
    ----------
    cfg : Config
    faults : dict or None
        ``(x, y) -> FaultMap``: stuck cells of a tile's crossbar.
    hard_crossbar : bool
        Crossbars as module instances (Verilog output), see :class:`~.macro.Macro`.

    Members: the controller's host side (:class:`~.controller.Controller`), and
    ``cnt_index``/``cnt_value``, ``tiles_idle``, ``soft_reset``.
    """

    def __init__(self, cfg: Config, faults: dict | None = None, *, hard_crossbar: bool = False):
        self.cfg, self.faults = cfg, dict(faults or {})
        for pos in self.faults:
            if pos not in {(x, y) for x in range(cfg.mesh_x) for y in range(cfg.mesh_y)}:
                raise ValueError(f"faults: tile {pos} is outside the {cfg.mesh_x}x{cfg.mesh_y} mesh")
        self._core = _Core(cfg, self.faults, hard_crossbar)
        host = {k: v for k, v in self._core.controller.signature.members.items()
                if k not in ("node", "noc_flits", "noc_hops", "counters", "clearing", "quiet", "sending")}
        self.ncounters = counter_count(cfg)
        super().__init__(dict(host, **{
            "cnt_index": In(range(self.ncounters)),
            "cnt_value": Out(COUNTER_BITS),
            "tiles_idle": Out(1),
            "quiet": Out(1),
            "soft_reset": In(1),
        }))

    def elaborate(self, platform):
        m = Module()
        core = self._core
        ctl = core.controller
        m.submodules.core = ResetInserter(self.soft_reset)(core)
        for name in ("imem_wr", "gbuf_wr"):
            wiring.connect(m, wiring.flipped(getattr(self, name)), getattr(ctl, name))
        m.d.comb += [
            ctl.gbuf_rd_addr.eq(self.gbuf_rd_addr), self.gbuf_rd_data.eq(ctl.gbuf_rd_data),
            ctl.start.eq(self.start), self.running.eq(ctl.running), self.done.eq(ctl.done),
            self.error.eq(ctl.error), self.irq.eq(ctl.irq), self.tiles_idle.eq(core.tiles_idle),
            self.quiet.eq(core.quiet),
        ]
        m.d.comb += [core.cnt_index.eq(self.cnt_index), self.cnt_value.eq(core.cnt_value)]
        return m
