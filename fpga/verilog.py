"""Verilog output of the FPGA board core, and of every block by name (the RTL's blocks and ``board``).

The board core lives in fpga/ (the chip behind the UART bridge), so its
Verilog is generated here: rtl/ never imports fpga/. The simulation build
(sim/tools/build.py) asks this module for any block.
"""

from ..model.config import Config
from ..model.macro import FaultMap
from ..rtl import verilog as rtl_verilog
from ..rtl.verilog import chip_faults, convert, with_crossbars
from .board_core import SIM_DIVISOR, BoardCore

__all__ = ["BOARD_TOP", "board_verilog", "BLOCKS", "block_verilog"]

BOARD_TOP = "rramcim_board"


def board_verilog(cfg: Config, faults: FaultMap | None = None, name: str = BOARD_TOP) -> str:
    """The FPGA board core (top module ``rramcim_board`` or ``name``: the chip behind the UART bridge, fpga/board_core.py) at
    the simulation divisor :data:`rramcim.fpga.board_core.SIM_DIVISOR`, and its crossbar modules."""
    core = BoardCore(cfg, SIM_DIVISOR, chip_faults(cfg, faults), hard_crossbar=True)
    return with_crossbars(cfg, faults, convert(core, name))


#: The RTL's blocks (:data:`rramcim.rtl.verilog.BLOCKS`) and the board core.
BLOCKS = {**rtl_verilog.BLOCKS, "board": (BOARD_TOP, board_verilog)}


def block_verilog(block: str, cfg: Config, faults: FaultMap | None = None, **kwargs) -> tuple[str, str]:
    """``(top module name, Verilog text)`` of a named block, ``board`` included (``kwargs``: ``top_name``,
    ``header``, as :func:`rramcim.rtl.verilog.block_verilog` takes them)."""
    return rtl_verilog.block_verilog(block, cfg, faults, blocks=BLOCKS, **kwargs)
