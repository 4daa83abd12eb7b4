"""The serial link to a real board (pyserial), for ``--backend fpga``.

:class:`SerialLink` carries :class:`rramcim.fpga.protocol.BridgeTransport`'s bytes; the
host driver over it (:func:`rramcim.sim.backends.fpga.run_windows`) is the simulation's,
:class:`rramcim.sim.host.driver.HostDriver`.
"""

from __future__ import annotations

from .protocol import DEFAULT_BAUD

__all__ = ["SerialLink", "FpgaError", "open_board"]


class FpgaError(RuntimeError):
    """The board cannot be reached or did not answer as expected; one line."""


class SerialLink:
    """A byte link over a pyserial port.

    Parameters
    ----------
    port : str
        The serial device (``/dev/ttyUSB0``, ``COM3``, or any pyserial URL such as ``loop://``).
    baud : int
    timeout : float
        Seconds a ``recv`` waits for its bytes before it raises :class:`FpgaError`.
    """

    def __init__(self, port: str, baud: int = DEFAULT_BAUD, timeout: float = 5.0):
        try:
            import serial
        except ImportError as e:
            raise FpgaError(f"--backend fpga needs pyserial (pip install pyserial): {e}") from None
        self.port = port
        try:
            self.ser = serial.serial_for_url(port, baudrate=baud, timeout=timeout, write_timeout=timeout)
        except (serial.SerialException, OSError, ValueError) as e:
            raise FpgaError(f"--port {port}: cannot open it ({str(e).splitlines()[0] if str(e) else type(e).__name__})") \
                from None
        self.timeout = timeout
        self.ser.reset_input_buffer()        # bytes of an earlier session (an interrupted reply)

    async def send(self, data: bytes) -> None:
        self.ser.write(data)
        self.ser.flush()

    async def recv(self, n: int) -> bytes:
        data = self.ser.read(n)
        if len(data) < n:
            raise FpgaError(f"--port {self.port}: no reply from the board within {self.timeout:g} s "
                            f"({len(data)} of {n} bytes; is the bitstream loaded and the baud rate right?)")
        return data

    def close(self) -> None:
        self.ser.close()


def open_board(port: str | None, baud: int = DEFAULT_BAUD) -> SerialLink:
    """Open the board's serial port, or raise :class:`FpgaError` naming the problem."""
    if not port:
        raise FpgaError("--backend fpga needs --port (the board's serial device, e.g. /dev/ttyUSB0)")
    return SerialLink(port, baud)
