"""cocotb test of the whole chip (rtl/top.py) driven only through its AXI ports by the host driver.

Parameters (JSON, see :func:`rramcim.sim.tb.common.params`): the config,
``windows`` (each ``program`` words, ``gbuf`` {address: [words]}, ``reads``
[[address, n], ...]), ``pause`` (probability of a pause cycle on every AXI
channel) and ``seed``. The summary holds, per window, the cycles, error,
counters and the words read, for the caller to check against the model.

A kept chip (``chip``: ``cells`` and ``write_counts``, each ``[y][x][row]`` integers, as
:meth:`rramcim.model.chipfile.KeptChip.cell_words`) is loaded when the simulation starts, before the
first window: every crossbar's ``cells_row{r}`` (rtl/crossbar.py) and macro's ``write_count{r}``
(rtl/macro.py) is deposited, as the non-volatile cells a real chip powers up with; with banks
(``banks`` > 1) the words of the crossbar's memory ``cells`` (one a bank, row ``r`` at bit ``r *
cols * wbits``) and of the macro's memory ``write_counts`` (one an RRAM row). After the last
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
            cells, counts = chip["cells"][y][x], chip["write_counts"][y][x]
            if cfg.banks == 1:
                for r in range(cfg.rows):
                    getattr(m.crossbar, f"cells_row{r}").value = int(cells[r])
                    getattr(m, f"write_count{r}").value = int(counts[r])
                continue
            R, cpr = cfg.rows, cfg.cells_per_row
            for k in range(cfg.banks):
                m.crossbar.cells[k].value = sum(int(cells[k * R + r]) << (r * cpr) for r in range(R))
            for r in range(cfg.rram_rows):
                m.write_counts[r].value = int(counts[r])


def _read_macro(m, cfg) -> tuple[list, list]:
    """One macro's cells and write counters, ``[row]`` each (RRAM rows)."""
    if cfg.banks == 1:
        return ([getattr(m.crossbar, f"cells_row{r}").value.to_unsigned() for r in range(cfg.rows)],
                [getattr(m, f"write_count{r}").value.to_unsigned() for r in range(cfg.rows)])
    R, cpr = cfg.rows, cfg.cells_per_row
    words = [m.crossbar.cells[k].value.to_unsigned() for k in range(cfg.banks)]
    cells = [(words[k] >> (r * cpr)) & ((1 << cpr) - 1) for k in range(cfg.banks) for r in range(R)]
    return cells, [m.write_counts[r].value.to_unsigned() for r in range(cfg.rram_rows)]


def read_chip(dut, cfg) -> dict:
    """The cells and write counters every macro holds now, as :func:`load_chip` takes them."""
    got = [[_read_macro(_macro(dut, x, y), cfg) for x in range(cfg.mesh_x)] for y in range(cfg.mesh_y)]
    return {"cells": [[c for c, _ in ys] for ys in got], "write_counts": [[n for _, n in ys] for ys in got]}


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
