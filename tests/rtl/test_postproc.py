"""The post-processing lane on Amaranth's simulator against the model's ``post_process``: every
shift, ReLU on and off, random values and the corners (bounds of the clamp and of acc_bits, the
rounding ties), for int8 outputs from int32 accumulators and for other widths."""

import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from rramcim.model.chip import post_process
from rramcim.rtl.postproc import ShiftClampLane
from tests.configs import TINY


def _values(cfg, rng):
    A, X = cfg.acc_bits, cfg.xbits
    lo, hi = -(1 << (A - 1)), (1 << (A - 1)) - 1
    vals = {lo, hi, 0, -1, 1}
    for s in range(32):
        for b in (X - 1, X, X + 1):
            for base in (1 << (s + b)) if s + b < A else 0, -(1 << (s + b)) if s + b < A else 0:
                for d in (-1, 0, 1):
                    vals.add(base + d)
        if 0 < s < A:
            for k in (-3, -2, -1, 1, 2, 3):          # ties: k * 2**s + 2**(s-1)
                vals.add(k * (1 << s) + (1 << (s - 1)))
                vals.add(k * (1 << s) + (1 << (s - 1)) - 1)
    vals |= {rng.randint(lo, hi) for _ in range(300)}
    vals |= {rng.randint(-(1 << 12), 1 << 12) for _ in range(100)}
    return sorted(v for v in vals if lo <= v <= hi)


def _mismatches(cfg, seed=1, lane=ShiftClampLane):
    rng = random.Random(seed)
    dut = lane(cfg)
    values = _values(cfg, rng)
    bad = []

    async def bench(ctx):
        for shift in range(32):
            for relu in (0, 1):
                want = post_process(np.array(values, dtype=np.int64), np.zeros(len(values), dtype=np.int64),
                                    shift, relu, cfg)
                ctx.set(dut.shift, shift)
                ctx.set(dut.relu, relu)
                for v, w in zip(values, want):
                    ctx.set(dut.a, v)
                    got = ctx.get(dut.y)
                    if got != int(w):
                        bad.append((v, shift, relu, got, int(w)))

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    return bad


@pytest.mark.parametrize("acc_bits, xbits", [(32, 8), (16, 8), (24, 4), (8, 8), (12, 6)])
def test_lane_matches_the_model(acc_bits, xbits):
    cfg = TINY.replace(acc_bits=acc_bits, xbits=xbits, wbits=min(8, xbits))
    bad = _mismatches(cfg)
    assert not bad, f"{len(bad)} mismatches, first (a, shift, relu, rtl, model): {bad[:5]}"


def test_a_lane_without_the_rounding_bit_is_caught():
    class _Truncating(ShiftClampLane):
        def elaborate(self, platform):
            m = super().elaborate(platform)
            # the injected bug: round toward -inf (the rounding bit dropped)
            m.d.comb += self.y.eq((self.a >> self.shift)[:self.cfg.xbits])
            return m

    assert _mismatches(TINY, lane=_Truncating), "the check missed a lane that drops the rounding bit"
