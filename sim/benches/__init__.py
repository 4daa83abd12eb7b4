"""Simulator-independent test benches: stimulus, stall patterns, the model's prediction, driver, monitor, checker.

Each bench (:mod:`.macro`, :mod:`.noc`, :mod:`.chip`) drives its design through a small
I/O adapter (:class:`.io.SimIO`): :mod:`.cocotb_io` for Icarus and Verilator,
:mod:`.amaranth_io` for Amaranth's simulator. The cocotb entry modules that run them are in
:mod:`rramcim.sim.tb`.
"""
