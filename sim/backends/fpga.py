"""A real board as a backend: the host driver over the board's UART bridge.

The host code is the simulation's (:class:`rramcim.sim.host.driver.HostDriver`) over
:class:`rramcim.fpga.protocol.BridgeTransport`, here on a :class:`rramcim.fpga.host.SerialLink`
(pyserial; its blocking calls wrapped as coroutines and run with ``asyncio.run``). The board
must carry a bitstream of the same config (the driver checks the chip's ID and config
registers, the bridge's beat width) at the given baud rate
(:data:`rramcim.fpga.protocol.DEFAULT_BAUD` for the board tops of :mod:`rramcim.fpga.boards`).
"""

from __future__ import annotations

import asyncio

from ...fpga.host import FpgaError, open_board
from ...fpga.protocol import DEFAULT_BAUD, BridgeTransport, ProtocolError
from ...model.config import Config
from ...rtl.top import beat_width
from ..host.driver import DriverError, HostDriver
from . import plain_windows

__all__ = ["run_windows", "FpgaError", "DEFAULT_SERIAL_TIMEOUT"]

# Seconds the host waits for the board's reply: a board answers within milliseconds, but a
# simulated board (tests/sim/test_board_cocotb.py) on a busy machine may take seconds.
DEFAULT_SERIAL_TIMEOUT = 30.0


def run_windows(cfg: Config, windows, port: str | None, baud: int = DEFAULT_BAUD, progress=None,
                link=None, serial_timeout: float | None = None) -> list[dict]:
    """Run windows (objects with ``program``, ``gbuf``, ``reads``) on a board; as :func:`.rtl.run_windows`.

    Every window's chip-wide counters are read (not the per-tile ones: a serial line is slow).
    ``serial_timeout``: seconds to wait for the board's reply (None: :data:`DEFAULT_SERIAL_TIMEOUT`).
    ``link`` replaces the serial port (tests).
    """
    timeout = DEFAULT_SERIAL_TIMEOUT if serial_timeout is None else float(serial_timeout)
    if not timeout > 0:
        raise FpgaError(f"the serial time-out must be a positive number of seconds, not {serial_timeout!r}")
    own = link is None
    if own:
        link = open_board(port, baud)
        link.timeout = link.ser.timeout = link.ser.write_timeout = timeout    # pyserial applies them to the open port
    transport = BridgeTransport(link, beat_width(cfg))
    drv = HostDriver(None, cfg, transport=transport)

    async def go():
        await transport.check()
        await drv.check_id()
        return await drv.run_windows(plain_windows(windows), progress, tile_counters=False)

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
