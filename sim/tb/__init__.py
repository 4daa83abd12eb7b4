"""cocotb entry modules: what a simulator loads (``run_cocotb(build, "rramcim.sim.tb.NAME", params, ...)``).

Each module holds the ``@cocotb.test`` functions of one design (:mod:`.macro`, :mod:`.noc`,
:mod:`.chip` core, :mod:`.top` and :mod:`.top_checks` for the AXI top, :mod:`.board` for an FPGA
board top) and little else: the benches are in :mod:`rramcim.sim.benches`, the host side in
:mod:`rramcim.sim.host`. :mod:`.common` reads the parameters the runner passes.
"""
