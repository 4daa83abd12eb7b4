"""A whole int8 MLP resident in the banks of a banked chip (``banks`` > 1), run layer after layer.

The memory-wall flow (docs/energy.md, "The memory wall, measured"): every weight of the network stays
in RRAM, in the banks of the tiles' macros, and an inference moves only activations.

Placement
---------
Layer ``L`` (``K x N``) is cut into ``Kb x Nb`` blocks of ``rows x cols`` (``rows == cols``, so that
one layer's output vectors are the next one's input vectors). Its N-blocks are shared out over the
tiles in contiguous runs (the tiles with the fewest banks used so far take the larger shares), and a
tile holds all ``Kb`` K-blocks of each of its N-blocks in consecutive banks: N-block ``n`` of the
tile's run, K-block ``k``, is bank ``base + n * Kb + k``. One ``mvm reduce=1`` then runs an input
row through the ``Kb`` banks of an N-block and sums the K reduction in one accumulator slot: no
partial sum leaves a tile. A network whose blocks need more banks than a tile has is refused
(:class:`NotBanked`).

Schedule
--------
The batch goes in windows of ``mc`` rows (as many as the instruction memory and the global buffer
hold). In a window, layer after layer, for each row and each group of the tile's N-blocks that the
accumulators hold: the tile takes the row's input vectors (``ldact``, in K-chunks of at most
``tile_ibuf_depth`` slots, ``LDACT_RUN`` vectors an instruction), then for each N-block one ``mvm
reduce=1`` a chunk (``acc=1`` after the first chunk), then the group's slice of the bias into the
accumulators (``ldpsum``; the tiles' bias registers are loaded with zeros once a window) and the
results out: one ``outq`` for the group (hidden layers: int8 into the next layer's input row in the
global buffer) or an ``out`` a block (the last layer: int32 for the host). Each tile's
instructions form a queue, and the controller takes one instruction from each tile's queue in turn,
so that it never waits on one busy tile with the others' work behind it. A layer ends with a ``sync``
to each of its tiles and a ``barrier``: the next layer's inputs are in the global buffer.

Global buffer of a window: a zero vector and the biases (written by the host in the first inference
window; the global buffer persists between windows), the rows' activations of every layer, one region each
(``[row][k-block]`` vectors of ``words_x`` words), and the output (``[n-block][row]``, ``words_a``
words a vector, read by the host).

Pure Python and numpy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..config import Config
from ..encoding import pack_vector
from ..isa import COUNT_MAX, decode, encode
from .net import _Windows, program_rows, read_outputs
from .plan import Window

__all__ = ["BankedPlan", "NotBanked", "compile_banked", "bank_placement"]

LDACT_RUN = 4           # input vectors an ldact of the banked flow sends (tiles in turn)


class NotBanked(ValueError):
    """The network cannot run resident in the banks; the message says why."""


@dataclass
class Share:
    """A tile's share of a layer: N-blocks ``n0 .. n0+nb-1``, each with the layer's ``kb`` K-blocks in
    consecutive banks from ``bank0``."""
    layer: int
    tile: tuple
    n0: int
    nb: int
    bank0: int
    kb: int

    def bank(self, n: int, k: int) -> int:
        """The bank of the share's N-block ``n`` (global index), K-block ``k``."""
        return self.bank0 + (n - self.n0) * self.kb + k

    @property
    def bank_end(self) -> int:
        """One past the share's last bank."""
        return self.bank0 + self.nb * self.kb


@dataclass
class BankedPlan:
    """A compiled banked network: windows (programming first), and ``Y`` from what the host reads.

    ``read_map[w]``: per read of window ``w``, ``(v0, n, c0, nc, words)`` (as
    :class:`~.net.NetPlan`'s). ``shares``: every tile's share of every layer. ``rram``: the RRAM rows'
    weights after the plan (int64 [mesh_y, mesh_x, rram_rows, cols])."""
    cfg: Config
    batch: int
    outputs: int
    windows: list[Window]
    read_map: list[list[tuple]]
    shares: list[Share]
    macs: int
    window_kinds: list[str] = field(default_factory=list)
    rram: np.ndarray | None = field(default=None, repr=False)
    rows_per_window: int = 0

    def result(self, read_words) -> np.ndarray:
        """``Y`` int32 [batch, outputs] from ``read_words[w][r]``."""
        return read_outputs(self.cfg, self.batch, self.outputs, self.windows, self.read_map, read_words)


def _blocks(n: int, size: int) -> int:
    return -(-n // size)


def bank_placement(cfg: Config, shapes) -> list[Share]:
    """The shares of layers of weight ``shapes`` ([(K, N)]) on the tiles, or :class:`NotBanked`."""
    if cfg.banks < 2:
        raise NotBanked(f"config '{cfg.name}' has one bank a macro (banks = 1)")
    if cfg.rows != cfg.cols:
        raise NotBanked(f"the banked flow needs rows == cols (a layer's outputs are the next one's input "
                        f"vectors); config '{cfg.name}' has {cfg.rows}x{cfg.cols}")
    order = [(x, y) for y in range(cfg.mesh_y) for x in range(cfg.mesh_x)]
    used = {t: 0 for t in order}
    shares = []
    for i, (K, N) in enumerate(shapes):
        kb, nb = _blocks(K, cfg.rows), _blocks(N, cfg.cols)
        tiles = sorted(order, key=lambda t: (used[t], order.index(t)))[:min(nb, cfg.tiles)]
        base, extra = divmod(nb, len(tiles))
        n0 = 0
        for j, t in enumerate(tiles):
            cnt = base + (j < extra)
            shares.append(Share(i, t, n0, cnt, used[t], kb))
            used[t] += cnt * kb
            n0 += cnt
    need = max(used.values())
    if need > cfg.banks:
        total = sum(_blocks(K, cfg.rows) * _blocks(N, cfg.cols) for K, N in shapes)
        raise NotBanked(f"the network's {total} blocks of {cfg.rows}x{cfg.cols} need {need} banks in a tile; "
                        f"config '{cfg.name}' has {cfg.banks} banks in each of {cfg.tiles} tiles")
    return shares


def _program(cfg: Config, net, shares, rram, em: _Windows):
    """Programming windows: the rows of every share that do not hold their weights yet."""
    rows = []
    for s in shares:
        W = net.layers[s.layer].w
        K, N = W.shape
        kb = s.kb
        for n in range(s.n0, s.n0 + s.nb):
            c0, nc = n * cfg.cols, min(cfg.cols, N - n * cfg.cols)
            for k in range(kb):
                for r in range(min(cfg.rows, K - k * cfg.rows)):
                    row = s.bank(n, k) * cfg.rows + r
                    want = np.zeros(cfg.cols, dtype=np.int64)
                    want[:nc] = W[k * cfg.rows + r, c0:c0 + nc]
                    y, x = s.tile[1], s.tile[0]
                    if rram is not None and np.array_equal(rram[y, x, row], want):
                        continue
                    rows.append((s.tile, row, want))
                    if rram is not None:
                        rram[y, x, row] = want
    program_rows(cfg, rows, em)


class _Layout:
    """The global buffer of an inference window of ``mc`` rows."""

    def __init__(self, cfg: Config, net, mc: int):
        wx, wa = cfg.words_x, cfg.words_a
        self.kb = [_blocks(L.w.shape[0], cfg.rows) for L in net.layers]
        self.nb = [_blocks(L.w.shape[1], cfg.cols) for L in net.layers]
        self.zero = 0                     # a zero accumulator vector (the tiles' bias register)
        addr = wa
        self.bias = []
        for nb in self.nb:
            self.bias.append(addr)
            addr += nb * wa
        self.act = []                     # layer i's input rows: [row][k-block]
        for kb in self.kb:
            self.act.append(addr)
            addr += mc * kb * wx
        self.out = addr                   # the last layer's output: [n-block][row]
        addr += self.nb[-1] * mc * wa
        self.words = addr


def _tile_ops(cfg: Config, net, shares, lay: _Layout, layer: int, rows: int) -> dict:
    """Each tile's instructions of ``layer`` for ``rows`` rows, in its order."""
    L = net.layers[layer]
    kb = lay.kb[layer]
    last = layer == len(net.layers) - 1
    chunk = min(cfg.tile_ibuf_depth, COUNT_MAX)            # input vectors of a reduction
    group_max = min(cfg.tile_acc_depth, COUNT_MAX)         # N-blocks in the accumulators at once
    ops = {}
    for s in (s for s in shares if s.layer == layer):
        q = ops.setdefault(s.tile, [])
        x, y = s.tile
        groups = [list(range(s.n0 + g, min(s.n0 + s.nb, s.n0 + g + group_max))) for g in range(0, s.nb, group_max)]
        for m in range(rows):
            for group in groups:
                for k0 in range(0, kb, chunk):
                    kc = min(chunk, kb - k0)
                    for a in range(0, kc, LDACT_RUN):
                        cnt = min(LDACT_RUN, kc - a)
                        q.append(encode("ldact", tx=x, ty=y, slot=a, count=cnt,
                                        gaddr=lay.act[layer] + (m * kb + k0 + a) * cfg.words_x))
                    for j, n in enumerate(group):
                        q.append(encode("mvm", tx=x, ty=y, a=0, count=kc, b=j, acc=int(k0 > 0),
                                        bank=s.bank(n, k0), reduce=1))
                # the bias into the accumulators, then the group's results out in one instruction
                q.append(encode("ldpsum", tx=x, ty=y, slot=0, count=len(group),
                                gaddr=lay.bias[layer] + group[0] * cfg.words_a))
                if last:
                    for j, n in enumerate(group):
                        q.append(encode("out", tx=x, ty=y, b=j, count=1, gaddr=lay.out + (n * rows + m) * cfg.words_a))
                else:
                    q.append(encode("outq", tx=x, ty=y, b=0, count=len(group), shift=L.shift, relu=L.relu,
                                    gaddr=lay.act[layer + 1] + (m * lay.kb[layer + 1] + group[0]) * cfg.words_x))
    return ops


def _costs(cfg: Config, word: int) -> tuple[int, int]:
    """``(flits the controller sends, cycles the tile is busy)`` of an instruction, roughly (for ordering only:
    a tile takes a packet's flits one a cycle, plus one to act on it; an MVM is ``steps`` cycles a vector)."""
    ins = decode(word)
    n = ins.ops.get("count", 1)
    if ins.name == "ldact":
        return n * (2 + cfg.words_x), n * (3 + cfg.words_x)
    if ins.name in ("ldbias", "ldpsum"):
        return n * (2 + cfg.words_a), n * (3 + cfg.words_a)
    cmd = 1 + cfg.cmd_words
    if ins.name == "mvm":
        return cmd, cmd + 1 + n * cfg.steps + 3
    words = cfg.words_a if ins.name == "out" else cfg.words_q
    return cmd, cmd + 1 + n * (2 + words)


def _interleave(cfg: Config, ops: dict) -> list[int]:
    """The tiles' queues merged in the order the tiles are estimated to be ready for their next instruction:
    the controller sends one packet at a time, and a packet for a busy tile holds up those behind it, so
    each goes when its tile will take it (a list schedule over :func:`_costs`: of the tiles ready, the one whose
    instruction keeps it busy longest for its flits, such as an ``mvm`` after its inputs; else the first
    ready). Each tile's own order is kept."""
    tiles = list(ops)
    pos = dict.fromkeys(tiles, 0)
    ready = dict.fromkeys(tiles, 0)
    clock, out = 0, []
    while True:
        live = [t for t in tiles if pos[t] < len(ops[t])]
        if not live:
            return out
        cost = {t: _costs(cfg, ops[t][pos[t]]) for t in live}
        now = [t for t in live if ready[t] <= clock]
        if now:         # of the tiles waiting, the one whose instruction gives the most work for its flits
            t = max(now, key=lambda t: (cost[t][1] / cost[t][0], -tiles.index(t)))
        else:           # else the first to be done
            t = min(live, key=lambda t: (ready[t], tiles.index(t)))
        flits, busy = cost[t]
        out.append(ops[t][pos[t]])
        pos[t] += 1
        start = max(clock, ready[t] - cfg.noc_fifo_depth)
        clock = start + flits
        ready[t] = max(ready[t], start + 2) + busy


def _window(cfg: Config, net, shares, X, m0: int, rows: int, first: bool) -> tuple[Window, list]:
    """The inference window of rows ``m0 .. m0+rows-1`` of ``X``: its program, words and reads."""
    lay = _Layout(cfg, net, rows)
    # outq and out add the tile's bias register: zero (the bias goes into the accumulators, ldpsum)
    prog = [encode("ldbias", tx=t[0], ty=t[1], gaddr=lay.zero) for t in sorted({s.tile for s in shares})]
    for i in range(len(net.layers)):
        ops = _tile_ops(cfg, net, shares, lay, i, rows)
        prog += _interleave(cfg, ops)
        prog += [encode("sync", tx=t[0], ty=t[1]) for t in ops] + [encode("barrier")]
    prog.append(encode("halt"))
    gbuf = {}
    if first:
        words = [0] * cfg.words_a
        for L, nb in zip(net.layers, lay.nb):
            b = np.zeros(nb * cfg.cols, dtype=np.int64)
            b[:L.b.size] = L.b
            for n in range(nb):
                words += pack_vector(b[n * cfg.cols:(n + 1) * cfg.cols], cfg.acc_bits, cfg.flit_width)
        gbuf[0] = words
    xin = []
    kb0 = lay.kb[0]
    for m in range(rows):
        v = np.zeros(kb0 * cfg.rows, dtype=np.int64)
        v[:X.shape[1]] = X[m0 + m]
        for k in range(kb0):
            xin += pack_vector(v[k * cfg.rows:(k + 1) * cfg.rows], cfg.xbits, cfg.flit_width)
    gbuf[lay.act[0]] = xin
    N = net.outputs
    reads, rmap = [], []
    for n in range(lay.nb[-1]):
        reads.append((lay.out + n * rows * cfg.words_a, rows * cfg.words_a))
        rmap.append((m0, rows, n * cfg.cols, min(cfg.cols, N - n * cfg.cols), cfg.words_a))
    return Window(prog, gbuf, reads), rmap


def _instructions(cfg: Config, net, shares, rows: int) -> int:
    lay = _Layout(cfg, net, rows)
    n = 1 + len({s.tile for s in shares})
    for i in range(len(net.layers)):
        ops = _tile_ops(cfg, net, shares, lay, i, rows)
        n += sum(len(q) for q in ops.values()) + len(ops) + 1
    return n


def compile_banked(cfg: Config, net, X, rram: np.ndarray | None = None) -> BankedPlan:
    """The banked plan of ``net`` on ``X`` (int8 [batch, in]), or :class:`NotBanked`.

    ``rram`` (int64 [mesh_y, mesh_x, rram_rows, cols]): what the rows hold now (a kept chip); rows holding
    their weights already are not programmed, and the plan's ``rram`` is what they hold after it."""
    X = np.asarray(X)
    if any(getattr(L, "conv", None) is not None or getattr(L, "rq", None) is not None for L in net.layers):
        raise NotBanked("the banked flow has no convolution or per-column requant yet")
    shapes = [L.w.shape for L in net.layers]
    shares = bank_placement(cfg, shapes)
    batch = X.shape[0]
    if batch < 1:
        raise NotBanked("an empty batch")
    # the most rows a window holds: the instruction memory and the global buffer decide
    mc = 0
    lo, hi = 1, batch
    while lo <= hi:
        mid = (lo + hi) // 2
        if _Layout(cfg, net, mid).words <= cfg.gbuf_words and _instructions(cfg, net, shares, mid) <= cfg.imem_depth:
            mc, lo = mid, mid + 1
        else:
            hi = mid - 1
    if mc == 0:
        lay, n = _Layout(cfg, net, 1), _instructions(cfg, net, shares, 1)
        raise NotBanked(f"one input row needs {n} instructions and {lay.words} global-buffer words; config "
                        f"'{cfg.name}' has imem_depth {cfg.imem_depth} and gbuf_words {cfg.gbuf_words}")
    em = _Windows(cfg)
    rr = None if rram is None else np.array(rram, dtype=np.int64)
    _program(cfg, net, shares, rr, em)
    for m0 in range(0, batch, mc):
        win, rmap = _window(cfg, net, shares, X, m0, min(mc, batch - m0), m0 == 0)
        em.add(win.program, win.gbuf, win.reads, rmap, "inference")
    macs = batch * sum(K * N for K, N in shapes)
    return BankedPlan(cfg, batch, net.outputs, em.windows, em.read_map, shares, macs, em.kinds, rr, mc)
