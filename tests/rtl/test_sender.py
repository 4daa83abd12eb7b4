"""The packet sender (rtl/sender.py) alone on Amaranth's simulator, against a naive model of its walk.

Random walks (count, length, step, argument, raw or not, random destination and type) are
offered with random gaps; the network takes flits with random backpressure. A small data path
forms the data words as the owners do (a register loaded when the sender says ``ahead``; a
raw packet's words combinationally), each word telling which packet and word it is, so that
a word formed at the wrong time shows. The checker holds the sender to its protocol in every
cycle: one flit offered a cycle while busy, held until taken, the flits of the model's walk in
order, ``done`` with the walk's last flit, ``job.ready`` while idle, no lost cycle.
"""

import random

import pytest
from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from rramcim.model.config import PRESETS
from rramcim.rtl.noc.flit import header_layout
from rramcim.model.encoding import ARG_BITS
from rramcim.rtl.sender import PacketSender, job_layout

CFG = PRESETS["tiny"]
W = CFG.flit_width
TAG = 0xA5            # the data path's words: TAG, packet, word index (payload word k)


def data_word(v: int, k: int) -> int:
    return (TAG << 16) | (v << 8) | k


class _Bench(wiring.Component):
    """The sender with a data path that forms word ``k + 1`` of packet ``v`` when told ``ahead``."""

    def __init__(self, sender_cls):
        self.sender_cls = sender_cls
        super().__init__({"job": In(stream.Signature(job_layout(CFG, raw=True))),
                          "tx_header": Out(stream.Signature(header_layout(CFG))),
                          "tx_payload": Out(stream.Signature(W)),
                          "busy": Out(1), "done": Out(1), "stall": Out(1), "packet": Out(8), "packet_end": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.sender = s = self.sender_cls(CFG, raw=True)
        wiring.connect(m, wiring.flipped(self.job), s.job)
        wiring.connect(m, s.tx_header, wiring.flipped(self.tx_header))
        wiring.connect(m, s.tx_payload, wiring.flipped(self.tx_payload))
        w = s.words
        formed = Signal(W)
        with m.If(w.ahead):
            m.d.sync += formed.eq(Cat((w.k + 1)[:8], w.packet, Const(TAG, 8)))
        m.d.comb += [w.data.eq(Mux(w.raw, Cat(w.k, w.packet, Const(TAG, 8)), formed)),
                     self.busy.eq(s.busy), self.done.eq(s.done), self.stall.eq(s.stall),
                     self.packet.eq(w.packet), self.packet_end.eq(w.packet_end)]
        return m


class _NoFirstWord(PacketSender):
    """A bug: the first data word of a packet is not formed (only those after a data word)."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        m.d.comb += self.words.ahead.eq(self.tx_payload.valid & self.tx_payload.ready & (self.words.k != 0))
        return m


def walk_flits(job: dict, step_bug: bool = False) -> list:
    """The model: the flits of a walk, ``("h", dest, type, length)`` or ``("p", word)``."""
    flits = []
    for v in range(job["count"]):
        flits.append(("h", job["dest"], job["type"], job["length"]))
        for k in range(job["length"]):
            if k == 0 and not job["raw"]:
                word = (job["arg"] + v * job["step"] * (not step_bug)) % (1 << ARG_BITS)
            else:
                word = data_word(v, k)
            flits.append(("p", word))
    return flits


def random_job(rng) -> dict:
    return dict(count=rng.randint(1, 4), length=rng.choice([0, 1, 2, 3, 5]), step=rng.randint(0, 3),
                arg=rng.choice([rng.randrange(1 << ARG_BITS), (1 << ARG_BITS) - 2]), raw=rng.random() < 0.3,
                type=rng.randrange(16), dest=(rng.randrange(2), rng.randrange(2), rng.randrange(2)))


def run(seed: int, sender_cls=PacketSender, walks: int = 40, step_bug: bool = False) -> list:
    """Run ``walks`` random walks; the mismatches found (empty: none). ``step_bug``: a model
    whose argument word does not grow."""
    rng = random.Random(seed)
    dut = _Bench(sender_cls)
    errors = []
    p_ready = rng.choice([0.3, 0.7, 1.0])

    async def bench(ctx):
        expected = []           # the flits still to come, of the walk in progress
        held = None             # the flit offered and not taken in the cycle before
        walks_left, cycle = walks, 0
        while (walks_left or expected) and cycle < 5000 and not errors:
            start = walks_left and not expected and rng.random() < 0.5
            if start:
                job = random_job(rng)
                ctx.set(dut.job.valid, 1)
                ctx.set(dut.job.payload, job_layout(CFG, raw=True).const(
                    dict(dest=dict(x=job["dest"][0], y=job["dest"][1], ctrl=job["dest"][2]), type=job["type"],
                         length=job["length"], count=job["count"], arg=job["arg"], step=job["step"], raw=job["raw"])))
            ctx.set(dut.tx_header.ready, rng.random() < p_ready)
            ctx.set(dut.tx_payload.ready, rng.random() < p_ready)
            busy, hv, pv = ctx.get(dut.busy), ctx.get(dut.tx_header.valid), ctx.get(dut.tx_payload.valid)
            if ctx.get(dut.job.ready) != (not busy):
                errors.append(f"cycle {cycle}: job.ready while busy={busy}")
            if busy != bool(expected) or (busy and hv + pv != 1) or (not busy and (hv or pv)):
                errors.append(f"cycle {cycle}: busy {busy}, header {hv}, payload {pv}, {len(expected)} flits to come")
                break
            offered = None
            if hv:
                h = ctx.get(dut.tx_header.payload)
                offered = ("h", (h.dest.x, h.dest.y, h.dest.ctrl), h.type, h.length)
            elif pv:
                offered = ("p", ctx.get(dut.tx_payload.payload))
            if held is not None and offered != held:
                errors.append(f"cycle {cycle}: {offered} offered, {held} held before")
            taken = (hv and ctx.get(dut.tx_header.ready)) or (pv and ctx.get(dut.tx_payload.ready))
            if taken:
                if offered != expected[0]:
                    errors.append(f"cycle {cycle}: {offered} sent, {expected[0]} expected")
                expected.pop(0)
                if ctx.get(dut.done) != (not expected):
                    errors.append(f"cycle {cycle}: done {ctx.get(dut.done)} with {len(expected)} flits to come")
            elif ctx.get(dut.done):
                errors.append(f"cycle {cycle}: done with no flit taken")
            if ctx.get(dut.stall) != bool(busy and not taken):
                errors.append(f"cycle {cycle}: stall {ctx.get(dut.stall)}")
            held = None if taken else offered
            await ctx.tick()
            ctx.set(dut.job.valid, 0)
            if start:
                expected = walk_flits(job, step_bug)
                walks_left -= 1
            cycle += 1
        if not errors and (walks_left or expected):
            errors.append(f"{walks_left} walks and {len(expected)} flits left after {cycle} cycles")

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return errors


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_sender_sends_the_walk(seed):
    errors = run(seed)
    assert not errors, errors[:5]


def test_a_sender_bug_is_caught():
    errors = run(1, _NoFirstWord)
    assert errors, "the checker missed a sender that does not form a packet's first data word"


def test_a_model_bug_is_caught():
    errors = run(1, step_bug=True)
    assert errors, "the checker missed argument words that do not grow"
