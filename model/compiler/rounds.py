"""A pass's rows streamed through its units in rounds: each chunk's ``ldact``, ``mvm``, partial
sums and ``out`` put in the rounds they belong to, each round closed by the ``sync`` s and the
``barrier`` its scheme needs (see "Rounds" and "Epilogue" in the package docstring)."""

from __future__ import annotations

from ..config import Config
from .emitter import _Emitter
from .layout import _Pass, _split, _Unit
from .reduction import _delays, _forward, _slot
from .refs import _op, _Refs, _tile_of


class _Stream:
    """Writes the rounds of the passes of one GEMM into the emitter ``em``, with the operands of
    ``refs``; ``act_group``: rows per ``ldact`` when K is split over tiles; ``epilogue``: the final
    results take the tiles' bias (a bias or a shift was given)."""

    def __init__(self, cfg: Config, em: _Emitter, refs: _Refs, act_group: int, epilogue: bool):
        self.cfg, self.em, self.refs = cfg, em, refs
        self.act_group, self.epilogue = act_group, epilogue

    def stream(self, ps: _Pass, n: int, scheme: str, early: bool):
        """Stream the pass's rows through its units, a round at a time.

        With an epilogue, the pass starts with a round that loads every tile of a final unit (the
        tiles that may send ``C``) with its N-block's bias (``ldbias``). A tile's packets are handled
        in arrival order, so that follows every ``out``/``outq`` of the passes before (which used the
        old bias) and precedes this pass's ones; the register persists across windows."""
        rounds: dict = {}
        if self.epilogue:
            loads = [_op("ldbias", self.refs.b_ref(u.nb), tx=t[0], ty=t[1]) for u in ps.units if u.final
                     for t in u.tiles]
            if self.refs.rq is not None:
                loads += [_op("ldrq", self.refs.rq_ref(u.nb), tx=t[0], ty=t[1]) for u in ps.units if u.final
                          for t in u.tiles]
            if loads:
                self.em.round(loads, "GEMM")

        def rnd(r):
            return rounds.setdefault(r, {"cert": [], "psum": [], "out": [], "comp": []})
        for u in ps.units:
            for c, a in enumerate(range(u.r0, u.r1, n)):
                rows = (a, min(u.r1, a + n))
                if scheme == "none":
                    self.chunk_single(u, c, rows, n, rnd)
                else:
                    self.chunk_multi(u, c, rows, n, scheme, early, rnd)
        for r in sorted(rounds):
            d = rounds[r]
            psums = [op for _, op in sorted(d["psum"], key=lambda x: x[0])]
            comp = d["comp"]
            if scheme != "none" and self.act_group < n:
                comp = self.interleave(comp)
            # outs after the partial sums: a root's out follows the partial sums it sends, and
            # precedes this round's mvm into the same accumulator set (in the tile's packet order)
            ops = psums + d["out"] + comp
            if scheme != "none":
                # a tile whose MVMs the next rounds' partial sums need answers a sync (early: at the
                # start of the round, for the rounds before; else at the end), unless, early, its
                # first command in this round is a partial sum: the answer to it shows the same
                first = {}
                for op in ops:
                    first.setdefault(_tile_of(op), op[0])
                syncs = [_op("sync", tx=t[0], ty=t[1]) for t in self.em.tiles
                         if t in d["cert"] and not (early and first.get(t) == "psum")]
                ops = (syncs + ops if early else ops + syncs)
                if syncs or psums:
                    ops.append(_op("barrier"))
            self.em.round(ops, "GEMM")

    def chunk_single(self, u: _Unit, c: int, rows, n: int, rnd):
        """One tile: ``ldact``, ``mvm`` (and ``ldpsum``) in round ``c``, ``out`` in round ``c+1``
        before the next chunk's loads (two accumulator sets; one: ``out`` right after)."""
        t, kb = u.tiles[0], u.kbs[0]
        r0, r1 = rows
        two = self.cfg.tile_acc_depth >= 2 * n
        base = (c % 2) * n if two else 0
        comp = rnd(c)["comp"]
        comp.append(_op("ldact", self.refs.x_ref(kb, r0, r1), tx=t[0], ty=t[1], slot=0, count=r1 - r0))
        comp.append(_op("mvm", tx=t[0], ty=t[1], a=0, count=r1 - r0, b=base, acc=0))
        comp += self.refs.first_in(u, t, r0, r1, base)
        out = self.refs.out_op(u, r0, r1, t, base)
        (rnd(c + 1)["out"] if two else comp).append(out)

    def chunk_multi(self, u: _Unit, c: int, rows, n: int, scheme: str, early: bool, rnd):
        """Chunk ``c`` of a unit of several tiles, its operations put in the rounds they belong to.

        Round ``c``: every tile ``ldact`` s the chunk's rows of its K-block and ``mvm`` s them into
        accumulator set ``c % sets``. ``root``: tile ``c % s`` is the root of every row; ``dag``: the
        rows are cut into ``s`` shares (rotating with ``c``), tile ``j`` the root of share ``j``. A
        root's ``mvm`` must be done before partial sums arrive: a ``sync`` in round ``c`` (late) or
        ``c+1`` (early), then the barrier ending that round. The partial sums for a share go to its
        root in the next round (``dag``: in the next two, each pair of tiles in the direction that
        round's order allows); after the barrier ending them, the roots ``out`` their shares.
        """
        s = len(u.tiles)
        r0, r1 = rows
        ln = r1 - r0
        first, r_out = _delays(scheme, early)
        base = (c % r_out) * n
        if scheme == "root":
            shares = [(0, 0)] * s
            shares[c % s] = (0, ln)
        else:
            lens = [b - a for a, b in _split(ln, s)]
            rot = c % s
            lens = lens[s - rot:] + lens[:s - rot]
            shares = [(sum(lens[:j]), lens[j]) for j in range(s)]
        comp = rnd(c)["comp"]
        for j, (t, kb) in enumerate(zip(u.tiles, u.kbs)):
            comp.append(_op("ldact", self.refs.x_ref(kb, r0, r1), tx=t[0], ty=t[1], slot=0, count=ln))
            comp.append(_op("mvm", tx=t[0], ty=t[1], a=0, count=ln, b=base, acc=0))
            off, sl = shares[j]
            if sl:
                comp += self.refs.first_in(u, t, r0 + off, r0 + off + sl, base + off)
            rnd(c + (1 if early else 0))["cert"].append(t)
        for i, t in enumerate(u.tiles):
            for d in range(1, s):
                j = (i + d) % s
                off, sl = shares[j]
                if not sl:
                    continue
                r = c + first
                if scheme == "dag" and not _forward(i, j, r):
                    r += 1
                g = u.tiles[j]
                rnd(r)["psum"].append(((c, _slot(i, j, s)), _op("psum", tx=t[0], ty=t[1], b=base + off, count=sl,
                                                               dx=g[0], dy=g[1], d=base + off)))
        for j, t in enumerate(u.tiles):
            off, sl = shares[j]
            if sl:
                rnd(c + r_out)["out"].append(self.refs.out_op(u, r0 + off, r0 + off + sl, t, base + off))

    def interleave(self, comp):
        """Each tile's ``ldact`` cut into pieces of ``ACT_GROUP`` rows, sent to the tiles in turn, so
        that one busy tile does not hold the controller while the others wait for their rows."""
        g = self.act_group
        queues: dict = {}
        for op in comp:
            q = queues.setdefault(_tile_of(op), [])
            if op[0] != "ldact":
                q.append(op)
                continue
            kb, r0, r1 = op[2].key[1:]
            for a in range(r0, r1, g):
                b = min(r1, a + g)
                q.append(_op("ldact", self.refs.x_ref(kb, a, b), **dict(op[1], slot=op[1]["slot"] + a - r0,
                                                                    count=b - a)))
        out = []
        qs = list(queues.values())
        while any(qs):
            for q in qs:
                if q:
                    out.append(q.pop(0))
                    while q and q[0][0] != "ldact":
                        out.append(q.pop(0))
        return out
