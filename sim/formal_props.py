"""Formal specs of the on-chip network blocks, for :func:`~.formal.run_formal`.

Each spec is an elaboratable holding the block under test, a free environment
(``AnySeq`` inputs, constrained by ``Assume`` to what the block may expect) and
the block's properties as ``Assert`` statements checked in every cycle.

* :class:`FIFOSpec`: :class:`~rramcim.rtl.noc.fifo.StreamFIFO`, written and
  read at random. Proved for all time by k-induction.
* :class:`RouterSpec`: :class:`~rramcim.rtl.noc.router.Router`, fed well-formed
  packets from neighbours that route XY. Checked for a bounded number of
  cycles (BMC).

Both show that no flit is lost, duplicated or reordered with one nondeterministic
tracked flit: the solver picks which flit to follow, so a property proved for
the followed flit holds for every flit.
"""

# AnyConst and AnySeq are public in amaranth.asserts only (Amaranth 0.5); the rest
# of that module is deprecated in favour of amaranth.hdl.
from amaranth.asserts import AnyConst, AnySeq
from amaranth.hdl import (Array, Assert, Assume, Cat, Elaboratable, Fragment, Module, Mux,
                          Shape, Signal, Value)

from .formal import internal_signals
from ..rtl.noc.flit import Port

__all__ = ["FIFOSpec", "RouterSpec", "xy_route"]


def _ring(v, depth):
    """``v`` mod ``depth`` for ``0 <= v < 2 * depth``: a pointer past the end of a ring."""
    return Mux(v >= depth, v - depth, v)


def _implies(a, b):
    return ~a | b


def xy_route(dest, x: int, y: int):
    """The output that dimension-order (XY) routing picks at router ``(x, y)`` for ``dest``.

    Written again here, from the routing rule, rather than taken from
    :class:`~rramcim.rtl.noc.route.RouteSelect`, so that the proof checks it.
    """
    return Mux(dest.x > x, Port.E,
           Mux(dest.x < x, Port.W,
           Mux(dest.y > y, Port.S,
           Mux(dest.y < y, Port.N, Port.L))))


class _FIFOState:
    """The internal state of a :class:`~rramcim.rtl.noc.fifo.StreamFIFO`.

    Parameters
    ----------
    fragment : Fragment
        The elaborated FIFO.
    depth : int
        Its depth.
    """

    def __init__(self, fragment, depth: int):
        sig = internal_signals(fragment, "wp", "rp", "level", *(f"entry{k}" for k in range(depth)))
        self.depth = depth
        self.wp, self.rp, self.level = sig["wp"], sig["rp"], sig["level"]
        self.slots = [sig[f"entry{k}"] for k in range(depth)]

    def entry(self, j):
        """The ``j``-th oldest stored entry (meaningful for ``j < level``)."""
        return Value.cast(Array(self.slots)[_ring(self.rp + j, self.depth)])

    def offset(self, k):
        """How many entries are older than the one in slot ``k`` (if it is in use)."""
        return _ring(k + self.depth - self.rp, self.depth)

    def invariants(self):
        """The pointers are inside the ring and ``level`` entries apart."""
        d = self.depth
        return [
            Assert(self.level <= d, "level exceeds depth"),
            # pointers are wider than the ring when depth is not a power of two
            Assert(self.rp < d, "rp outside the ring"),
            Assert(self.wp < d, "wp outside the ring"),
            Assert(self.wp == _ring(self.rp + self.level, d), "wp is not rp + level"),
        ]


class FIFOSpec(Elaboratable):
    """A stream FIFO, written and read at random, and its properties.

    The writer offers any payload at any time (it need not keep the stream
    rules: the FIFO must not rely on them) and the reader is ready at random.

    Properties
    ----------
    * ``level <= depth``; ``r.valid == (level != 0)``; ``w.ready == (level != depth)``.
    * The output keeps the stream rules: valid and payload hold until taken.
    * No loss, duplication or reordering. The solver may pick one written
      item to track (``AnySeq``, so any item, at any time); the spec records
      its data and the number of items ahead of it, less one per read. While
      tracked it is still stored (fewer items ahead than ``level``), and when
      none are ahead the FIFO shows exactly its data; the read that takes it
      ends the tracking. So every item leaves in write order, once: a lost
      item is missing from ``level``, and a duplicated one shows in the place
      of the item behind it.

    Auxiliary invariants (``invariants=True``, needed for k-induction): both
    pointers are inside the ring, the write pointer is ``level`` entries past
    the read pointer, and the tracked item's entry (``ahead`` past the read
    pointer) holds its data. They read the FIFO's internal ``wp``, ``rp`` and
    ``entry0..`` signals. With them the properties are 1-inductive.

    Parameters
    ----------
    fifo : wiring.Component
        A :class:`~rramcim.rtl.noc.fifo.StreamFIFO`, or anything with its
        members and ``depth`` / ``shape`` attributes.
    invariants : bool
        Assert the auxiliary invariants on the FIFO's internals.
    """

    def __init__(self, fifo, *, invariants: bool = True):
        self.fifo, self.invariants = fifo, invariants

    def elaborate(self, platform):
        m = Module()
        fifo = self.fifo
        d = fifo.depth
        width = Shape.cast(fifo.shape).width
        # Elaborated here so that the invariants can name its internals.
        design = Fragment.get(fifo, platform)
        m.submodules.fifo = design

        w, r, level = fifo.w, fifo.r, fifo.level
        m.d.comb += [
            w.valid.eq(AnySeq(1)),
            w.payload.eq(AnySeq(width)),
            r.ready.eq(AnySeq(1)),
        ]
        w_fire = w.valid & w.ready
        r_fire = r.valid & r.ready
        r_data = Value.cast(r.payload)

        m.d.comb += [
            Assert(level <= d, "level exceeds depth"),
            Assert(r.valid == (level != 0), "r.valid is not level != 0"),
            Assert(w.ready == (level != d), "w.ready is not level != depth"),
        ]

        # Output stream rules; the "previous cycle" is a register of our own.
        stalled = Signal()
        held = Signal(width)
        m.d.sync += [stalled.eq(r.valid & ~r.ready), held.eq(r_data)]
        with m.If(stalled):
            m.d.comb += Assert(r.valid & (r_data == held), "r dropped or changed before taken")

        # The tracked item.
        pick = AnySeq(1)
        tracking = Signal()    # written, not yet read
        done = Signal()        # read: one item is tracked per run
        t_data = Signal(width)
        ahead = Signal(range(d))
        with m.If(w_fire & pick & ~tracking & ~done):
            # w_fire implies level < depth; a read in this cycle takes one of those ahead
            m.d.sync += [tracking.eq(1), t_data.eq(w.payload), ahead.eq(level - r_fire)]
        with m.If(tracking):
            m.d.comb += Assert(ahead < level, "tracked item lost")
            with m.If(r.valid & (ahead == 0)):
                m.d.comb += Assert(r_data == t_data, "tracked item out of order or corrupted")
            with m.If(r_fire):
                with m.If(ahead == 0):
                    m.d.sync += [tracking.eq(0), done.eq(1)]
                with m.Else():
                    m.d.sync += ahead.eq(ahead - 1)

        if self.invariants:
            state = _FIFOState(design, d)
            m.d.comb += state.invariants()
            with m.If(tracking):
                m.d.comb += Assert(state.entry(ahead) == t_data, "tracked item's entry overwritten")
        return m


class RouterSpec(Elaboratable):
    """A router among neighbours that send well-formed XY-routed packets.

    Environment (assumed)
    ---------------------
    * Every input keeps the stream rules: valid and payload hold until taken.
    * Packets on each input are well formed: the first flit is a head flit,
      the last a tail flit, no head flit inside a packet, ``dest`` the same
      in every flit of a packet, at most ``max_packet`` flits.
    * ``dest`` is inside the mesh; flits from inputs N and S have
      ``dest.x`` equal to this router's x (upstream routers finished X first).
    * Output readies are free.

    Properties
    ----------
    a. No flit lost, duplicated or reordered, per pair (input ``i``, output
       ``o``). The solver picks ``i*``, ``o*`` and ``n*`` (``AnyConst``); the
       spec counts flits entering ``i*`` that XY routing sends to ``o*`` and
       flits leaving ``o*`` with ``o_src == i*``, records the ``n*``-th of
       the first kind and asserts that the ``n*``-th of the second equals it
       (head, tail, dest, data). Out-count never exceeds in-count.
    b. Every output keeps the stream rules: valid, payload (and ``o_src``)
       hold until taken.
    c. Wormhole: on each output, the flits after a head flit up to its tail
       come from the head's input and are not head flits; a flit outside a
       packet is a head flit.
    d. XY: every flit leaves on the output that XY routing picks for its
       ``dest`` (so none from input N or S turns to E or W; that is also
       asserted directly).

    Lemmas (``lemmas=True``)
    ------------------------
    Invariants of the router's internal state, asserted (so proved) like the
    properties. They are there for speed: after checking a cycle, the bounded
    checker keeps that cycle's assertions as facts, so the solver need not
    rediscover at every cycle why, say, a FIFO entry from input N never
    routes east. Without them z3 needs minutes for 6 cycles. They state:
    each input FIFO's pointers agree with its level; its entries form
    well-formed packets continuing the input's packet state; an output is
    locked to an input exactly when that input's packet is under way there
    (or its head flit is shown there); for the tracked pair, the flits
    in-count minus out-count are the FIFO's entries bound for ``o*``, and the
    recorded flit is the right one of them.

    Parameters
    ----------
    router : Router
        The router under test (narrow ``data_width`` keeps proofs fast).
    max_packet : int
        Longest packet in flits.
    bound : int
        Cycles the check will run; sizes the counters and the range of ``n*``.
    lemmas : bool
        Assert the lemmas.
    """

    def __init__(self, router, *, max_packet: int = 8, bound: int = 16, lemmas: bool = True):
        if not isinstance(max_packet, int) or max_packet < 1:
            raise TypeError(f"max_packet must be a positive integer, not {max_packet!r}")
        if not isinstance(bound, int) or bound < 1:
            raise TypeError(f"bound must be a positive integer, not {bound!r}")
        self.router, self.max_packet, self.bound, self.lemmas = router, max_packet, bound, lemmas

    def elaborate(self, platform):
        m = Module()
        rt = self.router
        cfg, x, y = rt.cfg, rt.x, rt.y
        # Elaborated here so that the lemmas can name its internals.
        design = Fragment.get(rt, platform)
        m.submodules.router = design
        width = rt.layout.size
        dest_shape = rt.layout["dest"].shape
        ports = list(Port)

        # ---- environment
        in_packet, packet_dest = {}, {}
        for p in ports:
            i = rt.i[p.value]
            flit = i.payload
            m.d.comb += [i.valid.eq(AnySeq(1)), i.payload.eq(AnySeq(width))]
            fire = i.valid & i.ready

            stalled = Signal(name=f"in_stalled_{p.name}")
            held = Signal(width, name=f"in_held_{p.name}")
            m.d.sync += [stalled.eq(i.valid & ~i.ready), held.eq(flit)]
            with m.If(stalled):
                m.d.comb += Assume(i.valid & (Value.cast(flit) == held))

            # the packet under way on this input: its dest and the flits taken
            in_packet[p] = Signal(name=f"in_packet_{p.name}")
            packet_dest[p] = Signal(dest_shape, name=f"in_dest_{p.name}")
            count = Signal(range(self.max_packet + 1), name=f"in_count_{p.name}")
            with m.If(i.valid):
                m.d.comb += [Assume(rule) for rule in self._dest_rules(p, flit.dest)]
                with m.If(in_packet[p]):
                    m.d.comb += [Assume(~flit.head),
                                 Assume(flit.dest.as_value() == packet_dest[p].as_value())]
                    with m.If(count == self.max_packet - 1):
                        m.d.comb += Assume(flit.tail)
                with m.Else():
                    m.d.comb += Assume(flit.head)
                    if self.max_packet == 1:
                        m.d.comb += Assume(flit.tail)
            with m.If(fire):
                m.d.sync += [in_packet[p].eq(~flit.tail), packet_dest[p].eq(flit.dest)]
                m.d.sync += count.eq(Mux(flit.head, 1, count + 1))

        for q in ports:
            m.d.comb += rt.o[q.value].ready.eq(AnySeq(1))

        # ---- a. no loss, duplication, reordering per input
        i_sel = AnyConst(range(len(ports)))
        n_sel = AnyConst(range(self.bound))
        m.d.comb += Assume(i_sel < len(ports))
        sel_in_fire = Signal()
        sel_in_flit = Signal(width)
        with m.Switch(i_sel):
            for p in ports:
                with m.Case(p.value):
                    i = rt.i[p.value]
                    m.d.comb += [sel_in_fire.eq(i.valid & i.ready), sel_in_flit.eq(i.payload)]
        out_fires = [rt.o[q.value].valid & rt.o[q.value].ready & (rt.o_src[q.value] == i_sel)
                     for q in ports]
        sel_out_fire = Cat(*out_fires).any()
        sel_out_flit = Signal(width)
        for q in ports:
            with m.If(out_fires[q.value]):
                m.d.comb += sel_out_flit.eq(rt.o[q.value].payload)
        m.d.comb += Assert(sum(out_fires) <= 1, "one flit out on two outputs")
        n_in = Signal(range(self.bound + 1))
        n_out = Signal(range(self.bound + 1))
        recorded = Signal()
        record = Signal(width)
        # Both counts stop one past n*: later flits are another n*'s business, and
        # bounded counters let k-induction start from any state without wrapping.
        with m.If(sel_in_fire & (n_in <= n_sel)):
            m.d.sync += n_in.eq(n_in + 1)
            with m.If(n_in == n_sel):
                m.d.sync += [recorded.eq(1), record.eq(sel_in_flit)]
        m.d.comb += Assert(n_out <= n_in, "more flits out than in")
        with m.If(sel_out_fire & (n_out <= n_sel)):
            m.d.sync += n_out.eq(n_out + 1)
            m.d.comb += Assert(n_out < n_in, "flit out that never came in")
            with m.If(n_out == n_sel):
                m.d.comb += Assert(recorded & (sel_out_flit == record),
                                   "n-th flit out is not the n-th flit in")

        out_packet, out_owner = {}, {}
        for q in ports:
            o = rt.o[q.value]
            src = rt.o_src[q.value]
            flit = o.payload
            fire = o.valid & o.ready

            # ---- b. output stream rules
            stalled = Signal(name=f"out_stalled_{q.name}")
            held = Signal(width, name=f"out_held_{q.name}")
            held_src = Signal.like(src, name=f"out_held_src_{q.name}")
            m.d.sync += [stalled.eq(o.valid & ~o.ready), held.eq(flit), held_src.eq(src)]
            with m.If(stalled):
                m.d.comb += Assert(o.valid & (Value.cast(flit) == held) & (src == held_src),
                                   "output dropped or changed before taken")

            # ---- c. wormhole
            out_packet[q] = Signal(name=f"out_packet_{q.name}")    # head taken, tail not yet
            out_owner[q] = Signal.like(src, name=f"out_owner_{q.name}")
            with m.If(fire):
                with m.If(out_packet[q]):
                    m.d.comb += Assert(~flit.head & (src == out_owner[q]), "packets interleaved")
                with m.Else():
                    m.d.comb += Assert(flit.head, "body flit outside a packet")
                with m.If(flit.tail):
                    m.d.sync += out_packet[q].eq(0)
                with m.Elif(flit.head):
                    m.d.sync += [out_packet[q].eq(1), out_owner[q].eq(src)]

            # ---- d. XY routing
            with m.If(o.valid):
                m.d.comb += Assert(src < len(ports), "o_src is not a port")
            with m.If(fire):
                m.d.comb += Assert(xy_route(flit.dest, x, y) == q, "flit left on the wrong output")
                if q in (Port.E, Port.W):
                    m.d.comb += Assert((src != Port.N) & (src != Port.S), "flit turned from Y to X")

        if self.lemmas:
            self._lemmas(m, design, in_packet, packet_dest, out_packet, out_owner,
                         i_sel, n_sel, n_in, n_out, recorded, record)
        return m

    def _dest_rules(self, port, dest):
        """``dest`` is inside the mesh, and N/S inputs carry only flits that finished X."""
        cfg, x = self.router.cfg, self.router.x
        rules = [dest.x < cfg.mesh_x, dest.y < cfg.mesh_y]
        if port in (Port.N, Port.S):
            rules.append(dest.x == x)
        return rules

    def _lemmas(self, m, design, in_packet, packet_dest, out_packet, out_owner,
                i_sel, n_sel, n_in, n_out, recorded, record):
        # Stated slot by slot (FIFO entries at fixed places) rather than in
        # queue order: that needs no multiplexers, which keeps the model small.
        rt = self.router
        x, y = rt.x, rt.y
        d = rt.cfg.noc_fifo_depth
        ports = list(Port)
        names = [f"locked_{q.name}" for q in ports] + [f"owner_{q.name}" for q in ports]
        lock = internal_signals(design, *names)
        locked = {q: lock[f"locked_{q.name}"] for q in ports}
        owner = {q: lock[f"owner_{q.name}"] for q in ports}

        for q in ports:
            ptr = internal_signals(design.find_subfragment(f"arb_{q.name}"), "ptr")["ptr"]
            m.d.comb += [
                Assert(ptr < len(ports), "lemma: arbiter pointer is not a port"),
                Assert(_implies(locked[q], owner[q] < len(ports)), "lemma: owner is not a port"),
                Assert(_implies(out_packet[q], locked[q] & (owner[q] == out_owner[q])),
                       "lemma: packet under way on an unlocked output"),
            ]

        levels = {}
        for p in ports:
            fifo = _FIFOState(design.find_subfragment(f"fifo_{p.name}"), d)
            level, rp, wp = fifo.level, fifo.rp, fifo.wp
            m.d.comb += fifo.invariants()
            slot = [rt.layout(fifo.slots[k]) for k in range(d)]
            offset = [fifo.offset(k) for k in range(d)]
            used = [offset[k] < level for k in range(d)]
            route = [xy_route(slot[k].dest, x, y) for k in range(d)]

            well_formed = []
            for k in range(d):
                well_formed += [_implies(used[k], rule) for rule in self._dest_rules(p, slot[k].dest)]
                # the entry after this one: a head exactly after a tail, a body keeps the dest
                nk = (k + 1) % d
                if d > 1:
                    follows = used[k] & used[nk] & (rp != nk)
                    well_formed += [
                        _implies(follows, slot[nk].head == slot[k].tail),
                        _implies(follows & ~slot[nk].head,
                                 slot[nk].dest.as_value() == slot[k].dest.as_value()),
                    ]
                # the newest entry leads into the input's packet state
                newest = (level != 0) & (wp == nk)
                well_formed += [
                    _implies(newest, in_packet[p] == ~slot[k].tail),
                    _implies(newest & in_packet[p],
                             packet_dest[p].as_value() == slot[k].dest.as_value()),
                ]
            m.d.comb += Assert(Cat(*well_formed).all(), "lemma: FIFO holds malformed packets")

            # Is a packet from p under way (head gone, tail not), and to where?
            front_head = Signal(name=f"front_head_{p.name}")
            front_route = Signal(3, name=f"front_route_{p.name}")
            with m.Switch(rp):
                for k in range(d):
                    with m.Case(k):
                        m.d.comb += [front_head.eq(slot[k].head), front_route.eq(route[k])]
            under_way = Mux(level == 0, in_packet[p], ~front_head)
            under_way_to = Mux(level == 0, xy_route(packet_dest[p], x, y), front_route)
            for q in ports:
                mine = locked[q] & (owner[q] == p)
                m.d.comb += [
                    Assert(_implies(under_way & (under_way_to == q), mine & out_packet[q]),
                           "lemma: packet under way without its output"),
                    Assert(_implies(mine & out_packet[q], under_way & (under_way_to == q)),
                           "lemma: output locked to an input with no packet under way"),
                    Assert(_implies(mine & ~out_packet[q],
                                    (level != 0) & front_head & (front_route == q)),
                           "lemma: output locked without its head flit"),
                ]

            # The tracked input: its FIFO holds the flits counted in but not out,
            # the recorded one (n* - out-count) entries from the front.
            levels[p] = level
            for k in range(d):
                is_record = (i_sel == p) & recorded & (n_out <= n_sel) & (offset[k] == n_sel - n_out)
                m.d.comb += Assert(_implies(is_record, Value.cast(slot[k]) == record),
                                   "lemma: recorded flit not in FIFO")

        pending_sel = Signal(range(d + 1))
        with m.Switch(i_sel):
            for p in ports:
                with m.Case(p.value):
                    m.d.comb += pending_sel.eq(levels[p])
        m.d.comb += [
            Assert(n_in <= n_sel + 1, "lemma: in-count past its stop"),
            Assert(Mux(n_in > n_sel, n_in <= n_out + pending_sel, n_in == n_out + pending_sel),
                   "lemma: in-count is not out-count plus pending"),
            Assert(recorded == (n_in > n_sel), "lemma: record taken at the wrong count"),
        ]
