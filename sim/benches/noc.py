"""Test bench of the mesh network, independent of the simulator that runs it.

Everything is drawn from a seed before simulation: every node's packets
(random destination, 0..max_len-1 payload words, so 1..max_len flits, random
data and type) and the stall patterns of every node's four streams (idle on
``tx_header``/``tx_payload``, backpressure on ``rx_header``/``rx_payload``).
The cycle-exact :class:`~rramcim.model.noc.MeshModel` predicts every delivery
from the same stimulus before the simulation starts. The bench drives the
mesh through a :class:`~rramcim.sim.benches.io.SimIO` and checks that every
packet arrives exactly once, intact, in order per source-destination pair, at
the cycle the model predicts.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from ...model.config import Config
from ...model.macro import StallPattern, StreamSource
from ...model.encoding import CTRL, unpack_header
from ...model.noc import MeshModel, NodeStalls, Packet, header_source, mesh_nodes
from .io import CheckError, SimIO

__all__ = ["MeshBench", "node_port"]


def node_port(n, stream, sig):
    """The Verilog port of a node's (``(x, y)`` or :data:`CTRL`) stream signal."""
    prefix = "ctrl" if n == CTRL else f"n{n[0]}_{n[1]}"
    return f"{prefix}__{stream}__{sig}"


def _plain(n):
    return n if n == CTRL else list(n)


@dataclass
class MeshBench:
    cfg: Config
    seed: int = 0
    packets_per_node: int = 50
    max_len: int = 8
    stall: float = 0.3
    inject_idle: float | None = None
    model_bug: str | None = None
    traffic: dict | None = None

    def __post_init__(self):
        cfg = self.cfg
        rng = np.random.default_rng(self.seed)
        self.nodes = mesh_nodes(cfg)          # the controller's node is an endpoint like any other
        self.packets = {}
        if self.traffic is not None:
            # Open-loop traffic of a named pattern (benchmarks): packets carry release cycles.
            from ...model.noc_traffic import generate
            self.packets = generate(cfg, seed=self.seed, **self.traffic)
        for n in (self.nodes if self.traffic is None else []):
            pk = []
            for i in range(self.packets_per_node):
                dest = self.nodes[rng.integers(len(self.nodes))]
                length = int(rng.integers(0, self.max_len))
                data = [int(v) for v in rng.integers(0, 1 << min(cfg.flit_width, 62), size=length)]
                if cfg.flit_width > 62:
                    data = [v | (int(rng.integers(0, 1 << (cfg.flit_width - 62))) << 62) for v in data]
                pk.append(Packet(n, dest, int(rng.integers(0, 16)), data, i))
            self.packets[n] = pk
        idle = self.stall if self.inject_idle is None else self.inject_idle

        def pat(p):
            return StallPattern.random(rng, p) if p > 0 else StallPattern.none()
        self.stalls = {n: NodeStalls(pat(idle), pat(idle), pat(self.stall), pat(self.stall))
                       for n in self.nodes}
        model = MeshModel(cfg)
        self.expected, self.cycles = model.run(self.packets, self.stalls)
        if self.model_bug == "late_by_one":
            for d in self.expected[::7]:
                d.tail_cycle += 1
        elif self.model_bug is not None:
            raise ValueError(f"unknown model_bug {self.model_bug!r}")
        self.by_pair = defaultdict(list)
        for d in self.expected:
            self.by_pair[(d.packet.src, d.packet.dest)].append(d)

    async def run(self, io: SimIO, progress=None) -> dict:
        cfg = self.cfg
        hsrc = {n: header_source(cfg, self.packets.get(n, []), self.stalls[n].tx_header) for n in self.nodes}
        psrc = {n: StreamSource([w for p in self.packets.get(n, []) for w in p.payload], self.stalls[n].tx_payload)
                for n in self.nodes}
        inflight = {n: None for n in self.nodes}         # dest -> [header, header_cycle, words]
        got = defaultdict(list)
        self.observed = []                               # (src, dest, k, header_cycle, tail_cycle) seen on the RTL
        delivered = 0
        total = len(self.expected)
        limit = self.cycles + 200
        t = 0
        while delivered < total:
            if t > limit:
                raise CheckError(f"timeout at cycle {t}: {delivered}/{total} packets delivered; "
                                 f"the model finished in {self.cycles} cycles")
            offers = {}
            for n in self.nodes:
                h = hsrc[n].offer(t)
                w = psrc[n].offer(t)
                offers[n] = (h, w)
                io.set(node_port(n, "tx_header", "valid"), h is not None)
                if h is not None:
                    io.set(node_port(n, "tx_header", "payload"), h[1])
                io.set(node_port(n, "tx_payload", "valid"), w is not None)
                if w is not None:
                    io.set(node_port(n, "tx_payload", "payload"), w)
                io.set(node_port(n, "rx_header", "ready"), not self.stalls[n].rx_header.paused(t))
                io.set(node_port(n, "rx_payload", "ready"), not self.stalls[n].rx_payload.paused(t))
            await io.settle()
            for n in self.nodes:
                h, w = offers[n]
                if h is not None and io.get(node_port(n, "tx_header", "ready")):
                    hsrc[n].taken()
                if w is not None and io.get(node_port(n, "tx_payload", "ready")):
                    psrc[n].taken()
                if (not self.stalls[n].rx_header.paused(t)) and io.get(node_port(n, "rx_header", "valid")):
                    if inflight[n] is not None:
                        raise CheckError(f"cycle {t}: node {n} got a header inside another packet")
                    word = io.get(node_port(n, "rx_header", "payload"))
                    inflight[n] = [word, t, []]
                    if unpack_header(cfg, word)["length"] == 0:
                        delivered += self._complete(n, inflight, got, t)
                if (not self.stalls[n].rx_payload.paused(t)) and io.get(node_port(n, "rx_payload", "valid")):
                    word = io.get(node_port(n, "rx_payload", "payload"))
                    data, last = word & ((1 << cfg.flit_width) - 1), word >> cfg.flit_width
                    if inflight[n] is None:
                        raise CheckError(f"cycle {t}: node {n} got a payload word outside a packet")
                    inflight[n][2].append(data)
                    if last:
                        delivered += self._complete(n, inflight, got, t)
            if progress:
                progress(delivered, total)
            await io.tick()
            t += 1
        summary = {"packets": delivered, "cycles": t, "model_cycles": self.cycles,
                   "flits": sum(len(d.packet.payload) + 1 for d in self.expected)}
        if self.traffic is not None:
            summary["deliveries"] = self.observed
        return summary

    def _complete(self, n, inflight, got, t):
        cfg = self.cfg
        word, hc, words = inflight[n]
        inflight[n] = None
        h = unpack_header(cfg, word)
        src = h["src"]
        if h["dest"] != n:
            raise CheckError(f"cycle {t}: node {n} got a packet for {h['dest']}")
        k = len(got[(src, n)])
        exp = self.by_pair.get((src, n), [])
        if k >= len(exp):
            raise CheckError(f"cycle {t}: packet #{k} from {src} to {n} was not sent (duplicate or corrupt)")
        e = exp[k]
        if word != e.packet.header(cfg):
            raise CheckError(f"packet #{k} from {src} to {n}: header {word:#x}, sent {e.packet.header(cfg):#x}")
        if words != e.packet.payload:
            raise CheckError(f"packet #{k} from {src} to {n}: payload {words}, sent {e.packet.payload}")
        if (hc, t) != (e.header_cycle, e.tail_cycle):
            raise CheckError(f"packet #{k} from {src} to {n} (source's packet {e.packet.index}): delivered "
                             f"header/tail at cycles {hc}/{t}, model {e.header_cycle}/{e.tail_cycle}")
        got[(src, n)].append(t)
        self.observed.append((_plain(src), _plain(n), k, hc, t))
        return 1
