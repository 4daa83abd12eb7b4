"""Run a simulator-independent bench (:class:`~rramcim.sim.benches.io.SimIO`) on Amaranth's simulator."""

from amaranth.hdl import ClockDomain, Module, Value
from amaranth.lib import data
from amaranth.sim import Simulator

from .io import SimIO

__all__ = ["AmaranthIO", "run_amaranth"]


def _resolve(dut, name: str) -> Value:
    obj = dut
    for part in name.split("__"):
        obj = getattr(obj, part)
    if isinstance(obj, data.View):
        obj = obj.as_value()
    return obj


class AmaranthIO(SimIO):
    def __init__(self, ctx, dut, rst):
        self.ctx, self.dut, self.rst = ctx, dut, rst
        self._cache = {}

    def _sig(self, name):
        sig = self._cache.get(name)
        if sig is None:
            sig = self._cache[name] = _resolve(self.dut, name)
        return sig

    def set(self, name, value):
        self.ctx.set(self._sig(name), int(value))

    def get(self, name):
        return int(self.ctx.get(self._sig(name)))

    async def tick(self):
        await self.ctx.tick()

    async def reset(self):
        self.ctx.set(self.rst, 1)
        await self.ctx.tick()
        self.ctx.set(self.rst, 0)


def run_amaranth(dut, bench_coro_fn, vcd: str | None = None):
    """Simulate ``dut`` with a 'sync' clock; ``bench_coro_fn(io)`` is awaited as the testbench.

    Returns what the bench returned. Writes a VCD to ``vcd`` if given.
    """
    m = Module()
    m.domains.sync = cd = ClockDomain("sync")
    m.submodules.dut = dut
    result = {}

    async def testbench(ctx):
        result["value"] = await bench_coro_fn(AmaranthIO(ctx, dut, cd.rst))

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()
    return result.get("value")
