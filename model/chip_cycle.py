"""Cycle-exact model of the chip core: controller, tiles and network, cycle by cycle.

It mirrors rtl/controller.py and rtl/tile.py state for state (docs/isa.md
gives each state's timing) and drives the network's own cycle-exact model
(:class:`~rramcim.model.noc.MeshCore`) and each tile's macro
(:class:`~rramcim.model.macro.MacroCore`). For any program it gives the cycle
count, every performance counter, the error, and the global buffer and tile
state the RTL leaves.

Cycle 0 is the cycle in which ``start`` is taken; the controller fetches its
first instruction in cycle 1. The chip is *running* from cycle 1 to the cycle
in which it stops (it fetches ``halt``, or it finds an error): that many
cycles is the ``cycles`` counter, and every counter counts only events in
running cycles. After it stops, the network and the tiles finish what they
were sent (results still land in the global buffer) without being counted.

Pure Python and numpy: no Amaranth or cocotb here.
"""

from __future__ import annotations

from dataclasses import dataclass

from .chip import (COUNTER_NAMES, LOAD_PACKET, TILE_COUNTER_BASE, TILE_COUNTER_NAMES, TILE_COUNTER_STRIDE, ChipError,
                   ChipState, ErrorCode, PacketType, check_instr, counter_index, unpack_vector, vector_words)
from .config import Config
from .isa import Op, decode
from .macro import MacroCore
from .noc import CTRL, MeshCore, TxHeader, coord_size, pack_header, unpack_header

__all__ = ["ChipCycleModel", "RunResult"]


@dataclass
class RunResult:
    cycles: int
    error: ChipError | None
    counters: dict            # index -> value
    quiescent_cycle: int      # the cycle after which nothing moved any more

    def counter(self, name: str, tile: int | None = None) -> int:
        return self.counters[counter_index(name, tile)]

    def total(self, name: str) -> int:
        """A tile counter summed over the tiles."""
        k = TILE_COUNTER_NAMES.index(name)
        return sum(v for i, v in self.counters.items()
                   if i >= TILE_COUNTER_BASE and (i - TILE_COUNTER_BASE) % TILE_COUNTER_STRIDE == k)


class _Packet:
    """A packet being sent: header fields and its payload as a list of thunks or ints."""

    __slots__ = ("dest", "ptype", "payload")

    def __init__(self, dest, ptype, payload):
        self.dest, self.ptype, self.payload = dest, ptype, payload


class _Sender:
    """The transmit side of a node: a queue of packets, header then payload words, one flit per cycle."""

    def __init__(self, cfg: Config, src):
        self.cfg, self.src = cfg, src
        self.packets: list[_Packet] = []
        self.k = -1                      # -1: header next, else payload word k
        self.held = None                 # the header offered, held until it is taken
        self.headers = {}                # header words by (dest, type, length)

    @property
    def busy(self) -> bool:
        return bool(self.packets)

    def offer(self):
        if self.held is not None:
            return self.held
        if not self.packets:
            return None, None
        p = self.packets[0]
        if self.k < 0:
            key = (p.dest, p.ptype, len(p.payload))
            word = self.headers.get(key)
            if word is None:
                word = self.headers[key] = pack_header(self.cfg, p.dest, self.src, p.ptype, len(p.payload))
            self.held = (TxHeader(p.dest, word, len(p.payload), p), None)
            return self.held
        # a payload word is read in every cycle it is offered, as the RTL reads the global buffer
        w = p.payload[self.k]
        return None, (w() if callable(w) else w)

    def taken(self) -> tuple[_Packet, int]:
        """Advance past the flit just taken. Returns (packet, flit index: -1 header, k payload)."""
        self.held = None
        p, k = self.packets[0], self.k
        if self.k + 1 >= len(p.payload):
            self.packets.pop(0)
            self.k = -1
        else:
            self.k += 1
        return p, k


def _split64(word: int, width: int, n: int) -> list[int]:
    return [(word >> (i * width)) & ((1 << width) - 1) for i in range(n)]


_NO_FIRE = (False, False, None, None)       # what an idle macro does in a cycle with nothing offered
_MACRO_STATES = ("mvm", "prog", "prog_wait")     # tile states that offer the macro something
_TILE_COUNTER = {name: k for k, name in enumerate(TILE_COUNTER_NAMES)}
_CHIP_COUNTER = {name: k for k, name in enumerate(COUNTER_NAMES)}


class _Tile:
    def __init__(self, model: "ChipCycleModel", pos, index):
        self.m, self.cfg, self.pos, self.index = model, model.cfg, pos, index
        self.data = model.state.tiles[pos]
        self.macro = MacroCore(self.cfg, self.data.macro, fast=True)
        self.tx = _Sender(self.cfg, pos)
        self.state = "idle"
        self.rx_type = 0
        self.words: list[int] = []
        self.mvm = None          # dict: a, b, count, acc, row, i, j
        self.prog = None         # (row, weights, pc)
        # this cycle's macro events and what the tile offered (set by the model before cycle())
        self.fires, self.x_offered, self.tx_offered = _NO_FIRE, False, False
        base = counter_index(TILE_COUNTER_NAMES[0], index)
        self.c = {name: base + k for name, k in _TILE_COUNTER.items()}
        self.c_busy, self.c_tx_stall = self.c["busy"], self.c["tx_stall"]

    def step_macro(self, t):
        """The macro's cycle t with this tile's offers; sets ``fires`` and ``x_offered``."""
        s, mc = self.state, self.macro
        self.x_offered = False
        if s == "mvm":
            mv = self.mvm
            x = None
            if mv["i"] < mv["count"]:
                # the macro reads the vector in the cycle it takes it: no copy needed
                x = self.data.onehot(mv["row"]) if mv["row"] is not None else self.data.ibuf[mv["a"] + mv["i"]]
                self.x_offered = True
            self.fires = mc.step(t, None, x, True, False)
        elif s == "prog":
            self.fires = mc.step(t, (self.prog[0], self.prog[1]), None, False, False)
        elif s == "prog_wait":
            self.fires = mc.step(t, None, None, False, True)
        else:                # a macro still busy in another state (the run loop skips idle ones)
            self.fires = mc.step(t, None, None, False, False)

    def count(self, name, n=1):
        self.m.cnt[self.c[name]] += n

    def cycle(self, t, rx_flits, tx_taken):
        """Apply cycle t's events (end of cycle)."""
        cfg, cnt, c = self.cfg, self.m.cnt, self.c
        state = self.state
        if state != "idle":
            cnt[self.c_busy] += 1
        nxt = state
        if state == "recv":
            for flit in rx_flits:
                self.words.append(flit.data)
                if flit.tail:
                    nxt = "exec"
        elif state == "mvm":
            mv = self.mvm
            _, xf, mv_ev, _ = self.fires
            if xf:
                mv["i"] += 1
                cnt[c["macs"]] += cfg.rows * cfg.cols
                cnt[c["mvms"]] += 1
                if mv["row"] is None:
                    cnt[c["ibuf_read_bits"]] += cfg.rows * cfg.xbits
            elif self.x_offered:
                cnt[c["macro_stall"]] += 1
            if mv_ev is not None:
                self.data.accumulate(mv["b"] + mv["j"], mv_ev.y, add=bool(mv["acc"]))
                if mv["acc"]:
                    cnt[c["acc_read_bits"]] += cfg.cols * cfg.acc_bits
                cnt[c["acc_write_bits"]] += cfg.cols * cfg.acc_bits
                mv["j"] += 1
                if mv["j"] == mv["count"]:
                    nxt = "idle"
        elif state == "idle":
            for flit in rx_flits:            # a header
                self.rx_type = (flit.data >> self.m.type_lsb) & 0xF
                self.words = []
                nxt = "recv"
        elif state == "exec":
            nxt = self._exec()
        elif state == "send":
            if tx_taken is not None:
                p, k = self.tx.taken()
                if k < 0 and p.ptype in (PacketType.RESULT, PacketType.PSUM_T):
                    cnt[c["acc_read_bits"]] += cfg.cols * cfg.acc_bits
                if not self.tx.busy:
                    nxt = "idle"
            elif self.tx_offered:
                cnt[c["tx_stall"]] += 1
        elif state == "prog":
            if self.fires[0]:
                nxt = "prog_wait"
        elif state == "prog_wait":
            pr_ev = self.fires[3]
            if pr_ev is not None:
                a = pr_ev.result.attempts
                cnt[c["rram_pulses"]] += a
                cnt[c["rram_verify_reads"]] += a
                if pr_ev.result.ok:
                    nxt = "idle"
                else:
                    arg = (self.prog[2] & 0xFFFF) | ((self.prog[0] & 0xFFF) << 16)
                    self.tx.packets.append(_Packet(CTRL, PacketType.ERR, [arg]))
                    nxt = "send"
        self.state = nxt

    def _exec(self):
        cfg, d, W = self.cfg, self.data, self.cfg.flit_width
        ty, words = self.rx_type, self.words
        if ty == PacketType.CMD:
            word = sum(w << (i * W) for i, w in enumerate(words[:cfg.cmd_words])) & ((1 << 64) - 1)
            ins = self.m.decoded.get(word)
            if ins is None:
                ins = self.m.decoded[word] = decode(word)
            o = ins.ops
            if ins.op == Op.MVM:
                self.mvm = dict(a=o["a"], b=o["b"], count=o["count"], acc=o["acc"], row=None, i=0, j=0)
                return "mvm"
            if ins.op == Op.READ:
                self.mvm = dict(a=0, b=o["b"], count=1, acc=0, row=o["row"], i=0, j=0)
                return "mvm"
            if ins.op == Op.SYNC:
                self.tx.packets.append(_Packet(CTRL, PacketType.ACK, []))
                return "send"
            # out, outq, psum: one packet per accumulator vector, read when its header goes
            for v in range(o["count"]):
                if ins.op == Op.PSUM:
                    dest, ptype, arg = (o["dx"], o["dy"]), PacketType.PSUM_T, o["d"] + v
                    nwords = cfg.words_a
                else:
                    nwords = cfg.words_a if ins.op == Op.OUT else cfg.words_q
                    dest, ptype, arg = CTRL, PacketType.RESULT, o["gaddr"] + v * nwords
                cache = {}

                def word_k(k, slot=o["b"] + v, op=ins.op, ops=o, cache=cache):
                    if "w" not in cache:
                        cache["w"] = d.out_vector(slot, op, ops)
                    return cache["w"][k]
                payload = [arg] + [(lambda k=k, f=word_k: f(k)) for k in range(nwords)]
                self.tx.packets.append(_Packet(dest, ptype, payload))
            return "send"
        arg = words[0]
        n = vector_words(cfg, ty)
        data = words[1:1 + n]
        if ty == PacketType.ACT:
            d.ibuf[arg & 0xFFF] = unpack_vector(data, cfg.rows, cfg.xbits, W)
            self.count("ibuf_write_bits", cfg.rows * cfg.xbits)
            return "idle"
        if ty == PacketType.BIAS:
            d.bias[:] = unpack_vector(data, cfg.cols, cfg.acc_bits, W)
            return "idle"
        if ty in (PacketType.PSUM, PacketType.PSUM_T):
            d.accumulate(arg & 0xFFF, unpack_vector(data, cfg.cols, cfg.acc_bits, W))
            self.count("acc_read_bits", cfg.cols * cfg.acc_bits)
            self.count("acc_write_bits", cfg.cols * cfg.acc_bits)
            if ty == PacketType.PSUM_T:          # answered, so that a barrier can wait for it
                self.tx.packets.append(_Packet(CTRL, PacketType.ACK, []))
                return "send"
            return "idle"
        if ty == PacketType.WROW:
            self.prog = (arg & 0xFFF, unpack_vector(data, cfg.cols, cfg.wbits, W), (arg >> 16) & 0xFFFF)
            return "prog"
        raise AssertionError(f"tile {self.pos}: packet type {ty}")

    @property
    def idle(self):
        return self.state == "idle" and self.macro.idle and not self.tx.busy


class ChipCycleModel:
    """Parameters
    ----------
    state : ChipState
        Memories and tiles; the run reads and updates it.
    """

    def __init__(self, state: ChipState, trace: list | None = None, trace_offset: int = 0):
        self.state, self.cfg = state, state.cfg
        self.type_lsb = 2 * coord_size(self.cfg)        # header: dest, src, then type
        # trace: if a list, every tile state change is appended as (cycle + trace_offset, tile index, state)
        self.trace, self.trace_offset = trace, trace_offset
        # an instruction word's check and decoding are the same every time: done once a run
        self.checked: dict = {}
        self.decoded: dict = {}

    def run(self, max_cycles: int = 50_000_000, drain_cycles: int = 1_000_000) -> RunResult:
        cfg, st = self.cfg, self.state
        W = cfg.flit_width
        mesh = MeshCore(cfg)
        order = sorted(st.tiles, key=lambda p: (p[1], p[0]))
        # Counters live in a list while the chip runs; after it stops, events go to a scratch list.
        ncounters = counter_index(TILE_COUNTER_NAMES[0], len(order))
        cnt = self.cnt = live = [0] * ncounters
        indices = list(range(len(COUNTER_NAMES)))
        tiles = {}
        for i, pos in enumerate(order):
            tiles[pos] = _Tile(self, pos, i)
            indices += [counter_index(name, i) for name in TILE_COUNTER_NAMES]
        tile_list = [tiles[pos] for pos in order]
        C_FLITS, C_HOPS, C_GBUF_R, C_GBUF_W, C_CTX_STALL, C_BARRIER, C_INSTR = (
            _CHIP_COUNTER[n] for n in ("noc_flits", "noc_flit_hops", "gbuf_read_bits", "gbuf_write_bits",
                                       "ctrl_tx_stall", "barrier_wait", "instructions"))
        trace, trace_offset = self.trace, self.trace_offset
        ctx = _Sender(cfg, CTRL)
        running = True
        cstate, pc, outstanding = "fetch", 0, 0
        pending: ChipError | None = None
        error: ChipError | None = None
        rx = {"type": None, "k": 0, "addr": 0}
        stop_cycle = None
        t = 1

        def rx_ready(node, head):
            """A tile takes a header when idle and payload while receiving; the controller always."""
            if node == CTRL:
                return True
            return tiles[node].state == ("idle" if head else "recv")

        while True:
            if stop_cycle is not None:
                if mesh.idle() and all(tl.idle for tl in tile_list) and not ctx.busy:
                    break
                if t - stop_cycle > drain_cycles:
                    raise RuntimeError(f"chip model: not quiet {drain_cycles} cycles after stopping")
            if t > max_cycles:
                raise RuntimeError(f"chip model: no halt within {max_cycles} cycles (pc {pc})")
            # --- offers from registered state ----------------------------------
            offers = {}
            if cstate == "send":
                ctrl_offer = offers[CTRL] = ctx.offer()
            for tl in tile_list:
                s = tl.state
                if s == "send":
                    h, w = offers[tl.pos] = tl.tx.offer()
                    tl.tx_offered = h is not None or w is not None
                if s in _MACRO_STATES or tl.macro.mode != "idle" or tl.macro.results:
                    tl.step_macro(t)
            taken, delivered, hops = mesh.step(t, offers, rx_ready)
            cnt[C_FLITS] += len(taken)
            cnt[C_HOPS] += hops
            # --- controller state machine, on the registers' values --------------
            stop = False
            nstate = cstate
            if cstate == "send":
                if CTRL in taken:
                    p, k = ctx.taken()
                    if k > 0 and p.ptype != PacketType.CMD:       # a global-buffer word
                        cnt[C_GBUF_R] += W
                    if not ctx.busy:
                        nstate, pc = "fetch", pc + 1
                elif ctrl_offer[0] is not None or ctrl_offer[1] is not None:
                    cnt[C_CTX_STALL] += 1
            elif cstate == "wait":
                if pending is not None:
                    error, stop = pending, True
                elif outstanding == 0:
                    nstate, pc = "fetch", pc + 1
                else:
                    cnt[C_BARRIER] += 1
            elif cstate == "fetch":
                if pending is not None:
                    error, stop = pending, True
                elif pc >= cfg.imem_depth:
                    error, stop = ChipError(ErrorCode.IMEM_OVERFLOW, pc), True
                else:
                    word = st.imem[pc]
                    checked = self.checked.get(word)
                    if checked is None:
                        checked = self.checked[word] = check_instr(cfg, word)
                    code, ins = checked
                    if code:
                        error, stop = ChipError(code, pc), True
                    else:
                        cnt[C_INSTR] += 1
                        nstate, pc, outstanding = self._issue(ins, pc, ctx, outstanding)
                        if nstate == "stop":
                            stop = True
            # --- controller receive (registers: seen by the state machine next cycle) ----
            tile_rx = {}
            for node, flit in delivered:
                if node != CTRL:
                    tile_rx.setdefault(node, []).append(flit)
                    continue
                if flit.head:
                    ptype = (flit.data >> self.type_lsb) & 0xF
                    rx["type"], rx["k"] = ptype, 0
                    if ptype == PacketType.ACK:
                        outstanding -= 1
                    rx["src"] = unpack_header(cfg, flit.data)["src"]
                    continue
                k = rx["k"]
                rx["k"] += 1
                if rx["type"] == PacketType.RESULT:
                    if k == 0:
                        rx["addr"] = flit.data & 0xFFFFF
                    else:
                        a = rx["addr"] + k - 1
                        if a < cfg.gbuf_words:
                            st.gbuf[a] = flit.data
                        cnt[C_GBUF_W] += W
                elif rx["type"] == PacketType.ERR and k == 0 and pending is None:
                    pending = ChipError(ErrorCode.RRAM_VERIFY, flit.data & 0xFFFF, rx["src"],
                                        (flit.data >> 16) & 0xFFF)
            # --- tiles -----------------------------------------------------------
            for tl in tile_list:
                before = tl.state
                if before == "send" and tl.pos not in taken:     # waiting for the network
                    cnt[tl.c_busy] += 1
                    if tl.tx_offered:
                        cnt[tl.c_tx_stall] += 1
                    continue
                flits = tile_rx.get(tl.pos, ()) if tile_rx else ()
                if not flits and before in ("idle", "recv"):     # nothing happens but the busy count
                    if before == "recv":
                        cnt[tl.c_busy] += 1
                    continue
                tl.cycle(t, flits, taken.get(tl.pos))
                if trace is not None and tl.state != before and running:
                    trace.append((t + 1 + trace_offset, tl.index, tl.state))
            if stop:
                running = False
                cnt = self.cnt = [0] * ncounters          # events after the stop are not counted
                stop_cycle = t
                cstate = "done"
            else:
                cstate = nstate
            t += 1
        counters = {i: live[i] for i in indices}
        counters[0] = stop_cycle
        return RunResult(stop_cycle, error, counters, t - 1)

    def _issue(self, ins, pc, ctx: _Sender, outstanding):
        """The fetch cycle of ``ins``: the controller's next state, pc and outstanding syncs."""
        cfg, st = self.cfg, self.state
        o, op = ins.ops, ins.op
        if op == Op.HALT:
            return "stop", pc, outstanding
        if op == Op.NOP:
            return "fetch", pc + 1, outstanding
        if op == Op.BARRIER:
            return "wait", pc, outstanding
        tile = (o["tx"], o["ty"])
        if op in LOAD_PACKET:
            ptype = LOAD_PACKET[op]
            n = vector_words(cfg, ptype)
            for v in range(o.get("count", 1)):
                if op == Op.LDW:
                    arg = ((o["row"] + v) & 0xFFF) | ((pc & 0xFFFF) << 16)
                elif op == Op.LDBIAS:
                    arg = 0
                else:
                    arg = o["slot"] + v
                base = o["gaddr"] + v * n
                payload = [arg] + [(lambda a=base + k: st.gbuf[a]) for k in range(n)]
                ctx.packets.append(_Packet(tile, ptype, payload))
            return "send", pc, outstanding
        # commands: the instruction itself
        if op == Op.SYNC:
            outstanding += 1
        elif op == Op.PSUM:
            outstanding += o["count"]          # the destination answers each partial sum
        ctx.packets.append(_Packet(tile, PacketType.CMD, _split64(ins.encode(), cfg.flit_width, cfg.cmd_words)))
        return "send", pc, outstanding


def run_program(cfg: Config, program, gbuf_init: dict | None = None, faults: dict | None = None,
                state: ChipState | None = None):
    """Convenience: a fresh chip (or ``state``), load, run. Returns (RunResult, ChipState)."""
    st = state or ChipState(cfg, faults or {})
    err = st.load_program(program)
    if err is not None:
        return RunResult(0, err, {}, 0), st
    for addr, words in (gbuf_init or {}).items():
        st.write_gbuf(addr, words)
    return ChipCycleModel(st).run(), st


