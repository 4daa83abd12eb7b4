"""The performance counters (pre-counters and the bank of 64-bit totals) on Amaranth's simulator,
against 64-bit counters kept in Python: random events, runs of random length, clears, reads of
every index while idle (the one written back in the first idle cycle included)."""

import random

import pytest
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from rramcim.rtl.counters import COUNTER_BITS, CounterBank, max_amount, pre_counters

DEPTH = 12
# counter index -> its terms: ("c", amount) a condition with a constant amount, ("s", bits) an amount input
COUNTERS = {0: [("c", 1)], 1: [("c", 128), ("c", 128), ("c", 128)], 2: [("s", 3)], 5: [("c", 7), ("s", 4)],
            11: [("c", 1 << 20)]}


class _Harness(wiring.Component):
    def __init__(self, period):
        self.period = period
        members = {"running": In(1), "clear": In(1), "index": In(range(DEPTH)), "value": Out(COUNTER_BITS)}
        for i, terms in COUNTERS.items():
            for j, (kind, v) in enumerate(terms):
                members[f"ev{i}_{j}"] = In(1 if kind == "c" else v)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        m.submodules.bank = bank = CounterBank(list(COUNTERS), DEPTH)
        m.d.comb += [bank.running.eq(self.running), bank.clear.eq(self.clear), bank.index.eq(self.index),
                     self.value.eq(bank.value)]
        incs = {}
        for i, terms in COUNTERS.items():
            incs[f"c{i}"] = [(getattr(self, f"ev{i}_{j}"), v) if kind == "c"
                             else (1, getattr(self, f"ev{i}_{j}")) for j, (kind, v) in enumerate(terms)]
        # the bank's port drives running, clear and take of the pre-counters from its own inputs
        pre_counters(m, incs, period=self.period, port=bank.source0)
        return m


def _run(period, seed, runs=12):
    rng = random.Random(seed)
    dut = _Harness(period)
    errors = []

    async def bench(ctx):
        ref = {i: 0 for i in range(DEPTH)}
        f = 0

        async def read_all(order):
            for i in order:
                ctx.set(dut.index, i)
                await ctx.tick()
                if ctx.get(dut.value) != ref[i]:
                    errors.append(f"counter {i}: {ctx.get(dut.value)}, expected {ref[i]}")

        for run in range(runs):
            if rng.random() < 0.7:              # a start clears
                ctx.set(dut.clear, 1)
                await ctx.tick()
                ctx.set(dut.clear, 0)
                ref = {i: 0 for i in range(DEPTH)}
                f = 0
            ctx.set(dut.running, 1)
            busy = rng.choice([0.05, 0.5, 1.0])
            for _ in range(rng.choice([1, 2, 5, DEPTH, 3 * DEPTH + 1, rng.randrange(50, 400)])):
                for i, terms in COUNTERS.items():
                    for j, (kind, v) in enumerate(terms):
                        x = (rng.random() < busy) if kind == "c" else rng.randrange(1 << v) * (rng.random() < busy)
                        ctx.set(getattr(dut, f"ev{i}_{j}"), int(x))
                        ref[i] += (v if kind == "c" else x) if x else 0
                await ctx.tick()
                last, f = f, (f + 1) % len(COUNTERS)
            ctx.set(dut.running, 0)
            for i in range(DEPTH):               # events while not running do not count
                for j, (kind, v) in enumerate(COUNTERS.get(i, [])):
                    ctx.set(getattr(dut, f"ev{i}_{j}"), 1)
            order = list(range(DEPTH))
            rng.shuffle(order)
            # the first read is of the index written back in this (the first idle) cycle
            await read_all([list(COUNTERS)[last]] + order)
        assert all(v < (1 << COUNTER_BITS) for v in ref.values())

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return errors


def test_max_amount():
    assert max_amount(5) == 5
    assert max_amount(Signal(3)) == 7


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_counters_match_64_bit_counters(seed):
    errors = _run(len(COUNTERS), seed)
    assert not errors, errors[:5]


def test_a_pre_counter_too_narrow_is_caught():
    # pre-counters sized for a round robin of 2 counters (it visits 5) overflow between visits
    errors = _run(2, 1)
    assert errors, "the check missed pre-counters that overflow"
