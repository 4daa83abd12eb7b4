"""Verilog output of rramcim blocks.

The crossbar is emitted as its own module, once per configuration, ahead of
the blocks that instantiate it by name (as a foundry flow would swap in a
hard RRAM macro).

The FPGA board core's Verilog (block ``board``) is generated in fpga/verilog.py:
rtl/ never imports fpga/.
"""

from amaranth.back import verilog

from ..model.config import Config
from ..model.macro import FaultMap
from .crossbar import Crossbar, crossbar_module_name
from .macro import Macro

__all__ = ["crossbar_verilog", "macro_verilog", "mesh_verilog", "router_verilog", "MACRO_TOP",
           "MESH_TOP", "ROUTER_TOP", "BLOCKS", "block_verilog", "chip_verilog", "chip_faults", "CHIP_TOP",
           "TOP", "top_verilog", "with_crossbars"]

MACRO_TOP = "rramcim_macro"


def crossbar_verilog(cfg: Config, faults: FaultMap | None = None) -> str:
    """The crossbar module of ``cfg`` (and fault map) alone."""
    return verilog.convert(Crossbar(cfg, faults), name=crossbar_module_name(cfg, faults), emit_src=False)


def macro_verilog(cfg: Config, faults: FaultMap | None = None) -> str:
    """The macro (top module ``rramcim_macro``) and its crossbar module."""
    top = verilog.convert(Macro(cfg, faults, hard_crossbar=True), name=MACRO_TOP, emit_src=False)
    return crossbar_verilog(cfg, faults) + "\n" + top


MESH_TOP = "rramcim_mesh"
ROUTER_TOP = "rramcim_router"


def mesh_verilog(cfg: Config, faults: FaultMap | None = None) -> str:
    """The network of ``cfg``: routers, links and NIs (top module ``rramcim_mesh``)."""
    from .noc.mesh import Mesh
    return verilog.convert(Mesh(cfg), name=MESH_TOP, emit_src=False)


def router_verilog(cfg: Config, faults: FaultMap | None = None) -> str:
    """One router of ``cfg``, placed at the centre of the mesh (all five ports used where it can)."""
    from .noc.router import Router
    return verilog.convert(Router(cfg, cfg.mesh_x // 2, cfg.mesh_y // 2), name=ROUTER_TOP, emit_src=False)


CHIP_TOP = "rramcim_core"


def chip_faults(cfg: Config, faults: FaultMap | None) -> dict:
    """A chip build's fault map applies to its last tile, ``(mesh_x - 1, mesh_y - 1)``."""
    return {(cfg.mesh_x - 1, cfg.mesh_y - 1): faults} if faults else {}


def with_crossbars(cfg: Config, faults: FaultMap | None, top: str) -> str:
    """``top`` preceded by the crossbar modules it instantiates (fault-free, and the faulty one)."""
    xbars = crossbar_verilog(cfg)
    if faults:
        xbars += "\n" + crossbar_verilog(cfg, faults)
    return xbars + "\n" + top


def chip_verilog(cfg: Config, faults: FaultMap | None = None) -> str:
    """The chip core (top module ``rramcim_core``) and its crossbar modules.

    ``faults`` (stuck cells) apply to the last tile (:func:`chip_faults`).
    """
    from .chip import ChipCore
    core = ChipCore(cfg, chip_faults(cfg, faults), hard_crossbar=True)
    return with_crossbars(cfg, faults, verilog.convert(core, name=CHIP_TOP, emit_src=False))


TOP = "rramcim_chip"


def top_verilog(cfg: Config, faults: FaultMap | None = None) -> str:
    """The whole chip behind its AXI ports (top module ``rramcim_chip``) and its crossbar modules.

    ``faults`` (stuck cells, simulation) apply to the last tile (:func:`chip_faults`).
    """
    from .top import ChipTop
    chip = ChipTop(cfg, chip_faults(cfg, faults), hard_crossbar=True)
    return with_crossbars(cfg, faults, verilog.convert(chip, name=TOP, emit_src=False))


BLOCKS = {
    "macro": (MACRO_TOP, macro_verilog),
    "crossbar": (None, crossbar_verilog),
    "mesh": (MESH_TOP, mesh_verilog),
    "router": (ROUTER_TOP, router_verilog),
    "core": (CHIP_TOP, chip_verilog),
    "chip": (TOP, top_verilog),
}


def block_verilog(block: str, cfg: Config, faults: FaultMap | None = None,
                  blocks: dict | None = None) -> tuple[str, str]:
    """``(top module name, Verilog text)`` of a named block of ``blocks`` (default :data:`BLOCKS`;
    fpga/verilog.py adds the board core)."""
    blocks = BLOCKS if blocks is None else blocks
    if block not in blocks:
        raise ValueError(f"unknown block {block!r} (known: {', '.join(blocks)})")
    top, fn = blocks[block]
    return (top or crossbar_module_name(cfg, faults)), fn(cfg, faults)
