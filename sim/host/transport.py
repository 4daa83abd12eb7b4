"""Transports of the host driver (:class:`rramcim.sim.host.driver.HostDriver`): how its register and stream
accesses reach the chip.

A transport has four coroutines, and the driver uses nothing else:

* ``reg_read(addr) -> int`` and ``reg_write(addr, value)``: one AXI4-Lite access;
* ``stream_write(beats)``: one AXI4-Stream frame into the chip (``TLAST`` on its last beat);
* ``stream_read() -> list[int]``: the next frame out of the chip.

Three exist: :class:`AxiTransport` (cocotbext-axi bus models on the chip's
AXI ports, in simulation), and :class:`rramcim.fpga.protocol.BridgeTransport`
(the UART bridge of the board core) over a byte link, either
:class:`UartSimLink` (cocotbext-uart on the board core's pins, in simulation)
or :class:`rramcim.fpga.host.SerialLink` (pyserial, a real board).
"""

from __future__ import annotations

import logging
import random
from typing import Protocol

__all__ = ["Transport", "AxiTransport", "UartSimLink", "window_pause", "LinkTimeout"]


class Transport(Protocol):
    async def reg_read(self, addr: int) -> int: ...

    async def reg_write(self, addr: int, value: int) -> None: ...

    async def stream_write(self, beats) -> None: ...

    async def stream_read(self) -> list[int]: ...


def window_pause(seed: int, p: float):
    """A pause generator for cocotbext-axi: paused with probability ``p`` each cycle, from a seed."""
    rng = random.Random(seed)
    while True:
        yield rng.random() < p


class AxiTransport:
    """cocotbext-axi's AXI4-Lite master and AXI4-Stream source and sink on the chip's flat AXI ports.

    Parameters
    ----------
    dut : cocotb handle of ``rramcim_chip``
    pause : float
        Probability of a pause cycle on every AXI channel (pause generators, 0 for none).
    seed : int
    """

    def __init__(self, dut, pause: float = 0.0, seed: int = 0):
        from cocotbext.axi import (AxiLiteBus, AxiLiteMaster, AxiStreamBus, AxiStreamSink,
                                   AxiStreamSource)
        self.axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.clk, dut.rst)
        self.src = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.clk, dut.rst, byte_lanes=1)
        self.sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis"), dut.clk, dut.rst, byte_lanes=1)
        if pause > 0:
            chans = [self.axil.write_if.aw_channel, self.axil.write_if.w_channel, self.axil.write_if.b_channel,
                     self.axil.read_if.ar_channel, self.axil.read_if.r_channel, self.src, self.sink]
            for i, ch in enumerate(chans):
                ch.set_pause_generator(window_pause(seed * 31 + i, pause))

    async def reg_read(self, addr: int) -> int:
        return await self.axil.read_dword(addr)

    async def reg_write(self, addr: int, value: int) -> None:
        await self.axil.write_dword(addr, value)

    async def stream_write(self, beats) -> None:
        from cocotbext.axi import AxiStreamFrame
        await self.src.send(AxiStreamFrame(tdata=[int(b) for b in beats]))
        await self.src.wait()

    async def stream_read(self) -> list[int]:
        frame = await self.sink.recv()
        return [int(b) for b in frame.tdata]


class LinkTimeout(RuntimeError):
    """No byte came from the board within the link's timeout."""


class UartSimLink:
    """A byte link over cocotbext-uart's source and sink on the board core's ``uart_rx``/``uart_tx`` pins.

    Parameters
    ----------
    dut : cocotb handle of the board core
    clk_period_ns : int
        The bench's clock period.
    divisor : int
        Clocks per bit of the board core's UART; the line rate is ``1e9 / (clk_period_ns * divisor)``.
    timeout_bits : int
        A ``recv`` that waits longer than this many bit times for a byte raises :class:`LinkTimeout`.
    """

    def __init__(self, dut, clk_period_ns: int, divisor: int, timeout_bits: int = 1_000_000):
        from cocotbext.uart import UartSink, UartSource
        self.bit_ns = clk_period_ns * divisor
        baud = 1e9 / self.bit_ns
        self.source = UartSource(dut.uart_rx, baud=baud, bits=8, stop_bits=1)
        self.sink = UartSink(dut.uart_tx, baud=baud, bits=8, stop_bits=1)
        for m in (self.source, self.sink):
            m.log.setLevel(logging.WARNING)          # not a log line per byte
        self.timeout_ns = timeout_bits * self.bit_ns
        self.sent = self.received = 0

    async def send(self, data: bytes) -> None:
        await self.source.write(data)
        await self.source.wait()
        self.sent += len(data)

    async def recv(self, n: int) -> bytes:
        out = bytearray()
        while len(out) < n:
            if self.sink.empty():
                await self.sink.wait(self.timeout_ns, "ns")
                if self.sink.empty():
                    raise LinkTimeout(f"no byte from the board in {self.timeout_ns} ns "
                                      f"(waiting for {n - len(out)} of {n})")
            out += self.sink.read_nowait(min(n - len(out), self.sink.count()))
        self.received += n
        return bytes(out)
