"""Configurations the tests run on: the presets plus shapes that stress the parameters; :func:`slow` marks
the cases that run only with ``RRAMCIM_SLOW=1`` (the suite stays under 35 minutes on 2 cores, cold cache)."""

import os

import pytest

from rramcim.model.config import PRESETS

SLOW = os.environ.get("RRAMCIM_SLOW") == "1"


def slow(*values, why: str, ids=None):
    """A parametrize case that runs only with ``RRAMCIM_SLOW=1``; ``why``: its cost and what covers it
    meanwhile."""
    return pytest.param(*values, id=ids, marks=pytest.mark.skipif(not SLOW, reason=f"RRAMCIM_SLOW=1: {why}"))

TINY = PRESETS["tiny"]
DEFAULT = PRESETS["default"]
# PAR > 1 and WBITS != 8, with a row count that is not a power of two.
P2W4 = TINY.replace(name="p2w4", rows=12, cols=6, wbits=4, par=2, rram_max_attempts=3)
# Odd widths: 6-bit inputs three planes at a time, 5-bit weights, one retry.
P3X6 = TINY.replace(name="p3x6", rows=5, cols=3, wbits=5, xbits=6, par=3,
                    rram_write_cycles=1, rram_verify_cycles=1, rram_max_attempts=2, macro_out_depth=2)

COCOTB_CONFIGS = {"tiny": TINY, "default": DEFAULT, "p2w4": P2W4}

# Meshes for the network tests: name -> config (mesh size and flit width in the name).
MESH_CONFIGS = {
    "2x2-w32": TINY.replace(name="mesh2x2w32", mesh_x=2, mesh_y=2, flit_width=32),
    "2x2-w64": TINY.replace(name="mesh2x2w64", mesh_x=2, mesh_y=2, flit_width=64),
    "3x4-w32": TINY.replace(name="mesh3x4w32", mesh_x=3, mesh_y=4, flit_width=32),
    "3x4-w64": TINY.replace(name="mesh3x4w64", mesh_x=3, mesh_y=4, flit_width=64),
    # one-entry router FIFOs (the icebreaker preset's): a flit every other cycle a link
    "2x2-w32-d1": TINY.replace(name="mesh2x2w32d1", mesh_x=2, mesh_y=2, flit_width=32, noc_fifo_depth=1),
}

# Chip-core configs beyond the presets: a 3x1 mesh of 12x6 macros with 4-bit weights two input
# planes a step, buffers that are not powers of two; and int16 accumulators with 4-bit inputs,
# 10 columns (a partial last word), 64-bit flits on a 1x3 mesh.
CHIP_CONFIGS = {
    "tiny": TINY,
    "default": DEFAULT,
    "odd3x1": TINY.replace(name="odd3x1", rows=12, cols=6, wbits=4, par=2, tile_ibuf_depth=5, tile_acc_depth=7,
                           mesh_x=3, mesh_y=1),
    "a16x4": TINY.replace(name="a16x4", acc_bits=16, xbits=4, cols=10, flit_width=64, mesh_x=1, mesh_y=3),
}
