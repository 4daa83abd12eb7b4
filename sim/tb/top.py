"""cocotb test of the whole chip (rtl/top.py) driven only through its AXI ports by the host driver.

Parameters (JSON, see :func:`rramcim.sim.tb.common.params`): the config,
``windows`` (each ``program`` words, ``gbuf`` {address: [words]}, ``reads``
[[address, n], ...]), ``pause`` (probability of a pause cycle on every AXI
channel) and ``seed``. The summary holds, per window, the cycles, error,
counters and the words read, for the caller to check against the model.

A kept chip (``chip``: ``cells`` and ``write_counts``, each ``[y][x][row]`` integers, as
:meth:`rramcim.model.chipfile.KeptChip.cell_words`) is loaded when the simulation starts, before the
first window: every crossbar's ``cells_row{r}`` (rtl/crossbar.py) and macro's ``write_count{r}``
(rtl/macro.py) is deposited, as the non-volatile cells a real chip powers up with. After the last
window they are read back into the summary's ``chip``. These are the only internal signals a bench
touches; the host driver still sees only the AXI ports.
"""

import cocotb

from .common import run_axi_bench


def _macro(dut, x: int, y: int):
    """The macro of tile (x, y) in the chip's hierarchy (rtl/top.py -> rtl/chip.py -> rtl/tile.py)."""
    return getattr(dut.core.core, f"tile_{x}_{y}").macro


def load_chip(dut, cfg, chip: dict):
    """Deposit a kept chip's cells and write counters (applied before the host's first transfer ends)."""
    for y in range(cfg.mesh_y):
        for x in range(cfg.mesh_x):
            m = _macro(dut, x, y)
            for r in range(cfg.rows):
                getattr(m.crossbar, f"cells_row{r}").value = int(chip["cells"][y][x][r])
                getattr(m, f"write_count{r}").value = int(chip["write_counts"][y][x][r])


def read_chip(dut, cfg) -> dict:
    """The cells and write counters every macro holds now, as :func:`load_chip` takes them."""
    cells = [[[getattr(_macro(dut, x, y).crossbar, f"cells_row{r}").value.to_unsigned() for r in range(cfg.rows)]
              for x in range(cfg.mesh_x)] for y in range(cfg.mesh_y)]
    counts = [[[getattr(_macro(dut, x, y), f"write_count{r}").value.to_unsigned() for r in range(cfg.rows)]
               for x in range(cfg.mesh_x)] for y in range(cfg.mesh_y)]
    return {"cells": cells, "write_counts": counts}


@cocotb.test()
async def chip_windows(dut):
    async def steps(drv, cfg, p, progress):
        if p.get("chip") is not None:
            load_chip(dut, cfg, p["chip"])
        out = {"windows": await drv.run_windows(p["windows"], progress)}
        if p.get("chip") is not None:
            out["chip"] = read_chip(dut, cfg)
        return out

    await run_axi_bench(dut, steps)
