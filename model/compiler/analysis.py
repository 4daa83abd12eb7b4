"""Measures of a GEMM and of a plan: the port roofline (:func:`roofline`) and the bound of a plan's
own data movement (:func:`traffic_bound`); see "Performance" in the package docstring."""

from __future__ import annotations

from ..config import Config
from ..encoding import LOAD_COUNT, SeqOp
from ..stream import destinations
from ..isa import Op, decode
from .layout import _tiles
from .plan import GemmPlan

__all__ = ["roofline", "traffic_bound", "pipeline_limit"]

def roofline(cfg: Config, M: int | None = None, K: int | None = None, N: int | None = None,
             requantized: bool = False) -> float:
    """The roofline in MACs per cycle: ``min(peak, port bandwidth / data moved per MAC)``.

    The port is the controller's network port, one ``flit_width`` flit per cycle in each direction
    (docs/architecture.md). A weight-resident GEMM moves through it, per ``M x K x N``, at least
    ``M * Kb * Nb`` activation packets out (one per row of A and tile block that needs it, no
    multicast: ``2 + words_x`` flits each) and ``M * Nb`` result vectors in (C as int32: ``2 + words_a``
    flits each; ``2 + words_q`` when they come back requantized), ``Kb = ceil(K / rows)``,
    ``Nb = ceil(N / cols)``; the busier direction bounds the
    time, so the roofline is ``min(peak, M*K*N / max(out flits, in flits))``. Without a shape, the
    activation direction alone for full blocks: ``min(peak, rows*cols / (2 + words_x))``
    (``default``: 1024/6 = 170.7 of 512).
    """
    peak = cfg.tiles * cfg.peak_macs_per_cycle
    if M is None:
        return min(peak, cfg.rows * cfg.cols / (2 + cfg.words_x))
    kb, nb = -(-K // cfg.rows), -(-N // cfg.cols)
    out_flits = M * kb * nb * (2 + cfg.words_x)
    in_flits = M * nb * (2 + (cfg.words_q if requantized else cfg.words_a))
    return min(peak, M * K * N / max(out_flits, in_flits))


def traffic_bound(plan: GemmPlan) -> dict:
    """Lower bounds on each window's cycles from what its program moves, whatever the timing.

    Per window: ``ctrl_tx``, the controller's own cycles (a fetch per instruction, a cycle per flit
    it sends, a cycle per barrier); ``ctrl_rx``, the flits it receives (one a cycle: results and
    answers); ``tile``, the busiest tile's cycles (a header, the payload words and an exec cycle per
    packet it receives, ``steps`` per MVM, a flit a cycle for what it sends, ``write + verify + 1``
    per row programmed). Returns those sums over the windows, ``cycles``, the sum of each window's
    largest bound, and ``windows``, each window's largest bound.
    """
    cfg = plan.cfg
    tot = {"ctrl_tx": 0, "ctrl_rx": 0, "tile": 0, "cycles": 0, "windows": []}
    load = {Op.LDACT: cfg.words_x, Op.LDW: cfg.words_w, Op.LDBIAS: cfg.words_a, Op.LDPSUM: cfg.words_a,
            Op.LDRQ: cfg.words_a}
    for win in plan.windows:
        tx = rx = 0
        tile = {t: 0 for t in _tiles(cfg)}
        for word in win.program:
            ins = decode(word)
            o, op = ins.ops, ins.op
            tx += 1
            if op == Op.BARRIER:
                tx += 1
                continue
            if op in (Op.NOP, Op.HALT):
                continue
            t = (o["tx"], o["ty"])
            n = LOAD_COUNT.get(op, o.get("count", 1))
            if op in load:
                tx += n * (2 + load[op])
                tile[t] += n * (3 + load[op])
                if op == Op.LDW:
                    tile[t] += n * (cfg.rram_write_cycles + cfg.rram_verify_cycles + 1)
                continue
            tx += 1 + cfg.cmd_words
            tile[t] += 2 + cfg.cmd_words
            if op == Op.MVM:
                tile[t] += n * cfg.steps
            elif op == Op.READ:
                tile[t] += cfg.steps
            elif op == Op.SYNC:
                tile[t] += 1
                rx += 1
            elif op in (Op.OUT, Op.OUTQ):
                w = cfg.words_a if op == Op.OUT else cfg.words_q
                tile[t] += n * (2 + w)
                rx += n * (2 + w)
            elif op == Op.PSUM:
                d = (o["dx"], o["dy"])
                tile[t] += n * (2 + cfg.words_a)
                tile[d] += n * (4 + cfg.words_a)
                rx += n
        tot["ctrl_tx"] += tx
        tot["ctrl_rx"] += rx
        tot["tile"] += max(tile.values())
        tot["windows"].append(max(tx, rx, max(tile.values())))
        tot["cycles"] += tot["windows"][-1]
    return tot


def _xy_links(src: tuple, dst: tuple) -> list[tuple]:
    """The router-to-router links ``((x, y), (x', y'))`` of an XY route (X first, then Y)."""
    out, (x, y) = [], src
    while (x, y) != dst:
        nxt = (x + (dst[0] > x) - (dst[0] < x), y) if x != dst[0] else (x, y + (dst[1] > y) - (dst[1] < y))
        out.append(((x, y), nxt))
        x, y = nxt
    return out


def pipeline_limit(plan) -> dict:
    """The physical limit of a resident pipeline (a :class:`~.net.NetPlan`), in cycles per input vector.

    In steady state every vector costs each part of the chip a fixed amount, whatever the schedule:

    * ``macro``: ``steps`` (``xbits / par``) cycles, one MVM per tile and vector, all tiles in parallel;
    * ``ctrl_tx``: the controller's port out, a flit a cycle: per feed channel an ``XS`` packet (a header
      and the block's valid input words);
    * ``ctrl_rx``: its port in: per last-layer chain end a ``RESULT_S`` (header, address, valid
      columns' words) and per feed channel a ``CREDIT``;
    * ``tile_rx`` / ``tile_tx``: the busiest tile's network port, a flit a cycle each way: its input
      (``XS``), its partial sum (``PS``, header and valid columns as int32), the credits it gets back
      and sends;
    * ``link``: the busiest router-to-router link, a flit a cycle, every packet above on its XY route
      (the controller's at router (0, 0)).

    With ``replicas`` copies of the network, each step above carries one vector on each: the cycles
    per vector are a step's over ``replicas``. Window overheads (descriptors, barriers, programming)
    are left out: they do not grow with the batch. Returns ``cycles_per_vector`` (the largest), ``bound`` (which part), ``parts`` (each part's
    cycles per vector), ``macs_per_vector`` and ``utilization`` (``macs_per_vector / (peak *
    cycles_per_vector)``: the most of peak the pipeline can reach)."""
    cfg = plan.cfg
    words = cfg.vector_words
    ctrl = (0, 0)
    rx: dict = {}
    tx: dict = {}
    links: dict = {}
    parts = {"macro": cfg.steps, "ctrl_tx": 0, "ctrl_rx": 0}

    def flow(src, dst, flits):                  # ``flits`` per vector from src to dst (None: the controller)
        for link in _xy_links(src or ctrl, dst or ctrl):
            links[link] = links.get(link, 0) + flits
        if src is None:
            parts["ctrl_tx"] += flits
        else:
            tx[src] = tx.get(src, 0) + flits
        if dst is None:
            parts["ctrl_rx"] += flits
        else:
            rx[dst] = rx.get(dst, 0) + flits

    for b in plan.blocks:
        d, t = plan.streams[b.tile], b.tile
        src = None if d["src_ctrl"] else (d["src_x"], d["src_y"])
        if src is None:                          # the feed's XS (a tile's XS is counted at its producer)
            flow(None, t, 1 + words(b.krows, cfg.xbits))
        flow(t, src, 1)                          # a credit for each input slot freed
        if d["join"]:
            flow(t, (d["psrc_x"], d["psrc_y"]), 1)
        if d["op"] == SeqOp.PS_TILE:
            for dst in destinations(d):
                flow(t, dst, 1 + words(b.ncols, cfg.acc_bits))
        elif d["op"] == SeqOp.XS_TILE:
            for dst in destinations(d):          # fan-out: one packet to each
                flow(t, dst, 1 + words(b.ncols, cfg.xbits))
        else:
            flow(t, None, 2 + d["gstep"])
    parts.update(tile_rx=max(rx.values()), tile_tx=max(tx.values()), link=max(links.values(), default=0))
    r = getattr(plan, "replicas", 1)                 # the flows above carry one vector on each replica
    parts = {k: v / r if r > 1 else v for k, v in parts.items()}
    bound = max(parts, key=lambda k: (parts[k], k == "macro"))
    macs = plan.macs // plan.batch
    cpv = parts[bound]
    return {"cycles_per_vector": cpv, "bound": bound, "parts": parts, "macs_per_vector": macs,
            "utilization": macs / (cfg.tiles * cfg.peak_macs_per_cycle * cpv)}
