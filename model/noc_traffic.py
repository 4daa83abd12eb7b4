"""Synthetic open-loop traffic for the 2D mesh: the packets of a benchmark, drawn from a seed.

Injection is Bernoulli and open loop: in every cycle ``0 .. cycles-1`` each
node creates a packet with probability ``rate / mean_flits``, where
``mean_flits = (1 + max_len) / 2`` is the mean packet length, so ``rate`` is
the offered load in flits per node per cycle. A packet is a header flit plus
``0 .. max_len-1`` payload flits (its length is uniform over ``1 .. max_len``
flits); payload words are uniform below ``2**flit_width`` and the type is
uniform over ``0 .. 15``. Each packet's ``release`` is its creation cycle, so
a source that falls behind (past saturation) queues packets without bound and
the latency it measures includes the time they wait at the source.

Destination patterns (``x`` grows east, ``y`` south):

``uniform``
    Uniform over every node except the source.
``transpose``
    ``(x, y) -> (y, x)``; nodes on the diagonal send nothing. Needs a square mesh.
``hotspot``
    20 % of a node's packets go to the centre node ``(mesh_x//2, mesh_y//2)``,
    the rest uniformly to the nodes that are neither the source nor the
    centre (so the centre receives exactly that 20 % share); the centre node
    itself sends uniformly.
``neighbour``
    Uniform over the node's existing mesh neighbours (2 to 4 of them).

Pure Python and numpy: no Amaranth or cocotb here.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from .config import Config
from .encoding import HEADER_TYPE_BITS, LENGTH_BITS
from .noc import Packet

__all__ = ["PATTERNS", "HOTSPOT_SHARE", "generate", "mean_packet_flits", "hotspot_node",
           "destinations"]

PATTERNS = ("uniform", "transpose", "hotspot", "neighbour")
HOTSPOT_SHARE = 0.2


def mean_packet_flits(max_len: int) -> float:
    """Mean length in flits of a packet whose length is uniform over ``1 .. max_len``."""
    return (1 + max_len) / 2


def hotspot_node(cfg: Config) -> tuple[int, int]:
    """The node that receives the hotspot share: the centre of the mesh."""
    return cfg.mesh_x // 2, cfg.mesh_y // 2


def destinations(cfg: Config, pattern: str, src: tuple[int, int]) -> list[tuple[int, int]]:
    """The nodes ``src`` may send to under ``pattern`` (empty if it sends nothing).

    For ``hotspot`` this is the uniform part only (the centre is excluded
    unless ``src`` is the centre itself, which sends uniformly).
    """
    _check_pattern(cfg, pattern)
    x, y = src
    nodes = [(nx, ny) for ny in range(cfg.mesh_y) for nx in range(cfg.mesh_x)]
    if pattern == "uniform":
        return [n for n in nodes if n != src]
    if pattern == "transpose":
        return [] if x == y else [(y, x)]
    if pattern == "hotspot":
        hot = hotspot_node(cfg)
        return [n for n in nodes if n != src and (n != hot or src == hot)]
    steps = ((0, -1), (1, 0), (0, 1), (-1, 0))   # N, E, S, W
    return [(x + dx, y + dy) for dx, dy in steps
            if 0 <= x + dx < cfg.mesh_x and 0 <= y + dy < cfg.mesh_y]


def _check_pattern(cfg: Config, pattern: str) -> None:
    if not isinstance(pattern, str) or pattern not in PATTERNS:
        raise ValueError(f"pattern must be one of {', '.join(PATTERNS)}, not {pattern!r}")
    if cfg.mesh_x * cfg.mesh_y < 2:
        raise ValueError(f"a {cfg.mesh_x}x{cfg.mesh_y} mesh has no other node to send to")
    if pattern == "transpose" and cfg.mesh_x != cfg.mesh_y:
        raise ValueError(f"transpose traffic needs a square mesh, not {cfg.mesh_x}x{cfg.mesh_y}")
    if pattern == "hotspot" and cfg.mesh_x * cfg.mesh_y < 3:
        raise ValueError(f"hotspot traffic needs at least 3 nodes, not {cfg.mesh_x}x{cfg.mesh_y}")


def _random_words(rng: np.random.Generator, n: int, width: int) -> list[int]:
    """``n`` uniform integers below ``2**width``, for any width (32-bit chunks)."""
    chunks = math.ceil(width / 32)
    raw = rng.integers(0, 1 << 32, size=(n, chunks), dtype=np.uint64)
    mask = (1 << width) - 1
    out = []
    for row in raw.tolist():
        v = 0
        for i, c in enumerate(row):
            v |= c << (32 * i)
        out.append(v & mask)
    return out


def generate(cfg: Config, pattern: str, rate: float, cycles: int, seed: int = 0,
             max_len: int = 8) -> dict[tuple[int, int], list[Packet]]:
    """Open-loop Bernoulli traffic of ``pattern`` at ``rate`` flits per node per cycle.

    Parameters
    ----------
    cfg : Config
        Mesh size and flit width.
    pattern : str
        One of :data:`PATTERNS`.
    rate : float
        Offered load in flits per node per cycle, ``0 <= rate <= 1`` (a node's
        network interface injects at most one flit per cycle).
    cycles : int
        Cycles ``0 .. cycles-1`` in which packets are created.
    seed : int
        Non-negative; the same arguments and seed give the same packets.
    max_len : int
        Longest packet in flits (header included), ``1 .. 2**8``.

    Returns
    -------
    dict
        Every node ``(x, y)`` of the mesh -> its packets in creation order
        (``index`` is the position in that list, ``release`` the creation cycle).
    """
    if not isinstance(cfg, Config):
        raise TypeError(f"cfg must be a Config, not {cfg!r}")
    _check_pattern(cfg, pattern)
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not 0 <= rate <= 1:
        raise ValueError(f"rate must be a number of flits per node per cycle in 0..1, not {rate!r}")
    if isinstance(cycles, bool) or not isinstance(cycles, numbers.Integral) or cycles < 0:
        raise ValueError(f"cycles must be a non-negative integer, not {cycles!r}")
    if isinstance(max_len, bool) or not isinstance(max_len, numbers.Integral) \
            or not 1 <= max_len <= (1 << LENGTH_BITS):
        raise ValueError(f"max_len must be an integer number of flits in 1..{1 << LENGTH_BITS}, "
                         f"not {max_len!r}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, not {seed!r}")
    cycles, max_len = int(cycles), int(max_len)
    p_packet = float(rate) / mean_packet_flits(max_len)
    hot = hotspot_node(cfg)
    out = {}
    for y in range(cfg.mesh_y):
        for x in range(cfg.mesh_x):
            src = (x, y)
            # Each node draws every random quantity in full from its own stream,
            # so a node's packets do not depend on how many other nodes made.
            node_rng = np.random.default_rng([int(seed), x, y])
            dests = destinations(cfg, pattern, src)
            if not dests:
                out[src] = []
                continue
            created = np.flatnonzero(node_rng.random(cycles) < p_packet)
            n = len(created)
            lengths = node_rng.integers(1, max_len + 1, size=n)
            ptypes = node_rng.integers(0, 1 << HEADER_TYPE_BITS, size=n)
            pick = node_rng.integers(0, len(dests), size=n)
            to_hot = node_rng.random(n) < HOTSPOT_SHARE if pattern == "hotspot" and src != hot \
                else np.zeros(n, dtype=bool)
            words = _random_words(node_rng, int(lengths.sum() - n), cfg.flit_width)
            pkts, w = [], 0
            for i in range(n):
                dest = hot if to_hot[i] else dests[pick[i]]
                plen = int(lengths[i]) - 1
                pkts.append(Packet(src, (int(dest[0]), int(dest[1])), int(ptypes[i]),
                                   words[w:w + plen], i, int(created[i])))
                w += plen
            out[src] = pkts
    return out
