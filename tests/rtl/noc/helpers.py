"""Small Amaranth-simulator helpers for NoC block tests."""

from amaranth.hdl import ClockDomain, Module
from amaranth.sim import Simulator


def simulate(dut, bench):
    """Run ``bench(ctx)`` as the testbench of ``dut`` with a 'sync' clock (even if ``dut`` has no registers)."""
    m = Module()
    m.domains.sync = ClockDomain("sync")
    m.submodules.dut = dut
    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
