import os
import warnings


# Amaranth deprecations are errors in this project (style.md, habit 7).
warnings.filterwarnings("error", category=DeprecationWarning, module="amaranth")


def pytest_configure(config):
    # Builds are cached across runs under RRAMCIM_CACHE (default ~/.cache/rramcim).
    os.environ.setdefault("PYTHONWARNINGS", "error::DeprecationWarning:amaranth")


# The longest tests first (the longest-processing-time rule): on 2 workers a long simulator build that
# starts last leaves the other worker idle at the end. Each entry starts a node id; the first builds a
# Verilator model that later tests of the same config reuse. Cold cache, 2 cores: the whole suite went
# from 52 minutes to ... with these first (the note of issue 17 has the figures).
LONGEST_FIRST = (
    "tests/sim/test_gemm_cocotb.py::test_gemm_chip_axi[verilator-default]",   # the default chip's build
    "tests/sim/test_chip_cocotb.py::test_chip[verilator-tiny]",               # the tiny core's build
    "tests/test_fpga.py::test_the_icebreaker_preset_fits_the_up5k",           # place and route
    "tests/sim/test_board_cocotb.py::test_board_gemm_over_uart[verilator-tiny]",
    "tests/sim/test_macro_cocotb.py::test_macro[verilator-default]",
    "tests/sim/test_gemm_cocotb.py::test_gemm_chip_axi[verilator-tiny]",      # the tiny chip's build
    "tests/rtl/noc/test_formal.py::test_router_prove",
    "tests/sim/test_noc_cocotb.py::test_mesh[verilator",
)


def pytest_collection_modifyitems(session, config, items):
    def rank(item):
        return next((i for i, p in enumerate(LONGEST_FIRST) if item.nodeid.startswith(p)), len(LONGEST_FIRST))
    items.sort(key=rank)                     # stable: the rest keep their order
