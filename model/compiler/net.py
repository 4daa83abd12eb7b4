"""A whole int8 MLP placed resident on the tiles and run as a pipeline of standing sequences.

:func:`compile_net` gives a :class:`NetPlan` when every layer's weights fit the chip's RRAM
at once (and the network has a shape the pipeline can carry, :func:`placement`), else
raises :class:`NotResident` naming why (the caller then runs the layer-by-layer
:func:`~.gemm.compile_gemm` flow and says so).

Placement
---------
Layer ``i``'s weights ``w{i}`` [in, out] are cut in ``rows`` x ``cols`` blocks; each block
is one tile. The K-blocks of one N-block form a *chain*: the first tile sends its raw
partial sums (``PS``) to the next, which adds them to its own (``join``), and so on; the
last tile of a chain (its *end*) holds the layer's full sums for its columns. A hidden
layer's chain end post-processes them (bias, shift, clamp, ReLU) and sends them as the
next layer's input (``XS``) to the chain of the next layer that takes those inputs as its
K-block (output block ``j`` of layer ``i`` is input block ``j`` of layer ``i+1``, so
``rows == cols``); the last layer's chain ends send int32 results (bias added) to the
global buffer (``RESULT_S``). The controller feeds the first layer's tiles, one feed
channel each. Tiles are taken in a snake order over the mesh in dataflow order, so a
producer and its consumer are neighbours or close.

Every tile has one input producer and at most one partial-sum producer. A layer cut in
several N-blocks takes each input block in each of them: the first layer's from the
controller (a feed channel per tile), a later layer's from the chain end that makes it,
which sends each result to every N-block's tile of that K-block in turn (fan-out, at most
``SEQ_FANOUT`` destinations, each with its own credits).

Windows
-------
Programming windows first (``ldw``, rows interleaved over the tiles; with ``rram`` known,
rows that already hold their weights are skipped and a window left empty is dropped).
Then inference windows, each a chunk of the batch that fits the global buffer: the
biases (first window only: they are volatile registers), one ``ldseq`` per tile and a
``barrier`` (every sequence runs), a ``chan`` per first-layer tile, one ``feed`` of the
chunk expecting every result, a ``barrier``, ``halt``. Credits make every packet
consumable where it lands, and the dataflow graph is a chain of layers (acyclic), so the
pipeline cannot deadlock (:func:`check_streams`).

Replicas
--------
A network on at most half the tiles can be placed in copies (``replicas``), one after the
other in snake order, each with feed channels of its own. A window of ``n`` vectors runs
``min(replicas, n)`` copies on ``ceil(n / copies)`` vectors each (the last copy's share
filled with zero vectors, whose results are not read): the feed sends a vector to every
copy in turn. :func:`compile_net` takes the count :func:`estimate_cycles` finds fastest.

Pure Python and numpy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..config import Config
from ..encoding import SEQ_FANOUT, SeqOp, pack_vector, unpack_vector
from ..isa import encode
from ..requant import pack_rq
from ..stream import destinations, seq_packet_words
from .plan import Window

__all__ = ["NetPlan", "NotResident", "compile_net", "estimate_cycles", "placement", "check_streams", "snake"]

PROGRAM_ROWS = 2          # rows per ldw, tiles in turn (each programs while the others receive)
FEED_MAX = 65535          # vectors per feed / sequence (16-bit fields)


class NotResident(ValueError):
    """The network cannot run resident; the message says why (the layer-by-layer flow can)."""


@dataclass
class Block:
    """One tile's share: layer ``layer``, K-block ``kb``, N-block ``nb``."""
    layer: int
    kb: int
    nb: int
    tile: tuple
    krows: int                    # valid rows (inputs) of the block
    ncols: int                    # valid columns (outputs)
    rep: int = 0                  # the copy of the network it belongs to (replicas)


@dataclass
class NetPlan:
    """A compiled resident network: its windows and how ``Y`` comes out of what the host reads.

    ``read_map[w]``: per read of window ``w``, ``(v0, n, c0, nc, words)``: vectors ``v0 ..
    v0+n-1`` of output columns ``c0 .. c0+nc-1``, ``words`` words each (int32).
    ``streams``: per tile, the descriptor fields of its sequence (without ``count``).
    ``rram``: the rows' weights after the plan (int64 [mesh_y, mesh_x, rows, cols]).
    ``replicas``: copies of the network on the tiles, each taking its share of every window's vectors;
    ``pad_vectors``: zero vectors fed to fill the last copy's share (their results are not read).
    """
    cfg: Config
    batch: int
    outputs: int
    windows: list[Window]
    read_map: list[list[tuple]]
    blocks: list[Block]
    streams: dict
    macs: int
    window_kinds: list[str] = field(default_factory=list)
    rram: np.ndarray | None = field(default=None, repr=False)
    replicas: int = 1
    pad_vectors: int = 0
    window_steps: list = field(default_factory=list)    # per inference window: (steps, ldseq, ldbias, chan)

    def result(self, read_words) -> np.ndarray:
        """``Y`` int32 [batch, outputs] from ``read_words[w][r]`` (the words of window ``w``'s read ``r``)."""
        return read_outputs(self.cfg, self.batch, self.outputs, self.windows, self.read_map, read_words)


def read_outputs(cfg: Config, batch: int, outputs: int, windows, read_map, read_words) -> np.ndarray:
    """``Y`` int32 [batch, outputs] from ``read_words[w][r]``, read ``r`` of window ``w`` holding what
    ``read_map[w][r] = (v0, n, c0, nc, words[, bits])`` says: vectors ``v0 .. v0+n-1`` of output columns
    ``c0 .. c0+nc-1``, ``words`` words each (``bits``-bit elements: ``acc_bits`` if not given)."""
    Y = np.zeros((batch, outputs), dtype=np.int64)
    if len(read_words) != len(windows):
        raise ValueError(f"read_words: {len(read_words)} windows, the plan has {len(windows)}")
    for w, rmap in enumerate(read_map):
        for r, (v0, n, c0, nc, words, *bits) in enumerate(rmap):
            got = read_words[w][r]
            for i in range(n):
                Y[v0 + i, c0:c0 + nc] = unpack_vector(got[i * words:(i + 1) * words], nc,
                                                      bits[0] if bits else cfg.acc_bits, cfg.flit_width)
    return Y.astype(np.int32)


def snake(cfg: Config) -> list[tuple]:
    """The tiles in a snake order: row 0 left to right, row 1 right to left, ..."""
    out = []
    for y in range(cfg.mesh_y):
        xs = range(cfg.mesh_x) if y % 2 == 0 else range(cfg.mesh_x - 1, -1, -1)
        out += [(x, y) for x in xs]
    return out


def placement(cfg: Config, net, replicas: int = 1) -> list[Block]:
    """The blocks of every layer on their tiles (chains in K order), ``replicas`` copies of the network one
    after the other in snake order, or :class:`NotResident`."""
    if cfg.rows != cfg.cols and len(net.layers) > 1:
        raise NotResident(f"rows ({cfg.rows}) != cols ({cfg.cols}): a layer's output blocks are not the next "
                          "layer's input blocks")
    blocks, tiles = [], snake(cfg)
    need = replicas * sum(-(-L.w.shape[0] // cfg.rows) * -(-L.w.shape[1] // cfg.cols) for L in net.layers)
    if need > len(tiles):
        raise NotResident(f"the network needs {need} tiles of {cfg.rows}x{cfg.cols} weights, the chip has "
                          f"{len(tiles)}")
    for i, L in enumerate(net.layers):
        N = L.w.shape[1]
        nbs = -(-N // cfg.cols)
        if i > 0 and nbs > SEQ_FANOUT:
            raise NotResident(f"layer {i} has {N} outputs, {nbs} blocks of {cfg.cols} columns: each of its inputs "
                              f"would go to {nbs} tiles, a sequence sends each result to at most {SEQ_FANOUT}")
    for r in range(replicas):
        for i, L in enumerate(net.layers):
            K, N = L.w.shape
            for nb in range(-(-N // cfg.cols)):
                for kb in range(-(-K // cfg.rows)):
                    blocks.append(Block(i, kb, nb, tiles[len(blocks)], min(cfg.rows, K - kb * cfg.rows),
                                        min(cfg.cols, N - nb * cfg.cols), r))
    if sum(b.layer == 0 for b in blocks) > cfg.feed_channels:
        raise NotResident(f"the first layer needs more than the controller's {cfg.feed_channels} feed channels")
    return blocks


def _streams(cfg: Config, net, blocks: list[Block]) -> dict:
    """Each tile's descriptor fields (all but ``count``, ``gaddr``) and its producer and destination."""
    by = {(b.rep, b.layer, b.kb, b.nb): b for b in blocks}
    ring, aring = cfg.tile_ibuf_depth, cfg.tile_acc_depth
    last = len(net.layers) - 1
    out = {}
    for b in blocks:
        L = net.layers[b.layer]
        kbs = -(-L.w.shape[0] // cfg.rows)
        d = dict(ring=ring, aring=aring, ncols=b.ncols, shift=0, relu=0, bias=0, gstep=0, rq=0,
                 src_ctrl=0, src_x=0, src_y=0, join=0, psrc_x=0, psrc_y=0, dst_x=0, dst_y=0, credits=0, fan=0)
        if b.layer == 0:
            d["src_ctrl"] = 1
        else:                              # the chain end of the layer before, N-block kb
            p = by[(b.rep, b.layer - 1, -(-net.layers[b.layer - 1].w.shape[0] // cfg.rows) - 1, b.kb)]
            d["src_x"], d["src_y"] = p.tile
        if b.kb > 0:
            p = by[(b.rep, b.layer, b.kb - 1, b.nb)]
            d["join"], (d["psrc_x"], d["psrc_y"]) = 1, p.tile
        if b.kb < kbs - 1:                 # partial sums to the next in the chain
            n = by[(b.rep, b.layer, b.kb + 1, b.nb)]
            d["op"], (d["dst_x"], d["dst_y"]), d["credits"] = SeqOp.PS_TILE, n.tile, aring
        elif b.layer < last:               # the layer's output block nb: input block nb of every N-block next
            nbs = -(-net.layers[b.layer + 1].w.shape[1] // cfg.cols)
            dst = [by[(b.rep, b.layer + 1, b.nb, nb)].tile for nb in range(nbs)]
            if L.rq is not None:
                d.update(op=SeqOp.XS_TILE, rq=1, credits=ring, fan=nbs - 1)
            else:
                d.update(op=SeqOp.XS_TILE, shift=L.shift, relu=L.relu, credits=ring, fan=nbs - 1)
            d["dst_x"], d["dst_y"] = dst[0]
            for k, (x, y) in enumerate(dst[1:], 1):
                d[f"dst{k}_x"], d[f"dst{k}_y"] = x, y
        elif L.rq is not None:            # the last layer requantized: int8 results
            d.update(op=SeqOp.OUTQ_CTRL, rq=1, gstep=cfg.vector_words(b.ncols, cfg.xbits))
        else:
            d.update(op=SeqOp.OUT_CTRL, bias=1, gstep=cfg.vector_words(b.ncols, cfg.acc_bits))
        out[b.tile] = d
    return out


def check_streams(cfg: Config, blocks: list[Block], streams: dict) -> None:
    """The pipeline's deadlock freedom, checked on the plan: every tile's producers send to it and
    nothing else does, credits equal the consumer's ring, and the producer graph has no cycle (a
    cycle of credits could wait forever). Raises AssertionError naming the tile."""
    senders: dict = {}
    for t, d in streams.items():
        if d["op"] in (SeqOp.PS_TILE, SeqOp.XS_TILE):
            dsts = destinations(d)
            assert len(set(dsts)) == len(dsts), f"tile {t} sends each result to {dsts}: a tile twice"
            kind = "p" if d["op"] == SeqOp.PS_TILE else "x"
            for dst in dsts:
                assert dst in streams and dst != t, f"tile {t} sends to {dst}, which runs no sequence"
                senders.setdefault((dst, kind), []).append(t)
                ring = streams[dst]["aring" if kind == "p" else "ring"]
                assert d["credits"] == ring, f"tile {t}: {d['credits']} credits toward a ring of {ring}"
    for t, d in streams.items():
        want_x = [] if d["src_ctrl"] else [(d["src_x"], d["src_y"])]
        assert senders.get((t, "x"), []) == want_x, f"tile {t}: inputs from {senders.get((t, 'x'))}, not {want_x}"
        want_p = [(d["psrc_x"], d["psrc_y"])] if d["join"] else []
        assert senders.get((t, "p"), []) == want_p, f"tile {t}: partial sums from {senders.get((t, 'p'))}"
    order = {b.tile: k for k, b in enumerate(blocks)}
    for (dst, _), srcs in senders.items():
        for s in srcs:
            assert order[s] < order[dst], f"tile {s} -> {dst} goes against the dataflow order: a credit cycle"


class _Windows:
    """Programs as they are emitted: words, global-buffer content, reads."""

    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.windows: list[Window] = []
        self.kinds: list[str] = []
        self.read_map: list[list] = []

    def add(self, program, gbuf, reads, rmap, kind):
        self.windows.append(Window(program, gbuf, reads))
        self.read_map.append(rmap)
        self.kinds.append(kind)


def _program(cfg: Config, net, blocks, rram, em: _Windows):
    """Programming windows: ``PROGRAM_ROWS`` rows to each tile in turn, only rows that must change."""
    rows = []                                       # (tile, row, weights int [cols])
    for b in blocks:
        W = net.layers[b.layer].w
        for r in range(b.krows):
            want = np.zeros(cfg.cols, dtype=np.int64)
            want[:b.ncols] = W[b.kb * cfg.rows + r, b.nb * cfg.cols:b.nb * cfg.cols + b.ncols]
            if rram is not None and np.array_equal(rram[b.tile[1], b.tile[0], r], want):
                continue
            rows.append((b.tile, r, want))
            if rram is not None:
                rram[b.tile[1], b.tile[0], r] = want
    program_rows(cfg, rows, em)


def program_rows(cfg: Config, rows, em: _Windows):
    """Programming windows for ``rows`` (``(tile, RRAM row, weights int [cols])``): runs of up to
    ``PROGRAM_ROWS`` consecutive rows of one bank (one ``ldw`` each), tiles in turn, as many a window as
    the instruction memory and the global buffer hold."""
    if not rows:
        return
    per_tile: dict = {}
    for t, r, w in rows:
        per_tile.setdefault(t, []).append((r, w))
    groups = []
    for t, lst in per_tile.items():
        run = []
        for r, w in lst:
            if run and (r != run[-1][0] + 1 or len(run) == PROGRAM_ROWS or r % cfg.rows == 0):
                groups.append((t, run))
                run = []
            run.append((r, w))
        groups.append((t, run))
    queues = {}
    for t, run in groups:
        queues.setdefault(t, []).append(run)
    order = []
    while any(queues.values()):
        for t in list(queues):
            if queues[t]:
                order.append((t, queues[t].pop(0)))
    ww = cfg.words_w
    room_instr = cfg.imem_depth - 2 - cfg.tiles
    prog, gbuf, addr = [], {}, 0
    for t, run in order:
        if addr + len(run) * ww > cfg.gbuf_words or len(prog) + 1 > room_instr:
            _close_program(prog, gbuf, em)
            prog, gbuf, addr = [], {}, 0
        words = []
        for _, w in run:
            words += pack_vector(w, cfg.wbits, cfg.flit_width)
        gbuf[addr] = words
        bank, row = divmod(run[0][0], cfg.rows)
        prog.append(encode("ldw", tx=t[0], ty=t[1], row=row, count=len(run), gaddr=addr, bank=bank))
        addr += len(words)
    _close_program(prog, gbuf, em)


def _close_program(prog, gbuf, em: _Windows):
    """A programming window: its ``ldw`` s, then a ``sync`` to each tile they program and a ``barrier``
    (the writes end inside the window, so its cycles are all the programming there is)."""
    from ..isa import decode
    tiles = sorted({(decode(w).ops["tx"], decode(w).ops["ty"]) for w in prog}, key=lambda p: (p[1], p[0]))
    em.add(prog + [encode("sync", tx=x, ty=y) for x, y in tiles] + [encode("barrier"), encode("halt")],
           gbuf, [], [], "program")


def compile_net(cfg: Config, net, X, rram: np.ndarray | None = None, chunk: int | None = None,
                replicas: int | None = None) -> NetPlan:
    """The resident pipeline of ``net`` on ``X`` (int8 [batch, in]), or :class:`NotResident`.

    ``rram`` (int64 [mesh_y, mesh_x, rows, cols]): what the rows hold now (a kept chip); rows holding
    their weights are not written, and the plan's ``rram`` is what they hold after. ``chunk``: most
    vectors an inference window (default: what fits the global buffer). ``replicas``: copies of the
    network on the tiles (default: of the counts that fit the tiles, the feed channels, the global
    buffer and the instruction memory, the one :func:`estimate_cycles` finds fastest); each copy runs a
    share of every window's vectors, so a network on at most half the tiles can run on all of them.
    """
    X = np.asarray(X)
    if any(getattr(L, "conv", None) is not None for L in net.layers):
        raise NotResident("convolution layers run layer by layer (their windows are made on the host)")
    if any(getattr(L, "rq", None) is not None for L in net.layers) and not cfg.has_requant:
        raise NotResident(f"config '{cfg.name}' has no requant unit for the network's requantized layers")
    if replicas is not None:
        return _compile(cfg, net, X, rram, chunk, replicas)
    blocks1 = placement(cfg, net)                       # one copy must fit (else NotResident, and why)
    first1 = sum(b.layer == 0 for b in blocks1)
    most = min(cfg.tiles // len(blocks1), cfg.feed_channels // first1, max(1, X.shape[0]))
    best, best_cycles = None, None
    for r in range(1, most + 1):
        try:
            plan = _compile(cfg, net, X, rram, chunk, r)
        except NotResident:
            if r == 1:
                raise
            break
        cycles = estimate_cycles(plan)
        if best is None or cycles < best_cycles:
            best, best_cycles = plan, cycles
    return best


def estimate_cycles(plan: NetPlan) -> float:
    """A plan's inference cycles, estimated (to choose the number of replicas, not to report): per window
    the controller's packets before the feed (descriptors, biases, channels), the window's steps at the
    pipeline's limit (:func:`~.analysis.pipeline_limit`: a step is a vector on every replica), and the
    pipeline's fill (each layer and chain link a macro pass and a packet)."""
    from .analysis import pipeline_limit
    cfg = plan.cfg
    lim = pipeline_limit(plan)
    step = lim["cycles_per_vector"] * plan.replicas
    depth = len({b.layer for b in plan.blocks}) + max(b.kb for b in plan.blocks)
    fill = depth * (cfg.steps + 2 + cfg.words_a)
    total = 0.0
    for m, seqs, biases, chans in plan.window_steps:
        total += seqs * (2 + cfg.seq_words) + biases * (2 + cfg.words_a) + chans + m * step + fill
    return total


def _compile(cfg: Config, net, X, rram, chunk, r: int) -> NetPlan:
    """:func:`compile_net` with ``r`` replicas."""
    blocks = placement(cfg, net, r)
    streams = _streams(cfg, net, blocks)
    check_streams(cfg, blocks, streams)
    rram = None if rram is None else np.array(rram, dtype=np.int64, copy=True)
    em = _Windows(cfg)
    _program(cfg, net, blocks, rram, em)
    W = cfg.flit_width
    first = [b for b in blocks if b.layer == 0]
    ends = sorted([b for b in blocks if streams[b.tile]["op"] in (SeqOp.OUT_CTRL, SeqOp.OUTQ_CTRL)],
                  key=lambda b: (b.rep, b.nb))
    in_words = {b.tile: cfg.vector_words(b.krows, cfg.xbits) for b in first}
    out_words = {b.tile: streams[b.tile]["gstep"] for b in ends}
    seq_base = 0
    bias_base = seq_base + len(blocks) * cfg.seq_words
    chain_ends = [b for b in blocks if streams[b.tile]["op"] in (SeqOp.XS_TILE, SeqOp.OUT_CTRL, SeqOp.OUTQ_CTRL)]
    rq_ends = [b for b in chain_ends if streams[b.tile]["rq"]]
    rq_base = bias_base + len(chain_ends) * cfg.words_a
    data_base = rq_base + len(rq_ends) * 2 * cfg.words_a
    per_step = sum(in_words.values()) + sum(out_words.values())        # a vector on every replica
    room = (cfg.gbuf_words - data_base) // per_step
    if room < 1:
        raise NotResident("the global buffer cannot hold the descriptors and one vector's inputs and outputs")
    n_chunk = min(room * r, FEED_MAX * r, chunk or FEED_MAX * r)
    batch, pad, steps = X.shape[0], 0, []
    for v0 in range(0, batch, n_chunk):
        n = min(n_chunk, batch - v0)
        rw = min(r, n)                               # replicas this window: each ``m`` vectors
        m = -(-n // rw)
        pad += m * rw - n
        prog, gbuf = [], {}
        if v0 == 0:                                  # biases: volatile registers, loaded once a run
            for k, b in enumerate(chain_ends):
                bias = np.zeros(cfg.cols, dtype=np.int64)
                c0 = b.nb * cfg.cols
                bias[:b.ncols] = net.layers[b.layer].b[c0:c0 + b.ncols]
                gbuf[bias_base + k * cfg.words_a] = pack_vector(bias, cfg.acc_bits, W)
                prog.append(encode("ldbias", tx=b.tile[0], ty=b.tile[1], gaddr=bias_base + k * cfg.words_a))
            for k, b in enumerate(rq_ends):          # and the requant vectors
                a = rq_base + k * 2 * cfg.words_a
                gbuf[a] = pack_rq(cfg, *net.layers[b.layer].rq.words(cfg.xbits), b.nb * cfg.cols, b.ncols)
                prog.append(encode("ldrq", tx=b.tile[0], ty=b.tile[1], gaddr=a))
        addr = data_base
        chans = []
        share = {q: (v0 + q * m, max(0, min(m, n - q * m))) for q in range(rw)}   # replica: (first, valid)
        for b in first:
            if b.rep >= rw:
                continue
            words = in_words[b.tile]
            a, nv = share[b.rep]
            xs = np.zeros((m, b.krows), dtype=np.int64)
            xs[:nv] = X[a:a + nv, b.kb * cfg.rows:b.kb * cfg.rows + b.krows]
            gbuf[addr] = [w for row in xs for w in pack_vector(row, cfg.xbits, W)]
            chans.append(encode("chan", tx=b.tile[0], ty=b.tile[1], c=len(chans), words=words,
                                credits=streams[b.tile]["ring"], gaddr=addr))
            addr += m * words
        reads, rmap, out_at = [], [], {}
        for b in ends:
            if b.rep >= rw:
                continue
            words = out_words[b.tile]
            a, nv = share[b.rep]
            out_at[b.tile] = addr
            if nv:
                reads.append((addr, nv * words))
                rmap.append((a, nv, b.nb * cfg.cols, b.ncols, words,
                             cfg.xbits if streams[b.tile]["op"] == SeqOp.OUTQ_CTRL else cfg.acc_bits))
            addr += m * words
        for k, b in enumerate(blocks):
            if b.rep >= rw:
                continue
            d = dict(streams[b.tile], count=m, gaddr=out_at.get(b.tile, 0))
            a = seq_base + k * cfg.seq_words
            gbuf[a] = seq_packet_words(cfg, **d)
            prog.append(encode("ldseq", tx=b.tile[0], ty=b.tile[1], gaddr=a))
        prog += [encode("barrier")] + chans + [encode("feed", count=m, expect=m * len(out_at)),
                                               encode("barrier"), encode("halt")]
        if len(prog) > cfg.imem_depth:
            raise NotResident(f"an inference window needs {len(prog)} instructions, the chip holds "
                              f"{cfg.imem_depth}")
        em.add(prog, gbuf, reads, rmap, "inference")
        steps.append((m, sum(b.rep < rw for b in blocks), len(chain_ends) + 2 * len(rq_ends) if v0 == 0 else 0,
                      len(chans)))
    macs = batch * sum(L.w.shape[0] * L.w.shape[1] for L in net.layers)
    return NetPlan(cfg, batch, net.layers[-1].w.shape[1], em.windows, em.read_map, blocks, streams, macs,
                   em.kinds, rram, r, pad, steps)
