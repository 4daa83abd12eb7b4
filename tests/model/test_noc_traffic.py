"""The synthetic traffic generator: determinism, offered load, destinations, lengths, argument checks."""

import math

import pytest

from rramcim.model.config import PRESETS
from rramcim.model.encoding import unpack_header
from rramcim.model.noc import MeshModel, hop_count, zero_load_latency
from rramcim.model.noc_traffic import (HOTSPOT_SHARE, PATTERNS, generate, hotspot_node,
                                       mean_packet_flits)

MESH4 = PRESETS["default"].replace(name="mesh4x4", mesh_x=4, mesh_y=4)
MESH3X4 = PRESETS["default"].replace(name="mesh3x4", mesh_x=3, mesh_y=4)
NODES4 = [(x, y) for y in range(4) for x in range(4)]


def all_packets(traffic):
    return [p for pkts in traffic.values() for p in pkts]


def as_tuples(traffic):
    return {n: [(p.src, p.dest, p.ptype, list(p.payload), p.index, p.release) for p in pkts]
            for n, pkts in traffic.items()}


@pytest.mark.parametrize("pattern", PATTERNS)
def test_same_seed_same_packets(pattern):
    a = generate(MESH4, pattern, 0.3, 500, seed=7)
    b = generate(MESH4, pattern, 0.3, 500, seed=7)
    c = generate(MESH4, pattern, 0.3, 500, seed=8)
    assert as_tuples(a) == as_tuples(b)
    assert as_tuples(a) != as_tuples(c)


def test_every_node_listed_with_ordered_sources_indices_and_releases():
    t = generate(MESH4, "uniform", 0.4, 300, seed=1)
    assert sorted(t) == sorted(NODES4)
    for n, pkts in t.items():
        assert [p.index for p in pkts] == list(range(len(pkts)))
        assert all(p.src == n for p in pkts)
        releases = [p.release for p in pkts]
        assert releases == sorted(releases) and len(set(releases)) == len(releases)  # at most one a cycle
        assert all(0 <= r < 300 for r in releases)


@pytest.mark.parametrize("rate", [0.05, 0.3, 0.9])
def test_offered_load_close_to_rate(rate):
    cycles, max_len = 20_000, 8
    t = generate(MESH4, "uniform", rate, cycles, seed=3, max_len=max_len)
    pkts = all_packets(t)
    flits = sum(len(p.payload) + 1 for p in pkts)
    n = len(NODES4) * cycles
    # Packets per node-cycle are Bernoulli(q); flits per node-cycle then have
    # variance q*E[L^2] - (q*E[L])^2 with L uniform over 1..max_len.
    q = rate / mean_packet_flits(max_len)
    e_l2 = sum(k * k for k in range(1, max_len + 1)) / max_len
    sigma = math.sqrt((q * e_l2 - rate * rate) / n)
    assert abs(flits / n - rate) < 5 * sigma
    packet_sigma = math.sqrt(q * (1 - q) / n)
    assert abs(len(pkts) / n - q) < 5 * packet_sigma


def test_lengths_payload_words_and_types_in_range():
    cfg = MESH4.replace(name="narrow", flit_width=32)
    for max_len in (1, 3, 8):
        pkts = all_packets(generate(cfg, "uniform", 0.8, 2000, seed=2, max_len=max_len))
        lengths = {len(p.payload) + 1 for p in pkts}
        assert lengths == set(range(1, max_len + 1))
        assert all(0 <= w < 1 << 32 for p in pkts for w in p.payload)
        assert {p.ptype for p in pkts} == set(range(16))
        # every packet's header fits the format
        for p in pkts[:50]:
            h = unpack_header(cfg, p.header(cfg))
            assert (h["dest_x"], h["dest_y"], h["length"]) == (p.dest[0], p.dest[1], len(p.payload))


def test_wide_flits_use_every_bit():
    cfg = PRESETS["large"]
    words = [w for p in all_packets(generate(cfg, "uniform", 1.0, 200, seed=4)) for w in p.payload]
    assert all(0 <= w < 1 << 128 for w in words)
    assert max(words).bit_length() == 128                     # the top chunk is drawn too
    assert len({w & 0xFFFF_FFFF for w in words}) > len(words) // 2   # and the bottom one


def test_uniform_never_sends_to_itself_and_reaches_every_other_node():
    t = generate(MESH4, "uniform", 1.0, 3000, seed=5)
    for n, pkts in t.items():
        dests = {p.dest for p in pkts}
        assert n not in dests
        assert dests == set(NODES4) - {n}


def test_transpose_destinations():
    t = generate(MESH4, "transpose", 0.5, 1000, seed=6)
    for (x, y), pkts in t.items():
        if x == y:
            assert pkts == []
        else:
            assert pkts and all(p.dest == (y, x) for p in pkts)


def test_neighbour_destinations_are_the_existing_neighbours():
    t = generate(MESH3X4, "neighbour", 1.0, 2000, seed=7)
    for (x, y), pkts in t.items():
        dests = {p.dest for p in pkts}
        assert all(hop_count((x, y), d) == 1 for d in dests)
        expect = {(x + dx, y + dy) for dx, dy in ((0, -1), (1, 0), (0, 1), (-1, 0))
                  if 0 <= x + dx < 3 and 0 <= y + dy < 4}
        assert dests == expect
    assert len({p.dest for p in t[(0, 0)]}) == 2      # a corner has two neighbours
    assert len({p.dest for p in t[(1, 1)]}) == 4


def test_hotspot_share():
    hot = hotspot_node(MESH4)
    assert hot == (2, 2)
    t = generate(MESH4, "hotspot", 1.0, 20_000, seed=8)
    others = [p for n, pkts in t.items() if n != hot for p in pkts]
    share = sum(p.dest == hot for p in others) / len(others)
    sigma = math.sqrt(HOTSPOT_SHARE * (1 - HOTSPOT_SHARE) / len(others))
    assert abs(share - HOTSPOT_SHARE) < 5 * sigma
    assert all(p.dest != p.src for p in others)
    # the rest is spread over the non-hotspot nodes
    assert {p.dest for p in t[(0, 0)]} == set(NODES4) - {(0, 0)}
    # the hotspot node itself sends uniformly over the others
    assert {p.dest for p in t[hot]} == set(NODES4) - {hot}


def test_zero_rate_and_zero_cycles_send_nothing():
    assert all_packets(generate(MESH4, "uniform", 0.0, 1000)) == []
    assert all_packets(generate(MESH4, "uniform", 0.5, 0)) == []


@pytest.mark.parametrize("kwargs, match", [
    (dict(pattern="bitreverse", rate=0.1, cycles=10), "pattern"),
    (dict(pattern=None, rate=0.1, cycles=10), "pattern"),
    (dict(pattern="uniform", rate=-0.1, cycles=10), "rate"),
    (dict(pattern="uniform", rate=1.5, cycles=10), "rate"),
    (dict(pattern="uniform", rate="0.1", cycles=10), "rate"),
    (dict(pattern="uniform", rate=0.1, cycles=-1), "cycles"),
    (dict(pattern="uniform", rate=0.1, cycles=2.5), "cycles"),
    (dict(pattern="uniform", rate=0.1, cycles=10, max_len=0), "max_len"),
    (dict(pattern="uniform", rate=0.1, cycles=10, max_len=257), "max_len"),
    (dict(pattern="uniform", rate=0.1, cycles=10, seed=-1), "seed"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        generate(MESH4, **kwargs)


def test_transpose_needs_a_square_mesh():
    with pytest.raises(ValueError, match="square"):
        generate(MESH3X4, "transpose", 0.1, 10)


def test_single_node_mesh_has_no_destination():
    with pytest.raises(ValueError, match="no other node"):
        generate(PRESETS["default"].replace(name="one", mesh_x=1, mesh_y=1), "uniform", 0.1, 10)


def test_cfg_must_be_a_config():
    with pytest.raises(TypeError, match="Config"):
        generate({"mesh_x": 4}, "uniform", 0.1, 10)


@pytest.mark.parametrize("pattern", PATTERNS)
def test_the_mesh_model_delivers_generated_traffic_no_sooner_than_zero_load(pattern):
    t = generate(MESH4, pattern, 0.05, 400, seed=9)
    deliveries, _ = MeshModel(MESH4).run(t)
    assert len(deliveries) == len(all_packets(t))
    at_bound = 0
    for d in deliveries:
        head, tail = zero_load_latency(d.packet.src, d.packet.dest, len(d.packet.payload))
        assert d.inject_cycle >= d.packet.release
        assert d.header_cycle - d.inject_cycle >= head and d.tail_cycle - d.inject_cycle >= tail
        at_bound += d.header_cycle - d.packet.release == head
    assert at_bound > 0.8 * len(deliveries)       # light load: most headers meet no contention
