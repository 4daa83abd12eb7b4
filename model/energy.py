"""Energy and area of a run, from the cycle-exact model's counters, and a von Neumann baseline.

The chip's energy is a sum over *events*: each event's count times its energy
in a technology table (:data:`TECH`, one row per node). The counts come from
the performance counters of the cycle-exact model (docs/isa.md, "Performance
counters"), the same counters the RTL is checked against, summed over a run's
windows (``report["counters"]`` of :func:`rramcim.sim.backends.model.run_on_model`
and of :func:`rramcim.sim.backends.jobs.run_net`), plus the words the host moves
between windows (``host_write_bits`` / ``host_read_bits``, exact from the
compiled plan). Events that are not counters are derived from counters by
the formulas of the macro's micro-architecture (docs/macro.md):

=====================  ==========================================================  ==================
event                  count                                                       energy entry
=====================  ==========================================================  ==================
RRAM cell read         ``macs * wbits * xbits``: every cell of a row is sensed     ``rram_read_bit``
                       once per input bit-plane (``macs`` counts ``rows * cols``
                       per MVM, so this is ``rows * cols * wbits`` cells x
                       ``xbits`` planes per MVM; the counters carry no data
                       statistics, so rows whose input bit is 0 are counted too:
                       an upper bound)
adder tree             ``mvms * cols * wbits * xbits * fa(rows)``: one popcount    ``adder_bitop``
                       tree per physical column and input plane; ``fa(n)`` is the
                       full-adder bit-ops of a balanced tree of ``n`` 1-bit
                       inputs (:func:`popcount_tree_bitops`)
shift-add              ``mvms * steps * cols * shift_add_bitops_per_step``         ``adder_bitop``
                       (:func:`shift_add_bitops_per_step`: combine ``wbits``
                       popcounts and ``par`` planes, then ``acc*2^par + T``)
macro registers        ``mvms * (steps * cols * acc_bits + rows * xbits)``:        ``reg_bit``
                       the shift-add accumulator each step, the input register
tile accumulators      ``acc_read_bits + acc_write_bits`` (counters)               ``reg_bit``
input buffer           ``ibuf_read_bits + ibuf_write_bits`` (counters)             ``sram_bit``
global buffer          ``gbuf_read_bits + gbuf_write_bits`` (counters), plus the   ``gbuf_bit``
                       host's words written before / read after each window
NoC                    routers: ``(noc_flits + noc_flit_hops) * flit_width`` (a    ``noc_router_bit``,
                       flit crosses its source router, then one router per hop);   ``wire_bit_mm``
                       links: ``noc_flit_hops * flit_width`` over one tile pitch
controller             ``instructions * 64`` instruction-memory bits read          ``sram_bit``
shift lanes            ``3 * acc_bits`` bit-ops per output element made by a       ``adder_bitop``
                       post-processing lane (a layer of ``layers`` with
                       ``out_bits < acc_bits`` or ``rq``: ``M * N`` elements;
                       the shift lane computes whether or not the element is
                       requantized, as in the RTL)
requant unit           ``requant_lane_gates / fa_gates`` bit-ops per requantized   ``adder_bitop``
                       element (a layer with ``rq``: ``M * N``): every cell of
                       the lane switches once, at a full adder's energy per
                       full adder of area (:func:`requant_bitops_per_element`)
RRAM programming       ``rram_pulses * cells_per_row`` SET/RESET pulses per cell,  ``rram_pulse_bit``,
                       ``rram_verify_reads * cells_per_row`` verify reads           ``rram_verify_bit``
host I/O               ``host_write_bits + host_read_bits`` at DRAM energy (the    ``dram_bit``
                       host's memory); a resident pipeline's ``host_dram_bits``:
                       the same words without the padding of their last flit
leakage                ``cycles`` x (tiles' and controller's CMOS area: all but    ``leakage_mw_mm2``
                       the RRAM cells, the crossbars' and the banks' periphery
                       included) x leakage density / clock
=====================  ==========================================================  ==================

A banked macro (``banks > 1``) computes with one bank at a time and shares its adder trees and
shift-add: an MVM's events are an unbanked macro's, whatever the bank (the sensed lines are held at
the read voltage, so a longer bitline is not recharged per read); programming is priced per row as
before. What banks add is area (:func:`chip_area`) and so leakage. A bank switch is not priced (no
counter counts it): within a segment of ``bitline_cells`` banks it moves two decoder outputs (< 0.1
pJ), across segments it toggles the ``rows * cells_per_row`` bank-select switches of two segments
(at most ``2 * rows * cells_per_row * reg_bit``: 24 pJ for 32x32 int8 at 22 nm, 8% of its MVM's 316 pJ).

The baseline (:func:`baseline_events`) is a weight-stationary systolic array
with the chip's peak MACs per cycle, an SRAM weight buffer fed from DRAM, an
activation buffer the size of the chip's global buffer and a partial-sum
buffer; its events are counted analytically for the same GEMMs (docs/energy.md
states every assumption) and priced with the same table. Two baselines (:data:`BASELINES`):
``same-capacity``, whose weight buffer holds as much as the chip's RRAM, and ``equal-area``
(:func:`equal_area_baseline`), whose weight SRAM fills what its PEs and other buffers leave of the
chip's area; weights beyond its SRAM come from DRAM on every run, and its weight SRAM's energy per
bit grows with its capacity (:func:`sram_array_bit`). :func:`default_baseline`: equal-area for a
banked chip (``banks > 1``, built to hold more weights than SRAM of its area), else same-capacity.

The table of energies and areas is :mod:`.technology` (re-exported here): every
entry carries its source; an entry not measured at its node says how it was
scaled. No entry is taken from a paper that docs/energy.md's reproduction
table reproduces.

Pure Python: no Amaranth or cocotb here.
"""

from __future__ import annotations

import math

from .config import Config
from .technology import (AREA, AREA_ITEMS, DEFAULT_NODE, EVENTS, NODES, SRAM_POINTS_45NM, TECH, EnergyError, Entry,
                         Node, sram_array_bit)
from .technology import node_row as _node

__all__ = ["Entry", "Node", "NODES", "TECH", "AREA", "EVENTS", "AREA_ITEMS", "DEFAULT_NODE", "CLOCK_MHZ",
           "EnergyError", "popcount_tree_bitops", "shift_add_bitops_per_step", "chip_events", "baseline_events",
           "baseline_holds", "baseline_weight_bits", "BASELINES", "default_baseline", "SRAM_POINTS_45NM", "sram_array_bit",
           "equal_area_baseline",
           "shift_lane_bitops_per_element", "requant_bitops_per_element", "lane_elements", "post_lanes",
           "baseline_array", "event_energies", "chip_area", "BANK_PARTS", "bank_periphery_um2", "baseline_area", "price", "energy_report",
           "macro_energy_per_mvm", "COMPONENTS", "BASELINE_COMPONENTS", "MOVEMENT"]

CLOCK_MHZ = 200.0          # the clock every figure per second assumes (the CLI states the same)
BASELINES = ("same-capacity", "equal-area")


def default_baseline(cfg: Config) -> str:
    """The baseline a chip is compared with unless one is named: ``equal-area`` for a banked chip
    (``banks > 1``: it holds more weights than SRAM of its area would, the case the comparison is
    about), ``same-capacity`` otherwise (:data:`BASELINES`)."""
    return BASELINES[1] if cfg.banks > 1 else BASELINES[0]

# --- the macro's micro-architecture -----------------------------------------------------------

def popcount_tree_bitops(n: int) -> int:
    """Full-adder bit-ops of one popcount of ``n`` 1-bit inputs in a balanced adder tree.

    Level ``l`` adds pairs of ``l``-bit numbers (``l`` full-adder bits each, the carry out
    giving the ``l+1``-th bit); an odd number passes through to the next level.
    """
    if n < 1:
        raise EnergyError(f"popcount of {n} inputs")
    ops, count, width = 0, n, 1
    while count > 1:
        pairs = count // 2
        ops += pairs * width
        count = pairs + count % 2
        width += 1
    return ops


def shift_add_bitops_per_step(cfg: Config) -> int:
    """Full-adder bit-ops per output column and compute step of the shift-and-add engine.

    ``wbits`` popcounts (``popcount_bits`` wide) weighted by ``+-2^b`` combine in ``wbits-1`` adds of
    ``popcount_bits + wbits`` bits, ``par`` planes in ``par-1`` adds of ``popcount_bits + wbits + par``
    bits, then ``acc * 2^par + T`` is one ``acc_bits`` add (docs/macro.md, "Arithmetic").
    """
    pb = cfg.popcount_bits
    return ((cfg.wbits - 1) * (pb + cfg.wbits) + (cfg.par - 1) * (pb + cfg.wbits + cfg.par) + cfg.acc_bits)


def shift_lane_bitops_per_element(cfg: Config) -> int:
    """Full-adder bit-ops of a shift lane (rtl/postproc.py, ``ShiftClampLane``) per output element: the
    ``3 * acc_bits`` full adders :func:`chip_area` prices it at (its shifter, rounding add and clamp)."""
    return 3 * cfg.acc_bits


def requant_bitops_per_element() -> float:
    """Full-adder bit-ops of a requant lane per requantized element: its gates (``requant_lane_gates``) in
    full adders (``fa_gates``), every cell switching once per element (full activity, as every event of
    the model). Both entries are node-independent."""
    a = AREA[DEFAULT_NODE]
    return a["requant_lane_gates"].value / a["fa_gates"].value


def lane_elements(cfg: Config, layers) -> tuple[int, int]:
    """``(lane, requantized)``: the output elements of ``layers`` (as :func:`energy_report` takes them) that a
    post-processing lane makes (``out_bits < acc_bits`` or ``rq``), and those of them the requant unit
    makes (``rq``). Raises :class:`EnergyError` for ``rq`` on a chip without the unit."""
    lane = rq = 0
    for layer in layers:
        M, _, N, ob = (int(v) for v in layer[:4])
        q = len(layer) > 5 and bool(layer[5])
        if q and not cfg.has_requant:
            raise EnergyError(f"layers: GEMM {M}x{layer[1]}x{N} is requantized (rq) but config '{cfg.name}' "
                              f"has no requant unit")
        lane += M * N if q or ob < cfg.acc_bits else 0
        rq += M * N if q else 0
    return lane, rq


# --- event counts -----------------------------------------------------------------------------

_CHIP_COUNTERS = ("cycles", "instructions", "noc_flits", "noc_flit_hops", "gbuf_read_bits", "gbuf_write_bits",
                  "macs", "mvms", "ibuf_write_bits", "ibuf_read_bits", "acc_read_bits", "acc_write_bits",
                  "rram_pulses", "rram_verify_reads")


def chip_events(cfg: Config, counters: dict, host_write_bits: int = 0, host_read_bits: int = 0,
                host_dram_bits: int | None = None, layers=()) -> dict:
    """Event counts of a run on the chip from its counters (by name, tile counters summed over tiles).

    Returns ``{event: count}`` with the events of the module docstring's table. ``host_dram_bits``: the
    bits the host's memory holds of what it moves (None: all of ``host_write_bits + host_read_bits``; a
    resident pipeline's report gives the words without the padding of their last flit, see
    :func:`rramcim.sim.backends.jobs.run_net`). ``layers``: the run's GEMMs (as :func:`energy_report`
    takes them), for the post-processing lanes' events (:func:`lane_elements`). Raises :class:`EnergyError` if a counter is missing or
    inconsistent (``macs != mvms * rows * cols``).
    """
    for k in _CHIP_COUNTERS:
        if k not in counters:
            raise EnergyError(f"counters: {k!r} missing")
        if int(counters[k]) < 0:
            raise EnergyError(f"counters: {k} = {counters[k]} is negative")
    c = {k: int(counters[k]) for k in _CHIP_COUNTERS}
    if c["macs"] != c["mvms"] * cfg.rows * cfg.cols:
        raise EnergyError(f"counters: macs = {c['macs']} is not mvms * rows * cols = "
                          f"{c['mvms'] * cfg.rows * cfg.cols}")
    mvms = c["mvms"]
    lane, rq = lane_elements(cfg, layers)
    return {
        "rram_read_bits": c["macs"] * cfg.wbits * cfg.xbits,
        "adder_tree_bitops": mvms * cfg.cols * cfg.wbits * cfg.xbits * popcount_tree_bitops(cfg.rows),
        "shift_add_bitops": mvms * cfg.steps * cfg.cols * shift_add_bitops_per_step(cfg),
        "macro_reg_bits": mvms * (cfg.steps * cfg.cols * cfg.acc_bits + cfg.rows * cfg.xbits),
        "acc_bits": c["acc_read_bits"] + c["acc_write_bits"],
        "ibuf_bits": c["ibuf_read_bits"] + c["ibuf_write_bits"],
        "gbuf_bits": c["gbuf_read_bits"] + c["gbuf_write_bits"] + host_write_bits + host_read_bits,
        "noc_router_bits": (c["noc_flits"] + c["noc_flit_hops"]) * cfg.flit_width,
        "noc_link_bits": c["noc_flit_hops"] * cfg.flit_width,
        "imem_bits": c["instructions"] * 64,
        "shift_lane_bitops": lane * shift_lane_bitops_per_element(cfg),
        "requant_bitops": rq * requant_bitops_per_element(),
        "rram_pulse_bits": c["rram_pulses"] * cfg.cells_per_row,
        "rram_verify_bits": c["rram_verify_reads"] * cfg.cells_per_row,
        "dram_bits": host_write_bits + host_read_bits if host_dram_bits is None else host_dram_bits,
        "cycles": c["cycles"],
        "macs": c["macs"],
    }


def baseline_array(cfg: Config) -> tuple[int, int]:
    """``(R, C)``: the baseline's PE rows (K) and columns (N), ``R * C`` = the chip's peak MACs per
    cycle rounded to an integer, ``R`` the largest divisor not above its square root."""
    peak = max(1, round(cfg.tiles * cfg.peak_macs_per_cycle))
    r = max(d for d in range(1, math.isqrt(peak) + 1) if peak % d == 0)
    return r, peak // r


def _layer_weight_bits(cfg: Config, layer) -> int:
    bias = int(layer[2]) * cfg.acc_bits if len(layer) > 4 and layer[4] else 0
    return int(layer[1]) * int(layer[2]) * cfg.wbits + bias


def baseline_weight_bits(cfg: Config, layers) -> int:
    """Bits of the weights (``K*N*wbits``) and biases (``N*acc_bits``) of ``layers`` (as
    :func:`baseline_events` takes them): what the baseline's weight buffer must hold to keep them all."""
    return sum(_layer_weight_bits(cfg, L) for L in layers)


def baseline_holds(cfg: Config, layers) -> bool:
    """Do the weights (and biases) of ``layers`` (as :func:`baseline_events` takes them) fit the
    baseline's weight buffer (the chip's RRAM capacity, every bank's: ``8 * weight_bytes`` bits)?"""
    return baseline_weight_bits(cfg, layers) <= 8 * cfg.weight_bytes


def baseline_events(cfg: Config, layers, weights_resident: bool = False, chained: bool = False,
                    resident_bits: int | None = None) -> dict:
    """Events of the weight-stationary systolic baseline for GEMMs ``layers = [(M, K, N, out_bits)]``
    (or ``(M, K, N, out_bits, bias)``: with ``bias`` true, ``N`` ``acc_bits`` biases travel with the
    weights, DRAM and weight buffer).

    An ``R x C`` array (:func:`baseline_array`); weights ``wbits``, inputs ``xbits``, partial sums
    ``acc_bits`` (the chip's). Per GEMM, with ``Kf = ceil(K/R)``, ``Nf = ceil(N/C)`` folds:

    * DRAM: the weights once (``K*N*wbits``: the best case, each weight fetched once per GEMM), the
      inputs once (``M*K*xbits``), the outputs once (``M*N*out_bits``).
    * weight buffer (SRAM): written from DRAM and read once into the PEs' weight registers
      (``K*N*wbits`` each); the PE weight registers ``K*N*wbits``.
    * activation buffer (SRAM): inputs written once and read once per N fold (``M*K*xbits*Nf``);
      outputs written and read once (``M*N*out_bits`` each).
    * PEs: per MAC an 8x8 multiply (``mult_8b`` x ``wbits*xbits/64``), an ``acc_bits`` add, an
      activation register (``xbits``) and a partial-sum register (``acc_bits``) update: the operands
      moving through the array.
    * partial-sum buffer: every fold's ``M*N`` results written and read (``Kf*M*N*acc_bits`` each),
      ``(Kf-1)*M*N`` accumulating adds of ``acc_bits``.
    * cycles: ``Kf*Nf*(M + R + C - 2)`` (fill and drain per fold, weight loads double-buffered).

    ``weights_resident``: the weights are already in the weight buffer (a deployment that keeps
    them, as the chip keeps them in RRAM): no DRAM fetch and no buffer fill for them; the caller
    checks that they fit (:func:`baseline_holds`).

    ``resident_bits`` (overrides ``weights_resident``): the buffer already holds this many of the
    weight and bias bits (:func:`baseline_weight_bits`), the first layers' first; the rest of each
    layer's are fetched from DRAM and written to the buffer as if none were resident (a part of the
    buffer kept for streaming). 0 is ``weights_resident=False``; all the bits, ``True``.

    ``chained``: the layers run as one network whose intermediate activations stay in the activation
    buffer (as a resident pipeline keeps them on the chip): DRAM carries the first layer's inputs and
    the last layer's outputs only; a later layer's inputs are not written again (the layer before wrote
    them), an earlier layer's outputs are written once and not read out for DRAM.
    """
    R, C = baseline_array(cfg)
    ev = dict.fromkeys(("mults", "pe_add_bitops", "pe_reg_bits", "wbuf_bits", "abuf_bits", "pbuf_bits",
                        "dram_bits", "cycles", "macs"), 0)
    last = len(layers) - 1
    if resident_bits is not None and not 0 <= resident_bits:
        raise EnergyError(f"baseline: resident_bits = {resident_bits} is negative")
    for i, layer in enumerate(layers):
        M, K, N, ob = (int(v) for v in layer[:4])
        x_in = not chained or i == 0            # inputs from DRAM (else already in the activation buffer)
        y_out = not chained or i == last        # outputs to DRAM
        bias = N * cfg.acc_bits if len(layer) > 4 and layer[4] else 0
        if min(M, K, N, ob) < 1:
            raise EnergyError(f"baseline: GEMM {M}x{K}x{N} with {ob}-bit outputs")
        kf, nf = -(-K // R), -(-N // C)
        macs = M * K * N
        wbits = K * N * cfg.wbits + bias
        ev["macs"] += macs
        ev["mults"] += macs
        ev["pe_add_bitops"] += macs * cfg.acc_bits + (kf - 1) * M * N * cfg.acc_bits
        ev["pe_reg_bits"] += macs * (cfg.xbits + cfg.acc_bits) + wbits - bias
        if resident_bits is None:
            fetch = 0 if weights_resident else wbits
        else:
            held = min(wbits, resident_bits)
            resident_bits -= held
            fetch = wbits - held
        ev["wbuf_bits"] += wbits + fetch
        ev["abuf_bits"] += M * K * cfg.xbits * (x_in + nf) + (1 + y_out) * M * N * ob
        ev["pbuf_bits"] += 2 * kf * M * N * cfg.acc_bits
        ev["dram_bits"] += fetch + x_in * M * K * cfg.xbits + y_out * M * N * ob
        ev["cycles"] += kf * nf * (M + R + C - 2)
    return ev


# --- energies ---------------------------------------------------------------------------------

def _v2(node: Node, vdd: float | None) -> float:
    if vdd is None:
        return 1.0
    if not 0.3 <= vdd <= 1.5:
        raise EnergyError(f"vdd {vdd!r}: outside 0.3..1.5 V")
    return (vdd / node.vdd) ** 2


def _e(node: str, key: str, vdd: float | None = None) -> float:
    e = TECH[node][key]
    return e.value * (_v2(NODES[node], vdd) if e.cmos else 1.0)


def _gates(node: str, n: float) -> float:
    return n * AREA[node]["gate_um2"].value


BANK_PARTS = ("wordline drivers", "bank decoders", "bitline bank switches")
"""The components of :func:`chip_area` a banked macro adds (``banks > 1`` only)."""


def bank_periphery_um2(cfg: Config, node: str = DEFAULT_NODE) -> dict:
    """um^2 per macro of what each bank beyond the first adds to a macro, by :data:`BANK_PARTS`: its
    ``rows`` wordline drivers (``wl_driver_gates`` each), a bank decoder output (``bank_decoder_gates``),
    and its share of the bank-select switches that join the local bitlines (``bitline_cells`` cells each)
    to the ``rows * cells_per_row`` sensed lines (``bank_switch_gates`` each). The first bank's drivers,
    decoding and sensing are the single array's, inside ``array_efficiency``. Zero when ``banks == 1``."""
    a = AREA[_node(node).name]
    extra = cfg.banks - 1
    return {
        "wordline drivers": extra * _gates(node, cfg.rows * a["wl_driver_gates"].value),
        "bank decoders": extra * _gates(node, a["bank_decoder_gates"].value),
        "bitline bank switches": extra * _gates(node, cfg.rows * cfg.cells_per_row / a["bitline_cells"].value
                                                * a["bank_switch_gates"].value),
    }


_RQ_BITS = 32        # a requant vector element (rtl/postlane.py's RQ_BITS; the unit requires acc_bits = 32)


def post_lanes(cfg: Config) -> int:
    """Post-processing lanes a tile: ``flit_width // xbits``, shared by its packet sender and its
    standing-sequence sender, which never send at once (rtl/tile.py, ``send_path``)."""
    return cfg.flit_width // cfg.xbits


def chip_area(cfg: Config, node: str = DEFAULT_NODE) -> dict:
    """Area in mm^2 by component, ``total``, and what leaks (``tile_cmos_mm2`` a tile, ``ctrl_cmos_mm2``).

    ``RRAM crossbars``: every bank's cells (``rram_rows * cells_per_row`` a macro) at ``rram_cell_um2 /
    array_efficiency``. A banked macro (``banks > 1``) adds :data:`BANK_PARTS`
    (:func:`bank_periphery_um2`); its adder trees, shift-add and registers are once per macro, shared by
    the banks. Everything but the RRAM cells themselves leaks: the crossbars' periphery and the banks'
    do, the cells do not.

    ``tile logic``: ``control_gates`` and the shift lanes (:func:`post_lanes`, ``3 * acc_bits`` full adders
    each). ``requant lanes`` (``requant_lane_gates`` each, :func:`post_lanes` of them) and ``requant
    vectors`` (``2 * cols`` 32-bit registers a tile, ``ldrq``): zero without the unit (``has_requant``).
    """
    _node(node)
    a = AREA[node]
    eff = a["array_efficiency"].value
    fa, dff = a["fa_gates"].value, a["dff_gates"].value
    sram = a["sram_bit_um2"].value / eff
    T = cfg.tiles
    lanes = post_lanes(cfg)
    rq = int(cfg.has_requant)
    um2 = {"RRAM crossbars": T * cfg.rram_rows * cfg.cells_per_row * a["rram_cell_um2"].value / eff}
    if cfg.banks > 1:
        um2.update({k: T * v for k, v in bank_periphery_um2(cfg, node).items()})
    um2.update({
        "adder trees and shift-add": T * _gates(node, fa * (cfg.cols * cfg.wbits * cfg.par * popcount_tree_bitops(cfg.rows)
                                                            + cfg.cols * shift_add_bitops_per_step(cfg))),
        "macro registers": T * _gates(node, dff * (cfg.cols * cfg.acc_bits * (1 + cfg.macro_out_depth)
                                                   + cfg.rows * cfg.xbits)),
        "tile buffers": T * sram * (cfg.tile_ibuf_depth * cfg.rows * cfg.xbits
                                    + cfg.tile_acc_depth * cfg.cols * cfg.acc_bits + 255 * cfg.flit_width),
        "routers": T * _gates(node, dff * 5 * cfg.noc_fifo_depth * cfg.flit_width + 25 * cfg.flit_width),
        "tile logic": T * _gates(node, a["control_gates"].value + fa * shift_lane_bitops_per_element(cfg) * lanes),
        "requant lanes": T * _gates(node, rq * lanes * a["requant_lane_gates"].value),
        "requant vectors": T * _gates(node, rq * dff * 2 * cfg.cols * _RQ_BITS),
        "controller": sram * (64 * cfg.imem_depth + cfg.flit_width * cfg.gbuf_words)
        + _gates(node, a["control_gates"].value),
    })
    out = {k: v * 1e-6 for k, v in um2.items()}
    out["total"] = sum(out.values())
    out["tile_cmos_mm2"] = (out["total"] - eff * out["RRAM crossbars"] - out["controller"]) / T
    out["ctrl_cmos_mm2"] = out["controller"]
    return out


def baseline_area(cfg: Config, node: str = DEFAULT_NODE) -> dict:
    """Area in mm^2 of the baseline: PEs, the weight buffer (the chip's RRAM capacity in SRAM), the
    activation buffer (the chip's global buffer), the partial-sum buffer (the tiles' accumulators)
    and the controller (the chip's instruction memory and control)."""
    _node(node)
    a = AREA[node]
    eff = a["array_efficiency"].value
    fa, dff = a["fa_gates"].value, a["dff_gates"].value
    sram = a["sram_bit_um2"].value / eff
    R, C = baseline_array(cfg)
    pe = fa * (cfg.wbits * cfg.xbits + cfg.acc_bits) + dff * (cfg.wbits + cfg.xbits + cfg.acc_bits)
    um2 = {
        "PE array": R * C * _gates(node, pe),
        "weight buffer": sram * 8 * cfg.weight_bytes,
        "activation buffer": sram * cfg.flit_width * cfg.gbuf_words,
        "partial-sum buffer": sram * cfg.tiles * cfg.tile_acc_depth * cfg.cols * cfg.acc_bits,
        "controller": sram * 64 * cfg.imem_depth + _gates(node, a["control_gates"].value),
    }
    out = {k: v * 1e-6 for k, v in um2.items()}
    out["total"] = sum(out.values())
    return out


def equal_area_baseline(cfg: Config, node: str = DEFAULT_NODE) -> dict:
    """The equal-area baseline: :func:`baseline_area`'s PE array (the chip's peak MACs per cycle),
    activation buffer, partial-sum buffer and controller, and a weight buffer of SRAM that fills the
    rest of the chip's area (``chip_area(cfg, node)["total"]``), at ``sram_bit_um2 / array_efficiency``
    per bit like every SRAM of the area model.

    Returns ``{"area_mm2": {component: mm2, ..., "total": mm2}, "total": mm2, "sram_bytes": int}``:
    ``total`` equals the chip's area; ``sram_bytes`` is the weight buffer's capacity, the whole bytes
    its area holds (what is left of it, under one byte, is slack). Raises :class:`EnergyError` if the
    other parts alone exceed the chip's area (no baseline of that area has the chip's peak).
    """
    chip = chip_area(cfg, node)["total"]
    fixed = baseline_area(cfg, node)
    rest = chip - (fixed["total"] - fixed["weight buffer"])
    if rest < 0:
        R, C = baseline_array(cfg)
        raise EnergyError(f"equal-area baseline: its PE array of {R}x{C} MACs per cycle and its buffers take "
                          f"{fixed['total'] - fixed['weight buffer']:.4g} mm2, more than the chip's {chip:.4g} mm2 "
                          f"at {node}")
    a = AREA[node]
    byte_mm2 = 8 * a["sram_bit_um2"].value / a["array_efficiency"].value * 1e-6
    area = {k: (rest if k == "weight buffer" else v) for k, v in fixed.items() if k != "total"}
    area["total"] = sum(area.values())
    return {"area_mm2": area, "total": area["total"], "sram_bytes": int(rest / byte_mm2)}


def event_energies(cfg: Config, node: str = DEFAULT_NODE, vdd: float | None = None) -> dict:
    """pJ per unit of each chip and baseline event for ``cfg`` at ``node`` (and supply ``vdd``)."""
    nd = _node(node)
    area = chip_area(cfg, node)
    pitch_mm = math.sqrt(area["total"] / cfg.tiles)
    e = {k: _e(node, k, vdd) for k in TECH[node]}
    leak = e["leakage_mw_mm2"]
    return {
        "rram_read_bits": e["rram_read_bit"], "adder_tree_bitops": e["adder_bitop"],
        "shift_add_bitops": e["adder_bitop"], "macro_reg_bits": e["reg_bit"], "acc_bits": e["reg_bit"],
        "ibuf_bits": e["sram_bit"], "gbuf_bits": e["gbuf_bit"], "noc_router_bits": e["noc_router_bit"],
        "noc_link_bits": e["wire_bit_mm"] * pitch_mm, "imem_bits": e["sram_bit"],
        "shift_lane_bitops": e["adder_bitop"], "requant_bitops": e["adder_bitop"],
        "rram_pulse_bits": e["rram_pulse_bit"], "rram_verify_bits": e["rram_verify_bit"],
        "dram_bits": e["dram_bit"],
        # leakage per cycle: mW * ns = pJ
        "chip_leak_cycle": leak * (area["tile_cmos_mm2"] * cfg.tiles + area["ctrl_cmos_mm2"]) * 1e3 / CLOCK_MHZ,
        "tile_leak_cycle": leak * area["tile_cmos_mm2"] * 1e3 / CLOCK_MHZ,
        "base_leak_cycle": leak * baseline_area(cfg, node)["total"] * 1e3 / CLOCK_MHZ,
        "mults": e["mult_8b"] * cfg.wbits * cfg.xbits / 64, "pe_add_bitops": e["adder_bitop"],
        "pe_reg_bits": e["reg_bit"], "wbuf_bits": e["sram_bit"], "abuf_bits": e["gbuf_bit"],
        "pbuf_bits": e["sram_bit"], "node": nd.name,
    }


# component -> (events, kind); kind: compute, movement or other
COMPONENTS = {
    "RRAM array reads": (("rram_read_bits",), "compute"),
    "adder trees": (("adder_tree_bitops",), "compute"),
    "shift-add and macro registers": (("shift_add_bitops", "macro_reg_bits"), "compute"),
    "shift lanes": (("shift_lane_bitops",), "compute"),
    "requant unit": (("requant_bitops",), "compute"),
    "tile accumulators": (("acc_bits",), "movement"),
    "input buffers": (("ibuf_bits",), "movement"),
    "global buffer": (("gbuf_bits",), "movement"),
    "NoC": (("noc_router_bits", "noc_link_bits"), "movement"),
    "host I/O (DRAM)": (("dram_bits",), "movement"),
    "instruction fetch": (("imem_bits",), "other"),
    "RRAM programming": (("rram_pulse_bits", "rram_verify_bits"), "other"),
    "leakage": (("chip_leak_cycle",), "other"),
}
BASELINE_COMPONENTS = {
    "multipliers": (("mults",), "compute"),
    "adders": (("pe_add_bitops",), "compute"),
    "PE registers (operands moving)": (("pe_reg_bits",), "movement"),
    "weight buffer": (("wbuf_bits",), "movement"),
    "activation buffer": (("abuf_bits",), "movement"),
    "partial-sum buffer": (("pbuf_bits",), "movement"),
    "DRAM": (("dram_bits",), "movement"),
    "leakage": (("base_leak_cycle",), "other"),
}
MOVEMENT = "movement"


def price(events: dict, energies: dict, components: dict) -> dict:
    """``{component: pJ}`` and ``total``; the leakage events are counted per cycle."""
    out = {}
    for comp, (keys, _) in components.items():
        out[comp] = sum(events["cycles" if k.endswith("_leak_cycle") else k] * energies[k] for k in keys)
    out["total"] = sum(out.values())
    return out


def _share(parts: dict, components: dict) -> float:
    mv = sum(v for k, v in parts.items() if k != "total" and components[k][1] == MOVEMENT)
    return mv / parts["total"] if parts["total"] else 0.0


def energy_report(cfg: Config, report: dict, layers, node: str = DEFAULT_NODE, vdd: float | None = None,
                  per: int = 1, weights_resident: bool = False, chained: bool | None = None,
                  baseline: str | None = None, overrides: dict | None = None) -> dict:
    """Energy, area and efficiency of a run and of the baseline on the same GEMMs.

    ``report``: a run report with ``counters`` (by name), ``cycles``, ``macs`` and optionally
    ``host_write_bits`` / ``host_read_bits``. ``layers``: the run's GEMMs, ``(M, K, N, out_bits)``,
    ``(M, K, N, out_bits, bias)`` (:func:`baseline_events`) or ``(M, K, N, out_bits, bias, rq)``: with ``rq``
    true the requant unit makes the GEMM's ``M * N`` outputs (``outq rq=1`` or a sequence's ``rq``); a lane
    makes every output of ``out_bits < acc_bits`` (:func:`lane_elements`).
    ``per``: what the energy is divided by for ``energy_per_pj`` (the batch for an MLP, 1 for a GEMM).
    ``weights_resident``: the deployment keeps the weights (for the chip, pass a report without the
    RRAM-programming windows: a kept chip's report has none); the baseline's weight buffer then holds
    them all (``same-capacity``: the caller checks that they fit, :func:`baseline_holds`) or as many
    as its SRAM can (``equal-area``), and the rest come from DRAM on every run (:func:`baseline_events`).
    ``baseline``: ``same-capacity`` (:func:`baseline_area`, its weight buffer priced at ``sram_bit``)
    or ``equal-area`` (:func:`equal_area_baseline`, its weight buffer at :func:`sram_array_bit` of its
    capacity, its leakage over the chip's area); None: :func:`default_baseline` of ``cfg``.
    ``chained`` (default: the report's ``placement`` is ``pipeline`` or ``banked``): the baseline keeps the
    intermediate activations on chip as the chip does (:func:`baseline_events`). The chip's DRAM
    bits are the report's ``host_dram_bits`` when it has them, else all the host moves.
    ``overrides``: pJ per unit of some events instead of the table's (``{"dram_bits": 7.8}``, ``wbuf_bits``:
    the baseline's weight SRAM), for sensitivity studies; applied to the chip and the baseline alike.
    """
    if chained is None:
        chained = report.get("placement") in ("pipeline", "banked")
    _node(node)
    baseline = default_baseline(cfg) if baseline is None else baseline
    if baseline not in BASELINES:
        raise EnergyError(f"baseline {baseline!r}: {' or '.join(BASELINES)}")
    if "counters" not in report:
        raise EnergyError("report: no 'counters' (run the job on a backend first)")
    dram = report.get("host_dram_bits")
    ev = chip_events(cfg, report["counters"], int(report.get("host_write_bits", 0)),
                     int(report.get("host_read_bits", 0)), None if dram is None else int(dram), layers)
    en = event_energies(cfg, node, vdd)
    wbits = baseline_weight_bits(cfg, layers)
    if baseline == "equal-area":
        eq = equal_area_baseline(cfg, node)
        barea, sram_bytes = eq["area_mm2"], eq["sram_bytes"]
        held = min(wbits, 8 * sram_bytes) if weights_resident else 0
        en = dict(en, wbuf_bits=sram_array_bit(node, sram_bytes).value * _v2(NODES[node], vdd),
                  base_leak_cycle=_e(node, "leakage_mw_mm2") * barea["total"] * 1e3 / CLOCK_MHZ)
    else:
        barea, sram_bytes = baseline_area(cfg, node), cfg.weight_bytes
        held = wbits if weights_resident else 0
    unknown = set(overrides or {}) - set(en)
    if unknown:
        raise EnergyError(f"overrides: no event {', '.join(sorted(unknown))}")
    en = dict(en, **(overrides or {}))
    chip = price(ev, en, COMPONENTS)
    bev = baseline_events(cfg, layers, chained=chained, resident_bits=held)
    if bev["macs"] != report["macs"]:
        raise EnergyError(f"layers: {bev['macs']} MACs, the run did {report['macs']}")
    base = price(bev, en, BASELINE_COMPONENTS)
    area = chip_area(cfg, node)
    ops = 2 * report["macs"]
    secs = ev["cycles"] / (CLOCK_MHZ * 1e6)
    bsecs = bev["cycles"] / (CLOCK_MHZ * 1e6)
    r = {
        "node": node, "vdd": vdd if vdd is not None else NODES[node].vdd, "clock_mhz": CLOCK_MHZ,
        "ops": ops, "energy_pj": chip["total"], "energy_per_pj": chip["total"] / per, "per": per,
        "tops_per_w": ops / chip["total"], "tops_per_mm2": ops / secs / 1e12 / area["total"],
        "area_mm2": area["total"], "data_movement_share": _share(chip, COMPONENTS),
        "leakage_per_tile_cycle_pj": en["tile_leak_cycle"],
        "breakdown_pj": {k: v for k, v in chip.items() if k != "total"},
        "events": ev,
        "baseline_energy_pj": base["total"], "baseline_energy_per_pj": base["total"] / per,
        "baseline_tops_per_w": ops / base["total"],
        "baseline_tops_per_mm2": ops / bsecs / 1e12 / barea["total"], "baseline_area_mm2": barea["total"],
        "baseline_cycles": bev["cycles"], "baseline_array": list(baseline_array(cfg)),
        "baseline_weights_resident": bool(weights_resident), "baseline_chained": bool(chained),
        "baseline": baseline, "baseline_sram_bytes": sram_bytes, "baseline_weight_bits": wbits,
        "baseline_dram_weight_bits": wbits - held, "baseline_wbuf_pj_per_bit": en["wbuf_bits"],
        "baseline_data_movement_share": _share(base, BASELINE_COMPONENTS),
        "baseline_breakdown_pj": {k: v for k, v in base.items() if k != "total"},
        "baseline_events": bev,
        "energy_ratio": base["total"] / chip["total"],
        "area_breakdown_mm2": {k: v for k, v in area.items() if not k.endswith("cmos_mm2") and k != "total"},
        "baseline_area_breakdown_mm2": {k: v for k, v in barea.items() if k != "total"},
    }
    return r


def macro_energy_per_mvm(cfg: Config, node: str, vdd: float | None = None, cell: str = "rram") -> dict:
    """Energy of one MVM inside one macro (cell reads, adder trees, shift-add, registers), the
    figure a macro paper reports: by the same event formulas as :func:`chip_events` with one MVM.
    ``cell``: ``rram`` (``rram_read_bit``) or ``sram`` (a 6T bit read into the AND gate, priced as
    one flip-flop bit update, ``reg_bit``)."""
    counters = dict.fromkeys(_CHIP_COUNTERS, 0)
    counters.update(mvms=1, macs=cfg.rows * cfg.cols)
    ev = chip_events(cfg, counters)
    en = event_energies(cfg, node, vdd)
    if cell == "sram":
        en = dict(en, rram_read_bits=en["macro_reg_bits"])
    elif cell != "rram":
        raise EnergyError(f"cell {cell!r}: rram or sram")
    parts = {k: ev[k] * en[k] for k in ("rram_read_bits", "adder_tree_bitops", "shift_add_bitops",
                                        "macro_reg_bits")}
    parts["total"] = sum(parts.values())
    return parts
