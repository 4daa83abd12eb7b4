"""Cycle-exact model of the 2D-mesh network (routers, links, network interfaces).

This is the specification that ``rtl/noc`` is verified against; it is pure
Python. For any traffic (packets per source node, and the stall pattern of
every node's four streams) :meth:`MeshModel.run` predicts the cycle at which
each flit leaves each router and each packet's header and tail are delivered.

Formats (see docs/noc.md)
-------
* Header word, from the least significant bit: ``dest.x``, ``dest.y``,
  ``src.x``, ``src.y`` (each coordinate ``ceil_log2(mesh dim)`` bits, at least 1),
  ``type`` (4 bits), ``length`` (8 bits: payload words, 0..255).
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
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from .config import Config
from .macro import StallPattern, StreamSource

__all__ = ["HEADER_TYPE_BITS", "LENGTH_BITS", "N", "E", "S", "W", "L", "PORT_NAMES",
           "coord_bits", "xy_route", "Packet", "pack_header", "unpack_header", "MeshModel",
           "Delivery", "NodeStalls", "hop_count", "zero_load_latency", "header_source"]

HEADER_TYPE_BITS = 4
LENGTH_BITS = 8
N, E, S, W, L = range(5)
PORT_NAMES = "NESWL"
_OPP = {N: S, S: N, E: W, W: E}
_STEP = {N: (0, -1), S: (0, 1), E: (1, 0), W: (-1, 0)}


def coord_bits(cfg: Config) -> tuple[int, int]:
    """Bits of an x and a y coordinate."""
    return max(1, (cfg.mesh_x - 1).bit_length()), max(1, (cfg.mesh_y - 1).bit_length())


def header_bits(cfg: Config) -> int:
    xb, yb = coord_bits(cfg)
    return 2 * (xb + yb) + HEADER_TYPE_BITS + LENGTH_BITS


def xy_route(x: int, y: int, dx: int, dy: int) -> int:
    """The output port a flit for ``(dx, dy)`` takes at router ``(x, y)``."""
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
    """Router-to-router links on the XY path."""
    return abs(src[0] - dest[0]) + abs(src[1] - dest[1])


def zero_load_latency(src, dest, length: int, link_cuts: int = 0) -> tuple[int, int]:
    """(header, tail) delivery cycle after the header is offered, with no contention or stalls.

    The head flit spends one cycle in each of the ``hops + 1`` routers (and
    one per link cut); body flits follow one per cycle.
    """
    h = hop_count(src, dest)
    head = h + 1 + h * link_cuts
    return head, head + length


def pack_header(cfg: Config, dest, src, ptype: int, length: int) -> int:
    xb, yb = coord_bits(cfg)
    if not 0 <= length < (1 << LENGTH_BITS):
        raise ValueError(f"packet length {length} outside 0..{(1 << LENGTH_BITS) - 1}")
    if not 0 <= ptype < (1 << HEADER_TYPE_BITS):
        raise ValueError(f"packet type {ptype} outside 0..{(1 << HEADER_TYPE_BITS) - 1}")
    fields = [(dest[0], xb), (dest[1], yb), (src[0], xb), (src[1], yb),
              (ptype, HEADER_TYPE_BITS), (length, LENGTH_BITS)]
    word, pos = 0, 0
    for v, w in fields:
        word |= (int(v) & ((1 << w) - 1)) << pos
        pos += w
    return word


def unpack_header(cfg: Config, word: int) -> dict:
    xb, yb = coord_bits(cfg)
    out, pos = {}, 0
    for name, w in (("dest_x", xb), ("dest_y", yb), ("src_x", xb), ("src_y", yb),
                    ("type", HEADER_TYPE_BITS), ("length", LENGTH_BITS)):
        out[name] = (word >> pos) & ((1 << w) - 1)
        pos += w
    return out


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

        ``packets`` maps a source ``(x, y)`` to its packets in order; ``stalls``
        maps a node to its :class:`NodeStalls`. Returns ``(deliveries, cycles)``:
        deliveries in delivery order, and the cycle count.
        """
        cfg, D, cuts = self.cfg, self.cfg.noc_fifo_depth, self.link_cuts
        nodes = [(x, y) for y in range(cfg.mesh_y) for x in range(cfg.mesh_x)]
        stalls = stalls or {}
        st = {n: stalls.get(n, NodeStalls()) for n in nodes}
        for src, pkts in packets.items():
            for i, p in enumerate(pkts):
                if tuple(p.src) != tuple(src):
                    raise ValueError(f"packet {i} of node {src} says its source is {p.src}")
                if not (0 <= p.dest[0] < cfg.mesh_x and 0 <= p.dest[1] < cfg.mesh_y):
                    raise ValueError(f"packet {i} of node {src}: destination {p.dest} outside the mesh")
        hdr_src = {n: header_source(cfg, packets.get(n, []), st[n].tx_header) for n in nodes}
        pay_src = {n: StreamSource([w for p in packets.get(n, []) for w in p.payload], st[n].tx_payload)
                   for n in nodes}
        total = sum(len(v) for v in packets.values())
        fifo = {(n, p): deque() for n in nodes for p in range(5)}
        cut = {(n, o, k): deque() for n in nodes for o in range(4) for k in range(cuts)}
        locked = {(n, o): None for n in nodes for o in range(5)}      # owner input or None
        ptr = {(n, o): 0 for n in nodes for o in range(5)}
        tx_state = {n: [None, 0] for n in nodes}                        # current packet, words left
        inject = {}
        deliveries = []
        partial = {}
        self.hops = {} if self.record_hops else None
        t = 0
        while len(deliveries) < total:
            if until_cycle is not None and t >= until_cycle:
                break
            if t >= max_cycles:
                raise RuntimeError(f"mesh model: {len(deliveries)}/{total} packets delivered "
                                   f"after {max_cycles} cycles")
            # --- combinational view of cycle t -------------------------------------
            pops = []              # (fifo key)
            pushes = []            # (fifo key, flit)
            # NI transmit. Every source decides what it offers whether or not
            # the NI looks at it this cycle (as the test bench drives it).
            offers = {n: (hdr_src[n].offer(t), pay_src[n].offer(t)) for n in nodes}
            for n in nodes:
                pkt, left = tx_state[n]
                if pkt is None:
                    item = offers[n][0]
                    if item is not None and len(fifo[(n, L)]) < D:
                        p, word = item
                        f = _Flit(1, int(not p.payload), p.dest, word, p, 0)
                        pushes.append(((n, L), f))
                        hdr_src[n].taken()
                        inject[id(p)] = t
                        if p.payload:
                            tx_state[n] = [p, len(p.payload)]
                else:
                    w = offers[n][1]
                    if w is not None and len(fifo[(n, L)]) < D:
                        seq = len(pkt.payload) - left + 1
                        pushes.append(((n, L), _Flit(0, int(left == 1), pkt.dest, w, pkt, seq)))
                        pay_src[n].taken()
                        tx_state[n] = [None, 0] if left == 1 else [pkt, left - 1]
            # link cuts: the last stage feeds the router input, earlier stages the next one
            for (n, o, k), q in cut.items():
                if not q:
                    continue
                if k == cuts - 1:
                    dst = ((n[0] + _STEP[o][0], n[1] + _STEP[o][1]), _OPP[o])
                    ok = len(fifo[dst]) < D
                else:
                    dst = None
                    ok = len(cut[(n, o, k + 1)]) < 2
                if ok:
                    pops.append(("cut", (n, o, k)))
                    if dst is None:
                        pushes.append((("cut", (n, o, k + 1)), q[0]))
                    else:
                        pushes.append((dst, q[0]))
            # router outputs
            lock_updates = []
            for n in nodes:
                fronts = [fifo[(n, p)][0] if fifo[(n, p)] else None for p in range(5)]
                for o in range(5):
                    owner = locked[(n, o)]
                    if owner is not None:
                        src = owner
                        flit = fronts[owner]
                        if flit is None:
                            continue
                        grant = None
                    else:
                        grant = None
                        for k in range(5):
                            c = (ptr[(n, o)] + k) % 5
                            fc = fronts[c]
                            if fc is not None and fc.head and fc.route == o:
                                grant = c
                                break
                        if grant is None:
                            continue
                        src, flit = grant, fronts[grant]
                    # is the receiver ready?
                    if o == L:
                        sp = st[n].rx_header if flit.head else st[n].rx_payload
                        ready = not sp.paused(t)
                        dst = None
                    elif cuts:
                        dst = ("cut", (n, o, 0))
                        ready = len(cut[(n, o, 0)]) < 2
                    else:
                        dst = ((n[0] + _STEP[o][0], n[1] + _STEP[o][1]), _OPP[o])
                        ready = len(fifo[dst]) < D
                    fire = ready
                    if grant is not None:
                        lock_updates.append(((n, o), grant, not (fire and flit.tail)))
                    elif fire and flit.tail:
                        lock_updates.append(((n, o), None, False))
                    if not fire:
                        continue
                    pops.append((n, src))
                    if self.hops is not None:
                        self.hops.setdefault((id(flit.pkt), flit.seq), []).append((n, t))
                    if o == L:
                        self._deliver(flit, t, partial, deliveries, inject)
                    else:
                        pushes.append((dst, flit))
            # --- end of cycle t: registers ----------------------------------------
            for key in pops:
                if key[0] == "cut":
                    cut[key[1]].popleft()
                else:
                    fifo[key].popleft()
            for key, flit in pushes:
                if key[0] == "cut":
                    cut[key[1]].append(flit)
                else:
                    (node, port) = key
                    flit.route = xy_route(node[0], node[1], flit.dest[0], flit.dest[1])
                    fifo[key].append(flit)
            for key, grant, lock in lock_updates:
                if grant is not None:
                    ptr[key] = (grant + 1) % 5
                    locked[key] = grant if lock else None
                else:
                    locked[key] = None
            t += 1
        self.inject_cycles = inject
        return deliveries, t

    @staticmethod
    def _deliver(flit, t, partial, deliveries, inject):
        p = flit.pkt
        if flit.head:
            partial[id(p)] = [t, []]
        else:
            partial[id(p)][1].append(flit.data)
        if flit.tail:
            hc, words = partial.pop(id(p))
            deliveries.append(Delivery(p, inject[id(p)], hc, t, words))
