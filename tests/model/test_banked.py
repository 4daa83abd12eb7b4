"""Whole MLPs resident in the banks (model/compiler/banked.py) on the cycle-exact and functional models.

* random MLPs on small banked configs (banks not a power of two, K longer than the input buffer,
  N-blocks more than the accumulators, batches over several windows) give ``reference(net, X)`` bit for
  bit, and the functional (program-order) model's global buffer equals the cycle model's;
* the counters against the plan: MACs, MVMs, no row written on a kept chip, the banks used;
* :class:`NotBanked` for each reason, the message naming it;
* the memory wall on ``memwall``: a 3 MiB MLP at batch 1 on a kept chip is bit-exact, writes no
  RRAM row, reaches compute utilization >= 40 % and >= 20x the energy of the equal-area baseline
  (>= 3x at batch 16).
"""

import numpy as np
import pytest

from rramcim.model.chip import ChipState, FunctionalChip
from rramcim.model.chipfile import KeptChip
from rramcim.model.compiler.banked import NotBanked, bank_placement, compile_banked
from rramcim.model.config import PRESETS
from rramcim.model.energy import energy_report
from rramcim.model.isa import Op, decode
from rramcim.model.mlp import Layer, Net, reference
from rramcim.sim.backends.jobs import run_net
from rramcim.sim.backends.model import run_windows
from tests.model.test_stream import inputs as _inputs

TINY = PRESETS["tiny"]
CONFIGS = {
    "tiny-b5": TINY.replace(name="b5", banks=5, imem_depth=1024),
    "tiny-b16-small-bufs": TINY.replace(name="b16", banks=16, tile_ibuf_depth=2, tile_acc_depth=2, imem_depth=512),
    "3x2-b7-w64": TINY.replace(name="b7", mesh_x=3, mesh_y=2, banks=7, flit_width=64, imem_depth=1024),
}


def random_net(cfg, rng, depth=None) -> Net:
    """A random MLP whose blocks fit ``cfg``'s banks: 1..3 layers of 1..4 blocks a side (partial blocks too)."""
    R = cfg.rows
    while True:
        n = depth or int(rng.integers(1, 4))
        sizes = [int(rng.integers(1, 4 * R + 1)) for _ in range(n + 1)]
        try:
            bank_placement(cfg, list(zip(sizes, sizes[1:])))
            break
        except NotBanked:
            continue
    layers = []
    for i, (k, m) in enumerate(zip(sizes, sizes[1:])):
        last = i == n - 1
        w = rng.integers(-128, 128, size=(k, m))
        w[rng.random((k, m)) < 0.1] = -128
        layers.append(Layer(w.astype(np.int8), rng.integers(-(1 << 20), 1 << 20, size=m).astype(np.int32),
                            None if last else int(rng.integers(0, 14)), 0 if last else int(rng.integers(0, 2))))
    return Net(layers)


CASES = [(name, seed) for seed, name in enumerate(list(CONFIGS) * 3)]


@pytest.mark.parametrize("name,seed", CASES, ids=[f"{n}-{s}" for n, s in CASES])
def test_banked_equals_reference_on_both_models(name, seed):
    cfg = CONFIGS[name]
    rng = np.random.default_rng(seed)
    net = random_net(cfg, rng)
    X = _inputs(rng, int(rng.integers(1, 6)), net.inputs)
    plan = compile_banked(cfg, net, X, rram=KeptChip.fresh(cfg).rram)
    out = run_windows(cfg, plan.windows)
    assert all(o["error"] is None for o in out), [o["error"] for o in out]
    Y = plan.result([o["reads"] for o in out])
    assert np.array_equal(Y, reference(net, X))
    # the functional model, instruction after instruction, leaves the same global buffer
    fstate = ChipState(cfg)
    for win in plan.windows:
        for a, words in win.gbuf.items():
            fstate.gbuf[a:a + len(words)] = words
        fstate.imem[:len(win.program)] = win.program
        _, err = FunctionalChip(fstate).run()
        assert err is None
    cstate = ChipState(cfg)
    run_windows(cfg, plan.windows, cstate)
    assert list(fstate.gbuf) == list(cstate.gbuf)
    # counters: every MAC of every block, in MVMs of rows x cols; the weights went where the plan said
    mvms = sum(decode(w).ops["count"] for win in plan.windows for w in win.program if decode(w).op == Op.MVM)
    assert sum(o["counters"].get(f"mvms@{t}", 0) for o in out for t in range(cfg.tiles)) == mvms
    blocks = sum(-(-L.w.shape[0] // cfg.rows) * -(-L.w.shape[1] // cfg.cols) for L in net.layers)
    assert mvms == blocks * X.shape[0]
    assert np.array_equal(KeptChip.from_state(cstate).rram, plan.rram)


def test_kept_chip_writes_no_row_and_a_changed_weight_one():
    cfg = CONFIGS["tiny-b5"]
    rng = np.random.default_rng(11)
    net = _mlp(rng, [20, 16, 9])            # 3x2 + 2x2 blocks: more than the 4 tiles, a pipeline cannot hold it
    X = _inputs(rng, 3, net.inputs)
    chip = KeptChip.fresh(cfg)
    Y, rep = run_net(cfg, net, X, "model", chip=chip)
    assert rep["placement"] == "banked" and rep["rram_row_writes"] > 0
    assert np.array_equal(Y, reference(net, X))
    Y, rep = run_net(cfg, net, X, "model", chip=chip)
    assert rep["rram_row_writes"] == 0 and rep["program_cycles"] == 0
    assert np.array_equal(Y, reference(net, X))
    net.layers[1].w[0, 0] ^= 1
    Y, rep = run_net(cfg, net, X, "model", chip=chip)
    assert rep["rram_row_writes"] == 1
    assert np.array_equal(Y, reference(net, X))


def test_shares_stay_in_their_banks():
    cfg = CONFIGS["3x2-b7-w64"]
    shapes = [(30, 20), (20, 9), (9, 17)]
    shares = bank_placement(cfg, shapes)
    for i, (K, N) in enumerate(shapes):
        mine = [s for s in shares if s.layer == i]
        assert sum(s.nb for s in mine) == -(-N // cfg.cols)          # every N-block once
        assert max(s.nb for s in mine) - min(s.nb for s in mine) <= 1
    for t in {s.tile for s in shares}:                               # no two shares of a tile overlap
        spans = sorted((s.bank0, s.bank0 + s.nb * -(-shapes[s.layer][0] // cfg.rows)) for s in shares if s.tile == t)
        assert all(a1 <= b0 for (_, a1), (b0, _) in zip(spans, spans[1:]))
        assert spans[-1][1] <= cfg.banks


@pytest.mark.parametrize("cfg, shapes, match", [
    (TINY, [(8, 8)], "one bank"),
    (TINY.replace(name="r", banks=4, cols=4), [(8, 8)], "rows == cols"),
    (TINY.replace(name="b4", banks=4), [(8 * 5, 8)], "need 5 banks in a tile; config 'b4' has 4 banks"),
])
def test_not_banked(cfg, shapes, match):
    with pytest.raises(NotBanked, match=match):
        bank_placement(cfg, shapes)


def _mlp(rng, sizes):
    layers = []
    for i, (k, n) in enumerate(zip(sizes, sizes[1:])):
        last = i == len(sizes) - 2
        layers.append(Layer(rng.integers(-128, 128, (k, n)).astype(np.int8),
                            rng.integers(-5000, 5000, n).astype(np.int32), None if last else 12, 0 if last else 1))
    return Net(layers)


@pytest.fixture(scope="module")
def memwall_kept():
    """A 3 MiB MLP (1000 wide: partial blocks) and a memwall chip that holds it (its RRAM as the plan
    leaves it: the programming windows are not run here, tests/test_kept_chip.py runs such windows)."""
    cfg = PRESETS["memwall"]
    rng = np.random.default_rng(5)
    net = _mlp(rng, [1000, 1000, 1000, 1000, 10])
    plan = compile_banked(cfg, net, np.zeros((1, 1000), np.int8), rram=KeptChip.fresh(cfg).rram)
    return cfg, net, KeptChip(cfg, plan.rram, np.zeros(plan.rram.shape[:3], np.int64)), rng


@pytest.mark.parametrize("batch, ratio", [(1, 20), (16, 3)])
def test_memory_wall_on_a_kept_memwall_chip(memwall_kept, batch, ratio):
    cfg, net, chip, rng = memwall_kept
    assert 2.5 * (1 << 20) < sum(L.w.size for L in net.layers) < 3.5 * (1 << 20)
    X = _inputs(rng, batch, net.inputs)
    Y, rep = run_net(cfg, net, X, "model", chip=chip.copy())
    assert np.array_equal(Y, reference(net, X))
    assert rep["rram_row_writes"] == 0 and rep["counters"]["rram_pulses"] == 0
    assert rep["compute_utilization"] >= 0.4
    layers = [(batch, L.w.shape[0], L.w.shape[1], 8 if i < len(net.layers) - 1 else 32, 1)
              for i, L in enumerate(net.layers)]
    e = energy_report(cfg, rep, layers, per=batch, baseline="equal-area", weights_resident=True)
    assert e["baseline_dram_weight_bits"] > 0            # the baseline cannot hold the network
    assert e["energy_ratio"] >= ratio, e["energy_ratio"]
    print(f"batch {batch}: compute utilization {rep['compute_utilization']:.3f}, ratio {e['energy_ratio']:.1f}x")


def test_bank_fields_are_unused_on_a_chip_of_one_bank():
    """banks = 1: a nonzero bank or reduce is an illegal instruction (model and controller alike); with banks,
    a bank past the last is a tile address out of range, and a reduction's banks count."""
    from rramcim.model.chip import check_instr
    from rramcim.model.encoding import ErrorCode
    from rramcim.model.isa import encode
    one, four = TINY, TINY.replace(name="b4", banks=4)
    for word, want_one, want_four in [
        (encode("mvm", tx=0, ty=0, a=0, count=1, b=0, bank=1), ErrorCode.ILLEGAL_OPCODE, ErrorCode.NONE),
        (encode("mvm", tx=0, ty=0, a=0, count=2, b=0, reduce=1), ErrorCode.ILLEGAL_OPCODE, ErrorCode.NONE),
        (encode("mvm", tx=0, ty=0, a=0, count=2, b=0, bank=3, reduce=1), ErrorCode.ILLEGAL_OPCODE,
         ErrorCode.BAD_TILE_ADDR),
        (encode("mvm", tx=0, ty=0, a=0, count=8, b=7, bank=3, reduce=1), ErrorCode.ILLEGAL_OPCODE,
         ErrorCode.BAD_TILE_ADDR),                            # 4 banks: bank 3 + 8 vectors
        (encode("mvm", tx=0, ty=0, a=0, count=4, b=7, bank=0, reduce=1), ErrorCode.ILLEGAL_OPCODE,
         ErrorCode.NONE),                                     # one slot, however many vectors
        (encode("ldw", tx=0, ty=0, row=0, count=8, gaddr=0, bank=4), ErrorCode.ILLEGAL_OPCODE,
         ErrorCode.BAD_TILE_ADDR),
        (encode("read", tx=0, ty=0, row=7, b=0, bank=3), ErrorCode.ILLEGAL_OPCODE, ErrorCode.NONE),
        (encode("mvm", tx=0, ty=0, a=0, count=8, b=0), ErrorCode.NONE, ErrorCode.NONE),
    ]:
        assert check_instr(one, word)[0] == want_one
        assert check_instr(four, word)[0] == want_four


def test_counts_stay_within_an_instruction_on_big_buffers():
    """Input buffers and accumulators deeper than an instruction's 255 vectors: reductions and groups split."""
    cfg = TINY.replace(name="deep", banks=600, tile_ibuf_depth=300, tile_acc_depth=300, imem_depth=8192,
                       gbuf_words=4096)
    rng = np.random.default_rng(2)
    net = Net([Layer(rng.integers(-128, 128, (8 * 300, 8 * 4 * 2)).astype(np.int8), np.zeros(64, np.int32),
                     None, 0)])
    plan = compile_banked(cfg, net, _inputs(rng, 1, net.inputs))
    mvms = [decode(w).ops for win in plan.windows for w in win.program if decode(w).op == Op.MVM]
    assert max(o["count"] for o in mvms) == 255 and sum(o["count"] for o in mvms) == 300 * 8


def test_a_small_net_on_a_banked_kept_chip_runs_as_a_pipeline():
    """A network that fits the tiles runs as a pipeline on a banked chip too (bank 0), a kept chip's other
    banks untouched, and a second run writes no row."""
    cfg = CONFIGS["tiny-b5"]
    rng = np.random.default_rng(8)
    net = _mlp(rng, [8, 16, 8])
    X = _inputs(rng, 4, net.inputs)
    chip = KeptChip.fresh(cfg)
    chip.rram[:, :, cfg.rows:] = rng.integers(-128, 128, chip.rram[:, :, cfg.rows:].shape)
    others = chip.rram[:, :, cfg.rows:].copy()
    for writes in (True, False):
        Y, rep = run_net(cfg, net, X, "model", chip=chip)
        assert rep["placement"] == "pipeline" and (rep["rram_row_writes"] > 0) == writes
        assert np.array_equal(Y, reference(net, X))
    assert np.array_equal(chip.rram[:, :, cfg.rows:], others)
