"""A tile's standing sequence, cycle by cycle (docs/isa.md, "Standing sequences").

A ``SEQ`` packet (from ``ldseq``) gives a tile a descriptor (``SEQ_DESC``): run ``count``
vectors through the macro, each as it arrives, and send each result on, with no command
per vector. While it runs, the tile's three parts work at once, each on its own registers:

* **receive**: takes a packet whenever it is not taking one (a header also in the cycle
  that writes the packet before): ``XS`` into the input ring (slots ``0 .. ring-1`` of
  the input buffer, in arrival order), ``PS`` into the accumulator ring (slots
  ``0 .. aring-1``, set, not added), ``CREDIT`` (header only) adds one credit toward the
  destination that sent it (its header's source). The write is the cycle after the tail
  (``exec``).
* **compute**: offers input vector ``ix`` to the macro once it is written; writes result
  ``j`` into accumulator slot ``j % aring`` the cycle it leaves the macro (added to the
  partial sum there if ``join``), but not in a cycle that writes a ``PS`` (one write
  port), and only once the slot holds partial sum ``j`` (``join``) or is free (its
  result before was sent).
* **send**: one packet at a time, chosen when the sender is free: first the ``ACK`` that
  answers the ``ldseq`` (a ``barrier`` after the ``ldseq`` s knows every sequence runs), then a credit for a freed
  input slot to the input's producer, then a credit for a freed accumulator slot to the
  partial sums' producer, then result ``sent`` if it is written and (to a tile) a credit
  is left toward the destination it goes to. A result to tiles goes to each of its
  ``fan + 1`` destinations in turn (``dst``, ``dst1``, ...), one packet each, each
  destination with credits of its own (fan-out: a layer's output block to every N-block of
  the next layer); its slot is freed after the last. Results carry only the ``ncols``
  valid columns (the last word padded with zeros); ``PS`` and ``XS`` have no argument
  word, ``RESULT_S`` has the address ``gaddr + v * gstep``.

Credits keep every packet consumable where it lands, so the network never holds a
packet behind one that waits: a producer starts with ``credits`` (the consumer's ring
length) and the consumer returns one for each slot it frees, but not for the last
``ring`` (``aring``) vectors, which need none. The tile is back in ``idle`` the cycle
after its last result and last credit are sent.

Pure Python and numpy: no Amaranth or cocotb here.
"""

from __future__ import annotations

import numpy as np

from .chip import post_process
from .encoding import (CTRL, SEQ_DESC, PacketType, SeqOp, TILE_COUNTER_NAMES, pack_vector, unpack_fields,
                       coord_bits, unpack_header, unpack_vector)
from .macro import wrap_signed

__all__ = ["StreamEngine", "descriptor", "seq_packet_words", "destinations"]

_C = {name: k for k, name in enumerate(TILE_COUNTER_NAMES)}


def descriptor(cfg, words) -> dict:
    """The fields of a descriptor held in ``words`` (``seq_words`` words of ``flit_width`` bits)."""
    word = sum(int(w) << (i * cfg.flit_width) for i, w in enumerate(words[:cfg.seq_words]))
    return unpack_fields(SEQ_DESC, word)


def seq_packet_words(cfg, **fields) -> list[int]:
    """A descriptor as ``seq_words`` global-buffer words (the inverse of :func:`descriptor`)."""
    from .encoding import pack_fields
    word = pack_fields(SEQ_DESC, **fields)
    mask = (1 << cfg.flit_width) - 1
    return [(word >> (i * cfg.flit_width)) & mask for i in range(cfg.seq_words)]


def destinations(d: dict) -> list:
    """The tiles a sequence's results go to (``dst``, then ``dst1`` .. as ``fan`` says), or ``[CTRL]``."""
    if d["op"] in (SeqOp.OUT_CTRL, SeqOp.OUTQ_CTRL):
        return [CTRL]
    return [(d["dst_x"], d["dst_y"])] + [(d[f"dst{k}_x"], d[f"dst{k}_y"]) for k in range(1, d["fan"] + 1)]


def result_words(cfg, tile, slot: int, d: dict) -> tuple[int, list[int]]:
    """``(packet type, words)`` a sequence sends for accumulator ``slot`` (only ``ncols`` columns)."""
    acc, op, n = tile.acc[slot], d["op"], d["ncols"]
    if op in (SeqOp.XS_TILE, SeqOp.OUTQ_CTRL):
        vals, bits = post_process(acc, tile.bias, d["shift"], d["relu"], cfg,
                                  tile.rq if cfg.has_requant and d["rq"] else None), cfg.xbits
    elif op == SeqOp.OUT_CTRL and d["bias"]:
        vals, bits = wrap_signed(acc + tile.bias, cfg.acc_bits), cfg.acc_bits
    else:
        vals, bits = acc, cfg.acc_bits
    ptype = {SeqOp.PS_TILE: PacketType.PS, SeqOp.XS_TILE: PacketType.XS}.get(op, PacketType.RESULT_S)
    return ptype, pack_vector(np.asarray(vals)[:n], bits, cfg.flit_width)


class StreamEngine:
    """The ``stream`` state of a :class:`~rramcim.model.chip_cycle.TileModel`.

    Parameters
    ----------
    tile : TileModel
        Its buffers (``data``), macro, sender (``tx``) and counters (``cnt``).
    desc : dict
        The descriptor (:func:`descriptor`).
    """

    def __init__(self, tile, desc: dict):
        self.tile, self.d = tile, desc
        d = desc
        self.count, self.ring, self.aring = d["count"], d["ring"], d["aring"]
        self.src = CTRL if d["src_ctrl"] else (d["src_x"], d["src_y"])
        self.psrc = (d["psrc_x"], d["psrc_y"])
        self.to_ctrl = d["op"] in (SeqOp.OUT_CTRL, SeqOp.OUTQ_CTRL)
        self.dsts = destinations(d)
        self.credits = [d["credits"]] * len(self.dsts)     # toward each destination
        self.copy = 0                 # the destination the result ``sent`` goes to next
        self.rx, self.rx_type, self.words = "idle", 0, []
        self.wx = self.wp = 0         # XS / PS vectors written
        self.ix = self.j = 0          # vectors the macro took / results written
        self.sent = 0                 # results whose packet was sent to the end
        self.xcred = self.pcred = 0   # credits to send (input ring / accumulator ring)
        self.ack = True               # the answer to ldseq, sent first
        self.kind = None              # what the sender sends: "a" (the answer), "x", "p" (credits), "r" (a result)
        self.tx_offered = False
        self.busy_macro = False       # a vector in the macro at the cycle's start
        self.fires = (False, False, None, None)

    # --- the start of a cycle ------------------------------------------------------------------

    def rx_ready(self, head: bool) -> bool:
        return self.rx in ("idle", "exec") if head else self.rx == "recv"

    def offer(self, t):
        """The flit offered in cycle ``t`` (header or payload word) and the macro's cycle."""
        tl, tx = self.tile, self.tile.tx
        self.busy_macro = self.ix > self.j
        if not tx.busy:
            self._choose()
        offered = None
        self.tx_offered = tx.busy
        if tx.busy:
            offered = tx.offer()
        x = None
        if self.ix < self.count and self.wx > self.ix:
            x = tl.data.ibuf[self.ix % self.ring]
        ps_exec = self.rx == "exec" and self.rx_type == PacketType.PS
        if self.d["join"]:
            y_ready = not ps_exec and self.wp > self.j
        else:
            y_ready = not ps_exec and self.j < self.sent + self.aring
        self.x_offered = x is not None
        self.fires = tl.macro.step(t, None, x, y_ready, False)
        return offered

    def _choose(self):
        """A free sender starts a packet: a credit, else the next result if it may go."""
        from .chip_cycle import _Packet
        tl = self.tile
        if self.ack:
            tl.tx.packets.append(_Packet(CTRL, PacketType.ACK, []))
            self.kind = "a"
        elif self.xcred:
            tl.tx.packets.append(_Packet(self.src, PacketType.CREDIT, []))
            self.kind = "x"
        elif self.pcred:
            tl.tx.packets.append(_Packet(self.psrc, PacketType.CREDIT, []))
            self.kind = "p"
        elif self.sent < self.j:
            if not self.to_ctrl and self.credits[self.copy] == 0:
                tl.cnt[_C["credit_stall"]] += 1
                return
            v = self.sent
            ptype, words = result_words(tl.cfg, tl.data, v % self.aring, self.d)
            if ptype == PacketType.RESULT_S:
                words = [self.d["gaddr"] + v * self.d["gstep"]] + words
            tl.tx.packets.append(_Packet(self.dsts[self.copy], ptype, words))
            self.kind = "r"

    # --- the end of a cycle --------------------------------------------------------------------

    def cycle(self, t, rx_flits, tx_taken) -> str:
        """Apply cycle ``t``; the tile's next state (``stream`` or ``idle``)."""
        tl = self.tile
        cfg, cnt, data = tl.cfg, tl.cnt, tl.data
        cnt[_C["busy"]] += 1
        if self.tx_offered:
            if tx_taken is None:
                cnt[_C["tx_stall"]] += 1
            else:
                self._taken()
        self._compute()
        if self.rx == "exec":
            self._exec()
            self.rx = "idle"
        for flit in rx_flits:
            if self.busy_macro:
                cnt[_C["rx_overlap"]] += 1
            if self.rx == "idle":             # a header
                ty = tl.header_type(flit.data)
                if ty == PacketType.CREDIT:
                    self._credit(flit.data)
                elif ty in (PacketType.XS, PacketType.PS):
                    self.rx_type, self.words, self.rx = ty, [], "recv"
                else:
                    raise RuntimeError(f"tile {tl.pos}: packet type {ty} arrived during a standing sequence "
                                       "(only XS, PS and CREDIT may: the program breaks the rules of docs/isa.md)")
            else:
                self.words.append(flit.data)
                if flit.tail:
                    self.rx = "exec"
        if (self.sent == self.count and not self.ack and not self.xcred and not self.pcred and not tl.tx.busy
                and self.rx == "idle"):
            return "idle"
        return "stream"

    def _credit(self, word):
        """A credit from destination ``k`` (the first whose coordinates are the header's source)."""
        tl = self.tile
        h = unpack_header(tl.cfg, word)
        xb, yb = coord_bits(tl.cfg)           # a destination's coordinates as the header holds them
        for k, dst in enumerate(self.dsts):
            if dst != CTRL and (h["src_x"], h["src_y"]) == (dst[0] & ((1 << xb) - 1), dst[1] & ((1 << yb) - 1)):
                self.credits[k] += 1
                return
        raise RuntimeError(f"tile {tl.pos}: a credit from {h['src']}, which is not one of its destinations "
                           f"{self.dsts} (the program breaks the rules of docs/isa.md)")

    def _taken(self):
        tl = self.tile
        p, k = tl.tx.taken()
        if k < 0:
            if self.kind == "a":
                self.ack = False
            elif self.kind == "x":
                self.xcred -= 1
            elif self.kind == "p":
                self.pcred -= 1
            else:
                tl.cnt[_C["acc_read_bits"]] += tl.cfg.cols * tl.cfg.acc_bits
                if not self.to_ctrl:
                    self.credits[self.copy] -= 1
        if not tl.tx.busy and self.kind == "r":
            if self.copy + 1 < len(self.dsts):
                self.copy += 1            # the same result to the next destination
                return
            self.copy = 0
            v = self.sent
            self.sent += 1
            if self.d["join"] and v < self.count - self.aring:
                self.pcred += 1

    def _compute(self):
        tl = self.tile
        cfg, cnt = tl.cfg, tl.cnt
        _, xf, ev, _ = self.fires
        if xf:
            if self.ix < self.count - self.ring:
                self.xcred += 1
            self.ix += 1
            cnt[_C["macs"]] += cfg.rows * cfg.cols
            cnt[_C["mvms"]] += 1
            cnt[_C["ibuf_read_bits"]] += cfg.rows * cfg.xbits
        elif self.x_offered:
            cnt[_C["macro_stall"]] += 1
        if ev is not None:
            join = bool(self.d["join"])
            tl.data.accumulate(self.j % self.aring, ev.y, add=join)
            if join:
                cnt[_C["acc_read_bits"]] += cfg.cols * cfg.acc_bits
            cnt[_C["acc_write_bits"]] += cfg.cols * cfg.acc_bits
            self.j += 1

    def _exec(self):
        tl = self.tile
        cfg, cnt, W = tl.cfg, tl.cnt, tl.cfg.flit_width
        if self.rx_type == PacketType.XS:
            words = self.words + [0] * (cfg.words_x - len(self.words))
            tl.data.ibuf[self.wx % self.ring] = unpack_vector(words, cfg.rows, cfg.xbits, W)
            self.wx += 1
            cnt[_C["ibuf_write_bits"]] += cfg.rows * cfg.xbits
        else:
            words = self.words + [0] * (cfg.words_a - len(self.words))
            tl.data.accumulate(self.wp % self.aring, unpack_vector(words, cfg.cols, cfg.acc_bits, W), add=False)
            self.wp += 1
            cnt[_C["acc_write_bits"]] += cfg.cols * cfg.acc_bits
