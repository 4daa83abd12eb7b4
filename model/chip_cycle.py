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

    @property
    def busy(self) -> bool:
        return bool(self.packets)

    def offer(self):
        if not self.packets:
            return None, None
        p = self.packets[0]
        if self.k < 0:
            word = pack_header(self.cfg, p.dest, self.src, p.ptype, len(p.payload))
            return TxHeader(p.dest, word, len(p.payload), p), None
        w = p.payload[self.k]
        return None, (w() if callable(w) else w)

    def taken(self) -> tuple[_Packet, int]:
        """Advance past the flit just taken. Returns (packet, flit index: -1 header, k payload)."""
        p, k = self.packets[0], self.k
        if self.k + 1 >= len(p.payload):
            self.packets.pop(0)
            self.k = -1
        else:
            self.k += 1
        return p, k


def _split64(word: int, width: int, n: int) -> list[int]:
    return [(word >> (i * width)) & ((1 << width) - 1) for i in range(n)]


class _Tile:
    def __init__(self, model: "ChipCycleModel", pos, index):
        self.m, self.cfg, self.pos, self.index = model, model.cfg, pos, index
        self.data = model.state.tiles[pos]
        self.macro = MacroCore(self.cfg, self.data.macro)
        self.tx = _Sender(self.cfg, pos)
        self.state = "idle"
        self.rx_type = 0
        self.words: list[int] = []
        self.mvm = None          # dict: a, b, count, acc, onehot, i, j
        self.prog = None         # (row, weights, pc)
        self.send = None         # dict for the acc-vector sends: op, ops, v, count

    def rx_ready(self, head: bool) -> bool:
        return (self.state == "idle") if head else (self.state == "recv")

    def offers(self):
        return self.tx.offer() if self.state == "send" else (None, None)

    def macro_inputs(self):
        p_item = x_item = None
        if self.state == "prog":
            p_item = (self.prog[0], self.prog[1])
        elif self.state == "mvm" and self.mvm["i"] < self.mvm["count"]:
            mv = self.mvm
            x_item = (self.data.onehot(mv["row"]) if mv["row"] is not None
                      else self.data.ibuf[mv["a"] + mv["i"]].copy())
        return p_item, x_item

    def count(self, name, n=1):
        if self.m.running:
            self.m.counters[counter_index(name, self.index)] += n

    def cycle(self, t, rx_flits, tx_taken, macro_fires, offered):
        """Apply cycle t's events (end of cycle)."""
        cfg = self.cfg
        if self.state != "idle":
            self.count("busy")
        pf, xf, mv_ev, pr_ev = macro_fires
        nxt = self.state
        if self.state == "idle":
            for flit in rx_flits:            # a header
                self.rx_type = (flit.data >> self.m.type_lsb) & 0xF
                self.words = []
                nxt = "recv"
        elif self.state == "recv":
            for flit in rx_flits:
                self.words.append(flit.data)
                if flit.tail:
                    nxt = "exec"
        elif self.state == "exec":
            nxt = self._exec()
        elif self.state == "prog":
            if pf:
                nxt = "prog_wait"
        elif self.state == "prog_wait":
            if pr_ev is not None:
                a = pr_ev.result.attempts
                self.count("rram_pulses", a)
                self.count("rram_verify_reads", a)
                if pr_ev.result.ok:
                    nxt = "idle"
                else:
                    arg = (self.prog[2] & 0xFFFF) | ((self.prog[0] & 0xFFF) << 16)
                    self.tx.packets.append(_Packet(CTRL, PacketType.ERR, [arg]))
                    nxt = "send"
        elif self.state == "mvm":
            mv = self.mvm
            if offered["x"] and not xf:
                self.count("macro_stall")
            if xf:
                mv["i"] += 1
                self.count("macs", cfg.rows * cfg.cols)
                self.count("mvms")
                if mv["row"] is None:
                    self.count("ibuf_read_bits", cfg.rows * cfg.xbits)
            if mv_ev is not None:
                self.data.accumulate(mv["b"] + mv["j"], mv_ev.y, add=bool(mv["acc"]))
                if mv["acc"]:
                    self.count("acc_read_bits", cfg.cols * cfg.acc_bits)
                self.count("acc_write_bits", cfg.cols * cfg.acc_bits)
                mv["j"] += 1
                if mv["j"] == mv["count"]:
                    nxt = "idle"
        elif self.state == "send":
            if offered["tx"] and tx_taken is None:
                self.count("tx_stall")
            if tx_taken is not None:
                p, k = self.tx.taken()
                if k < 0 and p.ptype in (PacketType.RESULT, PacketType.PSUM_T):
                    self.count("acc_read_bits", cfg.cols * cfg.acc_bits)
                if not self.tx.busy:
                    nxt = "idle"
        self.state = nxt

    def _exec(self):
        cfg, d, W = self.cfg, self.data, self.cfg.flit_width
        ty, words = self.rx_type, self.words
        if ty == PacketType.CMD:
            word = sum(w << (i * W) for i, w in enumerate(words[:cfg.cmd_words])) & ((1 << 64) - 1)
            ins = decode(word)
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

    def run(self, max_cycles: int = 50_000_000, drain_cycles: int = 1_000_000) -> RunResult:
        cfg, st = self.cfg, self.state
        W = cfg.flit_width
        mesh = MeshCore(cfg)
        self.counters = {i: 0 for i in range(len(COUNTER_NAMES))}
        tiles = {}
        for i, pos in enumerate(sorted(st.tiles, key=lambda p: (p[1], p[0]))):
            tiles[pos] = _Tile(self, pos, i)
            for k in range(len(TILE_COUNTER_NAMES)):
                self.counters[counter_index(TILE_COUNTER_NAMES[k], i)] = 0
        ctx = _Sender(cfg, CTRL)
        self.running = True
        cstate, pc, outstanding = "fetch", 0, 0
        pending: ChipError | None = None
        error: ChipError | None = None
        rx = {"type": None, "k": 0, "addr": 0}
        stop_cycle = None
        t = 1

        def count(name, n=1):
            if self.running:
                self.counters[COUNTER_NAMES.index(name)] += n

        while True:
            if stop_cycle is not None:
                if mesh.idle() and all(tl.idle for tl in tiles.values()) and not ctx.busy:
                    break
                if t - stop_cycle > drain_cycles:
                    raise RuntimeError(f"chip model: not quiet {drain_cycles} cycles after stopping")
            if t > max_cycles:
                raise RuntimeError(f"chip model: no halt within {max_cycles} cycles (pc {pc})")
            # --- offers from registered state ----------------------------------
            offers = {CTRL: ctx.offer() if cstate == "send" else (None, None)}
            macro_in = {}
            for pos, tl in tiles.items():
                offers[pos] = tl.offers()
                macro_in[pos] = tl.macro_inputs()

            def rx_ready(node, head):
                return True if node == CTRL else tiles[node].rx_ready(head)

            macro_fires = {}
            for pos, tl in tiles.items():
                p_item, x_item = macro_in[pos]
                macro_fires[pos] = tl.macro.step(t, p_item, x_item, tl.state == "mvm",
                                                 tl.state == "prog_wait")
            taken, delivered, hops = mesh.step(t, offers, rx_ready)
            count("noc_flits", len(taken))
            count("noc_flit_hops", hops)
            # --- controller state machine, on the registers' values --------------
            stop = False
            nstate = cstate
            if cstate == "send":
                h, w = offers[CTRL]
                if CTRL in taken:
                    p, k = ctx.taken()
                    if k > 0 and p.ptype != PacketType.CMD:       # a global-buffer word
                        count("gbuf_read_bits", W)
                    if not ctx.busy:
                        nstate, pc = "fetch", pc + 1
                elif h is not None or w is not None:
                    count("ctrl_tx_stall")
            elif cstate == "wait":
                if pending is not None:
                    error, stop = pending, True
                elif outstanding == 0:
                    nstate, pc = "fetch", pc + 1
                else:
                    count("barrier_wait")
            elif cstate == "fetch":
                if pending is not None:
                    error, stop = pending, True
                elif pc >= cfg.imem_depth:
                    error, stop = ChipError(ErrorCode.IMEM_OVERFLOW, pc), True
                else:
                    code, ins = check_instr(cfg, st.imem[pc])
                    if code:
                        error, stop = ChipError(code, pc), True
                    else:
                        count("instructions")
                        nstate, pc, outstanding = self._issue(ins, pc, ctx, outstanding)
                        if nstate == "stop":
                            stop = True
            # --- controller receive (registers: seen by the state machine next cycle) ----
            for node, flit in delivered:
                if node != CTRL:
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
                        count("gbuf_write_bits", W)
                elif rx["type"] == PacketType.ERR and k == 0 and pending is None:
                    pending = ChipError(ErrorCode.RRAM_VERIFY, flit.data & 0xFFFF, rx["src"],
                                        (flit.data >> 16) & 0xFFF)
            # --- tiles -----------------------------------------------------------
            for pos, tl in tiles.items():
                before = tl.state
                flits = [f for n, f in delivered if n == pos]
                tx_taken = taken.get(pos)
                h, w = offers[pos]
                p_item, x_item = macro_in[pos]
                tl.cycle(t, flits, tx_taken, macro_fires[pos],
                         {"x": x_item is not None, "tx": h is not None or w is not None})
                if self.trace is not None and tl.state != before and self.running:
                    self.trace.append((t + 1 + self.trace_offset, tl.index, tl.state))
            if stop:
                self.running = False
                stop_cycle = t
                cstate = "done"
            else:
                cstate = nstate
            t += 1
        self.counters[0] = stop_cycle
        return RunResult(stop_cycle, error, dict(self.counters), t - 1)

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


