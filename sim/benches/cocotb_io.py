"""Run a simulator-independent bench (:class:`~rramcim.sim.benches.io.SimIO`) under cocotb."""

from cocotb.triggers import ReadOnly, RisingEdge

from .io import SimIO

__all__ = ["CocotbIO"]


class CocotbIO(SimIO):
    """Drives inputs just after a rising edge and samples in the read-only phase."""

    def __init__(self, dut, clk_name: str = "clk", rst_name: str = "rst"):
        self.dut = dut
        self.clk = getattr(dut, clk_name)
        self.rst = getattr(dut, rst_name)
        self._handles = {}
        self._readonly = False

    def _h(self, name):
        h = self._handles.get(name)
        if h is None:
            h = self._handles[name] = getattr(self.dut, name)
        return h

    def set(self, name, value):
        self._h(name).value = int(value)

    def get(self, name):
        return int(self._h(name).value)

    async def settle(self):
        await ReadOnly()
        self._readonly = True

    async def tick(self):
        await RisingEdge(self.clk)
        self._readonly = False

    async def reset(self):
        if self._readonly:
            await self.tick()
        self.rst.value = 1
        await self.tick()
        await self.tick()
        self.rst.value = 0
