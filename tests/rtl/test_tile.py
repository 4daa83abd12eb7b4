"""The tile alone on Amaranth's simulator, in lockstep with the cycle-exact model's tile.

A random stream of legal packets (every packet type a tile takes, every tile command, weight
rows that fail write-verify on stuck cells) arrives with random idle cycles; the network takes
the tile's flits with random backpressure. Every cycle the RTL and
:class:`~rramcim.model.chip_cycle.TileModel` must offer the same flit kinds, take the same
flits and be idle alike; every flit sent must match (header and word); the counters must
match at the end. The stream ends by sending every accumulator, the bias and the input
buffer's products back, so the tile's final state is checked through its port. The configs
cover two input planes a step (p2w4, odd3x1) and a partial last word of 16-bit elements in
64-bit flits (a16x4). A config of several banks (tests/rtl/test_banks.py) gets rows written in
every bank, ``mvm`` with a bank and with ``reduce``, ``read`` with a bank, and its corners.
"""

import numpy as np
import pytest

from rramcim.model.chip import TileState
from rramcim.model.chip_cycle import TileModel
from rramcim.model.encoding import (CTRL, TILE_COUNTER_NAMES, WROW_ARG, PacketType, command_words, pack_fields,
                                    pack_header, pack_vector)
from rramcim.model.isa import COUNT_MAX, encode
from rramcim.model.macro import FaultMap
from rramcim.rtl.tile import Tile
from rramcim.sim.benches.amaranth_io import run_amaranth
from tests.configs import CHIP_CONFIGS, P2W4, TINY
from tests.rtl.chip_blocks import (BankEmulator, BlockMismatch, RxFeed, TxCheck, compare_counters, draw,
                                  tile_cycle)

def _vector(rng, n, bits):
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return rng.integers(lo, hi + 1, size=n)


def tile_stream(cfg, pos, rng, steps: int) -> list:
    """``(header word, payload)`` of a random legal packet stream to the tile at ``pos``.

    With banks (``cfg.banks`` > 1): every RRAM row is written first, then the corners (the last
    bank, a reduction over every bank, one with ``acc``, one of a single vector, a read of the last
    bank's last row); the random ``mvm`` and ``read`` commands name random banks, half the ``mvm``
    a reduction. A config of one bank draws the same stream as before banks existed."""
    W = cfg.flit_width
    IB, AC = cfg.tile_ibuf_depth, cfg.tile_acc_depth
    others = [(x, y) for y in range(cfg.mesh_y) for x in range(cfg.mesh_x) if (x, y) != pos]

    def packet(ptype, payload, src=CTRL):
        return pack_header(cfg, pos, src, ptype, len(payload)), payload

    def cmd(name, **ops):
        word = encode(name, tx=pos[0], ty=pos[1], **ops)
        return packet(PacketType.CMD, command_words(cfg, word))

    banked = cfg.banks > 1

    def wrow(row):
        arg = pack_fields(WROW_ARG, row=row, pc=int(rng.integers(0, 1 << 16)))
        return packet(PacketType.WROW, [arg] + pack_vector(_vector(rng, cfg.cols, cfg.wbits), cfg.wbits, W))

    def acc_vector():
        return pack_vector(rng.integers(-(1 << 20), 1 << 20, size=cfg.cols), cfg.acc_bits, W)

    def span(depth, cap=3):
        n = int(rng.integers(1, min(cap, depth) + 1))
        return int(rng.integers(0, depth - n + 1)), n

    out = [wrow(r) for r in range(cfg.rram_rows)]       # weights everywhere first
    if banked:
        last, n_all = cfg.banks - 1, min(cfg.banks, IB, COUNT_MAX)
        out += [packet(PacketType.ACT, [slot] + pack_vector(_vector(rng, cfg.rows, cfg.xbits), cfg.xbits, W))
                for slot in range(IB)]
        out += [cmd("mvm", a=0, count=min(2, IB), b=0, bank=last),
                cmd("mvm", a=0, count=n_all, b=1 % AC, bank=cfg.banks - n_all, reduce=1),
                cmd("mvm", a=IB - 2, count=2, b=AC - 1, bank=last - 1, reduce=1, acc=1),
                cmd("mvm", a=0, count=1, b=0, bank=last, reduce=1),
                cmd("read", row=cfg.rows - 1, b=2 % AC, bank=last)]
    kinds = ["act", "act", "wrow", "bias", "psum", "psum_t", "mvm", "mvm", "read", "out", "outq", "psum_cmd",
             "sync"]
    for _ in range(steps):
        kind = kinds[rng.integers(len(kinds))]
        if kind == "act":
            vec = pack_vector(_vector(rng, cfg.rows, cfg.xbits), cfg.xbits, W)
            out.append(packet(PacketType.ACT, [int(rng.integers(IB))] + vec))
        elif kind == "wrow":
            out.append(wrow(int(rng.integers(cfg.rram_rows))))
        elif kind == "bias":
            out.append(packet(PacketType.BIAS, [0] + acc_vector()))
        elif kind == "psum":
            out.append(packet(PacketType.PSUM, [int(rng.integers(AC))] + acc_vector()))
        elif kind == "psum_t":
            src = others[rng.integers(len(others))]
            out.append(packet(PacketType.PSUM_T, [int(rng.integers(AC))] + acc_vector(), src))
        elif kind == "mvm" and banked and rng.random() < 0.5:      # a reduction over banks into one slot
            a, n = span(min(IB, cfg.banks), cap=4)
            out.append(cmd("mvm", a=a, count=n, b=int(rng.integers(AC)), acc=int(rng.integers(2)),
                           bank=int(rng.integers(0, cfg.banks - n + 1)), reduce=1))
        elif kind == "mvm":
            a, n = span(IB)
            bank = {"bank": int(rng.integers(cfg.banks))} if banked else {}
            out.append(cmd("mvm", a=a, count=n, b=int(rng.integers(0, AC - n + 1)), acc=int(rng.integers(2)), **bank))
        elif kind == "read":
            bank = {"bank": int(rng.integers(cfg.banks))} if banked else {}
            out.append(cmd("read", row=int(rng.integers(cfg.rows)), b=int(rng.integers(AC)), **bank))
        elif kind == "out":
            b, n = span(AC)
            out.append(cmd("out", b=b, count=n, gaddr=int(rng.integers(cfg.gbuf_words)), bias=int(rng.integers(2))))
        elif kind == "outq":
            b, n = span(AC)
            out.append(cmd("outq", b=b, count=n, gaddr=int(rng.integers(cfg.gbuf_words)),
                           shift=int(rng.integers(32)), relu=int(rng.integers(2))))
        elif kind == "psum_cmd":
            b, n = span(AC)
            dx, dy = others[rng.integers(len(others))]
            out.append(cmd("psum", b=b, count=n, dx=dx, dy=dy, d=int(rng.integers(0, AC - n + 1))))
        else:
            out.append(cmd("sync"))
    # the final state through the port: every accumulator, the bias, the input buffer's products
    n = min(IB, AC)
    out += [cmd("out", b=0, count=AC, gaddr=0), cmd("out", b=0, count=1, gaddr=0, bias=1),
            cmd("mvm", a=0, count=n, b=0, acc=0), cmd("out", b=0, count=n, gaddr=0), cmd("sync")]
    return out


def run_tile(cfg, seed: int, steps: int = 40, model_cls=TileModel, p_idle: float = 0.3, p_ready: float = 0.6,
             max_cycles: int = 20_000) -> dict:
    """The tile and its model on one random stream; returns what was checked."""
    rng = np.random.default_rng(seed)
    faults = FaultMap.random(cfg, 2, rng) if cfg.banks == 1 else None     # stuck cells: one bank only (for now)
    pos = (cfg.mesh_x - 1, cfg.mesh_y - 1)
    model = model_cls(cfg, TileState(cfg, faults), pos)
    feed = RxFeed(cfg, draw(rng, 997, p_idle))
    for header, payload in tile_stream(cfg, pos, rng, steps):
        feed.add(header, payload)
    tx = TxCheck(cfg, draw(rng, 991, p_ready))
    bank = BankEmulator(len(TILE_COUNTER_NAMES))

    async def bench(io):
        t = still = 0
        while still < 3:
            tile_cycle(io, t, feed, tx, bank, model)
            await io.tick()
            t += 1
            still = still + 1 if feed.empty and model.idle else 0
            if t > max_cycles:
                raise BlockMismatch(f"the stream did not finish in {max_cycles} cycles (model state {model.state})")
        counters = compare_counters(TILE_COUNTER_NAMES, bank.values(io), model.counters())
        return dict(cycles=t, sent=tx.sent, counters=counters)

    return run_amaranth(Tile(cfg, faults), bench)


@pytest.mark.parametrize("cfg,seed", [(TINY, 1), (TINY, 2), (P2W4, 3), (CHIP_CONFIGS["a16x4"], 5),
                                      (CHIP_CONFIGS["odd3x1"], 6)],
                         ids=["tiny-1", "tiny-2", "p2w4-3", "a16x4-5", "odd3x1-6"])
def test_tile_against_model(cfg, seed):
    res = run_tile(cfg, seed)
    kinds = {(f[2][1]) for f in res["sent"] if f[1] == "header"}
    # the stream made the tile send results, partial sums and answers, and use its macro
    assert {PacketType.RESULT, PacketType.PSUM_T, PacketType.ACK} <= kinds
    assert res["counters"]["mvms"] > 0 and res["counters"]["tx_stall"] > 0


def test_tile_verify_failure_is_reported():
    """Stuck cells make a row fail write-verify: the tile sends an ERR, as its model does."""
    res = run_tile(TINY, 4, steps=10)
    assert any(f[1] == "header" and f[2][1] == PacketType.ERR for f in res["sent"])


class _AckAsResult(TileModel):
    """A model bug: the answer to ``sync`` goes as a RESULT packet."""

    def _command(self, word):
        nxt = super()._command(word)
        if self.tx.packets and self.tx.packets[-1].ptype == PacketType.ACK:
            self.tx.packets[-1].ptype = PacketType.RESULT
        return nxt


def test_checker_catches_a_model_bug():
    with pytest.raises(BlockMismatch, match="header"):
        run_tile(TINY, 1, steps=10, model_cls=_AckAsResult)
