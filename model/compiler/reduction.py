"""Partial sums between tiles: which rounds a scheme sends them in, and why they cannot deadlock.

See "Rounds" in the package docstring: the ``dag`` and ``root`` schemes, ``early`` syncs, and the
wait-for-graph check :func:`_deadlock_free` that every pass of several units must pass.
"""

from __future__ import annotations

from itertools import pairwise

from ..config import Config
from ..encoding import CTRL
from ..noc import E, L, N, S, W, xy_route
from .layout import _tiles


# A scheme: (name, early). ``dag``: every tile is the root of a share of a chunk's rows, the partial
# sums go in two rounds whose tile orders are reversed; ``root``: one root per chunk (rotating).
# ``early``: the ``sync`` that shows a chunk's MVMs are done goes at the start of the next round, so
# that the barrier ending a round does not wait for that round's MVMs.
_SCHEMES = [("dag", True), ("root", True), ("dag", False), ("root", False)]


def _delays(scheme: str, early: bool) -> tuple[int, int]:
    """Rounds after a chunk's compute round: (its first partial sums, its out)."""
    e = 2 if early else 1
    return e, e + (1 if scheme == "root" else 2)


def _slot(i: int, j: int, s: int) -> int:
    """The matching in which tiles ``i`` and ``j`` of a unit of ``s`` meet in a round-robin
    tournament (circle method): a send order in which few tiles wait for the same receiver."""
    m = s + (s % 2)
    for k in range(m - 1):
        ring = [m - 1] + [(k + q) % (m - 1) for q in range(m - 1)]
        for q in range(m // 2):
            if {ring[q], ring[m - 1 - q]} == {i, j}:
                return k
    raise AssertionError((i, j, s))


def _forward(i: int, j: int, r: int) -> bool:
    """May tile ``i`` send to tile ``j`` of its unit in round ``r`` (``dag``)? The unit's order,
    reversed in odd rounds."""
    return i < j if r % 2 == 0 else i > j


def _round_psums(scheme: str, units: list) -> list[list]:
    """Every set of (sender, receiver) pairs a round of the scheme may hold, over all units."""
    if scheme == "dag":
        return [[(ts[i], ts[j]) for ts in units for i in range(len(ts)) for j in range(len(ts))
                 if i != j and _forward(i, j, r)] for r in (0, 1)]
    return [[(ts[i], ts[k % len(ts)]) for ts in units for i in range(len(ts)) if i != k % len(ts)]
            for k in range(max(len(ts) for ts in units))]


def _route(src, dest) -> list:
    """The router output ports ``((x, y), port)`` a packet from ``src`` to ``dest`` holds (XY)."""
    x, y = (0, 0) if src == CTRL else src
    ports = []
    while True:
        o = xy_route(x, y, dest)
        ports.append(((x, y), o))
        if o == L or (dest == CTRL and (x, y) == (0, 0)):
            return ports
        x, y = {N: (x, y - 1), S: (x, y + 1), E: (x + 1, y), W: (x - 1, y)}[o]


def _deadlock_free(cfg: Config, psums: list) -> bool:
    """Can a round with the partial sums ``psums`` ([(sender, receiver)]) never deadlock?

    A tile takes a packet only when idle, and stays busy while it sends. So a round is safe if its
    wait-for graph has no cycle: a router output port waits for the next port of every route through
    it (wormhole), a tile's ejection port waits for every packet the tile may send (its partial sums
    of the round, and results or answers to the controller); the controller always takes its
    packets. Any tile may also receive from and send to the controller in any round.
    """
    tiles = _tiles(cfg)
    to_ctrl = {t: _route(t, CTRL) for t in tiles}
    routes = [_route(CTRL, t) for t in tiles] + list(to_ctrl.values())
    sent = {t: [to_ctrl[t]] for t in tiles}
    for a, b in psums:
        rt = _route(a, b)
        routes.append(rt)
        sent[a].append(rt)
    edges: dict = {}
    for rt in routes:
        for p, q in pairwise(rt):
            edges.setdefault(p, set()).add(q)
    for t in tiles:
        edges.setdefault((t, L), set()).update(rt[0] for rt in sent[t])
    state: dict = {}
    for v0 in list(edges):
        if state.get(v0):
            continue
        state[v0] = 1
        stack = [(v0, iter(edges.get(v0, ())))]
        while stack:
            v, it = stack[-1]
            w = next(it, None)
            if w is None:
                state[v] = 2
                stack.pop()
            elif state.get(w) == 1:
                return False
            elif not state.get(w):
                state[w] = 1
                stack.append((w, iter(edges.get(w, ()))))
    return True
