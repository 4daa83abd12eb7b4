"""One router alone on Amaranth's simulator, against a naive checker.

Router (1, 1) of a 3x3 mesh, all five inputs driven with well-formed random
packets (inputs from N and S already travel in y, as XY routing upstream
guarantees), random idle on inputs and random backpressure on outputs. The
checker knows nothing of the router's timing; it checks that every flit
leaves exactly once, on the XY output, in order per input, and that packets
never interleave on an output.
"""

from collections import defaultdict, deque

import numpy as np

from rramcim.model.config import PRESETS
from rramcim.model.noc import N, S, xy_route
from rramcim.rtl.noc.router import Router
from tests.rtl.noc.helpers import simulate


def test_router_alone():
    cfg = PRESETS["tiny"].replace(mesh_x=3, mesh_y=3)
    dut = Router(cfg, 1, 1)
    rng = np.random.default_rng(12)
    # per input: a queue of flits (head, tail, dest, data, packet id)
    queues = []
    pid = 0
    for p in range(5):
        q = deque()
        for _ in range(40):
            if p in (N, S):
                dest = (1, int(rng.integers(3)))
            else:
                dest = (int(rng.integers(3)), int(rng.integers(3)))
            n = int(rng.integers(1, 9))
            for k in range(n):
                q.append((int(k == 0), int(k == n - 1), dest, int(rng.integers(1 << 32)), pid))
            pid += 1
        queues.append(q)
    sent = {p: list(q) for p, q in enumerate(queues)}

    async def bench(ctx):
        out_pkt = [None] * 5                 # packet id being forwarded on each output
        got = defaultdict(list)              # input -> flits seen, in order
        holding = [False] * 5                # valid raised and not yet taken: must stay
        for t in range(3000):
            offer = []
            for p in range(5):
                v = bool(queues[p]) and (holding[p] or rng.random() < 0.8)
                offer.append(v)
                ctx.set(dut.i[p].valid, v)
                if queues[p]:
                    h, tl, d, data, _ = queues[p][0]
                    pl = dut.i[p].payload
                    ctx.set(pl.head, h)
                    ctx.set(pl.tail, tl)
                    ctx.set(pl.dest.x, d[0])
                    ctx.set(pl.dest.y, d[1])
                    ctx.set(pl.data, data)
            readies = [rng.random() < 0.6 for _ in range(5)]
            for o in range(5):
                ctx.set(dut.o[o].ready, readies[o])
            taken = [offer[p] and ctx.get(dut.i[p].ready) for p in range(5)]
            holding = [offer[p] and not taken[p] for p in range(5)]
            for o in range(5):
                if not (readies[o] and ctx.get(dut.o[o].valid)):
                    continue
                src = ctx.get(dut.o_src[o])
                pl = dut.o[o].payload
                flit = (ctx.get(pl.head), ctx.get(pl.tail), (ctx.get(pl.dest.x), ctx.get(pl.dest.y)),
                        ctx.get(pl.data))
                assert xy_route(1, 1, tuple(flit[2])) == o, f"cycle {t}: flit for {flit[2]} left on port {o}"
                k = len(got[src])
                exp = sent[src][k]
                assert flit == exp[:4], f"cycle {t}: output {o} gave {flit}, input {src}'s next is {exp[:4]}"
                if flit[0]:
                    assert out_pkt[o] is None, f"cycle {t}: packets interleave on output {o}"
                    out_pkt[o] = exp[4]
                else:
                    assert out_pkt[o] == exp[4], f"cycle {t}: output {o} left its packet"
                if flit[1]:
                    out_pkt[o] = None
                got[src].append(flit)
            for p in range(5):
                if taken[p]:
                    queues[p].popleft()
            await ctx.tick()
        for p in range(5):
            assert len(got[p]) == len(sent[p]), f"input {p}: {len(got[p])} of {len(sent[p])} flits left"

    simulate(dut, bench)
