"""The ``rramcim`` command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

DESCRIPTION = """\
rramcim: a full-digital RRAM compute-in-memory chip. Amaranth RTL, a
bit-exact and cycle-exact golden model, and the harness that checks one
against the other on Icarus and Verilator.
"""

EPILOG = """\
examples:
  rramcim run                                   the demo: an int8 MLP on the digits data set, on the chip model
  rramcim run --net net.npz --inputs x.npy --out y.npy --report r.json
  rramcim demo                                  program a macro, run MVMs on RTL and model
  rramcim demo --backend icarus --config tiny   the same on Icarus
  rramcim verilog --config default -o chip.v --lint   the whole chip
  rramcim verilog --block macro --config tiny -o macro.v
  rramcim config my_chip.toml                   show a config file resolved over 'default'
  rramcim fpga build --board ulx3s              bitstream for the ULX3S (ECP5-85F) and a resource/Fmax summary
  rramcim fpga report                           print the summaries of the FPGA builds again
  rramcim gemm --a A.npy --b B.npy --out C.npy --report r.json   int8 GEMM on the chip model
  rramcim gemm --a A.npy --b B.npy --out C.npy --backend verilator   the same on the RTL
  rramcim run --backend fpga --port /dev/ttyUSB0 --config ulx3s   the demo on a board, over its UART

A config is a preset (tiny, default, large, ulx3s, icebreaker) or a .toml/.json file whose keys
are the lower-case field names of rramcim.model.config.Config.
"""


class CliError(Exception):
    """An error reported to the user in one line."""


def _config(spec):
    from .model.config import load_config
    return load_config(spec)


def _faults(cfg, items):
    from .model.macro import FaultMap
    parsed = []
    for it in items or []:
        parts = it.split(",")
        if len(parts) != 3 or not all(p.strip().lstrip("-").isdigit() for p in parts):
            raise CliError(f"--stuck {it!r}: expected ROW,CELL,VALUE (three integers)")
        parsed.append(tuple(int(p) for p in parts))
    try:
        return FaultMap.from_list(cfg, parsed)
    except ValueError as e:
        raise CliError(f"--stuck: {e}") from None


def _write_atomic(path: Path, text: str | bytes):
    """Write ``text`` (or bytes) to ``path`` only once it is complete."""
    path = Path(path)
    if path.parent and not path.parent.exists():
        raise CliError(f"-o {path}: directory {path.parent} does not exist")
    fd, tmp = tempfile.mkstemp(dir=path.parent or ".", prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb" if isinstance(text, bytes) else "w") as f:
            f.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def cmd_config(args):
    cfg = _config(args.config)
    d = cfg.as_dict()
    d["derived"] = {"steps": cfg.steps, "peak_macs_per_cycle_per_macro": cfg.peak_macs_per_cycle,
                    "cells_per_row": cfg.cells_per_row, "tiles": cfg.tiles}
    print(json.dumps(d, indent=2))


def cmd_verilog(args):
    from .rtl.verilog import block_verilog
    cfg = _config(args.config)
    faults = _faults(cfg, args.stuck)
    out = Path(args.output)
    if out.parent and not out.parent.exists():         # before a long generation
        raise CliError(f"-o {out}: directory {out.parent} does not exist")
    t0 = time.time()
    top, text = block_verilog(args.block, cfg, faults)
    _write_atomic(Path(args.output), text)
    print(f"wrote {args.output}: top module {top}, config {cfg.name}, {len(text) // 1024} KiB "
          f"in {time.time() - t0:.0f} s")
    if args.lint:
        from .sim.build import lint
        clean, out = lint(Path(args.output), top)
        if not clean:
            print(out, file=sys.stderr)
            raise CliError(f"verilator --lint-only -Wall found problems in {args.output}")
        print("verilator --lint-only -Wall: clean (with the waivers in rramcim/sim/waivers.vlt)")


def _read_text(path: str) -> str:
    try:
        return Path(path).read_text()
    except FileNotFoundError:
        raise CliError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise CliError(f"{path}: cannot read it as text ({e})") from None


def cmd_asm(args):
    from .model.isa import AsmError, assemble
    try:
        words = assemble(_read_text(args.source))
    except AsmError as e:
        raise CliError(f"{args.source}: {e}") from None
    _write_atomic(Path(args.output), "".join(f"{w:016x}\n" for w in words))
    print(f"wrote {args.output}: {len(words)} instructions (64-bit hex words, one per line)")


def read_hex_words(path: str) -> list[int]:
    """64-bit words from a hex file (one per line, as ``rramcim asm`` writes; ``#`` comments)."""
    words = []
    for n, line in enumerate(_read_text(path).splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            w = int(line, 16)
        except ValueError:
            raise CliError(f"{path}: line {n}: {line!r} is not a hex word") from None
        if not 0 <= w < (1 << 64):
            raise CliError(f"{path}: line {n}: {line!r} does not fit 64 bits")
        words.append(w)
    return words


def cmd_disasm(args):
    from .model.isa import disassemble
    text = disassemble(read_hex_words(args.program))
    if args.output:
        _write_atomic(Path(args.output), text)
        print(f"wrote {args.output}")
    else:
        sys.stdout.write(text)


def cmd_demo(args):
    import numpy as np
    from .sim.build import build, run_cocotb
    from .sim.macro_bench import MacroBench
    cfg = _config(args.config)
    if args.mvms < 1:
        raise CliError(f"--mvms must be at least 1, not {args.mvms}")
    faults = _faults(cfg, args.stuck)
    print(f"rramcim demo: macro {cfg.rows}x{cfg.cols}, int{cfg.wbits} weights x int{cfg.xbits} "
          f"inputs, {cfg.par} bit-plane(s)/cycle, config '{cfg.name}', backend {args.backend}")
    # The model's prediction, computed here from the same seed (the RTL run
    # computes its own in the simulator process and checks every event).
    params = dict(seed=args.seed, n_mvm=args.mvms, n_prog=cfg.rows, stall=args.stall, phases=1)
    bench = MacroBench(cfg, faults, seed=args.seed, n_mvm=args.mvms, n_prog=cfg.rows,
                       stall=args.stall, phases=1)
    mvms, progs, model_cycles, _, failures = bench.expected[0]
    ref_ok = all(np.array_equal(ev.y, _reference(bench, ev)) for ev in mvms)
    print(f"  building the {args.backend} model (cached after the first time) ...", flush=True)
    b = build("macro", cfg, args.backend, faults, log=lambda s: print("  " + s, flush=True))
    print(f"  programming {cfg.rows} rows and running {args.mvms} MVMs on the RTL ...", flush=True)
    res = run_cocotb(b, "rramcim.sim.cocotb_macro", params, waves_on_failure=args.waves_on_failure,
                     progress=_progress_printer("MVMs checked against the model"))
    if not res.passed:
        raise CliError(f"RTL and model disagree: {res.describe()}")
    s = res.summary
    first, last = mvms[0].accept_cycle, mvms[-1].out_cycle
    macs = args.mvms * cfg.rows * cfg.cols
    print(f"  model == numpy x @ W (int64):        {'yes' if ref_ok else 'NO'} ({args.mvms} MVMs)")
    print(f"  RTL == model, bit-exact, every cycle: yes ({s['mvms']} MVMs, {s['rows_programmed']} row writes)")
    print(f"  cycles, RTL / model:                  {s['cycles'][0]} / {model_cycles}")
    print(f"  verify failures (stuck cells):        {failures}")
    print(f"  MVM latency / interval:               {mvms[0].out_cycle - mvms[0].accept_cycle} / {cfg.steps} cycles")
    print(f"  MACs/cycle over the MVM stream:       {macs / (last - first + 1):.2f} "
          f"(peak {cfg.peak_macs_per_cycle:g}, {100 * macs / (last - first + 1) / cfg.peak_macs_per_cycle:.2f}%)")
    print(f"  simulated {s['cycles'][0]} cycles in {s['wall_seconds']:.2f} s on {args.backend}")
    if not ref_ok:
        raise CliError("the model disagrees with numpy x @ W")


def load_int8_matrix(path: str, flag: str):
    """A 2-D integer array from a .npy file whose values fit int8, or a one-line CliError."""
    import numpy as np
    p = Path(path)
    if not p.is_file():
        raise CliError(f"{flag} {path}: no such file")
    try:
        a = np.load(p, allow_pickle=False)
    except Exception as e:  # noqa: BLE001 - any unreadable file is one message
        raise CliError(f"{flag} {path}: not a readable .npy file ({str(e).splitlines()[0][:80]})") from None
    if not isinstance(a, np.ndarray) or a.dtype.kind not in "iu":
        raise CliError(f"{flag} {path}: dtype {getattr(a, 'dtype', type(a).__name__)}, expected integers (int8)")
    if a.ndim != 2:
        raise CliError(f"{flag} {path}: shape {a.shape}, expected a 2-D matrix")
    if 0 in a.shape:
        raise CliError(f"{flag} {path}: shape {a.shape} is empty")
    lo, hi = int(a.min()), int(a.max())
    if lo < -128 or hi > 127:
        bad = lo if lo < -128 else hi
        raise CliError(f"{flag} {path}: value {bad} outside the int8 range [-128, 127] (dtype {a.dtype})")
    return a.astype(np.int8)


def _int8_config(cfg):
    for f in ("wbits", "xbits"):
        if getattr(cfg, f) < 8:
            raise CliError(f"{f}: gemm and run take int8 operands; config '{cfg.name}' has {f}={getattr(cfg, f)}")
    if cfg.acc_bits < 32:
        raise CliError(f"acc_bits: int32 results need acc_bits >= 32; config '{cfg.name}' has {cfg.acc_bits}")


def _fpga_args(args):
    """``--port`` goes with ``--backend fpga`` and with nothing else (checked before any work)."""
    if args.backend == "fpga" and not args.port:
        raise CliError("--backend fpga needs --port (the board's serial device, e.g. /dev/ttyUSB0)")
    if args.port and args.backend != "fpga":
        raise CliError(f"--port {args.port}: only with --backend fpga (not {args.backend})")


def run_plan(plan, backend: str, log=print, port: str | None = None, baud: int | None = None):
    """Run a compiled plan on a backend: (C, report). RTL and FPGA backends are checked against the model."""
    from .sim.jobs import JobError, run_plan as _run
    if backend == "fpga":
        log(f"  running {len(plan.windows)} window(s) on the board at {port} ...")
    elif backend != "model":
        log(f"  running {len(plan.windows)} window(s) on {backend} (the chip model is built once per config "
            f"and cached) ...")
    try:
        return _run(plan, backend, log=lambda s: log("  " + s), progress=_progress_printer("windows"),
                    port=port, baud=baud)
    except JobError as e:
        raise CliError(str(e)) from None


def cmd_gemm(args):
    import numpy as np
    from .model.compiler import CompileError, compile_gemm
    cfg = _config(args.config)
    _int8_config(cfg)
    _node(args)
    _fpga_args(args)
    A = load_int8_matrix(args.a, "--a")
    B = load_int8_matrix(args.b, "--b")
    if A.shape[1] != B.shape[0]:
        raise CliError(f"K mismatch: --a {args.a} is {A.shape[0]}x{A.shape[1]} (M x K), --b {args.b} is "
                       f"{B.shape[0]}x{B.shape[1]} (K x N)")
    _check_output_dirs(("--out", args.out), ("--report", args.report))
    M, K = A.shape
    N = B.shape[1]
    print(f"rramcim gemm: C[{M}x{N}] = A[{M}x{K}] @ B[{K}x{N}], int8 -> int32, config '{cfg.name}' "
          f"({cfg.mesh_x}x{cfg.mesh_y} tiles of {cfg.rows}x{cfg.cols}), backend {args.backend}")
    try:
        plan = compile_gemm(cfg, A, B)
    except CompileError as e:
        raise CliError(str(e)) from None
    C, report = run_plan(plan, args.backend, port=args.port, baud=args.baud)
    ref = (A.astype(np.int64) @ B.astype(np.int64)).astype(np.int32)     # numpy wraps to int32 as the chip does
    if not np.array_equal(C, ref):
        raise CliError(f"the result differs from numpy's A @ B in {int((C != ref).sum())} of {C.size} places")
    report.update(M=M, K=K, N=N, config=cfg.name, config_fields=cfg.as_dict())
    print("  C == numpy A @ B (int32): yes")
    print(f"  windows {len(plan.windows)}, cycles {report['cycles']}, MACs {report['macs']}, "
          f"utilization {100 * report['utilization']:.1f}% of {report['peak_macs_per_cycle']:g} MACs/cycle, "
          f"RRAM rows written {report['rram_row_writes']}")
    _energy(args, cfg, report, [(M, K, N, 32)], 1, "GEMM")
    _write_npy_atomic(Path(args.out), C)
    if args.report:
        _write_atomic(Path(args.report), json.dumps(_jsonable(report), indent=2) + "\n")
    print(f"wrote {args.out}" + (f" and {args.report}" if args.report else ""))


CLOCK_MHZ = 200      # the clock the demo states inferences per second at (an assumption, not a timing result)


def cmd_run(args):
    import numpy as np
    from .model.mlp import NetError, load_inputs, load_net, reference
    from .sim.jobs import JobError, run_net
    given = [f for f in ("net", "inputs", "out") if getattr(args, f)]
    if not given:
        return _run_demo(args)
    missing = [f"--{f}" for f in ("net", "inputs", "out") if not getattr(args, f)]
    if missing:
        raise CliError(f"{', '.join(missing)} missing: give --net, --inputs and --out (or none of them for the demo)")
    cfg = _config(args.config)
    _int8_config(cfg)
    _node(args)
    _fpga_args(args)
    try:
        net = load_net(args.net)
        X = load_inputs(args.inputs, net)
    except NetError as e:
        raise CliError(str(e)) from None
    _check_output_dirs(("--out", args.out), ("--report", args.report))
    sizes = "-".join(str(n) for n in [net.inputs] + [L.w.shape[1] for L in net.layers])
    print(f"rramcim run: {len(net.layers)}-layer int8 MLP {sizes}, batch {X.shape[0]}, config '{cfg.name}', "
          f"backend {args.backend}")
    trace = [] if args.plot else None
    try:
        Y, report = run_net(cfg, net, X, args.backend, log=print, progress=_progress_printer("windows"),
                            trace=trace, port=args.port, baud=args.baud)
    except JobError as e:
        raise CliError(str(e)) from None
    ref = reference(net, X)
    if not np.array_equal(Y, ref):
        raise CliError(f"the chip's output differs from the numpy reference in {int((Y != ref).sum())} places")
    report.update(config_fields=cfg.as_dict(), layers_count=len(net.layers))
    print(f"  Y == numpy reference (int32): yes; cycles {report['cycles']}, MACs {report['macs']}, utilization "
          f"{100 * report['utilization']:.1f}% of {report['peak_macs_per_cycle']:g} MACs/cycle")
    _energy(args, cfg, report, _layers(report), X.shape[0], "inference")
    _plots(args, report, trace, cfg)
    _write_npy_atomic(Path(args.out), Y.astype(np.int32))
    if args.report:
        _write_atomic(Path(args.report), json.dumps(_jsonable(report), indent=2) + "\n")
    print(f"wrote {args.out}" + (f" and {args.report}" if args.report else ""))


def _plots(args, report, trace, cfg):
    if not args.plot:
        return
    from .sim.plots import plot_net_run
    out = Path(args.plot)
    if out.exists() and not out.is_dir():
        raise CliError(f"--plot {out}: not a directory")
    files = plot_net_run(report, trace, cfg, out)
    print(f"  plots: {', '.join(str(f) for f in files)}")


def _node(args):
    """The technology row named by --node, checked before any work (one-line error)."""
    from .model.energy import NODES
    if args.node not in NODES:
        raise CliError(f"--node {args.node!r}: not in the technology table (known: {', '.join(NODES)})")
    return args.node


def _energy(args, cfg, report, layers, per: int, unit: str):
    """Energy of the run and of the von Neumann baseline (model/energy.py): printed, added to ``report``
    (the R.json fields), and drawn as ``energy.png`` with ``--plot``. Returns the energy report."""
    from .model.energy import energy_report
    e = energy_report(cfg, report, layers, args.node, per=per)
    r, c = e["baseline_array"]
    print(f"  energy ({e['node']}, {e['vdd']:g} V, {e['clock_mhz']:g} MHz): chip {e['energy_per_pj'] / 1e3:,.2f} nJ "
          f"per {unit}, {e['tops_per_w']:.3g} TOPS/W, {e['tops_per_mm2']:.3g} TOPS/mm2 ({e['area_mm2']:.3g} mm2); "
          f"data movement {100 * e['data_movement_share']:.0f}%")
    print(f"  baseline ({r}x{c} weight-stationary systolic array, SRAM weight buffer fed from DRAM): "
          f"{e['baseline_energy_per_pj'] / 1e3:,.2f} nJ per {unit}, {e['baseline_tops_per_w']:.3g} TOPS/W, "
          f"{e['baseline_tops_per_mm2']:.3g} TOPS/mm2; data movement {100 * e['baseline_data_movement_share']:.0f}%")
    top = sorted(e["breakdown_pj"].items(), key=lambda kv: -kv[1])[:3]
    btop = sorted(e["baseline_breakdown_pj"].items(), key=lambda kv: -kv[1])[:3]
    print(f"  energy ratio, baseline / chip: {e['energy_ratio']:.2f}x; largest parts: chip "
          + ", ".join(f"{k} {100 * v / e['energy_pj']:.0f}%" for k, v in top) + "; baseline "
          + ", ".join(f"{k} {100 * v / e['baseline_energy_pj']:.0f}%" for k, v in btop))
    report.update(energy_pj=e["energy_pj"], tops_per_w=e["tops_per_w"], tops_per_mm2=e["tops_per_mm2"],
                  baseline_energy_pj=e["baseline_energy_pj"], baseline_tops_per_w=e["baseline_tops_per_w"],
                  energy_ratio=e["energy_ratio"], node=e["node"], energy=e)
    if getattr(args, "plot", None):
        from .sim.plots import plot_energy
        out = Path(args.plot)
        if out.exists() and not out.is_dir():
            raise CliError(f"--plot {out}: not a directory")
        print(f"  plots: {plot_energy(e, out)}")
    return e


def _layers(report) -> list:
    """A net run's GEMMs as ``(M, K, N, out_bits, bias)``: hidden layers leave requantized (int8), the last
    int32; every layer has a bias."""
    n = len(report["layers"])
    return [(L["M"], L["K"], L["N"], 8 if i < n - 1 else 32, 1) for i, L in enumerate(report["layers"])]


def _run_demo(args):
    import numpy as np
    from .digits import train_digits
    from .model.mlp import reference
    from .sim.jobs import JobError, run_net
    cfg = _config(args.config)
    _int8_config(cfg)
    _node(args)
    _fpga_args(args)
    print("rramcim run (demo): a 64-32-10 MLP on scikit-learn's digits, trained in float, quantized to int8, "
          f"run on the chip (config '{cfg.name}', backend {args.backend})")
    net, X, y, float_acc, _ = train_digits()
    ref = reference(net, X)
    print(f"  test images: {len(y)}; hidden layer shift {net.layers[0].shift}, ReLU")
    trace = [] if args.plot else None
    try:
        Y, report = run_net(cfg, net, X, args.backend, log=print, progress=_progress_printer("windows"),
                            trace=trace, port=args.port, baud=args.baud)
    except JobError as e:
        raise CliError(str(e)) from None
    same = np.array_equal(Y, ref)
    cycles = report["cycles"]
    print(f"  accuracy, float (scikit-learn):  {100 * float_acc:.2f}%")
    print(f"  accuracy, int8 numpy reference:  {100 * float((ref.argmax(1) == y).mean()):.2f}%")
    print(f"  accuracy, chip ({args.backend}):{' ' * max(1, 14 - len(args.backend))}"
          f"{100 * float((Y.argmax(1) == y).mean()):.2f}%  (outputs identical to the reference, bit for bit: "
          f"{'yes' if same else 'NO'})")
    print(f"  cycles {cycles} for {len(y)} inferences ({cycles / len(y):.0f} per inference), MACs {report['macs']}, "
          f"utilization {100 * report['utilization']:.1f}% of {report['peak_macs_per_cycle']:g} MACs/cycle")
    print(f"  {len(y) * CLOCK_MHZ * 1e6 / cycles:,.0f} inferences/s at an assumed {CLOCK_MHZ} MHz clock")
    _energy(args, cfg, report, _layers(report), len(y), "inference")
    _plots(args, report, trace, cfg)
    if args.report:
        _write_atomic(Path(args.report), json.dumps(_jsonable(dict(report, float_accuracy=float_acc)), indent=2)
                      + "\n")
    if not same:
        raise CliError("the chip's outputs differ from the int8 numpy reference")


def _jsonable(v):
    import numpy as np
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    return v


def _write_npy_atomic(path: Path, array):
    import io
    import numpy as np
    buf = io.BytesIO()
    np.save(buf, array)
    _write_atomic(path, buf.getvalue())


def _check_output_dirs(*flags_and_paths):
    """Before any work: every given output's directory exists."""
    for flag, path in flags_and_paths:
        if path and not Path(path).resolve().parent.is_dir():
            raise CliError(f"{flag} {path}: directory {Path(path).parent} does not exist")


def _progress_printer(what):
    """A progress callback (:class:`rramcim.progress.Progress`), closed by :func:`main` on the way out."""
    from .progress import Progress
    p = Progress(what)
    _PROGRESS.append(p)
    return p


_PROGRESS: list = []


def _reference(bench, ev):
    """numpy x @ W for an MVM event, with the weights in force when it ran."""
    from .model.macro import mvm_reference
    return mvm_reference(bench.phase_list[0].x_items[ev.index], ev.weights, bench.cfg.acc_bits)


def _fpga_board(name):
    from .fpga.boards import board
    try:
        return board(name)
    except ValueError as e:
        raise CliError(f"--board: {e}") from None


def cmd_fpga_build(args):
    from .fpga.build import BuildError, build, format_summary
    b = _fpga_board(args.board)
    if args.clock is not None:
        try:
            b = b.with_clock(args.clock)
        except ValueError as e:
            raise CliError(f"--{e}") from None
    cfg = _config(args.config or b.name)
    out = Path(args.out) if args.out else Path("build") / b.name
    if out.exists() and not out.is_dir():
        raise CliError(f"--out {out}: not a directory")
    print(f"rramcim fpga build: board {b.name}, config '{cfg.name}', output {out}/")
    try:
        summary = build(b, cfg, out)
    except BuildError as e:
        raise CliError(str(e)) from None
    print(format_summary(summary))
    print(f"wrote {summary['bitstream']} and {out / 'summary.json'}; program the board with: {summary['program']}")
    if not summary["timing_met"]:
        raise CliError(f"timing not met: Fmax {summary['fmax_mhz']:.1f} MHz < target {summary['target_mhz']:.1f} MHz "
                       f"(the bitstream is written but may not work; log: {out / 'nextpnr.log'})")


def cmd_fpga_report(args):
    from .fpga.boards import BOARDS
    from .fpga.build import BuildError, format_summary, read_summary
    if args.board:
        names = [_fpga_board(args.board).name]
    elif args.out:
        raise CliError("--out needs --board")
    else:
        names = [n for n in BOARDS if (Path("build") / n / "summary.json").is_file()]
        if not names:
            raise CliError("no FPGA build under build/: run rramcim fpga build --board BOARD first")
    texts = []
    for name in names:
        out = Path(args.out) if args.out else Path("build") / name
        try:
            texts.append(format_summary(read_summary(out)))
        except BuildError as e:
            raise CliError(str(e)) from None
    print("\n\n".join(texts))


def build_parser():
    p = argparse.ArgumentParser(prog="rramcim", description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    from . import __version__
    p.add_argument("--version", action="version", version=f"rramcim {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def common(sp):
        sp.add_argument("--config", default="default", metavar="NAME|FILE",
                        help="preset (tiny, default, large) or .toml/.json file (default: %(default)s)")

    def backend_and_report(sp, what):
        from .fpga.protocol import DEFAULT_BAUD
        sp.add_argument("--backend", choices=["model", "verilator", "icarus", "fpga"], default="model",
                        help="the cycle-exact model, the RTL on a simulator, or a board over its UART "
                             "(fpga, with --port) (default: %(default)s)")
        sp.add_argument("--port", metavar="DEVICE", help="--backend fpga: the board's serial port "
                                                         "(e.g. /dev/ttyUSB0; any pyserial URL)")
        sp.add_argument("--baud", type=int, default=DEFAULT_BAUD,
                        help="--backend fpga: line rate of the board's UART (default: %(default)s)")
        sp.add_argument("--report", metavar="R.json", help=f"write {what} as JSON")

    def node_option(sp):
        from .model.energy import DEFAULT_NODE, NODES
        # checked in the command (one-line error), not by argparse choices (usage + error: two lines)
        sp.add_argument("--node", default=DEFAULT_NODE, metavar="NODE",
                        help=f"technology row of the energy model: {', '.join(NODES)} (default: %(default)s)")

    sp = sub.add_parser("demo", help="program random weights into a macro and run MVMs on the RTL and the model",
                        description="Program random weights into one CIM macro, run MVMs on the generated "
                                    "Verilog in a simulator and on the golden model, and print their agreement, "
                                    "cycle counts and throughput.")
    common(sp)
    sp.add_argument("--backend", choices=["verilator", "icarus"], default="verilator",
                    help="RTL simulator (default: %(default)s)")
    sp.add_argument("--mvms", type=int, default=1000, help="MVMs to run (default: %(default)s)")
    sp.add_argument("--seed", type=int, default=1, help="random seed (default: %(default)s)")
    sp.add_argument("--stall", type=float, default=0.0,
                    help="probability of an idle or backpressure cycle on every stream (default: 0)")
    sp.add_argument("--stuck", action="append", metavar="ROW,CELL,VALUE",
                    help="a stuck-at cell (CELL = col*wbits + bit); repeatable")
    sp.add_argument("--no-waves", dest="waves_on_failure", action="store_false",
                    help="on a mismatch, do not re-run on Icarus to dump an FST waveform")
    sp.set_defaults(func=cmd_demo)

    sp = sub.add_parser("verilog", help="write the Verilog of the chip (or of one block)",
                        description="Write the Verilog of the chip (top module rramcim_chip, AXI4-Lite and "
                                    "AXI4-Stream ports) or of one block, for a config. The crossbar is emitted "
                                    "as its own module ahead of the blocks that use it. 'core' is the chip "
                                    "without its AXI interface (plain host streams).")
    common(sp)
    sp.add_argument("--block", choices=["chip", "core", "macro", "crossbar", "mesh", "router"], default="chip",
                    help="block (default: %(default)s)")
    sp.add_argument("-o", "--output", required=True, metavar="FILE.v", help="output file")
    sp.add_argument("--stuck", action="append", metavar="ROW,CELL,VALUE",
                    help="a stuck-at cell to build into the macro (for 'core': into the last tile's; "
                         "simulation only); repeatable")
    sp.add_argument("--lint", action="store_true", help="then lint it with verilator --lint-only -Wall")
    sp.set_defaults(func=cmd_verilog)

    sp = sub.add_parser("run", help="run an int8 MLP on the chip (no arguments: the digits demo)",
                        description="Run an int8 MLP (NET.npz: layers, w{i} int8 [in, out], b{i} int32 [out], "
                                    "shift{i} 0..31 and relu{i} 0/1 for every layer but the last) on inputs "
                                    "X.npy (int8 [batch, in]) and write Y.npy (int32 [batch, out]). Without "
                                    "--net/--inputs/--out: the demo, a 64-32-10 MLP trained on scikit-learn's "
                                    "digits, quantized to int8 and run on the chip.")
    common(sp)
    sp.add_argument("--net", metavar="NET.npz", help="the network")
    sp.add_argument("--inputs", metavar="X.npy", help="int8 inputs [batch, in]")
    sp.add_argument("--out", metavar="Y.npy", help="output: int32 [batch, out]")
    backend_and_report(sp, "cycles, MACs, utilization, per-layer figures, energy")
    node_option(sp)
    sp.add_argument("--plot", metavar="DIR", help="write PNG plots: per-layer cycles and utilization "
                                                  "(layers.png), tile activity over time (timeline.png), "
                                                  "energy of the chip and the baseline by component (energy.png)")
    sp.set_defaults(func=cmd_run)

    sp = sub.add_parser("gemm", help="C = A @ B (int8 x int8 -> int32) on the chip",
                        description="Multiply int8 matrices on the chip: A.npy [M, K] @ B.npy [K, N] -> C.npy "
                                    "int32 [M, N], any shapes, tiled onto the config by the compiler "
                                    "(K and N split across tiles and passes, RRAM reprogrammed when B does not "
                                    "fit, several runs when the global buffer is too small). The result is "
                                    "checked against numpy; RTL backends are also checked against the model.")
    common(sp)
    sp.add_argument("--a", required=True, metavar="A.npy", help="int8 [M, K] (any integer dtype with int8 values)")
    sp.add_argument("--b", required=True, metavar="B.npy", help="int8 [K, N]")
    sp.add_argument("--out", required=True, metavar="C.npy", help="output: int32 [M, N]")
    backend_and_report(sp, "cycles, MACs, utilization, counters, energy, ...")
    node_option(sp)
    sp.add_argument("--plot", metavar="DIR", help="write energy.png: the energy of the chip and of the "
                                                  "baseline by component")
    sp.set_defaults(func=cmd_gemm)

    sp = sub.add_parser("asm", help="assemble a controller program (docs/isa.md) into hex words",
                        description="Assemble a controller program (syntax and encoding in docs/isa.md) into "
                                    "64-bit words, written as hex, one per line ($readmemh-compatible).")
    sp.add_argument("source", metavar="PROG.s", help="assembly source")
    sp.add_argument("-o", "--output", required=True, metavar="PROG.hex", help="output file")
    sp.set_defaults(func=cmd_asm)

    sp = sub.add_parser("disasm", help="disassemble hex words into a controller program",
                        description="Disassemble 64-bit hex words (one per line) into canonical assembly; "
                                    "rramcim asm of the result gives the same words.")
    sp.add_argument("program", metavar="PROG.hex", help="hex words, one per line")
    sp.add_argument("-o", "--output", metavar="PROG.s", help="output file (default: standard output)")
    sp.set_defaults(func=cmd_disasm)

    sp = sub.add_parser("config", help="print a config (preset or file) with its derived figures")
    sp.add_argument("config", nargs="?", default="default", metavar="NAME|FILE")
    sp.set_defaults(func=cmd_config)

    sp = sub.add_parser("fpga", help="build the chip for an FPGA board (ULX3S, iCEBreaker) with open tools",
                        description="Synthesize the chip behind its UART host bridge for an FPGA board with the "
                                    "YoWASP tools from PyPI (yosys, nextpnr, ecppack/icepack) and summarize "
                                    "resources and Fmax against the board's target clock (docs/fpga.md).")
    fsub = sp.add_subparsers(dest="fpga_command", metavar="STEP", required=True)
    fb = fsub.add_parser("build", help="Verilog, synthesis, place and route, bitstream and summary for a board",
                         description="Run the whole flow for a board; output under --out (default "
                                     "build/BOARD/): top.bit or top.bin, logs, report.json, summary.json.")
    fb.add_argument("--board", required=True, metavar="BOARD", help="ulx3s or icebreaker")
    fb.add_argument("--config", metavar="NAME|FILE", help="preset or .toml/.json file (default: the board's preset)")
    fb.add_argument("--out", metavar="DIR", help="output directory (default: build/BOARD)")
    fb.add_argument("--clock", type=float, metavar="MHZ",
                    help="the chip's clock and timing target (default: the board's, ulx3s 50, icebreaker 12)")
    fb.set_defaults(func=cmd_fpga_build)
    fr = fsub.add_parser("report", help="print the summary of earlier builds again",
                         description="Print the resource and Fmax summary of earlier builds (summary.json).")
    fr.add_argument("--board", metavar="BOARD", help="one board (default: every board built under build/)")
    fr.add_argument("--out", metavar="DIR", help="the build directory (default: build/BOARD)")
    fr.set_defaults(func=cmd_fpga_report)
    return p


def main(argv=None):
    from .model.config import ConfigError
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        try:
            args.func(args)
        finally:
            while _PROGRESS:                 # leave the terminal clean, on an interrupt too
                _PROGRESS.pop().close()
    except KeyboardInterrupt:
        print("rramcim: interrupted", file=sys.stderr)
        return 130
    except (CliError, ConfigError) as e:
        print(f"rramcim: error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # tools missing or failing: one line, not a traceback
        from .sim.build import ToolError
        if isinstance(e, ToolError):
            print(f"rramcim: error: {e}", file=sys.stderr)
            return 2
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
