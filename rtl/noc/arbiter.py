"""Round-robin arbiter.

Combinational grant: the first requester at or after the pointer, going
around. When ``advance`` is high at a clock edge the pointer moves to the one
after the grant, so the granted requester has the lowest priority next time.
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["RoundRobinArbiter"]


class RoundRobinArbiter(wiring.Component):
    """Parameters
    ----------
    n : int
        Requesters.

    Members
    -------
    requests : In(n)
    advance : In(1)
        Move the pointer past the current grant.
    grant : Out(range(n))
        Valid when ``valid``.
    valid : Out(1)
        Some requester is asking.
    """

    def __init__(self, n: int):
        if not isinstance(n, int) or n < 1:
            raise TypeError(f"n must be a positive integer, not {n!r}")
        self.n = n
        super().__init__({
            "requests": In(n), "advance": In(1),
            "grant": Out(range(n)), "valid": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        n = self.n
        ptr = Signal(range(n))
        m.d.comb += self.valid.eq(self.requests.any())
        with m.Switch(ptr):
            for p in range(n):
                with m.Case(p):
                    # the last assignment wins: assign from lowest to highest priority
                    for k in reversed(range(n)):
                        c = (p + k) % n
                        with m.If(self.requests[c]):
                            m.d.comb += self.grant.eq(c)
        with m.If(self.advance & self.valid):
            with m.If(self.grant == n - 1):
                m.d.sync += ptr.eq(0)
            with m.Else():
                m.d.sync += ptr.eq(self.grant + 1)
        return m
