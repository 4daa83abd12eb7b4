"""Test bench of the CIM macro, independent of the simulator that runs it.

A :class:`MacroBench` holds everything drawn from a seed before simulation:
the stimulus (row writes and input vectors, extremes included), the stall
pattern of every stream, and the golden model's prediction of every event
(values and cycles). It drives the design through a small adapter
(:class:`SimIO`) so the same driver, monitor and checker run on cocotb
(Icarus, Verilator) and on Amaranth's simulator.

The model never sees what the RTL did: it is run once, from the same
stimulus and stall patterns, before the simulation starts.

A macro of several banks (``cfg.banks`` > 1) gets row writes across all its
RRAM rows and each input vector with a random bank (the first with the last
bank), offered on the macro's ``bank`` input with the vector.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...model.config import Config
from ...model.macro import (FaultMap, MacroCycleModel, MacroState, StallPattern, StreamSource,
                           wrap_signed)
from ...model.encoding import (macro_prog_fields, macro_resp_fields, pack_fields, pack_lanes, unpack_fields,
                               unpack_lanes)
from .io import CheckError, SimIO

__all__ = ["MacroBench"]


def _random_values(rng, bits, shape, extreme_p=0.15):
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    v = rng.integers(lo, hi + 1, size=shape)
    ext = rng.random(shape) < extreme_p
    v[ext] = rng.choice([lo, hi], size=int(ext.sum()))
    return v.astype(np.int64)


@dataclass
class Phase:
    prog_items: list
    x_items: list
    stalls: dict


@dataclass
class MacroBench:
    """Stimulus, stalls and expected events for one macro run.

    Parameters
    ----------
    cfg : Config
    faults : FaultMap
        Must match the fault map the design was elaborated with.
    seed : int
    n_mvm : int
        Input vectors per phase.
    n_prog : int or None
        Row writes per phase (default: every RRAM row once, then a quarter again).
    stall : float
        Probability that a stream pauses in a cycle (0 for none).
    phases : int
        Phases separated by a reset; RRAM content must survive it.
    model_bug : str or None
        ``"sign_flip"`` flips the sign bit of every expected column-0 result;
        ``"bank"`` makes the model compute every MVM with the next bank (wrapping; banked macros):
        the checker must then fail (it proves it can).
    """

    cfg: Config
    faults: FaultMap = field(default_factory=FaultMap)
    seed: int = 0
    n_mvm: int = 200
    n_prog: int | None = None
    stall: float = 0.3
    phases: int = 1
    model_bug: str | None = None

    def __post_init__(self):
        cfg = self.cfg
        rng = np.random.default_rng(self.seed)
        self.state = MacroState(cfg, self.faults)
        R = cfg.rram_rows
        n_prog = self.n_prog if self.n_prog is not None else R + R // 4
        self.phase_list: list[Phase] = []
        self.expected = []
        if self.model_bug not in (None, "sign_flip", "bank"):
            raise ValueError(f"unknown model_bug {self.model_bug!r}")
        for ph in range(self.phases):
            rows = list(rng.permutation(R)) + list(rng.integers(0, R, max(0, n_prog - R)))
            rows = rows[:n_prog]
            prog_items = [(int(r), _random_values(rng, cfg.wbits, cfg.cols)) for r in rows]
            x_items = [_random_values(rng, cfg.xbits, cfg.rows) for _ in range(self.n_mvm)]
            if x_items:
                lo, hi = -(1 << (cfg.xbits - 1)), (1 << (cfg.xbits - 1)) - 1
                x_items[0] = np.full(cfg.rows, lo)
                if len(x_items) > 1:
                    x_items[1] = np.full(cfg.rows, hi)
            if cfg.banks > 1:
                banks = rng.integers(0, cfg.banks, len(x_items))
                banks[:1] = cfg.banks - 1
                x_items = [(x, int(b)) for x, b in zip(x_items, banks)]
            if self.stall > 0:
                # Spread row writes over the run so they interleave with MVMs.
                est = max(1, self.n_mvm * cfg.steps + n_prog * (cfg.rram_write_cycles + cfg.rram_verify_cycles + 2))
                p_prog = min(0.98, max(self.stall, 1 - 2 * n_prog / est))
                stalls = {
                    "prog": StallPattern.random(rng, p_prog),
                    "x": StallPattern.random(rng, self.stall),
                    "y": StallPattern.random(rng, self.stall),
                    "prog_resp": StallPattern.random(rng, self.stall),
                }
            else:
                stalls = {k: StallPattern.none() for k in ("prog", "x", "y", "prog_resp")}
            phase = Phase(prog_items, x_items, stalls)
            model = MacroCycleModel(cfg, self.state, prog_stall=stalls["prog"], x_stall=stalls["x"],
                                    y_stall=stalls["y"], resp_stall=stalls["prog_resp"])
            model_x = x_items
            if self.model_bug == "bank":
                # A deliberately wrong model: every MVM with the next bank. The checker must catch it.
                model_x = [(x, (b + 1) % cfg.banks) for x, b in x_items]
            mvms, progs, cycles = model.run(list(prog_items), list(model_x))
            if self.model_bug == "sign_flip":
                # A deliberately wrong model: the sign bit of every expected
                # column-0 result is flipped. The checker must catch it.
                for ev in mvms:
                    ev.y = ev.y.copy()
                    ev.y[0] = wrap_signed(int(ev.y[0]) ^ (1 << (cfg.acc_bits - 1)), cfg.acc_bits)
            self.phase_list.append(phase)
            self.expected.append((mvms, progs, cycles, self.state.write_counts.copy(),
                                  self.state.verify_failures))

    # ------------------------------------------------------------------
    async def run(self, io: SimIO, progress=None) -> dict:
        """Drive every phase, check every event; returns measured figures."""
        summary = {"mvms": 0, "rows_programmed": 0, "cycles": [], "verify_failures": 0}
        for ph_i, (phase, exp) in enumerate(zip(self.phase_list, self.expected)):
            if ph_i:
                await io.reset()
            got = await self._run_phase(io, phase, len(exp[0]), len(exp[1]), exp[2], progress)
            self._check(ph_i, got, exp)
            await self._check_status(io, ph_i, exp)
            summary["mvms"] += len(exp[0])
            summary["rows_programmed"] += len(exp[1])
            summary["cycles"].append(got["last_cycle"])
            summary["verify_failures"] = exp[4]
            summary.setdefault("first_accept", []).append(got["mvms"][0][1] if got["mvms"] else None)
            summary.setdefault("last_out", []).append(got["mvms"][-1][2] if got["mvms"] else None)
        return summary

    async def _run_phase(self, io, phase: Phase, n_mvm, n_prog, exp_cycles, progress):
        cfg = self.cfg
        prog_src = StreamSource(phase.prog_items, phase.stalls["prog"])
        x_src = StreamSource(phase.x_items, phase.stalls["x"])
        y_stall, r_stall = phase.stalls["y"], phase.stalls["prog_resp"]
        wb = cfg.wbits
        mvms, progs = [], []           # (index, accept, out, y) / (index, accept, resp, payload)
        x_accepts, p_accepts = [], []
        limit = exp_cycles + 1000
        t = 0
        while len(mvms) < n_mvm or len(progs) < n_prog:
            if t > limit:
                raise CheckError(
                    f"timeout at cycle {t}: {len(mvms)}/{n_mvm} results and {len(progs)}/{n_prog} "
                    f"row writes seen; the model finished in {exp_cycles} cycles")
            p = prog_src.offer(t)
            x = x_src.offer(t)
            io.set("prog__valid", p is not None)
            if p is not None:
                io.set("prog__payload", pack_fields(macro_prog_fields(cfg), row=int(p[0]),
                                                    weights=pack_lanes(p[1], wb)))
            io.set("x__valid", x is not None)
            if x is not None:
                if cfg.banks > 1:
                    x, bank = x
                    io.set("bank", bank)
                io.set("x__payload", pack_lanes(x, cfg.xbits))
            y_ready = not y_stall.paused(t)
            r_ready = not r_stall.paused(t)
            io.set("y__ready", y_ready)
            io.set("prog_resp__ready", r_ready)
            await io.settle()
            if p is not None and io.get("prog__ready"):
                prog_src.taken()
                p_accepts.append(t)
            if x is not None and io.get("x__ready"):
                x_src.taken()
                x_accepts.append(t)
            if y_ready and io.get("y__valid"):
                i = len(mvms)
                if i >= n_mvm:
                    raise CheckError(f"cycle {t}: unexpected result #{i} on y")
                y = unpack_lanes(io.get("y__payload"), cfg.acc_bits, cfg.cols)
                mvms.append((i, x_accepts[i] if i < len(x_accepts) else None, t, y))
                if progress:
                    progress(len(mvms), n_mvm)
            if r_ready and io.get("prog_resp__valid"):
                i = len(progs)
                if i >= n_prog:
                    raise CheckError(f"cycle {t}: unexpected response #{i} on prog_resp")
                progs.append((i, p_accepts[i] if i < len(p_accepts) else None, t,
                              io.get("prog_resp__payload")))
            await io.tick()
            t += 1
        return {"mvms": mvms, "progs": progs, "last_cycle": t}

    def _check(self, ph, got, exp):
        cfg = self.cfg
        exp_mvms, exp_progs = exp[0], exp[1]
        for (i, acc, out, y), ev in zip(got["mvms"], exp_mvms):
            if not np.array_equal(y, ev.y):
                bad = np.flatnonzero(y != ev.y)
                raise CheckError(
                    f"phase {ph} MVM #{i}: value mismatch in columns {bad[:8].tolist()}: "
                    f"RTL {y[bad[:4]].tolist()} model {ev.y[bad[:4]].tolist()}")
            if (acc, out) != (ev.accept_cycle, ev.out_cycle):
                raise CheckError(
                    f"phase {ph} MVM #{i}: cycles mismatch: RTL took it at {acc} and answered at {out}; "
                    f"model {ev.accept_cycle} and {ev.out_cycle}")
        for (i, acc, resp, word), ev in zip(got["progs"], exp_progs):
            f = unpack_fields(macro_resp_fields(cfg), word)
            row, attempts, ok, mask = f["row"], f["attempts"], f["ok"], f["fail_mask"]
            r = ev.result
            if (row, attempts, bool(ok), mask) != (r.row, r.attempts, r.ok, r.fail_mask):
                raise CheckError(
                    f"phase {ph} row write #{i}: RTL row={row} attempts={attempts} ok={ok} "
                    f"fail_mask={mask:#x}; model row={r.row} attempts={r.attempts} ok={int(r.ok)} "
                    f"fail_mask={r.fail_mask:#x}")
            if (acc, resp) != (ev.accept_cycle, ev.resp_cycle):
                raise CheckError(
                    f"phase {ph} row write #{i}: cycles mismatch: RTL {acc}->{resp}, "
                    f"model {ev.accept_cycle}->{ev.resp_cycle}")

    async def _check_status(self, io, ph, exp):
        counts, failures = exp[3], exp[4]
        for r in range(self.cfg.rram_rows):
            io.set("status__row", r)
            await io.settle()
            got = io.get("status__write_count")
            if got != counts[r]:
                raise CheckError(f"phase {ph}: write counter of row {r} is {got}, model {counts[r]}")
            await io.tick()
        # verify_failures is cleared by reset (it is logic, not RRAM): compare per phase.
        await io.settle()
        got = io.get("status__verify_failures")
        exp_f = failures - (self.expected[ph - 1][4] if ph else 0)
        if got != exp_f:
            raise CheckError(f"phase {ph}: verify_failures is {got}, model {exp_f}")
