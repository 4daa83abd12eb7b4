"""Random chip programs for verification: race-free, so every backend must agree on everything.

:func:`random_program` draws, from a seed, a global-buffer image (weight
rows, activation vectors, partial sums, biases) and a program that uses
every instruction on every tile: row programming (also between MVMs, so
RRAM is reprogrammed between passes), loads, MVMs that overwrite or
accumulate, readback, raw and post-processed outputs with random shifts and
ReLU, partial sums sent between tiles, syncs, barriers and nops. It keeps the
rules of docs/isa.md that make a program's result independent of timing:
outputs go to global-buffer words that nothing reads, and a ``barrier``
follows every ``psum``. It ends with a ``sync`` to every tile, a ``barrier``
and ``halt``.

Pure Python and numpy: no Amaranth or cocotb here.
"""

from __future__ import annotations

import numpy as np

from .encoding import pack_vector
from .config import Config
from .requant import multiplier_parts, rq_words

__all__ = ["random_program", "ksplit_program", "requant_program"]


def _rand_vec(rng, n, bits, extreme=0.15):
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    v = rng.integers(lo, hi + 1, size=n)
    m = rng.random(n) < extreme
    v[m] = rng.choice([lo, hi], size=int(m.sum()))
    return v


def random_program(cfg: Config, seed: int, steps: int = 40) -> tuple[str, dict]:
    """``(assembly text, {gbuf address: words})`` for a random race-free program."""
    rng = np.random.default_rng(seed)
    W = cfg.flit_width
    gbuf: dict[int, list[int]] = {}
    addr = 0

    def region(n, words, bits, elems, acc_range=None):
        nonlocal addr
        base = addr
        for i in range(n):
            if acc_range is not None:
                v = rng.integers(-acc_range, acc_range + 1, size=elems)
            else:
                v = _rand_vec(rng, elems, bits)
            gbuf[addr] = pack_vector(v, bits, W)
            addr += words
        return base

    n_w = max(2, min(2 * cfg.rows, cfg.gbuf_words // (8 * cfg.words_w)))
    n_x = max(2, min(16, cfg.gbuf_words // (8 * cfg.words_x)))
    n_p = max(1, min(6, cfg.gbuf_words // (16 * cfg.words_a)))
    w_base = region(n_w, cfg.words_w, cfg.wbits, cfg.cols)
    x_base = region(n_x, cfg.words_x, cfg.xbits, cfg.rows)
    p_base = region(n_p, cfg.words_a, cfg.acc_bits, cfg.cols, acc_range=1 << 20)
    b_base = region(2, cfg.words_a, cfg.acc_bits, cfg.cols, acc_range=1 << 16)
    rq_base = None
    if cfg.has_requant:             # two requant vectors: random multipliers (powers of two among them: ties)
        rq_base = addr
        for _ in range(2):
            M = np.float32(2.0) ** rng.uniform(-16, -2, cfg.cols).astype(np.float32)
            M = np.where(rng.random(cfg.cols) < 0.3, np.float32(2.0) ** -rng.integers(2, 16, cfg.cols), M)
            mm, ss = multiplier_parts(M.astype(np.float32))
            lim = 1 << (cfg.xbits - 1)
            lo = rng.integers(-lim, lim, cfg.cols)
            hi = np.maximum(lo, rng.integers(-lim, lim, cfg.cols))
            lo, hi = np.where(rng.random(cfg.cols) < 0.5, -lim, lo), np.where(rng.random(cfg.cols) < 0.5, lim - 1, hi)
            for e in rq_words(mm, ss, rng.integers(0, 2, cfg.cols), rng.integers(-lim, lim, cfg.cols), lo, hi,
                              cfg.xbits):
                gbuf[addr] = pack_vector(e, cfg.acc_bits, W)
                addr += cfg.words_a
    out_ptr = addr
    tiles = [(x, y) for y in range(cfg.mesh_y) for x in range(cfg.mesh_x)]
    IB, AC = cfg.tile_ibuf_depth, cfg.tile_acc_depth
    lines = []

    def tile():
        t = tiles[rng.integers(len(tiles))]
        return f"{t[0]},{t[1]}"

    def span(depth, cap=4):
        n = int(rng.integers(1, min(cap, depth) + 1))
        return int(rng.integers(0, depth - n + 1)), n

    # every tile gets weights first, so every tile computes something
    for t in tiles:
        rows = min(cfg.rows, n_w)
        r0 = int(rng.integers(0, cfg.rows - rows + 1))
        g = w_base + int(rng.integers(0, n_w - rows + 1)) * cfg.words_w
        lines.append(f"ldw {t[0]},{t[1]} row={r0} count={rows} gaddr={g}")
    # load -> (its first-slot operand, slots, most vectors at once, vectors in the region, region, words)
    loads = {"ldw": ("row", cfg.rows, 3, n_w, w_base, cfg.words_w),
             "ldact": ("slot", IB, 4, n_x, x_base, cfg.words_x),
             "ldpsum": ("slot", AC, 4, n_p, p_base, cfg.words_a)}
    ops = ["ldw", "ldact", "ldact", "ldbias", "ldpsum", "mvm", "mvm", "mvm", "read", "out", "outq",
           "outq", "psum", "sync", "barrier", "nop"] + (["ldrq", "outq"] if cfg.has_requant else [])
    for _ in range(steps):
        op = ops[rng.integers(len(ops))]
        t = tile()
        if op in loads:
            key, depth, cap, have, base, words = loads[op]
            s, n = span(depth, cap)
            n = min(n, have)
            g = base + int(rng.integers(0, have - n + 1)) * words
            lines.append(f"{op} {t} {key}={s} count={n} gaddr={g}")
        elif op == "ldbias":
            lines.append(f"ldbias {t} gaddr={b_base + int(rng.integers(0, 2)) * cfg.words_a}")
        elif op == "ldrq":
            lines.append(f"ldrq {t} gaddr={rq_base + int(rng.integers(0, 2)) * 2 * cfg.words_a}")
        elif op == "mvm":
            a, n = span(IB)
            b = int(rng.integers(0, AC - n + 1))
            lines.append(f"mvm {t} a={a} count={n} b={b} acc={int(rng.integers(0, 2))}")
        elif op == "read":
            lines.append(f"read {t} row={int(rng.integers(0, cfg.rows))} b={int(rng.integers(0, AC))}")
        elif op in ("out", "outq"):
            b, n = span(AC)
            words = cfg.words_a if op == "out" else cfg.words_q
            if out_ptr + n * words > cfg.gbuf_words:
                continue
            if op == "out":
                lines.append(f"out {t} b={b} count={n} gaddr={out_ptr} bias={int(rng.integers(0, 2))}")
            else:
                rq = int(rng.integers(0, 2)) if cfg.has_requant else 0
                lines.append(f"outq {t} b={b} count={n} gaddr={out_ptr} shift={int(rng.integers(0, 32))} "
                             f"relu={int(rng.integers(0, 2))}" + (" rq=1" if rq else ""))
            out_ptr += n * words
        elif op == "psum":
            b, n = span(AC)
            d = int(rng.integers(0, AC - n + 1))
            others = [u for u in tiles if f"{u[0]},{u[1]}" != t]
            if not others:
                continue
            u = others[rng.integers(len(others))]
            lines.append(f"psum {t} b={b} count={n} dx={u[0]} dy={u[1]} d={d}")
            lines.append("barrier")
        elif op == "sync":
            lines.append(f"sync {t}")
        else:
            lines.append(op)
    for t in tiles:
        lines.append(f"sync {t[0]},{t[1]}")
    lines += ["barrier", "halt"]
    return "\n".join(lines) + "\n", gbuf


def ksplit_program(cfg: Config, seed: int, m: int = 3, shift: int = 9, relu: int = 1,
                   gaddr: int = 0) -> tuple[str, dict, dict]:
    """A GEMM ``C = A @ B`` with K split over every tile, partial sums chained tile to tile.

    ``A`` is int ``xbits`` [m, T*rows], ``B`` int ``wbits`` [T*rows, cols] (``T`` tiles):
    tile ``t`` holds rows ``t*rows..`` of ``B`` and multiplies its slice of ``A``; each
    tile's partial sums go (``psum``) to the next tile, which adds its own; the last tile
    sends ``C`` raw (int ``acc_bits``) and requantized (bias, ``shift``, clamp, ``relu``).
    Returns ``(assembly, {gbuf address: words}, reference)``: ``reference`` holds ``A``,
    ``B``, ``bias`` and the global-buffer addresses of the two outputs (``c_addr``, ``q_addr``).
    """
    rng = np.random.default_rng(seed)
    W = cfg.flit_width
    tiles = [(x, y) for y in range(cfg.mesh_y) for x in range(cfg.mesh_x)]
    T, R = len(tiles), cfg.rows
    m = min(m, cfg.tile_ibuf_depth, cfg.tile_acc_depth)
    A = np.stack([_rand_vec(rng, T * R, cfg.xbits) for _ in range(m)])
    B = np.stack([_rand_vec(rng, cfg.cols, cfg.wbits) for _ in range(T * R)])
    bias = rng.integers(-(1 << 12), 1 << 12, size=cfg.cols)
    gbuf, addr = {}, gaddr
    w_addr = addr
    for r in range(T * R):
        gbuf[addr] = pack_vector(B[r], cfg.wbits, W)
        addr += cfg.words_w
    x_addr = addr
    for t in range(T):
        for i in range(m):
            gbuf[addr] = pack_vector(A[i, t * R:(t + 1) * R], cfg.xbits, W)
            addr += cfg.words_x
    b_addr = addr
    gbuf[addr] = pack_vector(bias, cfg.acc_bits, W)
    addr += cfg.words_a
    c_addr = addr
    q_addr = c_addr + m * cfg.words_a
    end = q_addr + m * cfg.words_q
    if end > cfg.gbuf_words:
        raise ValueError(f"ksplit_program needs {end} global-buffer words; {cfg.name} has {cfg.gbuf_words}")
    lines = []
    for t, (x, y) in enumerate(tiles):
        lines += [f"ldw {x},{y} row=0 count={R} gaddr={w_addr + t * R * cfg.words_w}",
                  f"ldact {x},{y} slot=0 count={m} gaddr={x_addr + t * m * cfg.words_x}",
                  f"mvm {x},{y} a=0 count={m} b=0 acc=0"]
    for t in range(T - 1):
        (x, y), (u, v) = tiles[t], tiles[t + 1]
        # the next tile's own products are in place once it answers a sync
        lines += [f"sync {u},{v}", "barrier", f"psum {x},{y} b=0 count={m} dx={u} dy={v} d=0", "barrier"]
    x, y = tiles[-1]
    lines += [f"ldbias {x},{y} gaddr={b_addr}",
              f"out {x},{y} b=0 count={m} gaddr={c_addr}",
              f"outq {x},{y} b=0 count={m} gaddr={q_addr} shift={shift} relu={relu}",
              f"sync {x},{y}", "barrier", "halt"]
    ref = dict(A=A, B=B, bias=bias, c_addr=c_addr, q_addr=q_addr, m=m)
    return "\n".join(lines) + "\n", gbuf, ref


def requant_program(cfg: Config, seed: int, gaddr: int = 0) -> tuple[str, dict, dict]:
    """Post-processing at every shift 0..31, ReLU off and on, at its rounding ties.

    For each shift ``s`` the accumulators are set exactly (an ``mvm`` of zero
    vectors clears them, ``ldpsum`` adds the test values) to values whose sum with
    the tile's bias ``a`` lies at, just below and just above a rounding tie
    (``k * 2**s + 2**(s-1) + d``, ``d`` in -1, 0, 1), at the ``acc_bits``
    extremes, and anywhere; ``k`` spans the clamp range and beyond. Then ``outq``
    with ReLU off and on; the shifts are spread over the tiles. ``out`` with the
    bias sends the last accumulators raw. Returns ``(assembly, gbuf, reference)``:
    ``reference["cases"]`` lists ``(tile, shift, relu, gaddr, acc vectors, bias)``
    for every ``outq``.
    """
    rng = np.random.default_rng(seed)
    W, A = cfg.flit_width, cfg.acc_bits
    tiles = [(x, y) for y in range(cfg.mesh_y) for x in range(cfg.mesh_x)]
    lo, hi = -(1 << (A - 1)), (1 << (A - 1)) - 1

    def wrap(v):
        v = int(v) & ((1 << A) - 1)
        return v - (1 << A) if v >> (A - 1) else v
    # vectors per shift: as many as fit (up to 4)
    fixed = len(tiles) * cfg.words_a + cfg.words_x * 4
    n = 4
    while n > 1 and gaddr + fixed + 32 * n * (cfg.words_a + 2 * cfg.words_q) + len(tiles) * cfg.words_a \
            > cfg.gbuf_words:
        n -= 1
    n = min(n, cfg.tile_ibuf_depth, cfg.tile_acc_depth)
    gbuf, addr, lines = {}, gaddr, []
    zero_addr = addr
    gbuf[addr] = [0] * (cfg.words_x * n)
    addr += cfg.words_x * n
    bias = {}
    for x, y in tiles:
        b = np.array([int(v) for v in rng.integers(lo, hi, size=cfg.cols, endpoint=True)], dtype=object)
        b[rng.random(cfg.cols) < 0.4] = 0
        bias[(x, y)] = b
        gbuf[addr] = pack_vector(b, A, W)
        lines += [f"ldbias {x},{y} gaddr={addr}", f"ldact {x},{y} slot=0 count={n} gaddr={zero_addr}"]
        addr += cfg.words_a
    cases = []
    qmax = 1 << cfg.xbits
    for shift in range(32):
        t = tiles[shift % len(tiles)]
        vecs = []
        for v in range(n):
            acc = []
            for c in range(cfg.cols):
                kind = (v * cfg.cols + c + shift) % 6
                k = int(rng.integers(-qmax - 4, qmax + 5))
                if kind < 3 and shift > 0:
                    a = wrap(k * (1 << shift) + (1 << (shift - 1)) + kind - 1)
                elif kind == 3:
                    a = [hi, lo, 0, -1][int(rng.integers(4))]
                else:
                    a = wrap(k * (1 << shift) + int(rng.integers(-(1 << shift), 1 << shift)))
                acc.append(wrap(a - bias[t][c]))
            vecs.append(acc)
        p_addr = addr
        for acc in vecs:
            gbuf[addr] = pack_vector(acc, A, W)
            addr += cfg.words_a
        x, y = t
        lines += [f"mvm {x},{y} a=0 count={n} b=0 acc=0", f"ldpsum {x},{y} slot=0 count={n} gaddr={p_addr}"]
        for relu in (0, 1):
            lines.append(f"outq {x},{y} b=0 count={n} gaddr={addr} shift={shift} relu={relu}")
            cases.append((t, shift, relu, addr, vecs, bias[t]))
            addr += n * cfg.words_q
    c_addr = {}
    for x, y in tiles:
        c_addr[(x, y)] = addr
        lines.append(f"out {x},{y} b=0 count=1 gaddr={addr} bias=1")
        addr += cfg.words_a
    if addr > cfg.gbuf_words:
        raise ValueError(f"requant_program needs {addr} global-buffer words; {cfg.name} has {cfg.gbuf_words}")
    lines += [f"sync {x},{y}" for x, y in tiles] + ["barrier", "halt"]
    return "\n".join(lines) + "\n", gbuf, dict(cases=cases, c_addr=c_addr)
