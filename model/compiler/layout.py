"""Layout: ``B`` cut into ``rows`` x ``cols`` blocks, the blocks placed on tiles in passes (K split
over a unit's tiles, N split over units, K-groups through the P region, M-blocks, replication);
see "Blocks and passes" in the package docstring."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import Config

@dataclass
class _Unit:
    """Tiles that together hold the K-blocks ``kbs`` of N-block ``nb`` and handle rows ``r0 .. r1-1``."""

    tiles: list            # [(x, y)], one per K-block
    kbs: list
    nb: int
    r0: int
    r1: int
    pin: bool = False      # add the partial sums of the earlier K-groups (ldpsum from the P region)
    final: bool = True     # out to C (else: to the P region)


@dataclass
class _Pass:
    units: list
    blocks: list           # [(tile, kb, nb)] to program


def _tiles(cfg: Config) -> list:
    return [(x, y) for y in range(cfg.mesh_y) for x in range(cfg.mesh_x)]


def _split(n: int, parts: int) -> list[tuple[int, int]]:
    """``[0, n)`` in ``parts`` contiguous ranges, sizes differing by at most one (larger first)."""
    q, r = divmod(n, parts)
    out, a = [], 0
    for i in range(parts):
        b = a + q + (1 if i < r else 0)
        out.append((a, b))
        a = b
    return out


def _row_cost(cfg: Config, s: int) -> float:
    """Estimated tile-busy cycles per row of ``A``, per tile, in a unit of ``s`` tiles."""
    act = 3 + cfg.words_x                    # header, argument and words, exec
    send = 2 + cfg.words_a                   # header, argument, words
    recv = 4 + cfg.words_a                   # header, argument and words, exec, ACK
    return (s * (act + cfg.steps) + (s - 1) * (send + recv) + send) / s


def _estimate(cfg: Config, per_tile_rows: list, units: list, rows: int) -> float:
    """Estimated cycles of a pass: programming ``per_tile_rows`` RRAM rows, then ``rows`` rows of ``A``
    through ``units`` = ``[(tiles in the unit, replicas)]``: the controller's sending, its receiving or
    the busiest tile, whichever is slowest."""
    prog_tile = 3 + cfg.words_w + cfg.rram_write_cycles + cfg.rram_verify_cycles + 2
    prog = max(sum(per_tile_rows) * (3 + cfg.words_w), max(per_tile_rows) * prog_tile)
    tx = rx = tile = 0.0
    for s, reps in units:
        tx += rows * s * (2 + cfg.words_x)
        rx += rows * (2 + cfg.words_a + (s - 1))
        tile = max(tile, -(-rows // reps) * _row_cost(cfg, s))
    return prog + max(tx, rx, tile)


def _layout(cfg: Config, M: int, K: int, N: int, max_group: int, tiles: list | None = None) -> tuple[list, int]:
    """``([(M-block, [passes])], P-region vectors)``.

    ``Kb <= max_group`` (at most ``T`` tiles): a pass holds ``T // Kb`` whole N-blocks, every row
    of ``A`` in one M-block. Else an N-block's K-blocks go in K-groups of ``max_group``, one pass
    each, partial sums between them through the P region, rows in M-blocks whose partial sums fit it.
    A pass that uses at most half the tiles is replicated (rows split over the copies) when the
    estimate says the extra programming pays. ``tiles``: the tiles to use, in the order they are filled
    (default: every tile, row by row).
    """
    R, Cc = cfg.rows, cfg.cols
    Kb, Nb = -(-K // R), -(-N // Cc)
    tiles = _tiles(cfg) if tiles is None else list(tiles)
    T = len(tiles)
    krows = [min(R, K - kb * R) for kb in range(Kb)]

    def make_pass(groups, r0, r1, pin, final):
        used = sum(len(kbs) for _, kbs in groups)
        best = None
        for reps in range(1, min(T // used, r1 - r0) + 1):
            per_tile = [krows[kb] for _, kbs in groups for kb in kbs] * reps
            est = _estimate(cfg, per_tile, [(len(kbs), reps) for _, kbs in groups], r1 - r0)
            if best is None or est < best[0]:
                best = (est, reps)
        units, blocks, k = [], [], 0
        for q0, q1 in _split(r1 - r0, best[1]):
            for nb, kbs in groups:
                ts = tiles[k:k + len(kbs)]
                k += len(kbs)
                units.append(_Unit(ts, list(kbs), nb, r0 + q0, r0 + q1, pin, final))
                blocks += [(t, kb, nb) for t, kb in zip(ts, kbs)]
        return _Pass(units, blocks)

    if Kb <= max_group:
        per = T // Kb
        passes = [make_pass([(nb, list(range(Kb))) for nb in range(g0, min(Nb, g0 + per))], 0, M, False, True)
                  for g0 in range(0, Nb, per)]
        return [((0, M), passes)], 0
    kgroups = [list(range(k0, min(Kb, k0 + max_group))) for k0 in range(0, Kb, max_group)]
    mb = max(1, min(M, (cfg.gbuf_words // 2) // cfg.words_a))
    out = []
    for m0 in range(0, M, mb):
        m1 = min(M, m0 + mb)
        out.append(((m0, m1), [make_pass([(nb, kbs)], m0, m1, g > 0, g == len(kgroups) - 1)
                               for nb in range(Nb) for g, kbs in enumerate(kgroups)]))
    return out, mb
