"""cocotb checks of the chip's AXI host interface itself (rtl/top.py), through its ports only.

Identification (and a driver for another config refusing the chip), stream
framing (a bad frame type is dropped and flagged, later frames still work,
an empty read), the error registers and the ``irq`` line, soft reset from
``CTRL``, and the 64-bit counter read with its latched high word.
"""

import cocotb
from cocotb.triggers import ClockCycles

from ...model.encoding import ErrorCode, counter_index
from ...model.isa import assemble
from ...rtl.top import FrameType, Reg, ctrl_word
from .common import run_axi_bench
from ..host.driver import DriverError, HostDriver
from ..benches.io import CheckError, expect


@cocotb.test()
async def chip_axi_checks(dut):
    async def steps(drv, cfg, p, progress):
        other = HostDriver.__new__(HostDriver)
        other.__dict__.update(drv.__dict__)
        other.cfg = cfg.replace(name="other", gbuf_words=cfg.gbuf_words // 2)
        try:
            await other.check_id()
            raise CheckError("a driver for another config accepted the chip")
        except DriverError as e:
            expect(f"{Reg.CFG4:#04x}" in str(e), f"wrong register named: {e}")

        # a frame of an unknown type is dropped and flagged; the next frames still work
        await drv._send([drv._header(7, 0), 1, 2, 3])
        expect((await drv.status())["frame_error"], "frame_error not set by a type-7 frame")
        words = [(0x1234_5678_9ABC_DEF0 >> (64 - cfg.flit_width)) + k for k in range(5)]
        await drv.write_gbuf(17, words)
        expect(await drv.read_gbuf(17, 5) == words, "global-buffer words read back differ")
        await drv._send([drv._header(FrameType.READ, 3, 0)])
        frame = await drv.sink.recv()
        expect([int(b) for b in frame.tdata] == [drv._header(FrameType.READ, 3, 0)], "empty read reply")
        await drv.write(Reg.CTRL, ctrl_word("clear_frame_error"))
        expect(not (await drv.status())["frame_error"], "CTRL clear_frame_error did not clear frame_error")

        # an error: code, address, irq; soft reset clears control state, not memories
        await drv.load_program(assemble("nop\nnop\n.word 0x3f\nhalt"))
        await drv.start()
        await drv.wait_done()
        err = await drv.error()
        expect(err is not None and (err.code, err.pc) == (ErrorCode.ILLEGAL_OPCODE, 2),
                f"error register {err}, expected illegal opcode at 2")
        await ClockCycles(dut.clk, 1)
        expect(int(dut.irq.value) == 1, "irq low with an error in the register")
        cycles = await drv.counter(counter_index("cycles"))
        expect(cycles == 3, f"cycles counter {cycles}, expected 3 (two nops and the failing fetch)")
        await drv.write(Reg.CTRL, ctrl_word("soft_reset"))
        await ClockCycles(dut.clk, 2)
        expect(await drv.error() is None and int(dut.irq.value) == 0, "soft reset left the error set")
        expect(await drv.read_gbuf(17, 5) == words, "soft reset changed the global buffer")
        s = await drv.status()
        expect(not s["done"] and not s["running"] and s["quiet"], f"status after soft reset {s}")
        # a long run: the counter's high word is latched when the low word is read
        await drv.load_program(assemble("nop\n" * 40 + "halt"))
        await drv.start()
        await drv.wait_done()
        expect(await drv.counter(counter_index("cycles")) == 41
               and await drv.counter(counter_index("instructions")) == 41, "cycles/instructions of 41 fetches")
        return {"checks": 9}

    await run_axi_bench(dut, steps, default_pause=0.3)
