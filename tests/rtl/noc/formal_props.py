"""Formal specs of the on-chip network blocks, for :func:`~.formal.run_formal`.

Each spec is an elaboratable holding the block under test, a free environment
(``AnySeq`` inputs, constrained by ``Assume`` to what the block may expect) and
the block's properties as ``Assert`` statements checked in every cycle.

* :class:`FIFOSpec`: :class:`~rramcim.rtl.noc.fifo.StreamFIFO`, written and
  read at random.
* :class:`RouterSpec`: :class:`~rramcim.rtl.noc.router.Router`, fed well-formed
  packets by neighbours that route XY.

Both come with invariants of the block's internal state, which make the
properties inductive: k-induction proves them for all time (``mode="prove"``),
and they also speed up bounded checks (``mode="bmc"``). Both show that no
flit is lost, duplicated or reordered by following one flit that the solver
picks: a property proved for the followed flit holds for every flit.

Each spec can also carry ``Cover`` statements (``covers=True``), for
``mode="cover"``: traces that reach them show that the environment lets
the interesting cases happen, so that the proofs are not vacuous.
"""

# AnyConst and AnySeq are public in amaranth.asserts only (Amaranth 0.5); the rest
# of that module is deprecated in favour of amaranth.hdl.
from amaranth.asserts import AnyConst, AnySeq
from amaranth.hdl import (Array, Assert, Assume, Cat, Cover, Elaboratable, Fragment, Module,
                          Mux, Shape, Signal, Value)

from rramcim.sim.tools.formal import internal_signals
from rramcim.rtl.noc.flit import Port

__all__ = ["FIFOSpec", "RouterSpec", "xy_route"]


def _ring(v, depth):
    """``v`` mod ``depth`` for ``0 <= v < 2 * depth``: a pointer past the end of a ring."""
    return Mux(v >= depth, v - depth, v)


def _implies(a, b):
    return ~a | b


def xy_route(dest, x: int, y: int):
    """The output that dimension-order (XY) routing picks at router ``(x, y)`` for ``dest``.

    Written again here from the routing rule, rather than taken from
    :class:`~rramcim.rtl.noc.route.RouteSelect`, so that the proof checks it.
    """
    return Mux(dest.ctrl, Port.W if x > 0 else Port.N,       # the controller, as if at (0, -1)
           Mux(dest.x > x, Port.E,
           Mux(dest.x < x, Port.W,
           Mux(dest.y > y, Port.S,
           Mux(dest.y < y, Port.N, Port.L)))))


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
      item to track (``AnySeq``: any item, at any time); the spec records
      its data and the number of items ahead of it, less one per read. While
      tracked it is still stored (fewer items ahead than ``level``); when
      none is ahead the FIFO shows exactly its data, and the read that takes
      it ends the tracking. So every item leaves in write order, once: a lost
      item is missing from ``level``, and a duplicate shows in the place of
      the item behind it.

    Invariants (``invariants=True``, needed for k-induction): both pointers
    are inside the ring, the write pointer is ``level`` entries past the read
    pointer, and the tracked item's entry holds its data. They read the
    FIFO's internal ``wp``, ``rp`` and ``entry0..`` signals. With them the
    properties are 1-inductive.

    Parameters
    ----------
    fifo : wiring.Component
        A :class:`~rramcim.rtl.noc.fifo.StreamFIFO`, or anything with its
        members and ``depth`` / ``shape`` attributes.
    invariants : bool
        Assert the invariants on the FIFO's internals.
    covers : bool
        Add covers: the FIFO full, and an item read after waiting behind
        ``depth - 1`` others while the reader stalled.
    """

    def __init__(self, fifo, *, invariants: bool = True, covers: bool = False):
        self.fifo, self.invariants, self.covers = fifo, invariants, covers

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

        if self.covers:
            waited = Signal()      # the tracked item had depth - 1 items ahead and saw a stall
            with m.If(tracking & (ahead == d - 1) & stalled):
                m.d.sync += waited.eq(1)
            m.d.comb += [
                Cover(level == d),
                Cover(waited & tracking & r_fire & (ahead == 0)),
            ]
        return m


class RouterSpec(Elaboratable):
    """A router among neighbours that send well-formed XY-routed packets.

    Environment (assumed)
    ---------------------
    * Every input keeps the stream rules: valid and payload hold until taken.
    * Packets on each input are well formed: the first flit is a head flit,
      the last a tail flit, no head flit inside a packet, ``dest`` the same
      in every flit of a packet, at most ``max_packet`` flits.
    * ``dest`` is inside the mesh; flits from inputs N and S have ``dest.x``
      equal to this router's x (their upstream routers finished X first).
    * Output readies are free.

    Properties
    ----------
    a. No flit lost, duplicated or reordered. The solver picks an input
       ``i*`` and a number ``n*`` (``AnyConst``); the spec counts the flits
       entering ``i*`` and the flits leaving any output with ``o_src == i*``
       (never two in one cycle), records the ``n*``-th flit in and asserts
       that the ``n*``-th flit out equals it (head, tail, dest, data); the
       out-count never passes the in-count. With (d) this gives the same per
       (input, output) pair: the flits that leave output ``o`` from ``i`` are
       those of ``i``'s stream that XY routing sends to ``o``, in order.
    b. Every output keeps the stream rules: valid, payload (and ``o_src``)
       hold until taken.
    c. Wormhole: on each output, the flits after a head flit up to its tail
       come from the head's input and are not head flits; a flit outside a
       packet is a head flit.
    d. XY: every flit leaves on the output that XY routing picks for its
       ``dest``; none from input N or S leaves on E or W (also asserted
       directly).
    e. Progress (with the invariants, as it reads the input FIFOs): an
       output shows a flit whenever one that may leave on it next waits at
       the front of an input FIFO, be it the next flit of the packet under
       way there or the head flit of a new packet routed there. Without it a
       router that forwarded nothing would meet (a) to (d).

    Both counts of (a) stop one past ``n*``, so the state stays bounded and
    k-induction can start anywhere; ``n*`` ranges below ``bound``, so (a)
    covers the first ``bound`` flits of every input.

    Invariants (``invariants=True``)
    --------------------------------
    Facts about the router's internal state, asserted (so proved) like the
    properties; with them the properties are 1-inductive. Each input FIFO's
    pointers agree with its level; its entries form well-formed packets that
    continue into the input's packet state (above); an output is locked to
    an input exactly while a packet of that input is under way there (head
    taken, tail not) or its head flit is shown there; the tracked input's
    FIFO holds the flits counted in but not out, the recorded one
    ``n* - out-count`` entries from the front. They also make bounded checks
    faster: after each cycle the checker keeps that cycle's assertions as
    facts, so z3 need not rediscover them.

    Parameters
    ----------
    router : Router
        The router under test (a narrow ``data_width`` keeps proofs fast).
    max_packet : int
        Longest packet in flits.
    bound : int
        ``n*`` ranges below it (see above).
    invariants : bool
        Assert the invariants on the router's internals.
    covers : bool
        Add covers: the check of (a) done for an ``n*`` past the FIFO depth,
        a packet's head flit offered for an output busy with another
        input's packet, every output taking a flit in one cycle, and a
        ``max_packet``-flit packet taken while an input is held back.
    """

    def __init__(self, router, *, max_packet: int = 8, bound: int = 256,
                 invariants: bool = True, covers: bool = False):
        if not isinstance(max_packet, int) or max_packet < 1:
            raise TypeError(f"max_packet must be a positive integer, not {max_packet!r}")
        if not isinstance(bound, int) or bound < 1:
            raise TypeError(f"bound must be a positive integer, not {bound!r}")
        self.router, self.max_packet, self.bound = router, max_packet, bound
        self.invariants, self.covers = invariants, covers

    def elaborate(self, platform):
        m = Module()
        rt = self.router
        # Elaborated here so that the invariants can name its internals.
        design = Fragment.get(rt, platform)
        m.submodules.router = design
        env = self._environment(m)
        track = self._ordering(m)
        out = self._outputs(m)
        if self.invariants:
            self._invariants(m, design, env, track, out)
        if self.covers:
            self._covers(m, env, track, out)
        return m

    def _dest_rules(self, port, dest):
        """``dest`` is inside the mesh, and N/S inputs carry only flits that finished X.

        The controller (``dest.ctrl``, addressed as ``x = y = 0`` and routed
        as if at ``(0, -1)``) is only ever approached going north or west:
        never on an N input (that flit would be going south), on an S input
        only in column 0, on a W input only at router (0, 0) (from the
        controller itself).
        """
        cfg, x, y = self.router.cfg, self.router.x, self.router.y
        rules = [dest.x < cfg.mesh_x, dest.y < cfg.mesh_y,
                 _implies(dest.ctrl, (dest.x == 0) & (dest.y == 0))]
        if port in (Port.N, Port.S):
            rules.append(_implies(~dest.ctrl, dest.x == x))
        if port == Port.N or (port == Port.S and x != 0) or (port == Port.W and (x, y) != (0, 0)):
            rules.append(~dest.ctrl)
        return rules

    def _environment(self, m):
        """Drive the inputs with well-formed packets and the output readies at random."""
        rt = self.router
        width = rt.layout.size
        env = {"in_packet": {}, "dest": {}, "count": {}}
        for p in Port:
            i = rt.i[p.value]
            flit = i.payload
            m.d.comb += [i.valid.eq(AnySeq(1)), i.payload.eq(AnySeq(width))]

            stalled = Signal(name=f"in_stalled_{p.name}")
            held = Signal(width, name=f"in_held_{p.name}")
            m.d.sync += [stalled.eq(i.valid & ~i.ready), held.eq(flit)]
            with m.If(stalled):
                m.d.comb += Assume(i.valid & (Value.cast(flit) == held))

            # the packet under way on this input: its dest and the flits taken so far
            in_packet = env["in_packet"][p] = Signal(name=f"in_packet_{p.name}")
            dest = env["dest"][p] = Signal(rt.layout["dest"].shape, name=f"in_dest_{p.name}")
            count = env["count"][p] = Signal(range(self.max_packet + 1), name=f"in_count_{p.name}")
            with m.If(i.valid):
                m.d.comb += [Assume(rule) for rule in self._dest_rules(p, flit.dest)]
                with m.If(in_packet):
                    m.d.comb += [Assume(~flit.head),
                                 Assume(flit.dest.as_value() == dest.as_value())]
                    with m.If(count == self.max_packet - 1):
                        m.d.comb += Assume(flit.tail)
                with m.Else():
                    m.d.comb += Assume(flit.head)
                    if self.max_packet == 1:
                        m.d.comb += Assume(flit.tail)
            with m.If(i.valid & i.ready):
                m.d.sync += [
                    in_packet.eq(~flit.tail),
                    dest.eq(flit.dest),
                    count.eq(Mux(flit.head, 1, count + 1)),
                ]

        for q in Port:
            m.d.comb += rt.o[q.value].ready.eq(AnySeq(1))
        return env

    def _ordering(self, m):
        """Property (a): the n*-th flit out of input i* is the n*-th flit in."""
        rt = self.router
        width = rt.layout.size
        track = {
            "i_sel": AnyConst(range(len(Port))),
            "n_sel": AnyConst(range(self.bound)),
            "n_in": Signal(range(self.bound + 1), name="n_in"),
            "n_out": Signal(range(self.bound + 1), name="n_out"),
            "recorded": Signal(name="recorded"),
            "record": Signal(width, name="record"),
        }
        i_sel, n_sel = track["i_sel"], track["n_sel"]
        n_in, n_out = track["n_in"], track["n_out"]
        recorded, record = track["recorded"], track["record"]
        m.d.comb += Assume(i_sel < len(Port))

        in_fire = Signal()
        in_flit = Signal(width)
        with m.Switch(i_sel):
            for p in Port:
                with m.Case(p.value):
                    i = rt.i[p.value]
                    m.d.comb += [in_fire.eq(i.valid & i.ready), in_flit.eq(i.payload)]
        out_fires = [rt.o[q.value].valid & rt.o[q.value].ready & (rt.o_src[q.value] == i_sel)
                     for q in Port]
        out_fire = Cat(*out_fires).any()
        out_flit = Signal(width)
        for q in Port:
            with m.If(out_fires[q.value]):
                m.d.comb += out_flit.eq(rt.o[q.value].payload)
        m.d.comb += Assert(sum(out_fires) <= 1, "one flit out on two outputs")

        # Both counts stop one past n*: later flits are another n*'s business.
        with m.If(in_fire & (n_in <= n_sel)):
            m.d.sync += n_in.eq(n_in + 1)
            with m.If(n_in == n_sel):
                m.d.sync += [recorded.eq(1), record.eq(in_flit)]
        m.d.comb += Assert(n_out <= n_in, "more flits out than in")
        with m.If(out_fire & (n_out <= n_sel)):
            m.d.sync += n_out.eq(n_out + 1)
            m.d.comb += Assert(n_out < n_in, "flit out that never came in")
            with m.If(n_out == n_sel):
                m.d.comb += Assert(recorded & (out_flit == record),
                                   "n-th flit out is not the n-th flit in")
        track["out_fire"] = out_fire
        return track

    def _outputs(self, m):
        """Properties (b), (c), (d) on every output."""
        rt = self.router
        x, y = rt.x, rt.y
        width = rt.layout.size
        out = {"packet": {}, "owner": {}}
        for q in Port:
            o = rt.o[q.value]
            src = rt.o_src[q.value]
            flit = o.payload
            fire = o.valid & o.ready

            # b. stream rules
            stalled = Signal(name=f"out_stalled_{q.name}")
            held = Signal(width, name=f"out_held_{q.name}")
            held_src = Signal.like(src, name=f"out_held_src_{q.name}")
            m.d.sync += [stalled.eq(o.valid & ~o.ready), held.eq(flit), held_src.eq(src)]
            with m.If(stalled):
                m.d.comb += Assert(o.valid & (Value.cast(flit) == held) & (src == held_src),
                                   "output dropped or changed before taken")

            # c. wormhole
            packet = out["packet"][q] = Signal(name=f"out_packet_{q.name}")  # head taken, tail not
            owner = out["owner"][q] = Signal.like(src, name=f"out_owner_{q.name}")
            with m.If(fire):
                with m.If(packet):
                    m.d.comb += Assert(~flit.head & (src == owner), "packets interleaved")
                with m.Else():
                    m.d.comb += Assert(flit.head, "body flit outside a packet")
                with m.If(flit.tail):
                    m.d.sync += packet.eq(0)
                with m.Elif(flit.head):
                    m.d.sync += [packet.eq(1), owner.eq(src)]

            # d. XY routing
            with m.If(o.valid):
                m.d.comb += Assert(src < len(Port), "o_src is not a port")
            with m.If(fire):
                m.d.comb += Assert(xy_route(flit.dest, x, y) == q, "flit left on the wrong output")
                if q in (Port.E, Port.W):
                    m.d.comb += Assert((src != Port.N) & (src != Port.S), "flit turned from Y to X")
        return out

    def _invariants(self, m, design, env, track, out):
        """The invariants, and property (e), which needs the FIFOs' internals too."""
        # Stated slot by slot (FIFO entries at fixed places) rather than in
        # queue order: that needs no multiplexers, which keeps the model small.
        rt = self.router
        x, y = rt.x, rt.y
        d = rt.cfg.noc_fifo_depth
        names = [f"{kind}_{q.name}" for kind in ("locked", "owner") for q in Port]
        internal = internal_signals(design, *names)
        locked = {q: internal[f"locked_{q.name}"] for q in Port}
        owner = {q: internal[f"owner_{q.name}"] for q in Port}

        for q in Port:
            ptr = internal_signals(design.find_subfragment(f"arb_{q.name}"), "ptr")["ptr"]
            m.d.comb += [
                Assert(ptr < len(Port), "invariant: arbiter pointer is not a port"),
                Assert(_implies(locked[q], owner[q] < len(Port)), "invariant: owner is not a port"),
                Assert(_implies(out["packet"][q], locked[q] & (owner[q] == out["owner"][q])),
                       "invariant: packet under way on an unlocked output"),
            ]

        i_sel, n_sel = track["i_sel"], track["n_sel"]
        n_in, n_out = track["n_in"], track["n_out"]
        recorded, record = track["recorded"], track["record"]
        levels, front_heads, front_routes = {}, {}, {}
        for p in Port:
            fifo = _FIFOState(design.find_subfragment(f"fifo_{p.name}"), d)
            level, rp, wp = fifo.level, fifo.rp, fifo.wp
            levels[p] = level
            in_packet, in_dest = env["in_packet"][p], env["dest"][p]
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
                    _implies(newest, in_packet == ~slot[k].tail),
                    _implies(newest & in_packet, in_dest.as_value() == slot[k].dest.as_value()),
                ]
            m.d.comb += Assert(Cat(*well_formed).all(), "invariant: FIFO holds malformed packets")

            # Is a packet from p under way (head taken, tail not), and to where?
            front_head = Signal(name=f"front_head_{p.name}")
            front_route = Signal(3, name=f"front_route_{p.name}")
            with m.Switch(rp):
                for k in range(d):
                    with m.Case(k):
                        m.d.comb += [front_head.eq(slot[k].head), front_route.eq(route[k])]
            front_heads[p], front_routes[p] = front_head, front_route
            under_way = Mux(level == 0, in_packet, ~front_head)
            under_way_to = Mux(level == 0, xy_route(in_dest, x, y), front_route)
            for q in Port:
                mine = locked[q] & (owner[q] == p)
                packet = out["packet"][q]
                m.d.comb += [
                    Assert(_implies(under_way & (under_way_to == q), mine & packet),
                           "invariant: packet under way without its output"),
                    Assert(_implies(mine & packet, under_way & (under_way_to == q)),
                           "invariant: output locked to an input with no packet under way"),
                    Assert(_implies(mine & ~packet, (level != 0) & front_head & (front_route == q)),
                           "invariant: output locked without its head flit"),
                ]

            # The tracked input: the recorded flit is (n* - out-count) entries from the front.
            for k in range(d):
                is_record = (i_sel == p) & recorded & (n_out <= n_sel) & (offset[k] == n_sel - n_out)
                m.d.comb += Assert(_implies(is_record, Value.cast(slot[k]) == record),
                                   "invariant: recorded flit not in its FIFO")

        # e. progress: an output shows a flit whenever one that may leave on it next is
        # waiting at the front of an input FIFO (the next flit of the packet under way
        # there, or else the head flit of a packet routed there). With round-robin
        # arbitration, that keeps every packet moving while the outputs take flits.
        for q in Port:
            waiting = Cat(*(
                (levels[p] != 0) & Mux(out["packet"][q], out["owner"][q] == p,
                                       front_heads[p] & (front_routes[p] == q))
                for p in Port)).any()
            m.d.comb += Assert(_implies(waiting, rt.o[q.value].valid),
                               "progress: output idle while a flit waits for it")

        pending = Signal(range(d + 1))
        with m.Switch(i_sel):
            for p in Port:
                with m.Case(p.value):
                    m.d.comb += pending.eq(levels[p])
        m.d.comb += [
            Assert(n_in <= n_sel + 1, "invariant: in-count past its stop"),
            # once the in-count has stopped, the FIFO may hold more than the difference
            Assert(Mux(n_in > n_sel, n_in <= n_out + pending, n_in == n_out + pending),
                   "invariant: in-count is not out-count plus pending"),
            Assert(recorded == (n_in > n_sel), "invariant: record taken at the wrong count"),
        ]

    def _covers(self, m, env, track, out):
        """Cases that a proof with a too narrow environment would never see."""
        rt = self.router
        d = rt.cfg.noc_fifo_depth
        fires = [rt.o[q.value].valid & rt.o[q.value].ready for q in Port]
        backpressure = Cat(*(rt.i[p.value].valid & ~rt.i[p.value].ready for p in Port)).any()
        # some input takes the tail flit of a max_packet-flit packet
        long_packet = Cat(*(
            rt.i[p.value].valid & rt.i[p.value].ready & rt.i[p.value].payload.tail
            & (Mux(rt.i[p.value].payload.head, 0, env["count"][p]) == self.max_packet - 1)
            for p in Port)).any()
        # an output busy with one input's packet while another input's head waits for it
        contention = Cat(*(
            out["packet"][q] & rt.i[p.value].valid & rt.i[p.value].payload.head
            & (xy_route(rt.i[p.value].payload.dest, rt.x, rt.y) == q)
            & (out["owner"][q] != p)
            for q in Port for p in Port)).any()
        m.d.comb += [
            Cover(track["out_fire"] & (track["n_out"] == track["n_sel"]) & (track["n_sel"] > d)),
            Cover(contention),
            Cover(Cat(*fires).all()),
            Cover(long_packet & backpressure),
        ]
