"""The controller alone on Amaranth's simulator, in lockstep with the cycle-exact model's controller.

The host side loads a random legal program (:func:`~rramcim.model.progen.random_program`) and
its global buffer and starts it; the network takes the controller's flits with random
backpressure. A fake mesh answers as the tiles would, after random delays and with random
idle cycles between flits: an ``ACK`` for every ``sync`` and for every partial sum of a
``psum``, ``RESULT`` packets for ``out``/``outq`` (some to addresses the loads read, so that
a word arrives while the controller is about to send it, and some past the end), and now and
then an ``ERR`` for a weight row. Every cycle the RTL and
:class:`~rramcim.model.chip_cycle.ControllerModel` must offer the same flit kinds and be
running alike; every flit sent must match (header and word); at the end the error register,
the global buffer and the counters must match.
"""

import numpy as np
import pytest

from rramcim.model.chip import ChipState
from rramcim.model.encoding import LOAD_PACKET, vector_words
from rramcim.model.chip_cycle import ControllerModel
from rramcim.model.encoding import (COUNTER_NAMES, CTRL, ERR_ARG, ERROR_FIELDS, WROW_ARG, PacketType,
                                    gbuf_write_fields, imem_write_fields, pack_fields, pack_header, unpack_fields)
from rramcim.model.isa import Op, assemble, decode, encode
from rramcim.model.progen import random_program
from rramcim.rtl.controller import Controller
from rramcim.sim.benches.amaranth_io import run_amaranth
from tests.configs import CHIP_CONFIGS, TINY
from tests.rtl.chip_blocks import BankEmulator, BlockMismatch, RxFeed, TxCheck, compare_counters, draw


def random_words(rng, n: int, width: int) -> list[int]:
    """``n`` random words of ``width`` bits (any width: numpy's integers stop at 64)."""
    mask = (1 << width) - 1
    return [int.from_bytes(rng.bytes(-(-width // 8)), "little") & mask for _ in range(n)]


class FakeMesh:
    """The tiles' answers to what the controller sends, drawn from ``rng`` as the packets go."""

    def __init__(self, cfg, program: list, feed: RxFeed, rng, p_err: float):
        self.cfg, self.program, self.feed, self.rng, self.p_err = cfg, program, feed, rng, p_err
        self.header, self.words = None, []
        self.pc = 0                 # the instruction of the last command packet (they go in program order)

    def fetched(self, t, word):
        """The controller fetched instruction ``word`` in cycle ``t`` (and did not stop)."""

    def sent(self, t, kind, value):
        """A flit the controller sent in cycle ``t`` (:attr:`TxCheck.sent`'s form)."""
        if kind == "header":
            self.header, self.words = value, []
        else:
            self.words.append(value)
        dest, ptype, length = self.header
        if len(self.words) == length:
            self._answer(t, dest, ptype, self.words)

    def _send(self, t, src, ptype, payload=(), delay=12):
        release = t + 1 + int(self.rng.integers(0, delay))
        self.feed.add(pack_header(self.cfg, CTRL, src, ptype, len(payload)), payload, release)

    def _answer(self, t, dest, ptype, words):
        cfg, rng = self.cfg, self.rng
        if ptype == PacketType.WROW and rng.random() < self.p_err:
            arg = unpack_fields(WROW_ARG, words[0])
            self._send(t, dest, PacketType.ERR, [pack_fields(ERR_ARG, pc=arg["pc"], row=arg["row"])])
        if ptype != PacketType.CMD:
            return
        word = sum(w << (i * cfg.flit_width) for i, w in enumerate(words))
        self.pc = self.program.index(word, self.pc)
        ins = decode(word)
        o = ins.ops
        if ins.op == Op.SYNC:
            self._send(t, dest, PacketType.ACK)
        elif ins.op == Op.PSUM:
            for _ in range(o["count"]):
                self._send(t, (o["dx"], o["dy"]), PacketType.ACK)
        elif ins.op in (Op.OUT, Op.OUTQ):
            n = cfg.words_a if ins.op == Op.OUT else cfg.words_q
            for v in range(o["count"]):
                gaddr, u = o["gaddr"] + v * n, rng.random()
                if u < 0.1:
                    gaddr = cfg.gbuf_words - 1        # words past the end are dropped
                elif u < 0.6:
                    gaddr = self._next_load_word(n)
                data = random_words(rng, n, cfg.flit_width)
                self._send(t, dest, PacketType.RESULT, [gaddr] + data, delay=3)

    def _next_load_word(self, n):
        """An address where ``n`` words overlap what the next load reads (the controller may be
        sending those words when they arrive), else 0."""
        for word in self.program[self.pc + 1:]:
            ins = decode(word)
            if ins is not None and ins.op in LOAD_PACKET:
                span = ins.ops.get("count", 1) * vector_words(self.cfg, LOAD_PACKET[ins.op])
                return max(0, ins.ops["gaddr"] + int(self.rng.integers(span)) - int(self.rng.integers(n)))
        return 0


def controller_program(cfg, seed: int, illegal: bool):
    """A random program and its global buffer; ``illegal``: a bad instruction in the middle."""
    text, gbuf = random_program(cfg, seed, steps=20)
    words = assemble(text)
    if illegal:
        bad = encode("ldact", tx=0, ty=0, slot=0, count=2, gaddr=cfg.gbuf_words - 1)     # past the end
        words.insert(len(words) // 2, bad)
    return words, gbuf


def run_controller(cfg, seed: int, illegal: bool = False, p_err: float = 0.05, model_cls=ControllerModel,
                   p_idle: float = 0.3, p_ready: float = 0.6, max_cycles: int = 20_000, program=None,
                   mesh_cls=None, rx_cls=RxFeed) -> dict:
    """The controller and its model on one random program; returns what was checked.

    ``program``: ``(words, {gbuf address: words})`` instead of a random one; ``mesh_cls``: the
    stand-in mesh (:class:`FakeMesh`'s arguments; told every instruction the controller fetches
    without error by ``fetched(t, word)``); ``p_idle``/``p_ready``: the patterns of the flits
    delivered and of the network's readiness (drawn ahead); ``rx_cls``: what delivers them
    (:class:`RxFeed`'s arguments)."""
    rng = np.random.default_rng(seed)
    words, gbuf = controller_program(cfg, seed, illegal) if program is None else program
    st = ChipState(cfg)
    st.load_program(words)
    for addr, ws in gbuf.items():
        st.write_gbuf(addr, ws)
    model = model_cls(cfg, st)
    feed = rx_cls(cfg, draw(rng, 997, p_idle))
    tx = TxCheck(cfg, draw(rng, 991, p_ready))
    mesh = (mesh_cls or FakeMesh)(cfg, words, feed, rng, p_err)
    nodes = cfg.mesh_x * cfg.mesh_y
    noc = [(int(f), int(h)) for f, h in zip(rng.integers(0, nodes + 2, 983), rng.integers(0, 4 * nodes + 1, 983))]
    bank = BankEmulator(len(COUNTER_NAMES))

    async def load(io):
        io.set("quiet", 1)
        io.set("imem_wr__valid", 1)
        for a, w in enumerate(words):
            io.set("imem_wr__payload", pack_fields(imem_write_fields(), addr=a, data=w))
            await io.tick()
        io.set("imem_wr__valid", 0)
        io.set("gbuf_wr__valid", 1)
        for addr, ws in gbuf.items():
            for i, w in enumerate(ws):
                io.set("gbuf_wr__payload", pack_fields(gbuf_write_fields(cfg), addr=addr + i, data=w))
                await io.tick()
        io.set("gbuf_wr__valid", 0)
        io.set("start", 1)                 # cycle 0
        bank.drive(io, io.get("running"), io.get("clearing"))
        await io.tick()
        io.set("start", 0)

    async def bench(io):
        await load(io)
        t, still = 1, 0
        while still < 3:
            flit = feed.offer(io, t)
            tx.drive(io, t)
            io.set("noc_flits", noc[t % len(noc)][0])
            io.set("noc_hops", noc[t % len(noc)][1])
            running = io.get("running")
            if (running, io.get("done")) != (model.stop_cycle is None, model.stop_cycle is not None):
                raise BlockMismatch(f"cycle {t}: RTL running {running} done {io.get('done')}, "
                                    f"model stopped in cycle {model.stop_cycle}")
            bank.drive(io, running, io.get("clearing"))
            if (io.get("node__rx_header__ready"), io.get("node__rx_payload__ready")) != (1, 1):
                raise BlockMismatch(f"cycle {t}: the controller does not take what the network delivers")
            offered = model.offer()
            sent = tx.check(io, t, offered)
            if sent:
                mesh.sent(t, *tx.sent[-1][1:])
            bank.take(io, running)
            fetch_pc = model.pc if model.state == "fetch" else None
            model.cycle(t, sent, [flit] if flit is not None else (), *noc[t % len(noc)])
            if fetch_pc is not None and model.stop_cycle is None:
                mesh.fetched(t, words[fetch_pc])
            if flit is not None:
                feed.taken()
            await io.tick()
            t += 1
            still = still + 1 if model.stop_cycle is not None and feed.empty else 0
            if t > max_cycles:
                raise BlockMismatch(f"no stop within {max_cycles} cycles (model pc {model.pc})")
        counters = compare_counters(COUNTER_NAMES, bank.values(io), model.counters())
        err = unpack_fields(ERROR_FIELDS, io.get("error"))
        e = model.error
        want = dict(code=0, pc=0, x=0, y=0, row=0) if e is None else dict(code=e.code, pc=e.pc, x=e.tile[0],
                                                                         y=e.tile[1], row=e.row)
        if err != want:
            raise BlockMismatch(f"error register RTL {err}, model {want}")
        for a in range(cfg.gbuf_words):
            io.set("gbuf_rd_addr", a)
            await io.tick()
            if io.get("gbuf_rd_data") != st.gbuf[a]:
                raise BlockMismatch(f"global buffer word {a}: RTL {io.get('gbuf_rd_data'):#x}, model {st.gbuf[a]:#x}")
        return dict(cycles=model.stop_cycle, sent=tx.sent, counters=counters, error=err, mesh=mesh)

    return run_amaranth(Controller(cfg), bench)


@pytest.mark.parametrize("cfg,seed,illegal", [(TINY, 1, False), (TINY, 2, True), (CHIP_CONFIGS["a16x4"], 3, False)],
                         ids=["tiny-1", "tiny-2-illegal", "a16x4-3"])
def test_controller_against_model(cfg, seed, illegal):
    res = run_controller(cfg, seed, illegal, p_err=0.0)
    assert res["counters"]["ctrl_tx_stall"] > 0
    # the program ran to its end (barriers waited), or stopped at the bad global-buffer range
    assert res["error"]["code"] == 3 if illegal else res["counters"]["barrier_wait"] > 0


def test_controller_rram_error():
    """An ERR from a tile stops the program at the next fetch with the tile's row, as in the model."""
    res = run_controller(TINY, 9, p_err=0.1)
    assert res["error"]["code"] == 6 and res["error"]["pc"] > 0


class _LateBarrier(ControllerModel):
    """A model bug: a barrier leaves one cycle after its last answer, not in it."""

    waited = False

    def _step(self, tx_taken):
        if self.state == "wait" and self.pending is None and self.outstanding == 0 and not self.waited:
            self.waited = True
            return False
        if self.state != "wait":
            self.waited = False
        return super()._step(tx_taken)


def test_checker_catches_a_model_bug():
    with pytest.raises(BlockMismatch, match="cycle"):
        run_controller(TINY, 1, p_err=0.0, model_cls=_LateBarrier)


@pytest.mark.parametrize("banks", [1, 3])
def test_instruction_checks_equal_the_models(banks):
    """The controller's decoder (rtl/controller.py ``_check``) gives ``check_instr``'s error code on words of
    every opcode with random fields, near-limit fields and the bank fields set (a chip of one bank: unused
    fields, illegal; of three: ranges, a reduction's banks)."""
    from amaranth.hdl import Module, Signal
    from amaranth.sim import Simulator
    from rramcim.model.chip import check_instr
    from rramcim.model.isa import FORMATS
    from rramcim.rtl.controller import _check
    cfg = TINY.replace(name=f"chk{banks}", banks=banks)
    rng = np.random.default_rng(banks)
    words = []
    for name, (op, fields, _) in FORMATS.items():
        for _ in range(40):
            w = op
            for f in fields:
                v = int(rng.integers(0, 1 << f.width)) if rng.random() < 0.3 else int(rng.integers(0, 10))
                w |= v << f.lsb
            words.append(w)
    words += [int(rng.integers(0, 1 << 62)) for _ in range(50)]
    m = Module()
    word, code = Signal(64), Signal(3)
    _check(m, cfg, word, code)
    got = []

    async def bench(ctx):
        for w in words:
            ctx.set(word, w)
            got.append(ctx.get(code))
    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    want = [check_instr(cfg, w)[0] for w in words]
    assert got == want
    assert len(set(want)) >= 4                       # legal words, and several kinds of error
