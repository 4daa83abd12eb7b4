"""Whole MLPs resident as a pipeline of standing sequences (model/compiler/net.py, model/stream.py) on
the cycle-exact model.

* random small MLPs (tiny and default macros, 64/128/256-bit flits, rings of 2, batches of 1, of
  several windows through ``chunk=``) give ``reference(net, X)`` bit for bit;
* the counters of every inference window against facts derived by hand from the plan (MVMs and
  MACs per tile, instructions, global-buffer words, flits injected, no stall when the rings hold
  the whole window, receive overlapped with compute);
* :class:`NotResident` for each reason a network cannot run resident, the message naming it;
* :func:`check_streams` on hand-broken stream tables;
* a kept chip: the second run writes no row, a changed weight rewrites its row only.
"""

import copy

import numpy as np
import pytest

from rramcim.model.chip import ChipState
from rramcim.model.chipfile import KeptChip
from rramcim.model.compiler.net import NotResident, check_streams, compile_net
from rramcim.model.config import PRESETS
from rramcim.model.encoding import SeqOp
from rramcim.model.isa import Op, decode
from rramcim.model.mlp import Layer, Net, reference
from rramcim.sim.backends.model import run_windows

TINY, DEFAULT = PRESETS["tiny"], PRESETS["default"]
CONFIGS = {f"{c.name}-w{w}": c.replace(flit_width=w) for c in (TINY, DEFAULT) for w in (64, 128, 256)}
CONFIGS["tiny-ring2"] = TINY.replace(name="ring2", flit_width=64, tile_ibuf_depth=2, tile_acc_depth=2)
CONFIGS["tiny-3x2"] = TINY.replace(name="t3x2", mesh_x=3, mesh_y=2, tile_ibuf_depth=3, tile_acc_depth=4)


def random_net(cfg, rng) -> Net:
    """A random MLP that runs resident on ``cfg``: 1..3 layers, each size 1..3 blocks of ``rows`` (partial
    blocks too), so layers split in K and N, and a hidden layer cut in N-blocks fans out to each."""
    R, T = cfg.rows, cfg.tiles
    while True:
        n_layers = int(rng.integers(1, 4))
        nblk = [int(rng.integers(1, 4)) for _ in range(n_layers + 1)]
        if sum(a * b for a, b in zip(nblk, nblk[1:])) > T:
            continue
        sizes = [int(rng.integers((k - 1) * R + 1, k * R + 1)) for k in nblk]
        break
    layers = []
    for i, (k, n) in enumerate(zip(sizes, sizes[1:])):
        last = i == n_layers - 1
        w = rng.integers(-128, 128, size=(k, n))
        w[rng.random((k, n)) < 0.1] = -128
        b = rng.integers(-(1 << 20), 1 << 20, size=n)
        layers.append(Layer(w.astype(np.int8), b.astype(np.int32), None if last else int(rng.integers(0, 14)),
                            0 if last else int(rng.integers(0, 2))))
    return Net(layers)


def inputs(rng, batch, k):
    X = rng.integers(-128, 128, size=(batch, k))
    X[rng.random(X.shape) < 0.1] = -128
    return X.astype(np.int8)


def run(cfg, plan, state=None):
    """``(Y, per-window outputs)`` of ``plan`` on the cycle-exact model (``state`` kept across runs)."""
    out = run_windows(cfg, plan.windows, state)
    assert all(o["error"] is None for o in out), [o["error"] for o in out]
    assert len(out) == len(plan.windows)
    return plan.result([o["reads"] for o in out]), out


CASES = [(name, seed) for seed, name in enumerate(list(CONFIGS) * 3)]


@pytest.mark.parametrize("name,seed", CASES, ids=[f"{n}-{s}" for n, s in CASES])
def test_pipeline_equals_reference(name, seed):
    cfg = CONFIGS[name]
    rng = np.random.default_rng(seed)
    net = random_net(cfg, rng)
    batch = [1, int(rng.integers(2, 12)), int(rng.integers(12, 30))][seed % 3]
    chunk = None if seed % 2 else int(rng.integers(1, max(2, batch)))
    X = inputs(rng, batch, net.inputs)
    plan = compile_net(cfg, net, X, chunk=chunk)
    Y, _ = run(cfg, plan)
    assert Y.dtype == np.int32 and Y.shape == (batch, net.outputs)
    np.testing.assert_array_equal(Y, reference(net, X))
    n_inf = plan.window_kinds.count("inference")
    assert n_inf == -(-batch // (chunk or batch)), (n_inf, batch, chunk)
    assert plan.window_kinds == ["program"] * (len(plan.windows) - n_inf) + ["inference"] * n_inf


def _window_facts(cfg, plan, n, first_window):
    """What an inference window of ``n`` vectors must count, derived from the plan by hand."""
    W = cfg.flit_width
    blocks, streams = plan.blocks, plan.streams
    first = [b for b in blocks if b.layer == 0]
    ends = [b for b in blocks if streams[b.tile]["op"] in (SeqOp.XS_TILE, SeqOp.OUT_CTRL)]
    in_words = [cfg.vector_words(b.krows, cfg.xbits) for b in first]
    out_words = [cfg.vector_words(streams[b.tile]["ncols"], cfg.acc_bits) for b in blocks
                 if streams[b.tile]["op"] == SeqOp.OUT_CTRL]
    bias = len(ends) if first_window else 0
    gbuf_read = bias * cfg.words_a + len(blocks) * cfg.seq_words + n * sum(in_words)
    # flits injected: the controller's packets, then each tile's ACK, results and credits
    flits = bias * (2 + cfg.words_a) + len(blocks) * (2 + cfg.seq_words) + n * sum(1 + k for k in in_words)
    for b in blocks:
        d = streams[b.tile]
        flits += 1                                                # the ACK of its ldseq
        flits += max(0, n - d["ring"])                            # input credits (the last `ring` need none)
        if d["join"]:
            flits += max(0, n - d["aring"])                       # accumulator credits to the chain before
        if d["op"] == SeqOp.PS_TILE:
            flits += n * (1 + cfg.vector_words(d["ncols"], cfg.acc_bits))
        elif d["op"] == SeqOp.XS_TILE:                          # to each of its fan + 1 destinations
            flits += n * (1 + cfg.vector_words(d["ncols"], cfg.xbits)) * (1 + d.get("fan", 0))
        else:
            flits += n * (2 + d["gstep"])
    return dict(instructions=bias + len(blocks) + 1 + len(first) + 3, gbuf_read_bits=gbuf_read * W,
                gbuf_write_bits=n * sum(out_words) * W, noc_flits=flits)


@pytest.mark.parametrize("name,seed,batch,chunk", [("tiny-w64", 1, 7, None), ("default-w128", 2, 9, 4),
                                                   ("tiny-ring2", 3, 13, None), ("tiny-3x2", 4, 10, 6),
                                                   ("default-w256", 5, 1, None)])
def test_stream_counters_by_hand(name, seed, batch, chunk):
    cfg = CONFIGS[name]
    rng = np.random.default_rng(seed)
    while True:                                  # at least two layers: a pipeline
        net = random_net(cfg, rng)
        if len(net.layers) > 1:
            break
    X = inputs(rng, batch, net.inputs)
    plan = compile_net(cfg, net, X, chunk=chunk, replicas=1)       # one copy (test_replicas has more)
    Y, out = run(cfg, plan)
    np.testing.assert_array_equal(Y, reference(net, X))
    assert plan.macs == batch * sum(L.w.size for L in net.layers)
    used = {b.tile[1] * cfg.mesh_x + b.tile[0] for b in plan.blocks}
    assert len(used) == len(plan.blocks)
    ring = min(cfg.tile_ibuf_depth, cfg.tile_acc_depth)
    total_mvms = dict.fromkeys(range(cfg.tiles), 0)
    inference = [o for o, k in zip(out, plan.window_kinds) if k == "inference"]
    step = chunk or batch
    sizes = [min(step, batch - v0) for v0 in range(0, batch, step)]
    assert [decode(win.program[-3]).ops["count"] for win, k in zip(plan.windows, plan.window_kinds)
            if k == "inference"] == sizes                 # ..., feed, barrier, halt
    for w, (o, n) in enumerate(zip(inference, sizes)):
        c = o["counters"]
        want = _window_facts(cfg, plan, n, w == 0)
        assert {k: c[k] for k in want} == want
        for t in range(cfg.tiles):
            k = n if t in used else 0
            assert c[f"mvms@{t}"] == k
            assert c[f"macs@{t}"] == k * cfg.rows * cfg.cols           # the whole macro, padding included
            assert c[f"ibuf_write_bits@{t}"] == c[f"ibuf_read_bits@{t}"] == k * cfg.rows * cfg.xbits
            assert c[f"rram_pulses@{t}"] == 0
            total_mvms[t] += c[f"mvms@{t}"]
        stalls = c["feed_stall"] + sum(c[f"credit_stall@{t}"] for t in range(cfg.tiles))
        if n <= ring:                            # every ring holds the whole window: no credit is waited for
            assert stalls == 0
        overlap = sum(c[f"rx_overlap@{t}"] for t in range(cfg.tiles))
        assert overlap > 0 if n > 1 else overlap >= 0
    assert total_mvms == {t: batch if t in used else 0 for t in range(cfg.tiles)}


@pytest.mark.parametrize("name,shapes,batch,chunk,want", [
    ("tiny-w64", [8, 8], 10, None, 4),              # one tile: four copies, 3 vectors each, 2 of them padding
    ("tiny-w128", [8, 6, 5], 13, 6, 2),             # two tiles: two copies, windows of 6, 6 and 1 vectors
    ("tiny-3x2", [8, 16], 9, None, 3),              # two tiles (N split): three copies on six tiles
    ("tiny-w64", [8, 8], 2, None, 3),               # a batch of 2: the third copy idle
    ("default-w256", [32, 32, 10], 40, None, 2)])
def test_replicas(name, shapes, batch, chunk, want):
    """A network on at most half the tiles runs in copies, each on a share of every window's vectors:
    outputs equal the reference, each copy's tiles run ``ceil(n / copies)`` vectors a window (the last
    copy's share filled with zero vectors, a copy with no share idle)."""
    cfg = CONFIGS[name]
    rng = np.random.default_rng(len(shapes) + batch)
    net = Net([Layer(rng.integers(-128, 128, (k, n)).astype(np.int8), rng.integers(-999, 999, n).astype(np.int32),
                     None if i == len(shapes) - 2 else 5, 1) for i, (k, n) in enumerate(zip(shapes, shapes[1:]))])
    X = inputs(rng, batch, shapes[0])
    plan = compile_net(cfg, net, X, chunk=chunk, replicas=want)
    assert plan.replicas == want and {b.rep for b in plan.blocks} == set(range(want))
    assert len({b.tile for b in plan.blocks}) == len(plan.blocks)
    Y, out = run(cfg, plan)
    np.testing.assert_array_equal(Y, reference(net, X))
    step = chunk or batch
    sizes = [min(step, batch - v0) for v0 in range(0, batch, step)]
    per_copy = len(plan.blocks) // want
    inference = [o for o, k in zip(out, plan.window_kinds) if k == "inference"]
    pad = 0
    for o, n in zip(inference, sizes):
        rw = min(want, n)
        m = -(-n // rw)
        pad += m * rw - n
        for b in plan.blocks:
            t = b.tile[1] * cfg.mesh_x + b.tile[0]
            assert o["counters"][f"mvms@{t}"] == (m if b.rep < rw else 0), (b, n)
    assert plan.pad_vectors == pad
    assert len(plan.blocks) == per_copy * want


def _inference_cycles(cfg, plan):
    _, out = run(cfg, plan)
    return sum(o["cycles"] for o, k in zip(out, plan.window_kinds) if k == "inference")


@pytest.mark.parametrize("name,shapes,batch,copies", [("default-w256", [32, 32, 10], 120, 2),
                                                      ("default-w256", [32, 32], 120, 2),
                                                      ("tiny-w64", [8, 8], 10, 1)])
def test_copies_chosen_by_estimate(name, shapes, batch, copies):
    """compile_net picks the number of copies its estimate finds fastest: copies where the batch pays for
    their start (the run is then faster than one copy's), one where it does not; no more copies than the
    limit gains by ([32, 32]: the int32 results bound it at 7 cycles a vector from two copies on)."""
    cfg = CONFIGS[name]
    rng = np.random.default_rng(batch)
    net = _net(shapes, rng)
    X = inputs(rng, batch, shapes[0])
    plan = compile_net(cfg, net, X)
    assert plan.replicas == copies
    if copies > 1:
        assert _inference_cycles(cfg, plan) < _inference_cycles(cfg, compile_net(cfg, net, X, replicas=1))


def test_small_rings_stall_and_still_match():
    """Rings of 2 and a batch of 24 in one window: the controller and the producers wait for credits."""
    cfg = CONFIGS["tiny-ring2"]
    rng = np.random.default_rng(7)
    net = Net([Layer(rng.integers(-128, 128, (16, 8)).astype(np.int8), rng.integers(-999, 999, 8).astype(np.int32),
                     6, 1),
               Layer(rng.integers(-128, 128, (8, 5)).astype(np.int8), rng.integers(-999, 999, 5).astype(np.int32),
                     None, 0)])
    X = inputs(rng, 24, 16)
    plan = compile_net(cfg, net, X)
    Y, out = run(cfg, plan)
    np.testing.assert_array_equal(Y, reference(net, X))
    c = out[-1]["counters"]
    assert c["feed_stall"] > 0
    assert sum(c[f"credit_stall@{t}"] for t in range(cfg.tiles)) > 0


def _net(shapes, rng):
    return Net([Layer(rng.integers(-128, 128, (k, n)).astype(np.int8), np.zeros(n, np.int32),
                      None if i == len(shapes) - 2 else 3, 0) for i, (k, n) in enumerate(zip(shapes, shapes[1:]))])


@pytest.mark.parametrize("cfg,shapes,match", [
    (TINY.replace(name="c4", cols=4), [8, 4, 4], r"rows \(8\) != cols \(4\)"),
    (TINY, [40, 8], r"needs 5 tiles of 8x8 weights, the chip has 4"),
    (TINY.replace(name="m3x2", mesh_x=3, mesh_y=2), [8, 8, 40], r"layer 1 has 40 outputs, 5 blocks .* at most 4"),
    (TINY.replace(name="m5x4", mesh_x=5, mesh_y=4), [8 * 17, 4], r"more than the controller's 16 feed channels"),
    (TINY.replace(name="g16", gbuf_words=16), [8, 8, 8], r"global buffer cannot hold"),
    (TINY.replace(name="i8", imem_depth=8), [32, 8], r"needs 13 instructions, the chip holds 8"),
], ids=["rows-cols", "tiles", "fan-out", "channels", "gbuf", "imem"])
def test_not_resident(cfg, shapes, match):
    rng = np.random.default_rng(0)
    net = _net(shapes, rng)
    with pytest.raises(NotResident, match=match):
        compile_net(cfg, net, inputs(rng, 3, shapes[0]))


def test_one_tile_net_fits_the_smallest_buffer():
    """The edge of the global-buffer check: a buffer just big enough for one vector runs, a window a vector."""
    rng = np.random.default_rng(1)
    net = _net([8, 8], rng)
    base = TINY.seq_words + TINY.words_a                    # descriptor, bias
    cfg = TINY.replace(name="g-edge", gbuf_words=base + TINY.words_x + TINY.words_a)
    X = inputs(rng, 3, 8)
    plan = compile_net(cfg, net, X)
    assert plan.window_kinds.count("inference") == 3
    np.testing.assert_array_equal(run(cfg, plan)[0], reference(net, X))
    with pytest.raises(NotResident, match="global buffer"):
        compile_net(cfg.replace(gbuf_words=cfg.gbuf_words - 1), net, X)


def _streams_of(shapes=(16, 8, 8, 4)):
    rng = np.random.default_rng(2)
    net = _net(list(shapes), rng)
    plan = compile_net(TINY, net, inputs(rng, 2, shapes[0]))
    return plan.blocks, plan.streams


def _break(what, blocks, streams):
    s = copy.deepcopy(streams)
    b0, b1, b2, b3 = (b.tile for b in blocks)         # layer 0: b0 -> b1 (partial sums), then b2, then b3
    if what == "credits":
        s[b1]["credits"] -= 1
    elif what == "dst-idle":
        del s[b3]
    elif what == "dst-self":
        s[b2]["dst_x"], s[b2]["dst_y"] = b2
    elif what == "src":
        s[b3]["src_x"], s[b3]["src_y"] = b1
    elif what == "psrc":
        s[b1]["join"] = 0
    elif what == "fan-dup":                             # b2's result to b3 twice
        s[b2].update(fan=1, dst1_x=s[b2]["dst_x"], dst1_y=s[b2]["dst_y"])
    elif what == "cycle":
        blocks = [blocks[1], blocks[0]] + blocks[2:]
    return blocks, s


@pytest.mark.parametrize("what,match", [("credits", "credits toward a ring"), ("dst-idle", "runs no sequence"),
                                        ("dst-self", "runs no sequence"), ("src", "inputs from"),
                                        ("psrc", "partial sums from"), ("cycle", "against the dataflow order"),
                                        ("fan-dup", "a tile twice")])
def test_check_streams_catches_a_broken_table(what, match):
    blocks, streams = _streams_of()
    assert [b.layer for b in blocks] == [0, 0, 1, 2]
    check_streams(TINY, blocks, streams)                 # the table as compiled passes
    with pytest.raises(AssertionError, match=match):
        check_streams(TINY, *_break(what, blocks, streams))


@pytest.mark.parametrize("name,shapes", [("tiny-3x2", [8, 8, 32]), ("tiny-w64", [16, 8, 16]),
                                         ("default-w256", [32, 64, 16])], ids=["fan4", "fan2-join", "default"])
def test_fan_out_sends_each_input_block_to_every_n_block(name, shapes):
    """A hidden layer wider than a tile: its producer sends each result to every N-block of the next
    layer (one packet each); outputs equal the reference and each destination got every vector."""
    cfg = CONFIGS[name]
    rng = np.random.default_rng(11)
    net = Net([Layer(rng.integers(-128, 128, (k, n)).astype(np.int8), rng.integers(-999, 999, n).astype(np.int32),
                     None if i == len(shapes) - 2 else 4, 1) for i, (k, n) in enumerate(zip(shapes, shapes[1:]))])
    X = inputs(rng, 23, shapes[0])
    plan = compile_net(cfg, net, X)
    nbs = -(-shapes[2] // cfg.cols)
    fans = [d["fan"] for d in plan.streams.values() if d["op"] == SeqOp.XS_TILE]
    assert fans and all(f == nbs - 1 for f in fans)
    Y, out = run(cfg, plan)
    np.testing.assert_array_equal(Y, reference(net, X))
    c = out[-1]["counters"]
    assert sum(c[f"mvms@{t}"] for t in range(cfg.tiles)) == 23 * len(plan.blocks)


def _rows_written(plan):
    return sum(decode(w).ops["count"] for win in plan.windows for w in win.program if decode(w).op == Op.LDW)


def test_kept_chip_writes_no_row_the_second_time():
    cfg = CONFIGS["tiny-w128"]
    rng = np.random.default_rng(3)
    net = _net([16, 8, 6], rng)
    X1, X2 = inputs(rng, 5, 16), inputs(rng, 9, 16)
    st = ChipState(cfg)
    plan1 = compile_net(cfg, net, X1, rram=KeptChip.fresh(cfg).rram)
    assert _rows_written(plan1) == 8 + 8 + 8            # every row of the three blocks (no weight row is all 0)
    Y1, _ = run(cfg, plan1, st)
    np.testing.assert_array_equal(Y1, reference(net, X1))
    np.testing.assert_array_equal(KeptChip.from_state(st).rram, plan1.rram)
    plan2 = compile_net(cfg, net, X2, rram=plan1.rram)
    assert _rows_written(plan2) == 0 and "program" not in plan2.window_kinds
    np.testing.assert_array_equal(plan2.rram, plan1.rram)
    Y2, out2 = run(cfg, plan2, st)
    np.testing.assert_array_equal(Y2, reference(net, X2))
    assert all(v == 0 for o in out2 for k, v in o["counters"].items() if k.startswith("rram_pulses"))
    # one weight changed: its row only is written again
    net.layers[1].w[3, 2] = ~net.layers[1].w[3, 2]
    plan3 = compile_net(cfg, net, X1, rram=plan2.rram)
    assert _rows_written(plan3) == 1
    np.testing.assert_array_equal(run(cfg, plan3, st)[0], reference(net, X1))
