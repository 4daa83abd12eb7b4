"""Formal proofs of the NoC stream FIFO and router (SymbiYosys, z3), from pytest.

Specs and properties: :mod:`tests.rtl.noc.formal_props`. Each test states its
mode (k-induction, bounded check, cover) and depth. Each proof takes well
under a minute on a 2-core machine (``BUDGET`` is a time-out, not a speed
test), except the deep bounded check of the
router and the router's proof with a 16-deep FIFO, which are opt-in (``RRAMCIM_SLOW=1``): the
router's k-induction proof already covers every depth, and its 8-deep FIFO case the same logic.

Three kinds of test:

* proofs (``*_prove``, ``*_bmc``) must pass;
* covers (``*_cover``) must reach every cover, showing that the environment
  lets the interesting cases happen and the proofs are not vacuous;
* broken blocks (``*_catches_*``) must fail, on the property meant to catch
  the bug, showing that the checker can fail.
"""

import linecache
import os

import pytest
from amaranth.hdl import Module, unsigned
from amaranth.lib import wiring

from rramcim.model.config import PRESETS
from rramcim.rtl.noc.fifo import StreamFIFO
from rramcim.rtl.noc.flit import Port
from rramcim.rtl.noc.router import Router
from rramcim.sim.tools.formal import failed_properties, run_formal
from tests.rtl.noc.formal_props import FIFOSpec, RouterSpec

BUDGET = 1800        # a hung solver's time-out, not a speed test: the proofs take 10-45 s alone on 2 cores
SLOW = os.environ.get("RRAMCIM_SLOW") == "1" or bool(os.environ.get("RRAMCIM_FORMAL_SLOW"))
CFG = PRESETS["tiny"].replace(mesh_x=3, mesh_y=3)   # router (1, 1) uses all five ports
MAX_PACKET = 8


def _router(cls=Router, cfg=CFG, x=1, y=1):
    return cls(cfg, x, y, data_width=2)


def _report(res):
    return f"sby {'passed' if res.passed else 'did not pass'} in {res.seconds:.1f} s\n{res.log}"


def _failed_messages(res):
    """The source text of each failed property (its Assert call and the two lines after)."""
    return ["".join(linecache.getline(path, n) for n in range(line, line + 3))
            for path, line in failed_properties(res.log)]


def _assert_proved(res):
    assert res.passed, _report(res)


def _assert_caught(res, message):
    assert not res.passed, _report(res)
    assert "DONE (FAIL" in res.log, _report(res)
    assert any(message in text for text in _failed_messages(res)), _report(res)


# ---- FIFO

@pytest.mark.parametrize("depth, width", [(4, 2), (4, 4), (3, 3), (1, 2)])
def test_fifo_prove(depth, width, tmp_path):
    """k-induction, k = depth + 1, so for all time: flags, output stream rules, and no item
    lost, duplicated or reordered (one nondeterministically tracked item)."""
    k = depth + 1
    res = run_formal(FIFOSpec(StreamFIFO(unsigned(width), depth)), tmp_path, mode="prove",
                     depth=k, timeout=BUDGET)
    _assert_proved(res)


def test_fifo_cover(tmp_path):
    """Cover, 10 cycles: the FIFO fills, and an item is read after waiting behind three others."""
    res = run_formal(FIFOSpec(StreamFIFO(unsigned(3), 4), covers=True), tmp_path, mode="cover",
                     depth=10, timeout=BUDGET)
    _assert_proved(res)


class _LossyFIFO(StreamFIFO):
    """A broken FIFO: it takes an item whose payload is 0 and does not store it."""

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = inner = StreamFIFO(self.shape, self.depth)
        m.d.comb += [
            inner.w.payload.eq(self.w.payload),
            inner.w.valid.eq(self.w.valid & (self.w.payload != 0)),
            self.w.ready.eq(inner.w.ready),
            self.level.eq(inner.level),
        ]
        wiring.connect(m, wiring.flipped(self.r), inner.r)
        return m


def test_fifo_checker_catches_a_lost_item(tmp_path):
    """Bounded check, 8 cycles: the lost item fails the tracked-item check."""
    res = run_formal(FIFOSpec(_LossyFIFO(unsigned(3), 4), invariants=False), tmp_path,
                     mode="bmc", depth=8, timeout=BUDGET)
    _assert_caught(res, "tracked item")


# ---- router

# (1, 1) uses all five ports; a corner router (where the controller enters and leaves);
# a deeper FIFO; the default and large presets' FIFO depth (16: 155 s alone, the same logic as 8 with more
# state, so with RRAMCIM_SLOW=1 only); the icebreaker preset's (1).
@pytest.mark.parametrize("x, y, fifo_depth", [(1, 1, 4), (0, 0, 4), (1, 1, 8), (0, 0, 1),
                                              pytest.param(0, 0, 16, marks=pytest.mark.skipif(
                                                  not SLOW, reason="155 s; set RRAMCIM_SLOW=1 to run"))])
def test_router_prove(x, y, fifo_depth, tmp_path):
    """k-induction, k = 2, so for all time (and the first 256 flits of every input for (a)):
    no flit lost, duplicated or reordered; outputs keep the stream rules; packets never
    interleave; XY routing; no idle output while a flit waits for it."""
    router = _router(cfg=CFG.replace(noc_fifo_depth=fifo_depth), x=x, y=y)
    spec = RouterSpec(router, max_packet=MAX_PACKET, bound=256)
    res = run_formal(spec, tmp_path, mode="prove", depth=2, timeout=BUDGET)
    _assert_proved(res)


def test_router_cover(tmp_path):
    """Cover, 12 cycles: a compared flit that waited behind a full FIFO's worth of others,
    two packets contending for one output, all five outputs busy at once, and an 8-flit
    packet while an input is held back."""
    spec = RouterSpec(_router(), max_packet=MAX_PACKET, bound=16, covers=True)
    res = run_formal(spec, tmp_path, mode="cover", depth=12, timeout=BUDGET)
    _assert_proved(res)


ROUTER_BMC_DEPTH = CFG.noc_fifo_depth + MAX_PACKET + 4      # 16 >= 4 + 8 + 2


@pytest.mark.skipif(not SLOW,
                    reason="about 2 minutes; test_router_prove already covers every depth "
                           "(set RRAMCIM_SLOW=1 to run)")
def test_router_bmc(tmp_path):
    """Bounded check, 16 cycles (FIFO depth + longest packet + 4), the same properties."""
    spec = RouterSpec(_router(), max_packet=MAX_PACKET, bound=ROUTER_BMC_DEPTH)
    res = run_formal(spec, tmp_path, mode="bmc", depth=ROUTER_BMC_DEPTH, timeout=BUDGET)
    assert res.passed, _report(res)


class _CorruptingRouter(Router):
    """A broken router: output E clears the data of every flit."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        m.d.comb += self.o[Port.E.value].payload.data.eq(0)
        return m


class _StuckRouter(Router):
    """A broken router: output S never shows a flit."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        m.d.comb += self.o[Port.S.value].valid.eq(0)
        return m


def test_router_checker_catches_corrupted_data(tmp_path):
    """Bounded check, 4 cycles: the tracked flit comes out changed."""
    spec = RouterSpec(_router(_CorruptingRouter), max_packet=MAX_PACKET, bound=4)
    res = run_formal(spec, tmp_path, mode="bmc", depth=4, timeout=BUDGET)
    _assert_caught(res, "n-th flit out is not the n-th flit in")


def test_router_checker_catches_a_stuck_output(tmp_path):
    """Bounded check, 4 cycles: a flit waits for output S, which stays idle."""
    spec = RouterSpec(_router(_StuckRouter), max_packet=MAX_PACKET, bound=4)
    res = run_formal(spec, tmp_path, mode="bmc", depth=4, timeout=BUDGET)
    _assert_caught(res, "progress: output idle")
