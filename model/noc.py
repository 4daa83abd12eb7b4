"""Cycle-exact model of the 2D-mesh network (routers, links, network interfaces).

This is the specification that ``rtl/noc`` is verified against; it is pure
Python. For any traffic (packets per source node, and the stall pattern of
every node's four streams) :meth:`MeshModel.run` predicts the cycle at which
each flit leaves each router and each packet's header and tail are delivered.

Formats (see docs/noc.md)
-------
* Header word, from the least significant bit: ``dest`` and ``src`` (each
  ``x``, ``y``: ``ceil_log2(mesh dim)`` bits, at least 1, and ``ctrl``: 1 bit,
  set for the controller), ``type`` (4 bits), ``length`` (8 bits: payload
  words, 0..255).
* A packet is its header then ``length`` payload words; on the wire one flit
  per word; the head flit carries the header, the last flit is the tail.
  Every flit also carries ``dest``.

Micro-architecture (the same as the RTL, cycle for cycle)
-------
* NI transmit: combinational; a header offered in cycle ``t`` is a head flit
  in cycle ``t``; then ``length`` payload words become body flits.
* Router inputs: FIFOs of ``noc_fifo_depth``; ready = not full at the start of
  the cycle; a flit written in cycle ``t`` is at the front from ``t+1``.
* Router outputs: free or locked to one input. A free output grants the first
  requesting input (its front flit is a head flit routed here by XY) at or
  after its round-robin pointer; the pointer moves past the grant; unless the
  shown flit is a tail taken in that cycle, the output locks to that input
  until its tail flit is taken. A locked output is valid while its input FIFO
  is not empty.
* Links: ``link_cuts`` two-entry FIFOs between routers (0: a wire).
* NI receive: combinational; a head flit goes to ``rx_header``, others to
  ``rx_payload``; each waits for its own sink's ready.
* The controller (:data:`CTRL`) is a node off the mesh: its NI feeds router
  (0, 0)'s west input and is fed by its north output (no link cuts there).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from .config import Config
from .encoding import CTRL, header_bits, pack_header
from .macro import StallPattern, StreamSource

__all__ = ["N", "E", "S", "W", "L", "PORT_NAMES", "mesh_nodes", "MeshCore", "TxHeader", "xy_route", "Packet",
           "MeshModel", "Delivery", "NodeStalls", "hop_count", "zero_load_latency", "header_source"]

N, E, S, W, L = range(5)
PORT_NAMES = "NESWL"
_OPP = {N: S, S: N, E: W, W: E}
_STEP = {N: (0, -1), S: (0, 1), E: (1, 0), W: (-1, 0)}


def mesh_nodes(cfg: Config) -> list:
    """Every node: the tiles' ``(x, y)`` in row order, then :data:`CTRL`."""
    return [(x, y) for y in range(cfg.mesh_y) for x in range(cfg.mesh_x)] + [CTRL]


def _node(n):
    return CTRL if n == CTRL else tuple(n)


def xy_route(x: int, y: int, dest) -> int:
    """The output port a flit for ``dest`` (``(x, y)`` or :data:`CTRL`) takes at router ``(x, y)``."""
    if dest == CTRL:
        return W if x > 0 else N
    dx, dy = dest
    if dx > x:
        return E
    if dx < x:
        return W
    if dy > y:
        return S
    if dy < y:
        return N
    return L


def hop_count(src, dest) -> int:
    """Router-to-router links on the XY path (the controller's link to router (0, 0) is not one)."""
    src = (0, 0) if src == CTRL else src
    dest = (0, 0) if dest == CTRL else dest
    return abs(src[0] - dest[0]) + abs(src[1] - dest[1])


def zero_load_latency(src, dest, length: int, link_cuts: int = 0) -> tuple[int, int]:
    """(header, tail) delivery cycle after the header is offered, with no contention or stalls.

    The head flit spends one cycle in each of the ``hops + 1`` routers (and
    one per link cut); body flits follow one per cycle.
    """
    h = hop_count(src, dest)
    head = h + 1 + h * link_cuts
    return head, head + length


@dataclass
class Packet:
    src: tuple
    dest: tuple
    ptype: int
    payload: list
    index: int = 0          # position in its source's sequence
    release: int = 0        # first cycle its source may offer it (open-loop traffic)

    def header(self, cfg: Config) -> int:
        return pack_header(cfg, self.dest, self.src, self.ptype, len(self.payload))


def header_source(cfg: Config, packets, stall: StallPattern) -> StreamSource:
    """A node's header stream: ``(packet, header word)`` items, each not before its release cycle."""
    return StreamSource([(p, p.header(cfg)) for p in packets], stall, [p.release for p in packets])


@dataclass
class NodeStalls:
    """The four stall patterns of one node: idle on its two sources, backpressure on its two sinks."""

    tx_header: StallPattern = field(default_factory=StallPattern.none)
    tx_payload: StallPattern = field(default_factory=StallPattern.none)
    rx_header: StallPattern = field(default_factory=StallPattern.none)
    rx_payload: StallPattern = field(default_factory=StallPattern.none)


@dataclass
class Delivery:
    packet: Packet
    inject_cycle: int        # header taken by the source NI
    header_cycle: int        # header delivered at the destination
    tail_cycle: int          # last word delivered (== header_cycle without payload)
    payload: list


class _Flit:
    __slots__ = ("head", "tail", "dest", "data", "pkt", "seq", "route")

    def __init__(self, head, tail, dest, data, pkt, seq):
        self.head, self.tail, self.dest, self.data, self.pkt, self.seq = head, tail, dest, data, pkt, seq
        self.route = None


@dataclass
class TxHeader:
    """A header offered by a node: its destination, the header word and a tag carried to delivery."""

    dest: tuple
    word: int
    length: int
    tag: object = None


class MeshCore:
    """The mesh's state and one cycle of it, for a simulation that decides its offers cycle by cycle.

    :class:`MeshModel` drives it from pre-drawn streams; the chip model drives
    it from its tiles and controller. Each cycle, a node offers a header
    (:class:`TxHeader`) and/or a payload word and says whether it takes a
    header and a payload word; :meth:`step` returns what was taken and what
    was delivered, and moves the network to the next cycle.
    """

    def __init__(self, cfg: Config, link_cuts: int = 0, record_hops: bool = False):
        self.cfg, self.link_cuts = cfg, link_cuts
        hb = header_bits(cfg)
        if hb > cfg.flit_width:
            raise ValueError(f"flit_width {cfg.flit_width} cannot hold a {hb}-bit header")
        self.nodes = mesh_nodes(cfg)
        self.fifo = {(n, p): deque() for n in self.grid() for p in range(5)}
        self.cut = {(n, o, k): deque() for n in self.grid() for o in range(4) for k in range(link_cuts)}
        self.tx_state = {n: [None, 0] for n in self.nodes}         # header being sent, words left
        self.hops = {} if record_hops else None
        self.flits_in_network = 0
        # Wiring resolved once, so that a cycle only follows references:
        # a node's NI entry (queue, router that computes the route there) ...
        self._entries = {}
        for n in self.nodes:
            r = (0, 0) if n == CTRL else n
            self._entries[n] = (self.fifo[(r, W if n == CTRL else L)], r)
        # ... each router's input queues, output locks and round-robin pointers, and where each
        # output goes: (0, sink node) to an NI, (1, queue, router) to a neighbour's input FIFO,
        # (2, queue, None) to a link cut.
        self._routers = []
        for n in self.grid():
            outs = []
            for o in range(5):
                sink = n if o == L else (CTRL if (o == N and n == (0, 0)) else None)
                if sink is not None:
                    outs.append((0, sink, None))
                elif link_cuts:
                    outs.append((2, self.cut[(n, o, 0)], None))
                else:
                    nb = (n[0] + _STEP[o][0], n[1] + _STEP[o][1])
                    outs.append((1, self.fifo.get((nb, _OPP[o])), nb))     # None off the mesh: XY never goes there
            # (node, input FIFOs, each output's owner input or None, round-robin pointers, outputs,
            #  each input's locked output or -1)
            self._routers.append((n, [self.fifo[(n, p)] for p in range(5)], [None] * 5, [0] * 5, outs, [-1] * 5))
        # link cut stages: (queue, next queue, its capacity, router of the next FIFO or None)
        self._cuts = []
        for (n, o, k), q in self.cut.items():
            if k == link_cuts - 1:
                nb = (n[0] + _STEP[o][0], n[1] + _STEP[o][1])
                self._cuts.append((q, self.fifo[(nb, _OPP[o])], cfg.noc_fifo_depth, nb))
            else:
                self._cuts.append((q, self.cut[(n, o, k + 1)], 2, None))

    def grid(self):
        return [n for n in self.nodes if n != CTRL]

    def idle(self) -> bool:
        """No flit in the network and no packet half sent."""
        return self.flits_in_network == 0 and all(v[0] is None for v in self.tx_state.values())

    def step(self, t: int, offers: dict, rx_ready) -> tuple[dict, list, int]:
        """Simulate cycle ``t``.

        ``offers`` maps a node to ``(header or None, payload word or None)``;
        ``rx_ready(node, is_head)`` says whether the node takes a delivered
        flit of that kind this cycle. Returns ``(taken, delivered, hops)``:
        taken maps a node to ``"header"`` or ``"payload"``; delivered is a list
        of ``(node, flit)`` (flit: ``head``, ``tail``, ``data``, ``pkt`` = the
        header's tag, ``seq``); hops counts flits that crossed a
        router-to-router link.

        Every decision reads the state at the start of the cycle (FIFO
        fill levels, fronts); pops and pushes take effect at its end. A lock
        or pointer is read and written only by its own output, once a cycle,
        so it is updated in place.
        """
        D = self.cfg.noc_fifo_depth
        tx_state, entries = self.tx_state, self._entries
        pops, pushes, taken, delivered = [], [], {}, []
        hops = 0
        for n, (hdr, word) in offers.items():
            if hdr is None and word is None:
                continue
            q, r = entries[n]
            if len(q) >= D:
                continue
            pkt, left = tx_state[n]
            if pkt is None:
                if hdr is not None:
                    pushes.append((q, r, _Flit(1, int(hdr.length == 0), hdr.dest, hdr.word, hdr, 0)))
                    taken[n] = "header"
                    if hdr.length:
                        tx_state[n] = [hdr, hdr.length]
            elif word is not None:
                pushes.append((q, r, _Flit(0, int(left == 1), pkt.dest, word, pkt, pkt.length - left + 1)))
                taken[n] = "payload"
                tx_state[n] = [None, 0] if left == 1 else [pkt, left - 1]
        for q, nq, cap, r in self._cuts:
            if q and len(nq) < cap:
                pops.append(q)
                pushes.append((nq, r, q[0]))
        record = self.hops
        for n, qs, locked, ptr, outs, owns in self._routers:
            q0, q1, q2, q3, q4 = qs
            if not (q0 or q1 or q2 or q3 or q4):
                continue
            # Inputs with a front flit: an output's owner offers it there; a head flit asks for
            # the output XY routes it to, if that output is free (on the locks at the start of
            # the cycle); a free output grants the first asking input at or after its pointer.
            moves = []                  # (input, output, flit, granted now)
            asks = None
            for i in range(5):
                q = qs[i]
                if not q:
                    continue
                flit = q[0]
                o = owns[i]
                if o >= 0:
                    moves.append((i, o, flit, False))
                elif flit.head and locked[flit.route] is None:
                    if asks is None:
                        asks = {}
                    asks.setdefault(flit.route, []).append(i)
            if asks is not None:
                for o, ins in asks.items():
                    p = ptr[o]
                    i = ins[0]
                    for c in ins:
                        if c >= p:
                            i = c
                            break
                    moves.append((i, o, qs[i][0], True))
            for i, o, flit, granted in moves:
                kind, target, r = outs[o]
                if kind == 0:
                    ready = rx_ready(target, bool(flit.head))
                else:
                    ready = len(target) < (D if kind == 1 else 2)
                if granted:
                    ptr[o] = i + 1 if i < 4 else 0
                    if not (ready and flit.tail):
                        locked[o], owns[i] = i, o
                elif ready and flit.tail:
                    locked[o], owns[i] = None, -1
                if not ready:
                    continue
                pops.append(qs[i])
                if record is not None:
                    record.setdefault((id(flit.pkt), flit.seq), []).append((n, t))
                if kind == 0:
                    delivered.append((target, flit))
                else:
                    hops += 1
                    pushes.append((target, r, flit))
        # --- end of cycle t: registers ---------------------------------------------
        for q in pops:
            q.popleft()
        for q, r, flit in pushes:
            if r is not None and flit.head:         # only a head flit asks for an output
                flit.route = xy_route(r[0], r[1], flit.dest)
            q.append(flit)
        self.flits_in_network += len(taken) - len(delivered)
        return taken, delivered, hops


class MeshModel:
    """Cycle-exact model of :class:`rramcim.rtl.noc.mesh.Mesh`.

    Parameters
    ----------
    cfg : Config
    link_cuts : int
        Register stages per router-to-router link.
    record_hops : bool
        Keep, for every flit, the cycle it left each router (``hops``).
    """

    def __init__(self, cfg: Config, link_cuts: int = 0, record_hops: bool = False):
        self.cfg, self.link_cuts, self.record_hops = cfg, link_cuts, record_hops
        hb = header_bits(cfg)
        if hb > cfg.flit_width:
            raise ValueError(f"flit_width {cfg.flit_width} cannot hold a {hb}-bit header")

    def run(self, packets: dict, stalls: dict | None = None, max_cycles: int = 10_000_000,
            until_cycle: int | None = None):
        """Simulate until every packet is delivered (or ``until_cycle``).

        ``packets`` maps a source node (``(x, y)`` or :data:`CTRL`) to its
        packets in order; ``stalls`` maps a node to its :class:`NodeStalls`.
        Returns ``(deliveries, cycles)``: deliveries in delivery order, and the
        cycle count.
        """
        cfg = self.cfg
        core = MeshCore(cfg, self.link_cuts, self.record_hops)
        nodes = core.nodes
        stalls = stalls or {}
        st = {n: stalls.get(n, NodeStalls()) for n in nodes}
        for src, pkts in packets.items():
            if src not in nodes:
                raise ValueError(f"source {src} is not a node of the {cfg.mesh_x}x{cfg.mesh_y} mesh")
            for i, p in enumerate(pkts):
                if _node(p.src) != src:
                    raise ValueError(f"packet {i} of node {src} says its source is {p.src}")
                if _node(p.dest) not in nodes:
                    raise ValueError(f"packet {i} of node {src}: destination {p.dest} outside the mesh")
        hdr_src = {n: header_source(cfg, packets.get(n, []), st[n].tx_header) for n in nodes}
        pay_src = {n: StreamSource([w for p in packets.get(n, []) for w in p.payload], st[n].tx_payload)
                   for n in nodes}
        total = sum(len(v) for v in packets.values())
        inject, deliveries, partial = {}, [], {}

        def rx_ready(node, head):
            return not (st[node].rx_header if head else st[node].rx_payload).paused(t)

        t = 0
        while len(deliveries) < total:
            if until_cycle is not None and t >= until_cycle:
                break
            if t >= max_cycles:
                raise RuntimeError(f"mesh model: {len(deliveries)}/{total} packets delivered "
                                   f"after {max_cycles} cycles")
            # Every source decides what it offers whether or not the NI looks
            # at it this cycle (as the test bench drives it).
            offers = {}
            for n in nodes:
                item, word = hdr_src[n].offer(t), pay_src[n].offer(t)
                hdr = None
                if item is not None:
                    p, hw = item
                    hdr = TxHeader(_node(p.dest), hw, len(p.payload), p)
                offers[n] = (hdr, word)
            taken, delivered, _ = core.step(t, offers, rx_ready)
            for n, kind in taken.items():
                if kind == "header":
                    hdr_src[n].taken()
                    inject[id(offers[n][0].tag)] = t
                else:
                    pay_src[n].taken()
            for _, flit in delivered:
                self._deliver(flit, t, partial, deliveries, inject)
            t += 1
        self.inject_cycles = inject
        self.hops = core.hops
        return deliveries, t

    @staticmethod
    def _deliver(flit, t, partial, deliveries, inject):
        p = flit.pkt.tag
        if flit.head:
            partial[id(p)] = [t, []]
        else:
            partial[id(p)][1].append(flit.data)
        if flit.tail:
            hc, words = partial.pop(id(p))
            deliveries.append(Delivery(p, inject[id(p)], hc, t, words))
