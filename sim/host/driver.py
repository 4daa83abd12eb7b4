"""The host driver of the chip: program, load, start, wait, read back, check errors, over AXI only.

It reaches the chip's AXI4-Lite and AXI4-Stream ports (rtl/top.py,
docs/architecture.md) through a transport (:mod:`rramcim.sim.host.transport`):
by default cocotbext-axi's bus models on the chip's ports, under cocotb on
Icarus or Verilator; or the UART bridge of the FPGA board core, in
simulation (cocotbext-uart) or on a real board (pyserial, run with
``asyncio.run``). It never touches an internal signal. The chip tests, the
board tests and the CLI's RTL and FPGA backends
(``rramcim gemm --backend verilator|fpga``) use it.
"""

from __future__ import annotations

from ...model.chip import ChipError
from ...model.config import Config
from ...model.encoding import (COUNTER_NAMES, ERR_TILE_REG, FRAME_HEADER, TILE_COUNTER_NAMES, counter_index,
                               pack_fields, unpack_fields)
from ...rtl.top import AXIL_DATA_BITS, CHIP_ID, STATUS_BITS, FrameType, Reg, beat_width, config_words, ctrl_word
from .transport import AxiTransport, window_pause

CLOCK_PERIOD_NS = 10     # the test benches' clock

__all__ = ["HostDriver", "DriverError", "window_pause", "AXI_IDLE_INPUTS"]

# the chip's AXI inputs a bench holds low through reset (the bus models drive them after)
AXI_IDLE_INPUTS = ["s_axil_awvalid", "s_axil_wvalid", "s_axil_arvalid", "s_axil_bready", "s_axil_rready",
                   "s_axis_tvalid", "m_axis_tready"]


class DriverError(RuntimeError):
    """The chip did not behave as the driver expects (wrong ID or config, a timeout, a bad frame)."""


class HostDriver:
    """Parameters
    ----------
    dut : cocotb handle of ``rramcim_chip``, or None
        With no ``transport``: the chip whose AXI ports cocotbext-axi drives. Otherwise only
        ``run_window(expect_cycles=...)`` uses it (its clock); None on a real board.
    cfg : Config
    pause : float
        Probability of a pause cycle on every AXI channel (pause generators, 0 for none; AXI only).
    seed : int
    transport : object or None
        A transport (:mod:`rramcim.sim.host.transport`); default :class:`~rramcim.sim.host.transport.AxiTransport`
        on ``dut``.
    """

    def __init__(self, dut, cfg: Config, pause: float = 0.0, seed: int = 0, transport=None):
        self.dut, self.cfg = dut, cfg
        self.beat = beat_width(cfg)
        if transport is None:
            transport = AxiTransport(dut, pause, seed)
            # the bus models, for tests that use them directly
            self.axil, self.src, self.sink = transport.axil, transport.src, transport.sink
        self.io = transport

    # --- registers -------------------------------------------------------------------
    async def read(self, addr: int) -> int:
        return await self.io.reg_read(addr)

    async def write(self, addr: int, value: int):
        await self.io.reg_write(addr, value)

    async def check_id(self):
        """The chip is an rramcim chip of ``cfg``: every identification register as expected."""
        got = await self.read(Reg.ID)
        if got != CHIP_ID:
            raise DriverError(f"ID register reads {got:#010x}, not an rramcim chip ({CHIP_ID:#010x})")
        for addr, want in config_words(self.cfg).items():
            got = await self.read(addr)
            if got != want:
                raise DriverError(f"register {addr:#04x} reads {got:#x}, config {self.cfg.name} expects {want:#x}")

    async def status(self) -> dict:
        v = await self.read(Reg.STATUS)
        return {k: bool(v >> i & 1) for i, k in enumerate(STATUS_BITS)}

    async def counter(self, index: int) -> int:
        await self.write(Reg.CNT_SEL, index)
        lo = await self.read(Reg.CNT_LO)
        hi = await self.read(Reg.CNT_HI)
        return hi << AXIL_DATA_BITS | lo

    async def counters(self, tiles: bool = True) -> dict:
        """Every counter by name: chip-wide, and (with ``tiles``) per tile as ``name@t``."""
        out = {name: await self.counter(i) for i, name in enumerate(COUNTER_NAMES)}
        for t in range(self.cfg.tiles if tiles else 0):
            for name in TILE_COUNTER_NAMES:
                out[f"{name}@{t}"] = await self.counter(counter_index(name, t))
        return out

    async def error(self) -> ChipError | None:
        code = await self.read(Reg.ERR_CODE)
        if code == 0:
            return None
        pc = await self.read(Reg.ERR_PC)
        tile = await self.read(Reg.ERR_TILE)
        t = unpack_fields(ERR_TILE_REG, tile)
        return ChipError(code, pc, (t["x"], t["y"]), t["row"])

    # --- streams ---------------------------------------------------------------------
    def _header(self, ftype: int, addr: int, count: int = 0) -> int:
        return pack_fields(FRAME_HEADER, type=int(getattr(ftype, "value", ftype)), count=count, addr=addr)

    async def _send(self, beats):
        await self.io.stream_write(beats)

    async def load_program(self, words):
        await self._send([self._header(FrameType.IMEM, 0)] + [int(w) for w in words])

    async def write_gbuf(self, addr: int, words):
        await self._send([self._header(FrameType.GBUF, addr)] + [int(w) for w in words])

    async def read_gbuf(self, addr: int, n: int) -> list[int]:
        out = []
        most = (1 << dict(FRAME_HEADER)["count"]) - 1
        while n > 0:                        # a read frame asks for at most 2**24 - 1 words
            k = min(n, most)
            await self._send([self._header(FrameType.READ, addr, k)])
            beats = await self.io.stream_read()
            if len(beats) != k + 1 or beats[0] != self._header(FrameType.READ, addr, k):
                raise DriverError(f"read of {k} words at {addr}: reply of {len(beats)} beats, header {beats[:1]}")
            out += beats[1:]
            addr, n = addr + k, n - k
        return out

    # --- runs ------------------------------------------------------------------------
    async def start(self):
        await self.write(Reg.CTRL, ctrl_word("start"))

    async def wait_quiet(self, limit_polls: int = 100000):
        for _ in range(limit_polls):
            if (await self.status())["quiet"]:
                return
        raise DriverError("the chip did not become quiet")

    async def wait_done(self, limit_polls: int = 10_000_000):
        for _ in range(limit_polls):
            s = await self.status()
            if s["done"] and not s["running"]:
                return
        raise DriverError("no done")

    async def run_window(self, program, gbuf: dict, reads, expect_cycles: int | None = None,
                         tile_counters: bool = True) -> dict:
        """Load, start, wait; returns {"cycles", "error", "counters", "reads": [[words] per read]}.

        ``tile_counters=False`` reads only the chip-wide counters (slow links: 8 counters, not 8 + 11 per tile).

        With ``expect_cycles`` the testbench stays idle for that many cycles after the start (no
        polling) and ``sim_seconds`` is the wall time the simulator took for them (speed benchmarks).
        """
        await self.wait_quiet()
        await self.load_program(program)
        for addr in sorted(gbuf):
            await self.write_gbuf(int(addr), gbuf[addr])
        await self.start()
        sim_seconds = None
        if expect_cycles is not None:
            import time
            from cocotb.triggers import Timer
            t0 = time.perf_counter()
            # a Timer, not ClockCycles: no Python callback on every clock edge, the simulator runs alone
            await Timer(CLOCK_PERIOD_NS * (int(expect_cycles) + 2), unit="ns")
            sim_seconds = time.perf_counter() - t0
        await self.wait_done()
        err = await self.error()
        counters = await self.counters(tile_counters)
        data = [await self.read_gbuf(a, n) for a, n in reads]
        return {"cycles": counters["cycles"], "error": err, "counters": counters, "reads": data,
                "sim_seconds": sim_seconds}

    async def run_windows(self, windows: list, progress=None, tile_counters: bool = True) -> list[dict]:
        """:meth:`run_window` for each window (dicts: program, gbuf, reads, expect_cycles), the error
        as plain values ``[code, pc, [x, y], row]`` or None; ``progress(done, total)`` after each."""
        out = []
        for i, w in enumerate(windows):
            r = await self.run_window(w["program"], w.get("gbuf", {}), w.get("reads", []), w.get("expect_cycles"),
                                      tile_counters=tile_counters)
            err = r["error"]
            r["error"] = None if err is None else [err.code, err.pc, list(err.tile), err.row]
            out.append(r)
            if progress:
                progress(i + 1, len(windows))
        return out
