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

The blocks are classes that also run alone (the RTL blocks' unit tests in
tests/rtl/ hold them to these): :class:`TileModel`
and :class:`ControllerModel` each offer a flit at the start of a cycle and
apply the cycle's events (flits delivered, their flit taken) at its end;
:meth:`ChipCycleModel.run` is a loop over the controller, the tiles and the
network.

Pure Python and numpy: no Amaranth or cocotb here.
"""

from __future__ import annotations

from dataclasses import dataclass

from .chip import ChipError, ChipState, TileState, check_instr
from .config import Config
from .encoding import (LOAD_COUNT, LOAD_PACKET, COUNTER_NAMES, CTRL, ERR_ARG, HEADER_TYPE_BITS, RESULT_ARG, SLOT_ARG, RRAM_ROW_BITS,
                       TILE_COUNTER_BASE, TILE_COUNTER_NAMES, TILE_COUNTER_STRIDE, WROW_ARG, ErrorCode, PacketType,
                       command_word, command_words, counter_index, field_lsb, header_fields, pack_fields,
                       pack_header, unpack_fields,
                       unpack_header, unpack_vector, vector_words)
from .isa import Op, decode
from .macro import MacroCore
from .noc import MeshCore, TxHeader
from .stream import StreamEngine, descriptor

__all__ = ["ChipCycleModel", "ControllerModel", "RunResult", "TileModel", "run_program"]


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


_TYPE_MASK = (1 << HEADER_TYPE_BITS) - 1
_ROW_MASK = (1 << RRAM_ROW_BITS) - 1
_NO_FIRE = (False, False, None, None)       # what an idle macro does in a cycle with nothing offered
_MACRO_STATES = ("mvm", "prog", "prog_wait")     # tile states that offer the macro something
_TILE_COUNTER = {name: k for k, name in enumerate(TILE_COUNTER_NAMES)}
_CHIP_COUNTER = {name: k for k, name in enumerate(COUNTER_NAMES)}
_C_BUSY, _C_TX_STALL = _TILE_COUNTER["busy"], _TILE_COUNTER["tx_stall"]
_C_FLITS, _C_HOPS, _C_GBUF_R, _C_GBUF_W, _C_CTX_STALL, _C_BARRIER, _C_INSTR, _C_FEED_STALL = (
    _CHIP_COUNTER[n] for n in ("noc_flits", "noc_flit_hops", "gbuf_read_bits", "gbuf_write_bits",
                               "ctrl_tx_stall", "barrier_wait", "instructions", "feed_stall"))


class TileModel:
    """One tile (rtl/tile.py), cycle by cycle, on its own or in :class:`ChipCycleModel`.

    Each cycle ``t``, on the registers' values: :meth:`offer` gives the flit it offers to the
    network (and steps its macro); :meth:`rx_ready` says whether it takes a delivered header
    or payload word; :meth:`cycle` applies what happened (the flits delivered to it, whether
    its flit was taken) at the end of the cycle.

    Parameters
    ----------
    cfg : Config
    data : TileState
        Its buffers and macro; the run reads and updates them.
    pos : tuple
        Its node ``(x, y)`` (the source of its headers).
    decoded : dict or None
        A cache of decoded instruction words, shared with other blocks.

    Members
    -------
    state : str
        ``idle``, ``recv``, ``exec``, ``prog``, ``prog_wait``, ``mvm``, ``send`` or ``stream``
        (rtl/tile.py's states; ``stream``: :class:`~rramcim.model.stream.StreamEngine`).
    live : list
        Its counters, in ``TILE_COUNTER_NAMES`` order (:meth:`counters` by name).
    """

    def __init__(self, cfg: Config, data: TileState, pos, decoded: dict | None = None):
        self.cfg, self.data, self.pos = cfg, data, pos
        self.decoded = {} if decoded is None else decoded
        self.type_lsb = field_lsb(header_fields(cfg), "type")
        self.macro = MacroCore(cfg, data.macro, fast=True)
        self.tx = _Sender(cfg, pos)
        self.state = "idle"
        self.rx_type = 0
        self.words: list[int] = []
        self.mvm = None          # dict: a, b, count, acc, row, i, j, bank, reduce
        self.seq = None          # the standing sequence (state "stream")
        self.prog = None         # (row, weights, pc)
        # this cycle's macro events and what the tile offered (set by offer())
        self.fires, self.x_offered, self.tx_offered = _NO_FIRE, False, False
        # events go to cnt: the live counters while they count, a scratch list after stop_counting()
        self.live = self.cnt = [0] * len(TILE_COUNTER_NAMES)

    def stop_counting(self):
        """Events from the next cycle on are not counted (the chip stopped)."""
        self.cnt = [0] * len(self.live)

    def counters(self) -> dict:
        return dict(zip(TILE_COUNTER_NAMES, self.live))

    @property
    def idle(self):
        return self.state == "idle" and self.macro.idle and not self.tx.busy

    def rx_ready(self, head: bool) -> bool:
        """It takes a header when idle and payload words while receiving (a standing sequence:
        :meth:`~rramcim.model.stream.StreamEngine.rx_ready`)."""
        if self.state == "stream":
            return self.seq.rx_ready(head)
        return self.state == ("idle" if head else "recv")

    def header_type(self, word: int) -> int:
        return (word >> self.type_lsb) & _TYPE_MASK

    def offer(self, t):
        """The start of cycle t: ``(header or None, payload word or None)`` it offers, or None
        outside ``send``; its macro's cycle t runs here."""
        s = self.state
        if s == "stream":
            return self.seq.offer(t)
        offered = None
        if s == "send":
            offered = self.tx.offer()
            self.tx_offered = offered[0] is not None or offered[1] is not None
        if s in _MACRO_STATES or self.macro.mode != "idle" or self.macro.results:
            self.step_macro(t)
        return offered

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
            self.fires = mc.step(t, None, x, True, False, mv["bank"] + mv["i"] * mv["reduce"])
        elif s == "prog":
            self.fires = mc.step(t, (self.prog[0], self.prog[1]), None, False, False)
        elif s == "prog_wait":
            self.fires = mc.step(t, None, None, False, True)
        else:                # a macro still busy in another state (offer() skips idle ones)
            self.fires = mc.step(t, None, None, False, False)

    def cycle(self, t, rx_flits, tx_taken):
        """The end of cycle t: ``rx_flits`` delivered to it (each with ``data`` and ``tail``),
        ``tx_taken`` not None if the network took the flit it offered."""
        state, cnt = self.state, self.cnt
        if state == "stream":
            self.state = self.seq.cycle(t, rx_flits, tx_taken)
            return
        if state == "send" and tx_taken is None:        # waiting for the network
            cnt[_C_BUSY] += 1
            if self.tx_offered:
                cnt[_C_TX_STALL] += 1
            return
        if not rx_flits and state in ("idle", "recv"):   # nothing happens but the busy count
            if state == "recv":
                cnt[_C_BUSY] += 1
            return
        self._apply(rx_flits)

    def _apply(self, rx_flits):
        cfg, cnt, c = self.cfg, self.cnt, _TILE_COUNTER
        state = self.state
        if state != "idle":
            cnt[_C_BUSY] += 1
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
                add = mv["acc"] or (mv["reduce"] and mv["j"] > 0)     # reduce: into slot b, adding after the first
                self.data.accumulate(mv["b"] + mv["j"] * (1 - mv["reduce"]), mv_ev.y, add=bool(add))
                if add:
                    cnt[c["acc_read_bits"]] += cfg.cols * cfg.acc_bits
                cnt[c["acc_write_bits"]] += cfg.cols * cfg.acc_bits
                mv["j"] += 1
                if mv["j"] == mv["count"]:
                    nxt = "idle"
        elif state == "idle":
            for flit in rx_flits:            # a header
                self.rx_type = (flit.data >> self.type_lsb) & _TYPE_MASK
                self.words = []
                # a credit that no sequence waits for is dropped (header only)
                nxt = "idle" if self.rx_type == PacketType.CREDIT else "recv"
        elif state == "exec":
            nxt = self._exec()
        elif state == "send":                # the flit was taken
            p, k = self.tx.taken()
            if k < 0 and p.ptype in (PacketType.RESULT, PacketType.PSUM_T):
                cnt[c["acc_read_bits"]] += cfg.cols * cfg.acc_bits
            if not self.tx.busy:
                nxt = "idle"
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
                    arg = pack_fields(ERR_ARG, pc=self.prog[2], row=self.prog[0])
                    self.tx.packets.append(_Packet(CTRL, PacketType.ERR, [arg]))
                    nxt = "send"
        self.state = nxt

    def _exec(self):
        cfg, d, W = self.cfg, self.data, self.cfg.flit_width
        ty, words = self.rx_type, self.words
        if ty == PacketType.CMD:
            return self._command(command_word(cfg, words))
        arg = words[0]
        n = vector_words(cfg, ty)
        data = words[1:1 + n]
        cnt, c = self.cnt, _TILE_COUNTER
        if ty == PacketType.ACT:
            d.ibuf[unpack_fields(SLOT_ARG, arg)["slot"]] = unpack_vector(data, cfg.rows, cfg.xbits, W)
            cnt[c["ibuf_write_bits"]] += cfg.rows * cfg.xbits
            return "idle"
        if ty == PacketType.BIAS:
            d.bias[:] = unpack_vector(data, cfg.cols, cfg.acc_bits, W)
            return "idle"
        if ty == PacketType.RQ:
            d.rq[arg & 1] = unpack_vector(data, cfg.cols, cfg.acc_bits, W)
            return "idle"
        if ty in (PacketType.PSUM, PacketType.PSUM_T):
            d.accumulate(unpack_fields(SLOT_ARG, arg)["slot"], unpack_vector(data, cfg.cols, cfg.acc_bits, W))
            cnt[c["acc_read_bits"]] += cfg.cols * cfg.acc_bits
            cnt[c["acc_write_bits"]] += cfg.cols * cfg.acc_bits
            if ty == PacketType.PSUM_T:          # answered, so that a barrier can wait for it
                self.tx.packets.append(_Packet(CTRL, PacketType.ACK, []))
                return "send"
            return "idle"
        if ty == PacketType.SEQ:
            self.seq = StreamEngine(self, descriptor(cfg, data))
            return "stream"
        if ty == PacketType.WROW:
            a = unpack_fields(WROW_ARG, arg)
            self.prog = (a["row"], unpack_vector(data, cfg.cols, cfg.wbits, W), a["pc"])
            return "prog"
        raise AssertionError(f"tile {self.pos}: packet type {ty}")

    def _command(self, word):
        """``EXEC`` of a ``CMD`` packet holding instruction ``word``: the next state."""
        cfg, d = self.cfg, self.data
        ins = self.decoded.get(word)
        if ins is None:
            ins = self.decoded[word] = decode(word)
        o = ins.ops
        if ins.op == Op.MVM:
            self.mvm = dict(a=o["a"], b=o["b"], count=o["count"], acc=o["acc"], row=None, i=0, j=0, bank=o["bank"],
                            reduce=o["reduce"])
            return "mvm"
        if ins.op == Op.READ:
            self.mvm = dict(a=0, b=o["b"], count=1, acc=0, row=o["row"], i=0, j=0, bank=o["bank"], reduce=0)
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


class ControllerModel:
    """The controller (rtl/controller.py), cycle by cycle, on its own or in :class:`ChipCycleModel`.

    It runs the program in ``state.imem`` from address 0 (the ``start`` was taken in cycle
    0; call :meth:`cycle` from ``t = 1``). Each cycle, on the registers' values:
    :meth:`offer` gives the flit it offers to the network; it always takes what is
    delivered to it; :meth:`cycle` applies the cycle: its state machine (with whether its
    flit was taken), then its receive side (the flits delivered to it, seen by the state
    machine the cycle after), and the network's events for the counters.

    Parameters
    ----------
    cfg : Config
    state : ChipState
        The instruction memory it runs and the global buffer it reads and writes.
    checked : dict or None
        A cache of checked instruction words, shared across runs.

    Members
    -------
    state : str
        ``fetch``, ``send``, ``wait``, then ``done`` from the cycle after it stopped.
    error : ChipError or None
        Why it stopped (None: ``halt``).
    stop_cycle : int or None
        The cycle it stopped in (the ``cycles`` counter).
    live : list
        Its counters, in ``COUNTER_NAMES`` order (:meth:`counters` by name).
    """

    def __init__(self, cfg: Config, state: ChipState, checked: dict | None = None):
        self.cfg, self.st = cfg, state
        self.checked = {} if checked is None else checked
        self.type_lsb = field_lsb(header_fields(cfg), "type")
        self.tx = _Sender(cfg, CTRL)
        self.state, self.pc, self.outstanding = "fetch", 0, 0
        self.pending: ChipError | None = None         # an ERR packet arrived
        self.error: ChipError | None = None
        self.stop_cycle = None
        self.rx = {"type": None, "k": 0, "addr": 0}
        self.offered = (None, None)
        self.chans: dict = {}            # feed channel -> {tile, gaddr, words, credits}
        self.feed = None                 # a feed in progress: {count, v, order, k}
        self.live = self.cnt = [0] * len(COUNTER_NAMES)

    def counters(self) -> dict:
        return dict(zip(COUNTER_NAMES, self.live))

    def offer(self):
        """The start of a cycle: ``(header or None, payload word or None)`` it offers, or None."""
        if self.state == "feed":
            if not self.tx.busy:
                self._feed_packet()
        elif self.state != "send":
            return None
        if not self.tx.busy:
            self.offered = (None, None)
            return None
        self.offered = self.tx.offer()
        return self.offered

    def _feed_packet(self):
        """A free sender in ``feed`` starts the next vector's packet if its channel has a credit."""
        f = self.feed
        ch = self.chans[f["order"][f["k"]]]
        if ch["credits"] == 0:
            self.cnt[_C_FEED_STALL] += 1
            return
        ch["credits"] -= 1
        st, base = self.st, ch["gaddr"] + f["v"] * ch["words"]
        self.tx.packets.append(_Packet(ch["tile"], PacketType.XS,
                                       [(lambda a=base + k: st.gbuf[a]) for k in range(ch["words"])]))

    def cycle(self, t, tx_taken: bool, rx_flits=(), flits: int = 0, hops: int = 0) -> bool:
        """The end of cycle t. ``tx_taken``: the network took its flit; ``rx_flits``: delivered to
        it (``head``, ``tail``, ``data``); ``flits``, ``hops``: the network's counter events.
        True if it stopped in this cycle (its events from the next cycle on are not counted)."""
        cnt = self.cnt
        cnt[_C_FLITS] += flits
        cnt[_C_HOPS] += hops
        stop = self._step(tx_taken)
        for flit in rx_flits:
            self._receive(flit)
        if stop:
            self.state, self.stop_cycle = "done", t
            self.live[0] = t
            self.cnt = [0] * len(self.live)
        return stop

    def _step(self, tx_taken):
        """The state machine, on the registers' values: True if it stops."""
        cnt, state = self.cnt, self.state
        if state in ("send", "feed"):
            if tx_taken:
                p, k = self.tx.taken()
                if k > 0 and p.ptype != PacketType.CMD or k >= 0 and p.ptype == PacketType.XS:
                    cnt[_C_GBUF_R] += self.cfg.flit_width          # a global-buffer word
                if not self.tx.busy:
                    if state == "send" or self._feed_next():
                        self.state, self.pc = "fetch", self.pc + 1
            elif self.offered[0] is not None or self.offered[1] is not None:
                cnt[_C_CTX_STALL] += 1
        elif state == "wait":
            if self.pending is not None:
                self.error = self.pending
                return True
            if self.outstanding == 0:
                self.state, self.pc = "fetch", self.pc + 1
            else:
                cnt[_C_BARRIER] += 1
        elif state == "fetch":
            return self._fetch()
        return False

    def _feed_next(self) -> bool:
        """The feed's packet went: on to the next channel and vector; True after the last."""
        f = self.feed
        f["k"] += 1
        if f["k"] == len(f["order"]):
            f["k"], f["v"] = 0, f["v"] + 1
        if f["v"] < f["count"]:
            return False
        self.feed, self.chans = None, {}
        return True

    def _fetch(self):
        pc = self.pc
        if self.pending is not None:
            self.error = self.pending
            return True
        if pc >= self.cfg.imem_depth:
            self.error = ChipError(ErrorCode.IMEM_OVERFLOW, pc)
            return True
        word = self.st.imem[pc]
        checked = self.checked.get(word)
        if checked is None:
            checked = self.checked[word] = check_instr(self.cfg, word)
        code, ins = checked
        if not code and ins.op == Op.FEED:
            code = self._feed_error()
        if code:
            self.error = ChipError(code, pc)
            return True
        self.cnt[_C_INSTR] += 1
        nstate, self.pc, self.outstanding = self._issue(ins, pc, self.tx, self.outstanding)
        if nstate == "stop":
            return True
        self.state = nstate
        return False

    def _receive(self, flit):
        """A flit delivered to it (registers: the state machine sees it the cycle after)."""
        cfg, rx = self.cfg, self.rx
        if flit.head:
            ptype = (flit.data >> self.type_lsb) & _TYPE_MASK
            rx["type"], rx["k"] = ptype, 0
            if ptype == PacketType.ACK:
                self.outstanding -= 1
            rx["src"] = unpack_header(cfg, flit.data)["src"]
            if ptype == PacketType.CREDIT:
                for ch in self.chans.values():
                    if ch["tile"] == rx["src"]:
                        ch["credits"] += 1
            return
        k = rx["k"]
        rx["k"] += 1
        if rx["type"] in (PacketType.RESULT, PacketType.RESULT_S):
            if flit.tail and rx["type"] == PacketType.RESULT_S:
                self.outstanding -= 1          # a feed's expected result, all of it written
            if k == 0:
                rx["addr"] = unpack_fields(RESULT_ARG, flit.data)["gaddr"]
            else:
                a = rx["addr"] + k - 1
                if a < cfg.gbuf_words:
                    self.st.gbuf[a] = flit.data
                self.cnt[_C_GBUF_W] += cfg.flit_width
        elif rx["type"] == PacketType.ERR and k == 0 and self.pending is None:
            e = unpack_fields(ERR_ARG, flit.data)
            self.pending = ChipError(ErrorCode.RRAM_VERIFY, e["pc"], rx["src"], e["row"])

    def _issue(self, ins, pc, ctx: _Sender, outstanding):
        """The fetch cycle of ``ins``: the controller's next state, pc and outstanding syncs."""
        cfg, st = self.cfg, self.st
        o, op = ins.ops, ins.op
        if op == Op.HALT:
            return "stop", pc, outstanding
        if op == Op.NOP:
            return "fetch", pc + 1, outstanding
        if op == Op.BARRIER:
            return "wait", pc, outstanding
        if op == Op.FEED:
            return self._start_feed(o, pc, outstanding)
        tile = (o["tx"], o["ty"])
        if op == Op.CHAN:
            self.chans[o["c"]] = dict(tile=tile, gaddr=o["gaddr"], words=o["words"], credits=o["credits"])
            return "fetch", pc + 1, outstanding
        if op in LOAD_PACKET:
            ptype = LOAD_PACKET[op]
            n = vector_words(cfg, ptype)
            for v in range(LOAD_COUNT.get(op, o.get("count", 1))):
                if op == Op.LDW:
                    arg = pack_fields(WROW_ARG, row=(o["bank"] * cfg.rows + o["row"] + v) & _ROW_MASK, pc=pc)
                elif op in (Op.LDBIAS, Op.LDSEQ):
                    arg = 0
                elif op == Op.LDRQ:
                    arg = v                     # which half of the requant vector
                else:
                    arg = o["slot"] + v
                base = o["gaddr"] + v * n
                payload = [arg] + [(lambda a=base + k: st.gbuf[a]) for k in range(n)]
                ctx.packets.append(_Packet(tile, ptype, payload))
            return "send", pc, outstanding + (op == Op.LDSEQ)      # a sequence answers when it starts
        # commands: the instruction itself
        if op == Op.SYNC:
            outstanding += 1
        elif op == Op.PSUM:
            outstanding += o["count"]          # the destination answers each partial sum
        ctx.packets.append(_Packet(tile, PacketType.CMD, command_words(cfg, ins.encode())))
        return "send", pc, outstanding


    def _feed_error(self) -> int:
        """The check of a fetched ``feed`` against the channels defined: two channels to one tile
        (error 2), a channel's vectors past the end of the global buffer (error 3), else 0."""
        count = decode(self.st.imem[self.pc]).ops["count"]
        tiles = [ch["tile"] for ch in self.chans.values()]
        if len(set(tiles)) < len(tiles):
            return ErrorCode.BAD_TILE
        if any(ch["gaddr"] + count * ch["words"] > self.cfg.gbuf_words for ch in self.chans.values()):
            return ErrorCode.BAD_GBUF
        return ErrorCode.NONE

    def _start_feed(self, o, pc, outstanding):
        """The fetch cycle of ``feed``: the channels in order of their number (none: the next
        instruction), and ``expect`` more answers for a barrier."""
        order = sorted(self.chans)
        outstanding += o["expect"]
        if not order:
            return "fetch", pc + 1, outstanding
        self.feed = dict(count=o["count"], v=0, order=order, k=0)
        return "feed", pc, outstanding


class ChipCycleModel:
    """Parameters
    ----------
    state : ChipState
        Memories and tiles; the run reads and updates it.
    """

    def __init__(self, state: ChipState, trace: list | None = None, trace_offset: int = 0):
        self.state, self.cfg = state, state.cfg
        # trace: if a list, every tile state change is appended as (cycle + trace_offset, tile index, state)
        self.trace, self.trace_offset = trace, trace_offset
        # an instruction word's check and decoding are the same every time: done once a run
        self.checked: dict = {}
        self.decoded: dict = {}

    def run(self, max_cycles: int = 50_000_000, drain_cycles: int = 1_000_000) -> RunResult:
        """The controller, the tiles (in counter order: ``y``, then ``x``) and the network, a cycle
        at a time until the controller stops and then until nothing moves."""
        cfg, st = self.cfg, self.state
        mesh = MeshCore(cfg)
        order = sorted(st.tiles, key=lambda p: (p[1], p[0]))
        tiles = [TileModel(cfg, st.tiles[pos], pos, self.decoded) for pos in order]
        by_node = {tl.pos: tl for tl in tiles}
        ctl = ControllerModel(cfg, st, self.checked)
        trace, trace_offset = self.trace, self.trace_offset

        def rx_ready(node, head):
            return True if node == CTRL else by_node[node].rx_ready(head)

        t = 1
        while True:
            if ctl.stop_cycle is not None:
                if mesh.idle() and all(tl.idle for tl in tiles) and not ctl.tx.busy:
                    break
                if t - ctl.stop_cycle > drain_cycles:
                    raise RuntimeError(f"chip model: not quiet {drain_cycles} cycles after stopping")
            if t > max_cycles:
                raise RuntimeError(f"chip model: no halt within {max_cycles} cycles (pc {ctl.pc})")
            offered = ctl.offer()
            offers = {} if offered is None else {CTRL: offered}
            for tl in tiles:
                offered = tl.offer(t)
                if offered is not None:
                    offers[tl.pos] = offered
            taken, delivered, hops = mesh.step(t, offers, rx_ready)
            rx = {}
            for node, flit in delivered:
                rx.setdefault(node, []).append(flit)
            running = ctl.stop_cycle is None
            stop = ctl.cycle(t, CTRL in taken, rx.get(CTRL, ()), len(taken), hops)
            for i, tl in enumerate(tiles):
                before = tl.state
                tl.cycle(t, rx.get(tl.pos, ()), taken.get(tl.pos))
                if trace is not None and tl.state != before and running:
                    trace.append((t + 1 + trace_offset, i, tl.state))
            if stop:
                for tl in tiles:
                    tl.stop_counting()
            t += 1
        counters = dict(enumerate(ctl.live))
        for i, tl in enumerate(tiles):
            counters.update({counter_index(name, i): v for name, v in zip(TILE_COUNTER_NAMES, tl.live)})
        return RunResult(ctl.stop_cycle, ctl.error, counters, t - 1)


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


