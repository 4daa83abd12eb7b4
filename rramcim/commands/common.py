"""What several commands share: the one-line error, config and fault parsing, options added to several
subcommands, the outputs' bytes (written by :mod:`.outputs`), progress displays and the energy summary of
``run`` and ``gemm``.

Heavy modules (numpy, the model, sim/) are imported inside the functions that use them, so that
``rramcim --help`` and argument errors stay fast.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


class CliError(Exception):
    """An error reported to the user in one line."""


# -- options added to several subcommands -------------------------------------------------------------------

def add_config_option(sp):
    """``--config NAME|FILE`` (default: the 'default' preset)."""
    from ..model.config import PRESETS
    sp.add_argument("--config", default="default", metavar="NAME|FILE",
                    help=f"preset ({', '.join(PRESETS)}) or .toml/.json file (default: %(default)s)")


def add_backend_options(sp, what):
    """``--backend``, ``--port``, ``--baud`` and ``--report`` (``what`` says what the report holds)."""
    from ..fpga.protocol import DEFAULT_BAUD
    sp.add_argument("--backend", choices=["model", "verilator", "icarus", "fpga"], default="model",
                    help="the cycle-exact model, the RTL on a simulator, or a board over its UART "
                         "(fpga, with --port) (default: %(default)s)")
    sp.add_argument("--port", metavar="DEVICE", help="--backend fpga: the board's serial port "
                                                     "(e.g. /dev/ttyUSB0; any pyserial URL)")
    sp.add_argument("--baud", type=bounded(int, *BAUD_RANGE), default=DEFAULT_BAUD,
                    help=f"--backend fpga: line rate of the board's UART, {BAUD_RANGE[0]}..{BAUD_RANGE[1]} "
                         "(default: %(default)s)")
    sp.add_argument("--serial-timeout", type=bounded(float, *SERIAL_TIMEOUT_RANGE), metavar="SECONDS",
                    help="--backend fpga: how long to wait for each reply of the board "
                         f"({SERIAL_TIMEOUT_RANGE[0]:g}..{SERIAL_TIMEOUT_RANGE[1]:g}; default: the backend's)")
    add_keep_build_option(sp)
    sp.add_argument("--report", metavar="R.json", help=f"write {what} as JSON")


def add_keep_build_option(sp):
    """``--keep-build``: RTL backends keep their work folders (as ``RRAMCIM_KEEP_BUILD=1`` does)."""
    sp.add_argument("--keep-build", action="store_true",
                    help="RTL backends: keep the simulator's work folder (logs, waveforms) and say where; "
                         "the same as RRAMCIM_KEEP_BUILD=1 (default: removed, except after a failure)")


def keep_build(args):
    """Pass ``--keep-build`` on to the RTL backends (they read ``RRAMCIM_KEEP_BUILD``)."""
    if getattr(args, "keep_build", False):
        os.environ["RRAMCIM_KEEP_BUILD"] = "1"


BAUD_RANGE = (300, 12_000_000)
SERIAL_TIMEOUT_RANGE = (0.1, 3600.0)


def bounded(kind, lo, hi):
    """An argparse ``type``: an int or a finite float in ``[lo, hi]``; the error names the range.

    Strings longer than 40 characters are refused before conversion (no thousands-of-digits numbers).
    """
    import argparse
    import math
    noun = "an integer" if kind is int else "a number"
    span = f"[{lo}, {hi}]" if kind is int else f"[{lo:g}, {hi:g}]"

    def parse(text: str):
        shown = text if len(text) <= 20 else text[:20] + "..."
        if len(text) > 40:
            raise argparse.ArgumentTypeError(f"{shown!r} is too long for {noun} in {span}")
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{shown!r} is not {noun}") from None
        if kind is float and not math.isfinite(v) or not lo <= v <= hi:
            raise argparse.ArgumentTypeError(f"{shown} is out of range: {noun} in {span}")
        return v
    parse.__name__ = kind.__name__           # argparse names the type in some messages
    return parse


def add_node_option(sp):
    """``--node``: the technology row of the energy model, checked by :func:`check_node`."""
    from ..model.energy import DEFAULT_NODE, NODES
    # checked in the command (one-line error), not by argparse choices (usage + error: two lines)
    sp.add_argument("--node", default=DEFAULT_NODE, metavar="NODE",
                    help=f"technology row of the energy model: {', '.join(NODES)} (default: %(default)s)")


def add_baseline_option(sp):
    """``--baseline``: which von Neumann baseline the energy model compares the chip with."""
    from ..model.energy import BASELINES
    # None: the config's default (check_baseline), known only once the config is read
    sp.add_argument("--baseline", choices=BASELINES, default=None,
                    help="the von Neumann baseline of the energy comparison, a weight-stationary systolic array "
                         "with the chip's peak MACs per cycle: same-capacity (its SRAM weight buffer holds as "
                         "much as the chip's RRAM) or equal-area (SRAM fills the rest of the chip's area; "
                         "weights that do not fit it come from DRAM on every run; docs/energy.md) "
                         "(default: equal-area for a banked config, banks > 1; else same-capacity)")


def add_chip_option(sp):
    """``--chip STATE.npz``: a kept chip (:func:`kept_chip`, :func:`stage_chip`)."""
    sp.add_argument("--chip", metavar="STATE.npz",
                    help="a kept chip: the RRAM rows and per-row write counts of every macro and the config's "
                         "hash (docs/usage.md). A missing file is a fresh chip, written after the run; an "
                         "existing one is loaded (for the same config only) and rows that already hold the "
                         "wanted weights are not programmed again; the file is rewritten with the chip's state "
                         "after the run, only if the run succeeds. Model, verilator and icarus; not fpga (a "
                         "board's RRAM cannot be loaded or read from the host)")


def add_stuck_option(sp, help):
    """``--stuck ROW,CELL,VALUE`` (repeatable), parsed by :func:`faults`."""
    sp.add_argument("--stuck", action="append", metavar="ROW,CELL,VALUE", help=help)


# -- checks made before any work ------------------------------------------------------------------------------

def config(spec):
    """The :class:`rramcim.model.config.Config` named by a preset or file (``ConfigError`` if bad)."""
    from ..model.config import load_config
    return load_config(spec)


def faults(cfg, items):
    """The ``--stuck`` items as a :class:`rramcim.model.macro.FaultMap` for ``cfg``."""
    import re
    from ..model.macro import FaultMap
    parsed = []
    for it in items or []:
        parts = [p.strip() for p in it.split(",")]
        shown = it if len(it) <= 40 else it[:40] + "..."
        if len(parts) != 3 or not all(re.fullmatch(r"-?\d{1,9}", p) for p in parts):
            raise CliError(f"--stuck {shown!r}: expected ROW,CELL,VALUE (three integers of at most 9 digits)")
        parsed.append(tuple(int(p) for p in parts))
    try:
        return FaultMap.from_list(cfg, parsed)
    except ValueError as e:
        raise CliError(f"--stuck: {e}") from None


def check_int8_config(cfg):
    """``gemm`` and ``run`` take int8 operands and give int32 results."""
    for f in ("wbits", "xbits"):
        if getattr(cfg, f) < 8:
            raise CliError(f"{f}: gemm and run take int8 operands; config '{cfg.name}' has {f}={getattr(cfg, f)}")
    if cfg.acc_bits < 32:
        raise CliError(f"acc_bits: int32 results need acc_bits >= 32; config '{cfg.name}' has {cfg.acc_bits}")


def check_fpga_args(args):
    """``--port`` goes with ``--backend fpga`` and with nothing else (checked before any work)."""
    if args.backend == "fpga" and not args.port:
        raise CliError("--backend fpga needs --port (the board's serial device, e.g. /dev/ttyUSB0)")
    if args.port and args.backend != "fpga":
        raise CliError(f"--port {args.port}: only with --backend fpga (not {args.backend})")


def kept_chip(args, cfg):
    """``--chip``: the :class:`rramcim.model.chipfile.KeptChip` read from the file (checked for ``cfg``), a
    fresh one if the file does not exist, or None without the option; checked before any work."""
    if not getattr(args, "chip", None):
        return None
    if args.backend == "fpga":
        raise CliError(f"--chip {args.chip}: not with --backend fpga: a board's RRAM cannot be loaded or read "
                       "from the host (use model, verilator or icarus)")
    from ..model.chipfile import ChipFileError, KeptChip, load_chip
    if not Path(args.chip).exists():
        print(f"  chip {args.chip}: a fresh chip (no such file yet; written after the run)")
        return KeptChip.fresh(cfg)
    try:
        chip = load_chip(args.chip, cfg)
    except ChipFileError as e:
        raise CliError(f"--chip {e}") from None
    print(f"  chip {args.chip}: kept for config '{cfg.name}', {int((chip.write_counts > 0).sum())} of "
          f"{chip.write_counts.size} rows written before")
    return chip


def stage_chip(args, outputs, chip):
    """Stage the kept chip's state after the run into its file (written with the other outputs)."""
    if chip is not None:
        outputs.stage("--chip", args.chip, chip.to_bytes())


def print_cycle_split(report):
    """The summary's two lines: RRAM programming, then inference (``program_cycles``, ``inference_cycles``)."""
    print(f"  programming: {report['rram_row_writes']} RRAM rows written, {report['program_cycles']} cycles")
    print(f"  inference: {report['inference_cycles']} cycles, compute utilization "
          f"{100 * report['compute_utilization']:.1f}% of {report['peak_macs_per_cycle']:g} MACs/cycle"
          + (" (no inference cycles)" if not report["inference_cycles"] else ""))
    if "limit_cycles_per_vector" in report:
        print(f"  pipeline limit: {report['limit_cycles_per_vector']} cycles per input vector (bound by "
              f"{report['limit_bound']}), {100 * report['limit_utilization']:.1f}% of peak; reached "
              f"{100 * report['compute_utilization'] / report['limit_utilization']:.0f}% of it")


def check_node(args):
    """The technology row named by --node, checked before any work (one-line error)."""
    from ..model.energy import NODES
    if args.node not in NODES:
        raise CliError(f"--node {args.node!r}: not in the technology table (known: {', '.join(NODES)})")
    return args.node


def check_baseline(args, cfg):
    """``--baseline``: the config's default when not given (equal-area for a banked config, else
    same-capacity: :func:`rramcim.model.energy.default_baseline`), set on ``args``; equal-area on a chip
    too small to hold the baseline's PEs and buffers is a one-line error before any work (after
    :func:`check_node`), which says when it was the default."""
    from ..model.energy import EnergyError, default_baseline, equal_area_baseline
    given = args.baseline is not None
    if not given:
        args.baseline = default_baseline(cfg)
    if args.baseline == "equal-area":
        try:
            equal_area_baseline(cfg, args.node)
        except EnergyError as e:
            raise CliError(f"--baseline equal-area: {e}" if given else
                           f"--baseline equal-area (the default for a banked config): {e}; choose "
                           "--baseline same-capacity") from None


# -- input and output -----------------------------------------------------------------------------------------

MAX_TEXT_BYTES = 16 << 20
"""The largest program source or hex file read (an imem holds at most 2**16 words: about 1 MiB of hex)."""


def read_text(path: str) -> str:
    """A text file's content, or a one-line CliError."""
    p = Path(path)
    try:
        if p.exists() and not p.is_file():
            raise CliError(f"{path}: not a regular file")
        if p.is_file() and p.stat().st_size > MAX_TEXT_BYTES:
            raise CliError(f"{path}: {p.stat().st_size:,} bytes, more than the {MAX_TEXT_BYTES >> 20} MiB read "
                           "for a program")
        return p.read_text()
    except FileNotFoundError:
        raise CliError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise CliError(f"{path}: cannot read it as text ({e})") from None


def npy_bytes(array) -> bytes:
    """``array`` in .npy format, to stage as an output (:class:`.outputs.Outputs`)."""
    import io
    import numpy as np
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def jsonable(v):
    """``v`` with numpy scalars turned into Python numbers and keys into strings, for ``json.dumps``."""
    import numpy as np
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    return v


def report_text(report: dict) -> str:
    """A run's report as indented JSON (``--report R.json``)."""
    return json.dumps(jsonable(report), indent=2) + "\n"


# -- progress -------------------------------------------------------------------------------------------------

PROGRESS: list = []
"""Every open progress display; :func:`rramcim.cli.main` closes them on the way out, on an interrupt too."""


def progress_printer(what):
    """A progress callback (:class:`rramcim.progress.Progress`), closed by :func:`rramcim.cli.main`."""
    from ..progress import Progress
    p = Progress(what)
    PROGRESS.append(p)
    return p


# -- energy summary of run and gemm ---------------------------------------------------------------------------

def energy(args, cfg, report, layers, per: int, unit: str, plot_dir=None):
    """Energy of the run and of the von Neumann baseline (model/energy.py): printed, added to ``report``
    (the R.json fields), and drawn as ``energy.png`` in ``plot_dir`` if given. Returns the energy report."""
    from ..model.energy import baseline_holds, default_baseline, energy_report
    # a kept chip (its file was loaded: it is written only after the run) keeps its weights; so does the
    # baseline, in its SRAM: all of them when they fit there (same-capacity), what fits (equal-area)
    kept = bool(getattr(args, "chip", None)) and Path(args.chip).exists()
    which = args.baseline or default_baseline(cfg)
    e = energy_report(cfg, report, layers, args.node, per=per, baseline=which,
                      weights_resident=kept and (which == "equal-area" or baseline_holds(cfg, layers)))
    r, c = e["baseline_array"]
    print(f"  energy ({e['node']}, {e['vdd']:g} V, {e['clock_mhz']:g} MHz): chip {e['energy_per_pj'] / 1e3:,.2f} nJ "
          f"per {unit}, {e['tops_per_w']:.3g} TOPS/W, {e['tops_per_mm2']:.3g} TOPS/mm2 ({e['area_mm2']:.3g} mm2); "
          f"data movement {100 * e['data_movement_share']:.0f}%")
    if which == "equal-area":
        dram, every = e["baseline_dram_weight_bits"] / 8, e["baseline_weight_bits"] / 8
        held = (f"{_bytes(e['baseline_sram_bytes'])} SRAM in the rest of the chip's area, "
                + ("weights kept in it" if not dram else f"weights ({_bytes(dram)}) from DRAM every run"
                   if dram == every else f"{_bytes(dram)} of its {_bytes(every)} of weights from DRAM every run, "
                   "the rest kept in it"))
    else:
        held = "weights kept in its SRAM" if e["baseline_weights_resident"] else "SRAM weight buffer fed from DRAM"
    held += ", activations kept on chip" if e["baseline_chained"] else ""
    print(f"  baseline ({which}: {r}x{c} weight-stationary systolic array, {held}; "
          f"{e['baseline_area_mm2']:.3g} mm2): "
          f"{e['baseline_energy_per_pj'] / 1e3:,.2f} nJ per {unit}, {e['baseline_tops_per_w']:.3g} TOPS/W, "
          f"{e['baseline_tops_per_mm2']:.3g} TOPS/mm2; data movement {100 * e['baseline_data_movement_share']:.0f}%")
    top = sorted(e["breakdown_pj"].items(), key=lambda kv: -kv[1])[:3]
    btop = sorted(e["baseline_breakdown_pj"].items(), key=lambda kv: -kv[1])[:3]
    print(f"  energy ratio, baseline / chip: {e['energy_ratio']:.2f}x; largest parts: chip "
          + ", ".join(f"{k} {100 * v / e['energy_pj']:.0f}%" for k, v in top) + "; baseline "
          + ", ".join(f"{k} {100 * v / e['baseline_energy_pj']:.0f}%" for k, v in btop))
    case, why = energy_case(e, kept, per)
    print(f"  case: {why}")
    report.update(energy_pj=e["energy_pj"], tops_per_w=e["tops_per_w"], tops_per_mm2=e["tops_per_mm2"],
                  energy_case=case,
                  baseline_energy_pj=e["baseline_energy_pj"], baseline_tops_per_w=e["baseline_tops_per_w"],
                  energy_ratio=e["energy_ratio"], node=e["node"], baseline=which, area_mm2=e["area_mm2"],
                  baseline_area_mm2=e["baseline_area_mm2"], baseline_sram_bytes=e["baseline_sram_bytes"],
                  baseline_dram_weight_bits=e["baseline_dram_weight_bits"], energy=e)
    if plot_dir is not None:
        from ..sim.report.plots import plot_energy
        plot_energy(e, plot_dir)
    return e


def energy_case(e: dict, kept: bool, batch: int) -> tuple[str, str]:
    """Which case of docs/energy.md ("When this chip wins") a run is in: ``("parity" | "memory-wall", why)``."""
    wbytes, sram = e["baseline_weight_bits"] / 8, e["baseline_sram_bytes"]
    if wbytes <= sram:
        case, why = "parity", (f"parity: the weights ({_bytes(wbytes)}) fit the baseline's SRAM ({_bytes(sram)}), so "
                               "it does not fetch them from DRAM either; the chip wins where they do not fit (the "
                               "memory-wall case: --config memwall, docs/energy.md)")
    else:
        case, why = "memory-wall", (f"memory wall: {_bytes(wbytes - sram)} of the {_bytes(wbytes)} of weights do not "
                                    f"fit the baseline's SRAM and cross from DRAM for every batch (here {batch}), "
                                    "while the chip computes where they are; the ratio falls as the batch grows "
                                    "(docs/energy.md)")
    if not kept and e["breakdown_pj"].get("RRAM programming", 0):
        why += "; this run also programs the RRAM (pass --chip FILE to keep the chip, as a deployment would)"
    return case, why


def _bytes(n: float) -> str:
    """``n`` bytes in KiB or MiB (3 significant digits), or bytes under 1 KiB."""
    if n < 1024:
        return f"{n:.0f} B"
    return f"{n / 1024:.3g} KiB" if n < 1 << 20 else f"{n / (1 << 20):.3g} MiB"
