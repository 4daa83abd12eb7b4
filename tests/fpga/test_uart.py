"""The UART alone on Amaranth's simulator: a naive line model against UartRx and UartTx, at several divisors."""

import random

import pytest
from amaranth.hdl import Module
from amaranth.sim import Simulator

from rramcim.fpga.uart import MIN_DIVISOR, UartRx, UartTx, check_divisor

DIVISORS = [MIN_DIVISOR, 5, 16]


def line_levels(frames, divisor, gap=0, phase=0):
    """The line, one level per clock: each frame a list of 10 bits (start, data LSB first, stop)."""
    out = [1] * (3 + phase)
    for bits in frames:
        for b in bits:
            out += [b] * divisor
        out += [1] * gap
    return out + [1] * (3 * divisor)


def frame(byte, stop=1):
    return [0] + [byte >> i & 1 for i in range(8)] + [stop]


def run_rx(divisor, levels, ready=lambda cycle: 1):
    dut = UartRx(divisor)
    got, frame_errors, overruns = [], [], []

    async def bench(ctx):
        for cycle, level in enumerate(levels):
            ctx.set(dut.rx, level)
            ctx.set(dut.data.ready, ready(cycle))
            if ctx.get(dut.data.valid) and ctx.get(dut.data.ready):
                got.append(ctx.get(dut.data.payload))
            if ctx.get(dut.frame_error):
                frame_errors.append(cycle)
            if ctx.get(dut.overrun):
                overruns.append(cycle)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return got, frame_errors, overruns


@pytest.mark.parametrize("divisor", DIVISORS)
def test_rx_bytes_back_to_back_any_phase(divisor):
    rng = random.Random(divisor)
    data = [0x00, 0xFF, 0x55, 0xAA] + [rng.randrange(256) for _ in range(12)]
    for phase in range(3):
        got, fe, ov = run_rx(divisor, line_levels([frame(b) for b in data], divisor, phase=phase))
        assert got == data and not fe and not ov


@pytest.mark.parametrize("divisor", DIVISORS)
def test_rx_bad_stop_bit_glitch_and_break(divisor):
    levels = line_levels([frame(0x3C, stop=0)], divisor)          # dropped, flagged
    levels += [1] * (4 * divisor)
    levels += [1, 0, 1, 1] + [1] * (2 * divisor)                    # a one-cycle glitch: no byte
    levels += [0] * (15 * divisor) + [1] * (2 * divisor)            # a break: one error, not bytes of zeros
    levels += line_levels([frame(0xC3)], divisor)                   # then bytes arrive as before
    got, fe, ov = run_rx(divisor, levels)
    assert got == [0xC3] and len(fe) == 2 and not ov


@pytest.mark.parametrize("divisor", DIVISORS)
def test_rx_overrun_keeps_the_waiting_byte(divisor):
    levels = line_levels([frame(0x11), frame(0x22)], divisor) + [1] * (10 * divisor)
    stop = 25 * divisor                       # the second byte completes at about 19.5 bit times
    got, fe, ov = run_rx(divisor, levels, ready=lambda c: int(c > stop))
    assert got == [0x11] and len(ov) == 1 and not fe


@pytest.mark.parametrize("divisor", DIVISORS)
def test_tx_bit_times_and_loopback(divisor):
    """Every bit of the transmitter lasts ``divisor`` clocks; its line decodes to the bytes sent, and the
    receiver on that line gets them back."""
    m = Module()
    m.submodules.tx = tx = UartTx(divisor)
    m.submodules.rx = rx = UartRx(divisor)
    m.d.comb += rx.rx.eq(tx.tx)
    data = [0x00, 0xFF, 0x81, 0x7E, 0x42]
    line, got = [], []

    async def bench(ctx):
        ctx.set(rx.data.ready, 1)
        pending = list(data)
        for _ in range(12 * divisor * len(data) + 40):
            if pending:
                ctx.set(tx.data.valid, 1)
                ctx.set(tx.data.payload, pending[0])
            else:
                ctx.set(tx.data.valid, 0)
            if pending and ctx.get(tx.data.ready):
                pending.pop(0)
            if ctx.get(rx.data.valid):
                got.append(ctx.get(rx.data.payload))
            line.append(ctx.get(tx.tx))
            await ctx.tick()

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert got == data
    # decode the line naively: at each falling edge a frame; sample each bit at its middle
    decoded, i = [], 0
    while i < len(line) - 1:
        if line[i] == 1 and line[i + 1] == 0:
            start = i + 1
            bits = [line[start + k * divisor + divisor // 2] for k in range(10)]
            assert bits[0] == 0 and bits[9] == 1
            assert all(line[start + k * divisor + j] == bits[k] for k in range(10) for j in range(divisor))
            decoded.append(sum(b << k for k, b in enumerate(bits[1:9])))
            i = start + 9 * divisor + divisor // 2
        else:
            i += 1
    assert decoded == data


def test_divisor_checked():
    with pytest.raises(TypeError, match="not 4.0"):
        check_divisor(4.0)
    with pytest.raises(ValueError, match=f"at least {MIN_DIVISOR}, not 3"):
        check_divisor(3)
    assert check_divisor(104) == 104


@pytest.mark.parametrize("error", [-0.04, 0.04])
def test_rx_tolerates_baud_mismatch(error):
    """A host 4 % fast or slow: sampling in the middle of each bit still reads every bit (at 16 clocks per
    bit the last sample drifts 6 clocks of the 8 it has); sampling near the edges would not."""
    divisor, data = 16, [0x00, 0xFF, 0x55, 0xAA, 0x0F, 0xF0]
    bit = divisor * (1 + error)
    levels, t = [1] * 5, 5.0
    for b in data:
        for level in frame(b):
            end = t + bit
            levels += [level] * (round(end) - len(levels))
            t = end
    levels += [1] * (3 * divisor)
    got, fe, ov = run_rx(divisor, levels)
    assert got == data and not fe and not ov
