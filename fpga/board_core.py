"""The board core: the chip behind a UART host bridge, with only serial pins (and status lines) outside.

A board top (:mod:`rramcim.fpga.boards`) adds the vendor I/O buffers, the
clock and the reset around it; simulators run this core as it is. Inside::

    uart_rx -> UartRx -> FIFO (16 bytes) -> Bridge -> UartTx -> uart_tx
                                              |
                                 AXI4-Lite, AXI4-Stream in/out
                                              |
                                      ChipTop (rtl/top.py)

The line protocol is in :mod:`rramcim.fpga.protocol` and docs/fpga.md
("UART protocol"). ``divisor`` is the number of clock cycles per bit: a
board running its chip at ``clk_hz`` talks at ``clk_hz / divisor`` baud.
"""

from amaranth.hdl import Module
from amaranth.lib import data, fifo, wiring
from amaranth.lib.wiring import In, Out

from ..model.config import Config
from ..rtl.top import ChipTop
from .bridge import Bridge
from .protocol import timeout_cycles
from .uart import MIN_DIVISOR, UartRx, UartTx, check_divisor

__all__ = ["BoardCore", "BoardStatus", "RX_FIFO_DEPTH", "SIM_DIVISOR"]

#: Bytes the receive FIFO holds while the bridge hands a beat to the chip.
RX_FIFO_DEPTH = 16

#: Clocks per bit of the board core the simulation tests build (``rramcim.fpga.verilog.board_verilog``):
#: the smallest the receiver allows, as UART time is most of a test's simulated time.
SIM_DIVISOR = MIN_DIVISOR


class BoardStatus(data.Struct):
    """Status lines for LEDs.

    Members
    -------
    irq : 1
        The chip's ``irq``: its error register holds an error.
    bridge_error : 1
        The bridge saw a bad command byte (cleared by an ``INFO`` command).
    """
    irq: 1
    bridge_error: 1


class BoardCore(wiring.Component):
    """Parameters
    ----------
    cfg : Config
    divisor : int
        UART clocks per bit (at least :data:`rramcim.fpga.uart.MIN_DIVISOR`).
    faults : dict or None
        ``(x, y) -> FaultMap`` (simulation).
    hard_crossbar : bool
        Crossbars as module instances (Verilog output).

    Members
    -------
    uart_rx : In(1)
        Serial line from the host (idles high).
    uart_tx : Out(1)
        Serial line to the host (idles high).
    status : Out(BoardStatus)
        For LEDs.
    """

    uart_rx: In(1, init=1)
    uart_tx: Out(1, init=1)
    status: Out(BoardStatus)

    def __init__(self, cfg: Config, divisor: int, faults: dict | None = None, *, hard_crossbar: bool = False):
        if not isinstance(cfg, Config):
            raise TypeError(f"cfg must be a Config, not {cfg!r}")
        self.cfg = cfg
        self.divisor = check_divisor(divisor)
        self.chip = ChipTop(cfg, faults, hard_crossbar=hard_crossbar)
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.chip = chip = self.chip
        m.submodules.bridge = bridge = Bridge(chip.signature, timeout_cycles(self.divisor))
        m.submodules.uart_rx = rx = UartRx(self.divisor)
        m.submodules.uart_tx = tx = UartTx(self.divisor)
        m.submodules.rx_fifo = rx_fifo = fifo.SyncFIFOBuffered(width=8, depth=RX_FIFO_DEPTH)
        m.d.comb += [rx.rx.eq(self.uart_rx), self.uart_tx.eq(tx.tx)]
        wiring.connect(m, rx.data, rx_fifo.w_stream)
        wiring.connect(m, rx_fifo.r_stream, bridge.rx)
        wiring.connect(m, bridge.tx, tx.data)
        wiring.connect(m, bridge.chip, chip)
        m.d.comb += [
            bridge.rx_frame_error.eq(rx.frame_error), bridge.rx_overrun.eq(rx.overrun),
            self.status.irq.eq(chip.irq), self.status.bridge_error.eq(bridge.bad_command),
        ]
        return m
