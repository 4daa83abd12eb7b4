"""Run backends: the cycle-exact model, the RTL (Verilator, Icarus) and an FPGA board.

One name for "run these windows" on any of them: :func:`run_windows` (``backend`` one of
:data:`BACKENDS`) returns one dict per window, ``cycles``, ``error``, ``counters`` (name ->
value; tile counters as ``name@t``) and ``reads`` (the words of each of the window's reads);
a backend that cannot run raises :class:`BackendError` (one line). The backends are
:mod:`.model` (:class:`~rramcim.model.chip_cycle.ChipCycleModel`), :mod:`.rtl` (the chip's
Verilog through its AXI ports, built once per config and cached) and :mod:`.fpga` (a board
through its UART bridge). :mod:`.jobs` runs a compiled plan, a GEMM or an MLP on any of them and
checks an RTL or board run against the model window by window.
"""

from __future__ import annotations

__all__ = ["BACKENDS", "BackendError", "run_windows"]

BACKENDS = ("model", "verilator", "icarus", "fpga")


class BackendError(RuntimeError):
    """A backend could not run the windows; the message is one line."""


def run_windows(backend: str, cfg, windows, *, progress=None, log=None, port: str | None = None,
                baud: int | None = None, **model_options) -> list[dict]:
    """Run ``windows`` (objects with ``program``, ``gbuf`` and ``reads``) on ``backend``.

    ``log`` (RTL: build messages), ``port`` and ``baud`` (``fpga``: the board's serial device and
    line rate) go to the backends that use them; ``model_options`` (``state``, ``trace``,
    ``trace_offset``, ``max_cycles``) to the model's :func:`.model.run_windows`.
    """
    if backend == "model":
        from .model import run_windows as run
        return run(cfg, windows, progress=progress, **model_options)
    if backend in ("verilator", "icarus"):
        from .rtl import RtlError, run_windows as run
        try:
            return run(cfg, windows, backend, progress=progress, log=log)
        except RtlError as e:
            raise BackendError(str(e)) from None
    if backend == "fpga":
        from ...fpga.protocol import DEFAULT_BAUD
        from .fpga import FpgaError, run_windows as run
        try:
            return run(cfg, windows, port, baud or DEFAULT_BAUD, progress=progress)
        except FpgaError as e:
            raise BackendError(str(e)) from None
    raise BackendError(f"unknown backend {backend!r} (known: {', '.join(BACKENDS)})")
