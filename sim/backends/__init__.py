"""Run backends: the cycle-exact model, the RTL (Verilator, Icarus) and an FPGA board.

One name for "run these windows" on any of them: :func:`run_windows` (``backend`` one of
:data:`BACKENDS`) returns one dict per window, ``cycles``, ``error`` (None, or the
:class:`~rramcim.model.chip.ChipError` the chip stopped with), ``counters`` (name -> value;
tile counters as ``name@t``) and ``reads`` (the words of each of the window's reads); a
backend that cannot run raises :class:`BackendError` (one line). The backends are
:mod:`.model` (:class:`~rramcim.model.chip_cycle.ChipCycleModel`), :mod:`.rtl` (the chip's
Verilog through its AXI ports, built once per config and cached) and :mod:`.fpga` (a board
through its UART bridge). :mod:`.jobs` runs a compiled plan, a GEMM or an MLP on any of them and
checks an RTL or board run against the model window by window.
"""

from __future__ import annotations

from ...model.chip import ChipError

__all__ = ["BACKENDS", "BackendError", "run_windows", "plain_windows"]

BACKENDS = ("model", "verilator", "icarus", "fpga")


NO_FPGA_CHIP = ("a kept chip (--chip) cannot be loaded into a board's RRAM from the host; "
                "use the model, verilator or icarus backend")
"""Why ``fpga`` takes no kept chip (:func:`run_windows`, :func:`.jobs.run_plan`)."""


class BackendError(RuntimeError):
    """A backend could not run the windows; the message is one line."""


def plain_windows(windows) -> list[dict]:
    """Windows (objects with ``program``, ``gbuf`` and ``reads``) as the host driver takes them:
    plain ints and lists (JSON for a simulator's test bench)."""
    return [dict(program=[int(v) for v in w.program], gbuf={int(a): [int(v) for v in ws] for a, ws in w.gbuf.items()},
                 reads=[(int(a), int(n)) for a, n in w.reads]) for w in windows]


def _chip_errors(out: list[dict]) -> list[dict]:
    """The host driver's plain error values (``[code, pc, [x, y], row]``) as :class:`ChipError` s."""
    for o in out:
        e = o["error"]
        if e is not None and not isinstance(e, ChipError):
            o["error"] = ChipError(int(e[0]), int(e[1]), tuple(e[2]), int(e[3]))
    return out


def run_windows(backend: str, cfg, windows, *, progress=None, log=None, port: str | None = None,
                baud: int | None = None, serial_timeout: float | None = None, **options) -> list[dict]:
    """Run ``windows`` (objects with ``program``, ``gbuf`` and ``reads``) on ``backend``.

    ``log`` (RTL: build messages), ``port``, ``baud`` and ``serial_timeout`` (``fpga``: the board's
    serial device, line rate and seconds to wait for a reply, None for
    :data:`.fpga.DEFAULT_SERIAL_TIMEOUT`) go to the backends that use them; ``options`` to the
    backend's own ``run_windows``: the model's (:func:`.model.run_windows`: ``state``, ``trace``,
    ``trace_offset``, ``max_cycles``) or the RTL's (:func:`.rtl.run_windows`: ``pause``, ``seed``,
    ``test_dir``, ``expect_cycles``). ``chip`` (a :class:`~rramcim.model.chipfile.KeptChip`), on the
    model and the RTL: the RRAM the run starts with, updated in place to what the run left; a board's
    RRAM cannot be loaded or read from the host, so ``fpga`` refuses it.
    """
    if backend == "fpga" and options.get("chip") is not None:
        raise BackendError(NO_FPGA_CHIP)
    if backend == "model":
        from .model import run_windows as run
        return run(cfg, windows, progress=progress, **options)
    if backend in ("verilator", "icarus"):
        from .rtl import RtlError, run_windows as run
        try:
            return _chip_errors(run(cfg, windows, backend, progress=progress, log=log, **options))
        except RtlError as e:
            raise BackendError(str(e)) from None
    if backend == "fpga":
        from ...fpga.protocol import DEFAULT_BAUD
        from .fpga import FpgaError, run_windows as run
        try:
            return _chip_errors(run(cfg, windows, port, baud or DEFAULT_BAUD, progress=progress,
                                    serial_timeout=serial_timeout, **options))
        except FpgaError as e:
            raise BackendError(str(e)) from None
    raise BackendError(f"unknown backend {backend!r} (known: {', '.join(BACKENDS)})")
