"""Drive a real board over its serial port: pyserial under the host driver, for ``--backend fpga``.

The host code is the simulation's: :class:`rramcim.sim.host.driver.HostDriver`
over :class:`rramcim.fpga.protocol.BridgeTransport`, here on a
:class:`SerialLink` (pyserial; its blocking calls wrapped as coroutines and
run with ``asyncio.run``). The board must carry a bitstream of the same
config (the driver checks the chip's ID and config registers, the bridge's
beat width) at the given baud rate (:data:`rramcim.fpga.protocol.DEFAULT_BAUD`
for the board tops of :mod:`rramcim.fpga.boards`).
"""

from __future__ import annotations

import asyncio

from ..model.config import Config
from ..rtl.top import beat_width
from .protocol import DEFAULT_BAUD, BridgeTransport, ProtocolError

__all__ = ["SerialLink", "FpgaError", "open_board", "run_windows_fpga"]


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


def run_windows_fpga(cfg: Config, windows, port: str | None, baud: int = DEFAULT_BAUD, progress=None,
                     link=None) -> list[dict]:
    """Run windows (objects with ``program``, ``gbuf``, ``reads``) on a board; as :func:`rramcim.sim.backends.rtl.run_windows`.

    Every window's chip-wide counters are read (not the per-tile ones: a serial line is slow).
    ``link`` replaces the serial port (tests).
    """
    from ..sim.host.driver import DriverError, HostDriver
    own = link is None
    link = link if link is not None else open_board(port, baud)
    transport = BridgeTransport(link, beat_width(cfg))
    drv = HostDriver(None, cfg, transport=transport)

    async def go():
        await transport.check()
        await drv.check_id()
        ws = [dict(program=[int(v) for v in w.program], gbuf={int(a): list(v) for a, v in w.gbuf.items()},
                   reads=[(int(a), int(n)) for a, n in w.reads]) for w in windows]
        return await drv.run_windows(ws, progress, tile_counters=False)

    try:
        return asyncio.run(go())
    except ProtocolError as e:
        raise FpgaError(f"--port {port}: {e} (is the board running an rramcim bitstream of config "
                        f"'{cfg.name}' at {baud} baud?)") from None
    except DriverError as e:
        raise FpgaError(f"--port {port}: {e}") from None
    except OSError as e:                         # pyserial's SerialException: the device went away
        raise FpgaError(f"--port {port}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    finally:
        if own:
            link.close()
