"""The UART host protocol of the FPGA board top: byte layouts, encoders, and a transport over any byte link.

Pure Python (no Amaranth, no cocotb, no pyserial): the bridge's RTL
(:mod:`rramcim.fpga.bridge`) takes its command and reply codes from here, and
both host links use :class:`BridgeTransport` — the cocotbext-uart link in
simulation (:mod:`rramcim.sim.host.driver`) and the pyserial link for a real board
(:mod:`rramcim.fpga.host`).

The protocol
------------
The host sends a command; the bridge answers each command with exactly one
reply before it reads the next command byte. Multi-byte fields are
little-endian. ``NB`` is the byte width of one AXI4-Stream beat of the chip,
``ceil(max(64, flit_width) / 8)`` (8 for the ``tiny`` and ``default``
configs); a beat travels least significant byte first.

=====  =====================  ==========================================  ==========================================
code   command                request bytes                               reply bytes
=====  =====================  ==========================================  ==========================================
0x00   ``PING``               ``00``                                      ``80``
0x01   ``REG_WRITE``          ``01 addr d0 d1 d2 d3``                     ``81`` after the AXI4-Lite write response
0x02   ``REG_READ``           ``02 addr``                                 ``82 d0 d1 d2 d3``
0x03   ``STREAM_WRITE``       ``03 n0 n1`` then ``n+1`` beats of NB bytes ``83`` after the chip took the last beat
0x04   ``STREAM_WRITE_MORE``  as ``03``                                   ``84``
0x05   ``STREAM_READ``        ``05 n0 n1``                                ``85``, then up to ``n+1`` records
0x06   ``INFO``               ``06``                                      ``86 version NB flags``
other  (error)                the byte                                    ``FF`` and the byte
=====  =====================  ==========================================  ==========================================

* ``addr`` is the chip's 8-bit AXI4-Lite byte address (register map in
  docs/architecture.md); ``d0..d3`` the 32-bit data.
* ``n = n0 | n1 << 8`` is the number of beats minus one (1 to 65536 beats).
  ``STREAM_WRITE`` sets ``TLAST`` on its last beat and so ends an AXI4-Stream
  frame; ``STREAM_WRITE_MORE`` leaves the frame open, so a frame longer than
  65536 beats is sent as ``04`` commands and a final ``03``. The beats follow
  the three command bytes with no pause needed: the bridge buffers received
  bytes in a small FIFO while it hands a beat to the chip (the chip takes
  writes at once while it is idle, which is when the host writes).
* ``STREAM_READ`` forwards beats of the chip's output stream, each as a
  record ``flags`` + NB bytes, ``flags`` bit 0 being the beat's ``TLAST``;
  it stops after a ``TLAST`` record or after ``n+1`` records. The host asks
  only after a read frame (type 3) went out: if no beat comes for
  :func:`timeout_cycles` clocks, the reply ends with a record of flags
  :data:`RECORD_TIMEOUT` (``02``) and NB zero bytes.
* A command whose bytes stop coming for :func:`timeout_cycles` clocks (a
  host killed mid-command) is dropped without a reply: the bridge waits for
  a command byte again.
* ``INFO`` returns :data:`BRIDGE_VERSION`, NB (the host checks it against its
  config) and sticky error flags, then clears them: bit 0 a bad command byte,
  bit 1 a received byte with a bad stop bit (dropped), bit 2 a received byte
  lost because the bridge's receive FIFO was full, bit 3 a timeout (above).
* A byte that is not a command code gets the two-byte error reply
  ``FF <byte>`` and sets flag bit 0; the bridge then waits for the next
  command byte. A host that lost sync sends ``PING`` bytes until it reads
  ``80``.

The chip's own framing (a header beat then words, docs/architecture.md)
travels inside ``STREAM_WRITE``/``STREAM_READ`` unchanged.
"""

from __future__ import annotations

import enum

__all__ = ["Cmd", "REPLY_OK", "REPLY_ERROR", "RECORD_TIMEOUT", "BRIDGE_VERSION", "Flag", "ProtocolError",
           "BridgeTransport", "beat_bytes", "timeout_cycles", "TIMEOUT_BYTES", "encode_reg_write", "encode_reg_read", "encode_stream_write", "encode_stream_read",
           "MAX_BEATS", "DEFAULT_BAUD"]

BRIDGE_VERSION = 1
REPLY_OK = 0x80          # a reply's first byte: the command code with bit 7 set
REPLY_ERROR = 0xFF
RECORD_TIMEOUT = 0x02    # a STREAM_READ record's flags: no beat came; the reply ends here
MAX_BEATS = 1 << 16      # beats in one STREAM_WRITE / STREAM_READ command
TIMEOUT_BYTES = 2048     # the bridge's timeout in byte times (about 180 ms at 115200 baud): longer than
                         # any pause of a USB serial adapter inside one host write
DEFAULT_BAUD = 115200    # the board tops' default line rate (the bridge's divisor is clk_hz // baud)


class Cmd(enum.IntEnum):
    PING = 0x00
    REG_WRITE = 0x01
    REG_READ = 0x02
    STREAM_WRITE = 0x03
    STREAM_WRITE_MORE = 0x04
    STREAM_READ = 0x05
    INFO = 0x06


class Flag(enum.IntFlag):
    """``INFO`` flag bits (sticky until an ``INFO``)."""
    BAD_COMMAND = 1
    RX_FRAME_ERROR = 2
    RX_OVERRUN = 4
    TIMEOUT = 8


def timeout_cycles(divisor: int) -> int:
    """The bridge's timeout in clocks at ``divisor`` clocks per bit: :data:`TIMEOUT_BYTES` byte times."""
    return TIMEOUT_BYTES * 10 * divisor


class ProtocolError(RuntimeError):
    """The bridge's reply is not the one the protocol defines (or none came)."""


def beat_bytes(beat_bits: int) -> int:
    """Bytes of one stream beat on the wire."""
    return (beat_bits + 7) // 8


def _le(value: int, n: int) -> bytes:
    return int(value).to_bytes(n, "little")


def encode_reg_write(addr: int, value: int) -> bytes:
    return bytes([Cmd.REG_WRITE, addr & 0xFF]) + _le(value & 0xFFFF_FFFF, 4)


def encode_reg_read(addr: int) -> bytes:
    return bytes([Cmd.REG_READ, addr & 0xFF])


def encode_stream_write(beats, nb: int, last: bool = True) -> bytes:
    """One ``STREAM_WRITE`` (``last``) or ``STREAM_WRITE_MORE`` command of 1 to :data:`MAX_BEATS` beats."""
    beats = list(beats)
    if not 1 <= len(beats) <= MAX_BEATS:
        raise ValueError(f"a stream command carries 1 to {MAX_BEATS} beats, not {len(beats)}")
    cmd = Cmd.STREAM_WRITE if last else Cmd.STREAM_WRITE_MORE
    mask = (1 << 8 * nb) - 1
    return bytes([cmd]) + _le(len(beats) - 1, 2) + b"".join(_le(int(b) & mask, nb) for b in beats)


def encode_stream_read(max_beats: int) -> bytes:
    if not 1 <= max_beats <= MAX_BEATS:
        raise ValueError(f"a stream read asks for 1 to {MAX_BEATS} beats, not {max_beats}")
    return bytes([Cmd.STREAM_READ]) + _le(max_beats - 1, 2)


class BridgeTransport:
    """The host driver's transport (``reg_read``, ``reg_write``, ``stream_write``, ``stream_read``) over the bridge.

    Parameters
    ----------
    link : object
        A byte link with ``async send(data: bytes)`` and ``async recv(n: int) -> bytes`` (exactly ``n``
        bytes or an exception). Synchronous links (pyserial) implement them as blocking calls.
    beat_bits : int
        Width of the chip's stream beats (:func:`rramcim.rtl.top.beat_width`).
    """

    def __init__(self, link, beat_bits: int):
        self.link = link
        self.nb = beat_bytes(beat_bits)

    async def _expect(self, code: int, what: str) -> None:
        got = (await self.link.recv(1))[0]
        if got != code:
            extra = ""
            if got == REPLY_ERROR:
                extra = f" (the bridge rejected command byte {(await self.link.recv(1))[0]:#04x})"
            raise ProtocolError(f"{what}: reply byte {got:#04x}, expected {code:#04x}{extra}")

    async def ping(self) -> None:
        await self.link.send(bytes([Cmd.PING]))
        await self._expect(REPLY_OK | Cmd.PING, "PING")

    async def info(self) -> dict:
        """``{"version", "beat_bytes", "flags"}``; reading clears the bridge's sticky flags."""
        await self.link.send(bytes([Cmd.INFO]))
        await self._expect(REPLY_OK | Cmd.INFO, "INFO")
        version, nb, flags = await self.link.recv(3)
        return {"version": version, "beat_bytes": nb, "flags": Flag(flags)}

    async def check(self) -> None:
        """The bridge answers, speaks this protocol version and has this beat width; no error flags."""
        i = await self.info()
        if i["version"] != BRIDGE_VERSION or i["beat_bytes"] != self.nb:
            raise ProtocolError(f"bridge version {i['version']} with {i['beat_bytes']}-byte beats; this host "
                                f"speaks version {BRIDGE_VERSION} with {self.nb}-byte beats (another config?)")

    async def reg_write(self, addr: int, value: int) -> None:
        await self.link.send(encode_reg_write(addr, value))
        await self._expect(REPLY_OK | Cmd.REG_WRITE, f"REG_WRITE {addr:#04x}")

    async def reg_read(self, addr: int) -> int:
        await self.link.send(encode_reg_read(addr))
        await self._expect(REPLY_OK | Cmd.REG_READ, f"REG_READ {addr:#04x}")
        return int.from_bytes(await self.link.recv(4), "little")

    async def stream_write(self, beats) -> None:
        """One AXI4-Stream frame (``TLAST`` on its last beat), in commands of at most :data:`MAX_BEATS` beats."""
        beats = [int(b) for b in beats]
        for i in range(0, len(beats), MAX_BEATS):
            chunk = beats[i:i + MAX_BEATS]
            last = i + MAX_BEATS >= len(beats)
            await self.link.send(encode_stream_write(chunk, self.nb, last))
            cmd = Cmd.STREAM_WRITE if last else Cmd.STREAM_WRITE_MORE
            await self._expect(REPLY_OK | cmd, f"{cmd.name} of {len(chunk)} beats")

    async def stream_read(self) -> list[int]:
        """One AXI4-Stream frame from the chip (up to ``TLAST``)."""
        beats: list[int] = []
        while True:
            await self.link.send(encode_stream_read(MAX_BEATS))
            await self._expect(REPLY_OK | Cmd.STREAM_READ, "STREAM_READ")
            for _ in range(MAX_BEATS):
                rec = await self.link.recv(1 + self.nb)
                if rec[0] == RECORD_TIMEOUT:
                    raise ProtocolError("STREAM_READ: the chip sent no beat (the bridge timed out)")
                if rec[0] & ~1:
                    raise ProtocolError(f"STREAM_READ record flags {rec[0]:#04x} (bit 0, TLAST, or {RECORD_TIMEOUT:#04x})")
                beats.append(int.from_bytes(rec[1:], "little"))
                if rec[0] & 1:
                    return beats
