"""An 8N1 UART: a receiver and a transmitter whose bit time is a whole number of clocks.

``divisor`` is the number of clock cycles per bit (``clk_hz // baud``), a
constructor parameter of both blocks. A frame is a start bit (0), eight data
bits least significant first, and one stop bit (1); the line idles high.

* :class:`UartRx` passes the line through a two-flip-flop synchronizer (the
  pin is asynchronous to the clock), waits for a falling edge, checks the
  start bit half a bit time later, then samples each data bit and the stop bit
  in the middle of its bit time (every ``divisor`` clocks from the start
  bit's middle). A byte whose stop bit reads 0 is dropped and pulses
  ``frame_error``; the receiver then waits for the line to idle high before it
  looks for the next start bit (a break does not read as a stream of zeros).
  The byte leaves on a stream; a byte that completes while the previous one
  still waits for ``ready`` is dropped and pulses ``overrun`` (the stream
  keeps its payload until the transfer).
* :class:`UartTx` takes a byte from its stream when idle and shifts out the
  ten bits, ``divisor`` clocks each. ``ready`` is high only while idle, so
  back-to-back bytes leave with no idle bit time between them.

Latency: a received byte is valid 2 (synchronizer) + ``9.5 * divisor`` (+1)
clocks after the falling edge of its start bit.
"""

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import cdc, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["UartRx", "UartTx", "MIN_DIVISOR", "check_divisor"]

#: The smallest clocks-per-bit the receiver samples reliably at (mid-bit, after a 2-FF synchronizer).
MIN_DIVISOR = 4


def check_divisor(divisor) -> int:
    """``divisor`` as an int, or a ``TypeError``/``ValueError`` that names it."""
    if isinstance(divisor, bool) or not isinstance(divisor, int):
        raise TypeError(f"UART divisor (clocks per bit) must be an integer, not {divisor!r}")
    if divisor < MIN_DIVISOR:
        raise ValueError(f"UART divisor (clocks per bit) must be at least {MIN_DIVISOR}, not {divisor}")
    return divisor


class UartRx(wiring.Component):
    """8N1 receiver.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit (at least :data:`MIN_DIVISOR`).

    Members
    -------
    rx : In(1)
        The serial line (asynchronous; idles high).
    data : Out(stream.Signature(8))
        Received bytes.
    frame_error : Out(1)
        One-cycle pulse: a byte's stop bit read 0; the byte was dropped.
    overrun : Out(1)
        One-cycle pulse: a byte completed while ``data`` still held the previous one; it was dropped.
    """

    rx: In(1, init=1)
    data: Out(stream.Signature(8))
    frame_error: Out(1)
    overrun: Out(1)

    def __init__(self, divisor: int):
        self.divisor = check_divisor(divisor)
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        D = self.divisor
        line = Signal(init=1)
        m.submodules.sync = cdc.FFSynchronizer(self.rx, line, init=1)

        timer = Signal(range(D))
        bits = Signal(range(9))
        shift = Signal(8)
        with m.If(timer != 0):
            m.d.sync += timer.eq(timer - 1)
        with m.If(self.data.valid & self.data.ready):
            m.d.sync += self.data.valid.eq(0)

        with m.FSM():
            with m.State("IDLE"):
                with m.If(~line):
                    m.d.sync += timer.eq(D // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                with m.If(timer == 0):
                    with m.If(line):                     # a glitch, not a start bit
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += [timer.eq(D - 1), bits.eq(0)]
                        m.next = "DATA"
            with m.State("DATA"):
                with m.If(timer == 0):
                    m.d.sync += [shift.eq(Cat(shift[1:], line)), timer.eq(D - 1), bits.eq(bits + 1)]
                    with m.If(bits == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(timer == 0):
                    with m.If(~line):
                        m.d.comb += self.frame_error.eq(1)
                        m.next = "BREAK"
                    with m.Elif(self.data.valid & ~self.data.ready):
                        m.d.comb += self.overrun.eq(1)
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += [self.data.payload.eq(shift), self.data.valid.eq(1)]
                        m.next = "IDLE"
            with m.State("BREAK"):
                with m.If(line):
                    m.next = "IDLE"
        return m


class UartTx(wiring.Component):
    """8N1 transmitter.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit (at least :data:`MIN_DIVISOR`).

    Members
    -------
    data : In(stream.Signature(8))
        Bytes to send; ``ready`` while the line is idle.
    tx : Out(1)
        The serial line (idles high).
    """

    data: In(stream.Signature(8))
    tx: Out(1, init=1)

    def __init__(self, divisor: int):
        self.divisor = check_divisor(divisor)
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        D = self.divisor
        timer = Signal(range(D))
        left = Signal(range(11))              # bits still to send, the current one included
        frame = Signal(10, init=0x3FF)        # stop, data[7:0], start; shifted out LSB first
        m.d.comb += [self.tx.eq(frame[0]), self.data.ready.eq(left == 0)]
        with m.If(self.data.valid & self.data.ready):
            m.d.sync += [frame.eq(Cat(Const(0, 1), self.data.payload, Const(1, 1))), left.eq(10),
                         timer.eq(D - 1)]
        with m.Elif(left != 0):
            with m.If(timer == 0):
                m.d.sync += [frame.eq(Cat(frame[1:], Const(1, 1))), left.eq(left - 1), timer.eq(D - 1)]
            with m.Else():
                m.d.sync += timer.eq(timer - 1)
        return m
