# amaranth: UnusedElaboratable=no
"""The requant lane on Amaranth's simulator against the model's ``requant`` (onnxruntime's float32
requantization with integers), bit for bit: accumulators on both sides of every rounding tie of
many multipliers, powers of two (exact ties), random and extreme int32 values, both tie rules,
several output ranges; random inputs outside what the compiler loads too. A lane whose rounding
ignores the sticky bit is caught, and the lane's Verilog lints clean under the project's waivers."""

import random

import numpy as np
import pytest
from amaranth.hdl import Cat
from amaranth.sim import Simulator

from rramcim.model.requant import multiplier_parts, requant
from rramcim.rtl.postproc import RequantLane
from rramcim.rtl.verilog import convert
from rramcim.sim.tools import build as tools
from tests.configs import DEFAULT, TINY

INT32 = (-(1 << 31), (1 << 31) - 1)
# (zp, lo, hi): int8 symmetric, uint8 carried as int8 (zp -128), ReLU (lo = zp), a narrow range
RANGES = [(0, -128, 127), (-128, -128, 127), (-5, -5, 127), (17, -100, 60)]
FIELDS = ("a", "m", "s", "even", "zp", "lo", "hi")


def _near_ties(m, s, rng, ks=range(-300, 301)):
    """Accumulators within 2 of ``(k + 0.5) / M`` (the ties of the last rounding), for ``M = m * 2**-s``."""
    M = m / 2.0 ** s
    vals = set()
    for k in ks:
        c = round((k + 0.5) / M)
        vals.update(c + e for e in (-2, -1, 0, 1, 2))
    return [v for v in vals if INT32[0] <= v <= INT32[1]]


def _random_int32(rng, n):
    vals = [INT32[0], INT32[0] + 1, -1, 0, 1, INT32[1]]
    for _ in range(n):
        bits = rng.randint(1, 32)                       # every magnitude, not mostly 31-bit ones
        vals.append(rng.randint(-(1 << (bits - 1)), (1 << (bits - 1)) - 1))
    return vals


def _vectors(seed=1):
    """Rows ``(a, m, s, even, zp, lo, hi)``."""
    rng = random.Random(seed)
    rows = []

    def add(vals, m, s, n_ranges=1):
        for v in vals:
            for even in (0, 1):
                for zp, lo, hi in rng.sample(RANGES, n_ranges):
                    rows.append((v, m, s, even, zp, lo, hi))

    # near-ties of many multipliers: the docstring's double-rounding case, 1.0, and random M over
    # the exponents a layer meets (a multiplier of 2**-3 .. 2**-20; a few larger ones)
    Ms = [16093781 * 2.0 ** -33, 1.0, 0.75, 3.0, 100.0]
    Ms += [rng.uniform(1, 2) * 2.0 ** -rng.randint(3, 20) for _ in range(12)]
    for M in Ms:
        m, s = (int(x) for x in multiplier_parts(np.float32(M)))
        ks = range(-300, 301) if len(rows) < 12000 else rng.sample(range(-300, 301), 60)
        add(_near_ties(m, s, rng, ks), m, s)
    # powers of two: every odd multiple of half the step is an exact tie
    for j in range(1, 21):
        m, s = 1 << 23, 23 + j
        step = 1 << j
        ties = [k * step + step // 2 + e for k in range(-6, 6) for e in (-1, 0, 1)]
        add(ties + _random_int32(rng, 20), m, s, n_ranges=2)
    # random accumulators and multipliers in the loadable range
    for _ in range(40):
        m, s = rng.randint(1 << 23, (1 << 24) - 1), rng.randint(16, 63)
        add(_random_int32(rng, 40), m, s)
    return rows


def _random_inputs(seed, n):
    """Any values of the ports: ``m < 2**23``, ``s < 16``, ``lo > hi`` included."""
    rng = random.Random(seed)
    return [(rng.choice(_random_int32(rng, 1) + list(INT32)), rng.randint(0, (1 << 24) - 1),
             rng.randint(0, 63), rng.randint(0, 1), rng.randint(-128, 127), rng.randint(-128, 127),
             rng.randint(-128, 127)) for _ in range(n)]


def _mismatches(cfg, rows, lane=RequantLane):
    """Rows where the lane's ``y`` differs from the model: ``(row, rtl, model)``."""
    dut = lane(cfg)
    V = np.array(rows, dtype=np.int64)
    want = requant(V[:, 0], V[:, 1], V[:, 2], V[:, 4], V[:, 5], V[:, 6], V[:, 3].astype(bool))
    ports = [getattr(dut, f) for f in FIELDS]
    inputs = Cat(*ports)                                # one assignment, one settle, a vector
    words = np.zeros(len(rows), dtype=object)
    pos = 0
    for port, col in zip(ports, V.T):
        words += (col & ((1 << len(port)) - 1)).astype(object) << pos
        pos += len(port)
    bad = []

    async def bench(ctx):
        for row, word, w in zip(rows, words.tolist(), want.tolist()):
            ctx.set(inputs, word)
            got = ctx.get(dut.y)
            if got != w:
                bad.append((row, got, w))

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    return bad


def test_lane_matches_the_model():
    rows = _vectors()
    assert len(rows) > 15000
    bad = _mismatches(DEFAULT, rows)
    assert not bad, f"{len(bad)} of {len(rows)} differ, first ((a, m, s, even, zp, lo, hi), rtl, model): {bad[:5]}"


def test_lane_matches_the_model_on_any_input():
    rows = _random_inputs(2, 3000)
    bad = _mismatches(DEFAULT, rows)
    assert not bad, f"{len(bad)} of {len(rows)} differ, first ((a, m, s, even, zp, lo, hi), rtl, model): {bad[:5]}"


def test_lane_needs_32_bit_accumulators():
    # the refused lane is never elaborated: the file's first line silences Amaranth's warning
    with pytest.raises(ValueError, match="acc_bits"):
        RequantLane(TINY.replace(acc_bits=24))


def test_a_lane_whose_rounding_ignores_the_sticky_bit_is_caught():
    class _NoSticky(RequantLane):
        @staticmethod
        def round_up(guard, sticky, tie):
            return guard & tie                          # the injected bug: every guard bit a tie

    rng = random.Random(3)
    m, s = (int(x) for x in multiplier_parts(np.float32(0.0123)))
    rows = [(v, m, s, 1, 0, -128, 127) for v in _near_ties(m, s, rng, range(-50, 50))]
    assert _mismatches(DEFAULT, rows, lane=_NoSticky), "the check missed a lane that ignores the sticky bit"


def test_lane_verilog_lints_clean(tmp_path):
    path = tmp_path / "requant_lane.v"
    path.write_text(convert(RequantLane(DEFAULT), "requant_lane"))
    clean, out = tools.lint(path, "requant_lane")
    assert clean, out[:3000]
