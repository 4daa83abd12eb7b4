"""What a simulator-independent bench needs: a checker error and a small I/O adapter.

A bench (:mod:`.macro`, :mod:`.noc`, :mod:`.chip`) drives its design through
:class:`SimIO`, so the same driver, monitor and checker run on cocotb (Icarus,
Verilator: :mod:`.cocotb_io`) and on Amaranth's simulator (:mod:`.amaranth_io`).
"""

from __future__ import annotations

__all__ = ["CheckError", "SimIO", "expect"]


class CheckError(AssertionError):
    """The design disagreed with the golden model."""


def expect(cond, what: str) -> None:
    """A check of a bench: raise :class:`CheckError` saying ``what`` unless ``cond``."""
    if not cond:
        raise CheckError(what)


class SimIO:
    """What a bench needs from a simulator; subclassed for cocotb and Amaranth."""

    def set(self, name: str, value: int):
        raise NotImplementedError

    def get(self, name: str) -> int:
        raise NotImplementedError

    async def settle(self):
        """Wait until outputs reflect this cycle's inputs (read-only phase)."""

    async def tick(self):
        """Advance to the next cycle."""
        raise NotImplementedError

    async def reset(self):
        """Pulse the synchronous reset for a cycle."""
        raise NotImplementedError
