"""cocotb tests of the FPGA board core (fpga/board_core.py) driven only through its UART pins.

cocotbext-uart's source and sink sit on ``uart_rx``/``uart_tx`` at the
core's divisor (``divisor`` clocks per bit); the host driver
(:class:`rramcim.sim.host.driver.HostDriver`) talks to the chip through the
bridge with :class:`rramcim.fpga.protocol.BridgeTransport`, the same code a
real board runs over pyserial.

Parameters (JSON, see :func:`rramcim.sim.tb.common.params`): the config,
``divisor``, ``mode`` and, for ``mode == "windows"``, ``windows`` as for
:mod:`rramcim.sim.tb.top`. Modes:

* ``windows``: identification, then each window (load, start, wait, error,
  the chip-wide counters, reads); the summary holds them per window for the
  caller to check against the model.
* ``protocol``: the bridge itself: ``INFO``, a bad command byte and its
  error reply, flag and status line, recovery, a frame split over
  ``STREAM_WRITE_MORE`` and ``STREAM_WRITE``, a ``STREAM_READ`` that stops at
  ``TLAST``, a break on the line (framing error flag), a command cut off and
  a ``STREAM_READ`` with nothing to read (the timeout).
* ``socket``: a simulated board for a host process: the bench listens on a
  TCP port of 127.0.0.1 (written to ``port_file``) and relays bytes between
  one connection and the UART pins until the host closes it. pyserial opens
  it as ``socket://127.0.0.1:PORT``, so ``rramcim gemm --backend fpga --port
  socket://...`` runs against the RTL as against a board.
"""

import os
import socket
import time

import cocotb
from amaranth.lib import data
from cocotb.triggers import ClockCycles, Timer

from ...fpga.protocol import (BRIDGE_VERSION, REPLY_ERROR, REPLY_OK, BridgeTransport, Cmd, Flag, ProtocolError,
                             beat_bytes, encode_stream_read, timeout_cycles)
from ...fpga.board_core import BoardStatus
from ...rtl.top import CHIP_ID, FrameType, Reg, beat_width
from .common import config, params, run_bench
from ..host.driver import HostDriver
from ..benches.io import CheckError, expect
from ..host.transport import UartSimLink

CLOCK_PERIOD_NS = 10        # run_bench's clock


def _bridge_error(dut) -> int:
    """The board's ``status.bridge_error`` line, by its field in :class:`BoardStatus`."""
    return (int(dut.status.value) >> data.Layout.cast(BoardStatus)["bridge_error"].offset) & 1


@cocotb.test()
async def board_uart(dut):
    p = params()
    cfg = config(p)
    divisor = p["divisor"]
    dut.uart_rx.value = 1                       # the line idles high, through reset too

    class Bench:
        async def run(self, io, progress):
            link = UartSimLink(dut, CLOCK_PERIOD_NS, divisor)
            bridge = BridgeTransport(link, beat_width(cfg))
            drv = HostDriver(dut, cfg, transport=bridge)
            if p["mode"] == "socket":
                return await _serve_socket(link, p)
            await bridge.check()
            await drv.check_id()
            if p["mode"] == "protocol":
                out = await _protocol_checks(dut, cfg, link, bridge, drv, divisor)
            else:
                out = {"windows": await drv.run_windows(p["windows"], progress, tile_counters=False)}
            out["bytes_sent"], out["bytes_received"] = link.sent, link.received
            return out

    await run_bench(dut, Bench(), p, [], len(p.get("windows", [])) or 1)


async def _protocol_checks(dut, cfg, link, bridge, drv, divisor):
    nb = beat_bytes(beat_width(cfg))
    checks = 0
    # INFO: version, beat bytes, no flags yet
    info = await bridge.info()
    expect(info == {"version": BRIDGE_VERSION, "beat_bytes": nb, "flags": Flag(0)}, f"INFO {info}")
    checks += 1

    # a bad command byte: reply FF <byte>, the sticky flag and the status line, then recovery
    for bad in (0x07, 0x5A, 0xFF):
        await link.send(bytes([bad]))
        reply = await link.recv(2)
        expect(reply == bytes([REPLY_ERROR, bad]), f"bad command {bad:#04x}: reply {reply.hex()}")
    expect(_bridge_error(dut) == 1, "status.bridge_error low after a bad command")
    await bridge.ping()
    expect(await drv.read(Reg.ID) == CHIP_ID, "ID after a bad command")
    info = await bridge.info()
    expect(info["flags"] == Flag.BAD_COMMAND, f"INFO flags {info['flags']!r} after bad commands")
    expect((await bridge.info())["flags"] == Flag(0), "INFO did not clear the flags")
    await ClockCycles(dut.clk, 2)
    expect(_bridge_error(dut) == 0, "status.bridge_error high after INFO")
    checks += 1

    # the transport reports a rejected command by name
    await link.send(bytes([0x42]))
    try:
        await bridge._expect(REPLY_OK | Cmd.PING, "PING")
        raise CheckError("a bad command's reply was taken for PING's")
    except ProtocolError as e:
        expect("0x42" in str(e), f"ProtocolError does not name the byte: {e}")
    await bridge.info()
    checks += 1

    # a global-buffer frame split over STREAM_WRITE_MORE and STREAM_WRITE, read back in one frame
    mask = (1 << cfg.flit_width) - 1
    words = [(0x0123_4567_89AB_CDEF * (k + 3)) & mask for k in range(5)]
    beats = [drv._header(FrameType.GBUF, 40)] + words
    await link.send(bytes([Cmd.STREAM_WRITE_MORE, 1, 0]) + b"".join(b.to_bytes(nb, "little") for b in beats[:2]))
    expect(await link.recv(1) == bytes([REPLY_OK | Cmd.STREAM_WRITE_MORE]), "STREAM_WRITE_MORE reply")
    await bridge.stream_write(beats[2:])
    expect(await drv.read_gbuf(40, 5) == words, "words of a split frame read back differ")
    checks += 1

    # STREAM_READ stops at TLAST (3 records although 100 were allowed), and a limit below the frame
    await drv._send([drv._header(FrameType.READ, 40, 2)])
    await link.send(encode_stream_read(100))
    expect(await link.recv(1) == bytes([REPLY_OK | Cmd.STREAM_READ]), "STREAM_READ reply")
    recs = [await link.recv(1 + nb) for _ in range(3)]
    expect([r[0] for r in recs] == [0, 0, 1], f"record flags {[r[0] for r in recs]}, expected TLAST on the third")
    expect([int.from_bytes(r[1:], "little") for r in recs[1:]] == words[:2], "STREAM_READ words")
    await drv._send([drv._header(FrameType.READ, 41, 3)])
    await link.send(encode_stream_read(2))
    expect(await link.recv(1) == bytes([REPLY_OK | Cmd.STREAM_READ]), "STREAM_READ reply")
    recs = [await link.recv(1 + nb) for _ in range(2)]
    expect([r[0] for r in recs] == [0, 0], "records of a read cut short")
    rest = await bridge.stream_read()
    expect([int.from_bytes(recs[1][1:], "little")] + rest == words[1:4], "the rest of a frame read in two commands")
    checks += 1

    # a break (the line low for 12 bit times): a framing error, the byte dropped, the bridge still answers
    await Timer(2 * divisor * CLOCK_PERIOD_NS, "ns")
    dut.uart_rx.value = 0
    await Timer(12 * divisor * CLOCK_PERIOD_NS, "ns")
    dut.uart_rx.value = 1
    await Timer(2 * divisor * CLOCK_PERIOD_NS, "ns")
    info = await bridge.info()
    expect(info["flags"] == Flag.RX_FRAME_ERROR, f"INFO flags {info['flags']!r} after a break")
    expect(await drv.read(Reg.ID) == CHIP_ID, "ID after a break")
    checks += 1

    # a command cut off (a host killed mid-command): dropped after the timeout, flagged, nothing reaches the chip
    wait = Timer((timeout_cycles(divisor) + 50 * divisor) * CLOCK_PERIOD_NS, "ns")
    await link.send(bytes([Cmd.STREAM_WRITE, 0, 0]) + drv._header(FrameType.GBUF, 40).to_bytes(nb, "little")[:3])
    await wait
    info = await bridge.info()
    expect(info["flags"] == Flag.TIMEOUT, f"INFO flags {info['flags']!r} after a command cut off")
    expect(await drv.read_gbuf(40, 5) == words, "a command cut off changed the chip")
    # a STREAM_READ with nothing to read ends with a timeout record
    try:
        await bridge.stream_read()
        raise CheckError("a STREAM_READ with no frame pending returned")
    except ProtocolError as e:
        expect("timed out" in str(e), f"STREAM_READ with nothing to read: {e}")
    expect((await bridge.info())["flags"] == Flag.TIMEOUT, "no TIMEOUT flag after an empty STREAM_READ")
    checks += 2

    # registers through the bridge: CNT_SEL is read/write
    await drv.write(Reg.CNT_SEL, 5)
    expect(await drv.read(Reg.CNT_SEL) == 5, "CNT_SEL read back")
    checks += 1
    return {"checks": checks}


async def _serve_socket(link, p):
    """Relay bytes between one TCP connection and the UART pins until the host closes it."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    srv.setblocking(False)
    with open(p["port_file"] + ".tmp", "w") as f:
        f.write(str(srv.getsockname()[1]))
    os.replace(p["port_file"] + ".tmp", p["port_file"])
    poll = Timer(10 * link.bit_ns, "ns")             # a byte time: the chip idles meanwhile
    t0 = time.time()
    while True:
        try:
            conn, _ = srv.accept()
            break
        except BlockingIOError:
            if time.time() - t0 > p.get("accept_timeout_s", 60):
                raise CheckError("no host connected")
            await poll
    conn.setblocking(False)
    sent = received = 0
    while True:
        try:
            data = conn.recv(4096)
            if not data:
                break                                # the host closed the port
            link.source.write_nowait(data)
            sent += len(data)
        except BlockingIOError:
            pass
        if not link.sink.empty():
            out = bytes(link.sink.read_nowait())
            conn.setblocking(True)
            conn.sendall(out)
            conn.setblocking(False)
            received += len(out)
        await poll
    conn.close()
    srv.close()
    return {"bytes_sent": sent, "bytes_received": received}
