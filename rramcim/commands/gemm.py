"""``rramcim gemm``: C = A @ B (int8 x int8 -> int32) of any shapes, tiled onto the config by the compiler,
run on a backend and checked against numpy."""

from __future__ import annotations

from pathlib import Path

from .common import (CliError, add_backend_options, add_baseline_option, add_chip_option, add_config_option,
                     add_node_option, check_baseline, check_fpga_args, check_int8_config, check_node, config,
                     energy, keep_build, kept_chip, npy_bytes, print_cycle_split, progress_printer, report_text,
                     stage_chip)
from .outputs import Outputs


def add_parser(sub):
    sp = sub.add_parser("gemm", help="C = A @ B (int8 x int8 -> int32) on the chip",
                        description="Multiply int8 matrices on the chip: A.npy [M, K] @ B.npy [K, N] -> C.npy "
                                    "int32 [M, N], any shapes, tiled onto the config by the compiler "
                                    "(K and N split across tiles and passes, RRAM reprogrammed when B does not "
                                    "fit, several runs when the global buffer is too small). The result is "
                                    "checked against numpy; RTL backends are also checked against the model.")
    add_config_option(sp)
    sp.add_argument("--a", required=True, metavar="A.npy", help="int8 [M, K] (any integer dtype with int8 values)")
    sp.add_argument("--b", required=True, metavar="B.npy", help="int8 [K, N]")
    sp.add_argument("--out", required=True, metavar="C.npy", help="output: int32 [M, N]")
    add_backend_options(sp, "cycles, MACs, utilization, counters, energy, ...")
    add_node_option(sp)
    add_baseline_option(sp)
    add_chip_option(sp)
    sp.add_argument("--plot", metavar="DIR", help="write energy.png: the energy of the chip and of the "
                                                  "baseline by component")
    sp.set_defaults(func=main)


def main(args):
    import numpy as np
    from ..model.compiler import CompileError
    outputs = Outputs([("--out", args.out), ("--report", args.report), ("--chip", args.chip)],
                      inputs=[("--a", args.a), ("--b", args.b), ("--config", args.config)],
                      dirs=[("--plot", args.plot, ("energy.png",))])
    cfg = config(args.config)
    check_int8_config(cfg)
    check_node(args)
    check_baseline(args, cfg)
    check_fpga_args(args)
    keep_build(args)
    A = load_int8_matrix(args.a, "--a")
    B = load_int8_matrix(args.b, "--b")
    if A.shape[1] != B.shape[0]:
        raise CliError(f"K mismatch: --a {args.a} is {A.shape[0]}x{A.shape[1]} (M x K), --b {args.b} is "
                       f"{B.shape[0]}x{B.shape[1]} (K x N)")
    from ..model.npfile import MAX_ARRAY_BYTES
    if A.shape[0] * B.shape[1] * 4 > MAX_ARRAY_BYTES:
        raise CliError(f"--out {args.out}: C would be {A.shape[0]}x{B.shape[1]} int32, "
                       f"{A.shape[0] * B.shape[1] * 4 / 2**20:,.0f} MiB, more than the "
                       f"{MAX_ARRAY_BYTES >> 20} MiB limit of an array")
    M, K = A.shape
    N = B.shape[1]
    print(f"rramcim gemm: C[{M}x{N}] = A[{M}x{K}] @ B[{K}x{N}], int8 -> int32, config '{cfg.name}' "
          f"({cfg.mesh_x}x{cfg.mesh_y} tiles of {cfg.rows}x{cfg.cols}), backend {args.backend}")
    chip = kept_chip(args, cfg)
    from ..sim.backends.jobs import gemm_plan
    try:
        plan, placement, reason = gemm_plan(cfg, A, B, args.backend, chip)
    except CompileError as e:
        raise CliError(str(e)) from None
    how = {"banked": " (B resident in the tiles' banks, each row of A through them)",
           "pipeline": " (B resident on its own tiles, the rows of A streamed through as a one-layer pipeline)"}
    print(f"  placement: {placement}" + (how[placement] if reason is None else f" ({reason})"))
    C, report = run_plan(plan, args.backend, port=args.port, baud=args.baud, serial_timeout=args.serial_timeout,
                         chip=chip)
    ref = (A.astype(np.int64) @ B.astype(np.int64)).astype(np.int32)     # numpy wraps to int32 as the chip does
    if not np.array_equal(C, ref):
        raise CliError(f"the result differs from numpy's A @ B in {int((C != ref).sum())} of {C.size} places")
    report.update(M=M, K=K, N=N, config=cfg.name, config_fields=cfg.as_dict(), placement=placement,
                  placement_reason=reason)
    print("  C == numpy A @ B (int32): yes")
    print(f"  windows {len(plan.windows)}, cycles {report['cycles']}, MACs {report['macs']}, "
          f"utilization {100 * report['utilization']:.1f}% of {report['peak_macs_per_cycle']:g} MACs/cycle, "
          f"RRAM rows written {report['rram_row_writes']}")
    print_cycle_split(report)
    with outputs.scratch() as scratch:
        energy(args, cfg, report, [(M, K, N, 32)], 1, "GEMM", scratch if args.plot else None)
        if args.plot:
            outputs.stage_dir("--plot", [Path(scratch) / "energy.png"])
            print(f"  plots: {Path(args.plot) / 'energy.png'}")
    outputs.stage("--out", args.out, npy_bytes(C))
    if args.report:
        outputs.stage("--report", args.report, report_text(report))
    stage_chip(args, outputs, chip)
    print(f"wrote {args.out}" + (f" and {args.report}" if args.report else "") + (f" and {args.chip}" if chip else ""))
    outputs.commit()


def run_plan(plan, backend: str, log=print, port: str | None = None, baud: int | None = None,
             serial_timeout: float | None = None, chip=None):
    """Run a compiled plan on a backend: (C, report). RTL and FPGA backends are checked against the model.
    ``chip``: a kept chip the plan was compiled for, updated in place (:func:`rramcim.sim.backends.jobs.run_plan`)."""
    from ..sim.backends.jobs import JobError, run_plan as _run
    if backend == "fpga":
        log(f"  running {len(plan.windows)} window(s) on the board at {port} ...")
    elif backend != "model":
        log(f"  running {len(plan.windows)} window(s) on {backend} (the chip model is built once per config "
            f"and cached) ...")
    try:
        return _run(plan, backend, log=lambda s: log("  " + s), progress=progress_printer("windows"),
                    port=port, baud=baud, serial_timeout=serial_timeout, chip=chip)
    except JobError as e:
        raise CliError(str(e)) from None


def load_int8_matrix(path: str, flag: str):
    """A 2-D integer array from a .npy file whose values fit int8, or a one-line CliError.

    Read by :func:`rramcim.model.npfile.read_npy`: the dtype, the shape and the size limit are checked from
    the header, before any data is read; pickles are never loaded."""
    import numpy as np
    from ..model.npfile import NpFileError, one_line, read_npy
    p = Path(path)
    if not p.is_file():
        raise CliError(f"{flag} {path}: {'not a regular file' if p.exists() else 'no such file'}")

    def check(h):
        if h.dtype.kind not in "iu":
            raise CliError(f"{flag} {path}: dtype {h.dtype}, expected integers (int8)")
        if h.ndim != 2:
            raise CliError(f"{flag} {path}: shape {h.shape}, expected a 2-D matrix")
        if 0 in h.shape:
            raise CliError(f"{flag} {path}: shape {h.shape} is empty")
    try:
        a = read_npy(p, where=str(path), check=check)
    except NpFileError as e:
        raise CliError(f"{flag} {e}") from None
    except CliError:
        raise
    except Exception as e:  # noqa: BLE001 - any unreadable file is one message
        raise CliError(f"{flag} {path}: cannot read it ({one_line(e)})") from None
    lo, hi = int(a.min()), int(a.max())
    if lo < -128 or hi > 127:
        bad = lo if lo < -128 else hi
        raise CliError(f"{flag} {path}: value {bad} outside the int8 range [-128, 127] (dtype {a.dtype})")
    return a.astype(np.int8)
