"""Formal proofs of the NoC FIFO and router with SymbiYosys (yowasp-sby, z3).

The properties live in rramcim.sim.formal_props; each test states its mode and
depth.
"""

import pytest

from rramcim.model.config import PRESETS
from rramcim.rtl.noc.fifo import StreamFIFO
from rramcim.rtl.noc.router import Router
from rramcim.sim.formal import run_formal
from rramcim.sim.formal_props import FIFOSpec, RouterSpec

FIFO_INDUCTION_DEPTH = 8
# The router's bounded check reaches this depth within the 60 s budget with
# z3. The target is FIFO depth + longest packet + 2 = 14 cycles; not reached yet.
ROUTER_BMC_DEPTH = 4


def _log_tail(res, n=40):
    return "\n".join(res.log.splitlines()[-n:])


@pytest.mark.parametrize("depth", [2, 4])
def test_fifo_prove(depth, tmp_path):
    """k-induction: flags, stream rules on the output, no loss/duplication/reordering, for all time."""
    res = run_formal(FIFOSpec(StreamFIFO(3, depth)), tmp_path, mode="prove",
                     depth=FIFO_INDUCTION_DEPTH, timeout=60)
    assert res.passed, _log_tail(res)
    assert res.seconds < 60


class _DroppingFIFO(StreamFIFO):
    """A FIFO with a bug: the entry it shows is always zero, whatever was written."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        m.d.comb += self.r.payload.eq(0)
        return m


def test_fifo_proof_catches_a_bug(tmp_path):
    res = run_formal(FIFOSpec(_DroppingFIFO(3, 4), invariants=False), tmp_path, mode="bmc",
                     depth=6, timeout=60)
    assert not res.passed
    assert "FAIL" in res.log


def test_router_bmc(tmp_path):
    """Bounded check of router (1, 1) of a 3x3 mesh with 2-bit data: no flit lost, duplicated or
    reordered; outputs hold valid and payload until ready; wormhole packets never interleave;
    XY routing (no turn from y back to x)."""
    cfg = PRESETS["tiny"].replace(mesh_x=3, mesh_y=3)
    spec = RouterSpec(Router(cfg, 1, 1, data_width=2), max_packet=8, bound=ROUTER_BMC_DEPTH)
    res = run_formal(spec, tmp_path, mode="bmc", depth=ROUTER_BMC_DEPTH, timeout=120)
    assert res.passed, _log_tail(res)
