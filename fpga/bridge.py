"""The UART-to-host bridge: commands in bytes onto the chip's AXI4-Lite and AXI4-Stream ports.

The byte layout of every command and reply is in :mod:`rramcim.fpga.protocol`
(and docs/fpga.md, "UART protocol"); the codes come from there. In short: a
command byte, its argument bytes, and one reply per command — ``PING``,
``REG_WRITE addr d0..d3``, ``REG_READ addr``, ``STREAM_WRITE[_MORE] n0 n1``
and ``n+1`` beats, ``STREAM_READ n0 n1`` (records ``flags`` + beat until
``TLAST``), ``INFO``; any other byte gets ``FF <byte>`` and a sticky flag.

The bridge is a master on the chip's ports: it drives ``s_axil_*`` one
transaction at a time (address and data together, waits for the response)
and ``s_axis_*`` one beat at a time, and takes ``m_axis_*`` beats only
inside a ``STREAM_READ``. It never looks inside the chip's frames.

Timing: the bridge handles a byte within a cycle of its arrival except while
it hands a beat to the chip or waits for an AXI4-Lite response; bytes that
arrive meanwhile wait in the receive FIFO the board core puts in front of it.
Replies go out as fast as the transmitter takes them.

Recovery: a command whose bytes stop coming (a host killed mid-command) is
dropped after ``timeout`` clocks of silence (flag ``TIMEOUT``), and a
``STREAM_READ`` that waits that long for a beat ends with a record whose
flags say so; the bridge then waits for a command again, so the next host
finds it in sync without a board reset.
"""

from typing import NamedTuple

from amaranth.hdl import Cat, Const, Module, Shape, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .protocol import BRIDGE_VERSION, RECORD_TIMEOUT, REPLY_ERROR, REPLY_OK, Cmd, Flag, beat_bytes

__all__ = ["Bridge"]


#: The bit of each sticky ``INFO`` flag in the bridge's ``flags`` register.
_FLAG_BIT = {f: f.value.bit_length() - 1 for f in Flag}


def _byte(v) -> Const:
    """A reply byte: a code of :mod:`rramcim.fpga.protocol`."""
    return Const(int(v), 8)


class _Registers(NamedTuple):
    """The bridge's state besides its FSM state (see :meth:`Bridge._registers`)."""
    cmd: Signal             # the command byte
    arg: Signal             # its argument bytes, shifted in at the top
    arg_left: Signal
    beat: Signal            # a beat's bytes, shifted in at the top
    beat_left: Signal
    count: Signal           # beats still to move in this command
    reply: Signal           # the reply, shifted out at the bottom
    reply_left: Signal
    then_pull: Signal       # after this reply, the next STREAM_READ record
    aw_done: Signal
    w_done: Signal
    flags: Signal           # the sticky INFO flags (protocol.Flag; bit numbers _FLAG_BIT)
    silent: Signal          # clocks of silence
    timed_out: Signal


class Bridge(wiring.Component):
    """Parameters
    ----------
    chip_signature : wiring.Signature
        The chip top's signature (:class:`rramcim.rtl.top.ChipTop`): flat ``s_axil_*``, ``s_axis_*``,
        ``m_axis_*`` and ``irq`` members.
    timeout : int
        Clocks of silence after which a half-received command is dropped or a ``STREAM_READ`` ends
        (:func:`rramcim.fpga.protocol.timeout_cycles` of the UART divisor).

    Members
    -------
    rx : In(stream.Signature(8))
        Bytes from the host (the UART receiver, through a FIFO).
    tx : Out(stream.Signature(8))
        Bytes to the host (the UART transmitter).
    rx_frame_error, rx_overrun : In(1)
        Pulses from the receiver; each sets its sticky ``INFO`` flag.
    chip : In(chip_signature)
        The chip's ports, flipped: the bridge drives the chip's inputs.
    bad_command : Out(1)
        The sticky bad-command flag (until an ``INFO`` reads it).
    """

    def __init__(self, chip_signature: wiring.Signature, timeout: int):
        if not isinstance(chip_signature, wiring.Signature):
            raise TypeError(f"chip_signature must be a wiring.Signature, not {chip_signature!r}")
        if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 1:
            raise TypeError(f"timeout must be a positive integer, not {timeout!r}")
        self.timeout = timeout
        self.beat_bits = Shape.cast(chip_signature.members["s_axis_tdata"].shape).width
        super().__init__({
            "rx": In(stream.Signature(8)),
            "tx": Out(stream.Signature(8)),
            "rx_frame_error": In(1),
            "rx_overrun": In(1),
            "chip": In(chip_signature),
            "bad_command": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        r = self._registers(m)
        with m.FSM():
            with m.State("IDLE"):
                self._idle(m, r)
            with m.State("ARGS"):
                self._shift_in(m, r, r.arg, r.arg_left, "DISPATCH")
            with m.State("DISPATCH"):
                self._dispatch(m, r)
            self._axil_states(m, r)
            self._stream_states(m, r)
            with m.State("SEND"):
                m.d.comb += self.tx.valid.eq(1)
                m.d.sync += r.silent.eq(0)              # a read's wait for its next beat starts after this
                with m.If(self.tx.ready):
                    m.d.sync += [r.reply.eq(r.reply[8:]), r.reply_left.eq(r.reply_left - 1)]
                    with m.If(r.reply_left == 1):
                        m.next = "IDLE"
                        with m.If(r.then_pull):
                            m.next = "PULL"
        return m

    def _registers(self, m):
        """The bridge's registers, its silence timer and sticky flags, and the chip inputs it drives
        from them outside any state; returns them as :class:`_Registers`."""
        c = self.chip
        D = self.beat_bits
        NB = beat_bytes(D)
        rx, tx = self.rx, self.tx

        cmd = Signal(8)
        # arguments shift in at the top: after k bytes they sit in arg[40 - 8k:40], first byte lowest
        arg = Signal(40)
        arg_left = Signal(range(6))
        beat = Signal(8 * NB)                         # shifts in at the top the same way
        beat_left = Signal(range(NB + 1))
        count = Signal(17)                            # beats still to move in this command
        reply = Signal(max(40, 8 * (1 + NB)))         # shifts out at the bottom
        reply_left = Signal(range(NB + 2))
        then_pull = Signal()                          # after this reply, the next STREAM_READ record
        aw_done, w_done = Signal(), Signal()

        flags = Signal(4)
        # clocks since the last byte (ARGS, BEAT) or since the read began or its last beat (PULL)
        silent = Signal(range(self.timeout + 1))
        timed_out = Signal()
        m.d.comb += timed_out.eq(silent == self.timeout)
        m.d.sync += silent.eq(silent + 1)
        m.d.comb += self.bad_command.eq(flags[_FLAG_BIT[Flag.BAD_COMMAND]])
        with m.If(self.rx_frame_error):
            m.d.sync += flags[_FLAG_BIT[Flag.RX_FRAME_ERROR]].eq(1)
        with m.If(self.rx_overrun):
            m.d.sync += flags[_FLAG_BIT[Flag.RX_OVERRUN]].eq(1)
        with m.If(rx.valid & rx.ready | timed_out):
            m.d.sync += silent.eq(0)

        m.d.comb += [
            c.s_axil_awaddr.eq(arg[:8]), c.s_axil_wdata.eq(arg[8:40]), c.s_axil_wstrb.eq(0xF),
            c.s_axil_araddr.eq(arg[32:40]),
            c.s_axis_tdata.eq(beat[:D]),
            tx.payload.eq(reply[:8]),
        ]
        return _Registers(cmd, arg, arg_left, beat, beat_left, count, reply, reply_left, then_pull,
                          aw_done, w_done, flags, silent, timed_out)

    @staticmethod
    def _send(m, r, *fields, pull=False):
        """Start a reply of whole bytes: ``fields`` are 8-bit codes, register data or a record."""
        value = Cat(*fields)
        assert len(value) % 8 == 0 and len(value) <= len(r.reply)
        m.d.sync += [r.reply.eq(value), r.reply_left.eq(len(value) // 8), r.then_pull.eq(pull)]
        m.next = "SEND"

    def _idle(self, m, r):
        """IDLE: take a command byte; answer ``PING``, ``INFO`` and bad bytes at once, else collect arguments."""
        rx, NB = self.rx, beat_bytes(self.beat_bits)
        m.d.comb += rx.ready.eq(1)
        with m.If(rx.valid):
            m.d.sync += r.cmd.eq(rx.payload)
            with m.Switch(rx.payload):
                with m.Case(Cmd.PING):
                    self._send(m, r, _byte(REPLY_OK | Cmd.PING))
                with m.Case(Cmd.REG_WRITE):
                    m.d.sync += r.arg_left.eq(5)
                    m.next = "ARGS"
                with m.Case(Cmd.REG_READ):
                    m.d.sync += r.arg_left.eq(1)
                    m.next = "ARGS"
                with m.Case(Cmd.STREAM_WRITE, Cmd.STREAM_WRITE_MORE, Cmd.STREAM_READ):
                    m.d.sync += r.arg_left.eq(2)
                    m.next = "ARGS"
                with m.Case(Cmd.INFO):
                    self._send(m, r, _byte(REPLY_OK | Cmd.INFO), _byte(BRIDGE_VERSION), _byte(NB),
                               Cat(r.flags, Const(0, 4)))
                    m.d.sync += r.flags.eq(0)
                with m.Default():
                    self._send(m, r, _byte(REPLY_ERROR), rx.payload)
                    m.d.sync += r.flags[_FLAG_BIT[Flag.BAD_COMMAND]].eq(1)

    def _shift_in(self, m, r, reg, left, then: str):
        """Take bytes from the UART into ``reg`` (least significant byte first) until ``left`` reaches 0,
        then go to state ``then``; a byte that does not come in time flags TIMEOUT and goes back to IDLE."""
        m.d.comb += self.rx.ready.eq(1)
        with m.If(self.rx.valid):
            m.d.sync += [reg.eq(Cat(reg[8:], self.rx.payload)), left.eq(left - 1)]
            with m.If(left == 1):
                m.next = then
        with m.Elif(r.timed_out):
            m.d.sync += r.flags[_FLAG_BIT[Flag.TIMEOUT]].eq(1)
            m.next = "IDLE"

    def _dispatch(self, m, r):
        """DISPATCH: the arguments are in; go to the command's transfer (a read answers first)."""
        m.d.sync += r.silent.eq(0)
        m.d.sync += [r.count.eq(r.arg[24:40] + 1), r.beat_left.eq(beat_bytes(self.beat_bits)),
                     r.aw_done.eq(0), r.w_done.eq(0)]
        with m.Switch(r.cmd):
            with m.Case(Cmd.REG_WRITE):
                m.next = "AXIL_WRITE"
            with m.Case(Cmd.REG_READ):
                m.next = "AXIL_ADDR"
            with m.Case(Cmd.STREAM_WRITE, Cmd.STREAM_WRITE_MORE):
                m.next = "BEAT"
            with m.Default():                    # STREAM_READ
                self._send(m, r, _byte(REPLY_OK | Cmd.STREAM_READ), pull=True)

    def _axil_states(self, m, r):
        """AXIL_WRITE (address and data together, until the response), AXIL_ADDR and AXIL_DATA (a read)."""
        c = self.chip
        with m.State("AXIL_WRITE"):
            m.d.comb += [c.s_axil_awvalid.eq(~r.aw_done), c.s_axil_wvalid.eq(~r.w_done), c.s_axil_bready.eq(1)]
            with m.If(c.s_axil_awready):
                m.d.sync += r.aw_done.eq(1)
            with m.If(c.s_axil_wready):
                m.d.sync += r.w_done.eq(1)
            with m.If(c.s_axil_bvalid):
                self._send(m, r, _byte(REPLY_OK | Cmd.REG_WRITE))

        with m.State("AXIL_ADDR"):
            m.d.comb += c.s_axil_arvalid.eq(1)
            with m.If(c.s_axil_arready):
                m.next = "AXIL_DATA"
        with m.State("AXIL_DATA"):
            m.d.comb += c.s_axil_rready.eq(1)
            with m.If(c.s_axil_rvalid):
                self._send(m, r, _byte(REPLY_OK | Cmd.REG_READ), c.s_axil_rdata)

    def _stream_states(self, m, r):
        """BEAT (collect a beat's bytes), PUSH (hand it to ``s_axis``), PULL (a ``STREAM_READ`` record)."""
        c, D = self.chip, self.beat_bits
        NB = beat_bytes(D)
        with m.State("BEAT"):
            self._shift_in(m, r, r.beat, r.beat_left, "PUSH")
        with m.State("PUSH"):
            m.d.sync += r.silent.eq(0)                # waiting for the chip is not the host's silence
            m.d.comb += [c.s_axis_tvalid.eq(1),
                         c.s_axis_tlast.eq((r.count == 1) & (r.cmd == Cmd.STREAM_WRITE))]
            with m.If(c.s_axis_tready):
                m.d.sync += [r.count.eq(r.count - 1), r.beat_left.eq(NB)]
                with m.If(r.count == 1):
                    self._send(m, r, r.cmd | REPLY_OK)
                with m.Else():
                    m.next = "BEAT"

        with m.State("PULL"):
            m.d.comb += c.m_axis_tready.eq(1)
            with m.If(c.m_axis_tvalid):
                m.d.sync += r.count.eq(r.count - 1)
                self._send(m, r, Cat(c.m_axis_tlast, Const(0, 7)), c.m_axis_tdata, Const(0, 8 * NB - D),
                           pull=~c.m_axis_tlast & (r.count != 1))
            with m.Elif(r.timed_out):                  # no beat came: an empty record ends the reply
                m.d.sync += r.flags[_FLAG_BIT[Flag.TIMEOUT]].eq(1)
                self._send(m, r, _byte(RECORD_TIMEOUT), Const(0, 8 * NB))
