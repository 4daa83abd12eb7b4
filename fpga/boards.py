"""Board tops: the chip on amaranth-boards platforms, with only a UART, a clock and LEDs outside.

A :class:`Board` names an amaranth-boards platform, the config preset of the
same name (:data:`rramcim.model.config.PRESETS`), the clock the chip should
run at (the timing target of place and route), the UART's baud rate and the
FPGA's resources (what the build summary is measured against).

:class:`BoardTop` is what the flow (:mod:`rramcim.fpga.build`) synthesizes:

* clock: the board's oscillator, or a PLL (ECP5 ``EHXPLLL``, parameters from
  ``ecppll``, given as Verilog by the flow) when the target differs from it;
  the chip's reset is held until the PLL locks, then released synchronously;
* the board core (:class:`rramcim.fpga.board_core.BoardCore`: UART, host
  bridge, the chip) on the board's UART pins, with the divisor
  ``round(clock / baud)``;
* LEDs: the chip's ``irq`` and the bridge's error; on the ULX3S also a
  heartbeat (the clock runs) and the PLL lock.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from amaranth.build import ResourceError
from amaranth.hdl import ClockDomain, ClockSignal, Const, Elaboratable, Instance, Module, Signal
from amaranth.lib import io
from amaranth.lib.cdc import ResetSynchronizer

from ..model.config import Config
from .board_core import BoardCore

__all__ = ["Board", "BOARDS", "BoardTop", "board", "PLL_MODULE"]

#: The module name of the PLL Verilog that the flow writes with ``ecppll``.
PLL_MODULE = "rramcim_pll"


@dataclass(frozen=True)
class Board:
    """An FPGA board the flow can build for.

    Parameters
    ----------
    name : str
        Board name, also the name of its config preset.
    platform : str
        ``module:class`` of the amaranth-boards platform.
    family : str
        ``ecp5`` or ``ice40``: selects the nextpnr and bitstream tools.
    device : str
        The FPGA, for people.
    clock_hz : float
        The board's oscillator.
    target_hz : float
        The clock the chip runs at: the timing target of place and route.
    baud : int
        UART baud rate of the host bridge.
    resources : dict
        Rows of the build summary: ``name -> (cell types, available)``, the
        cell types nextpnr placed (their count in its report), or yosys'
        ``SB_*`` cell-name prefixes counted after synthesis (an iCE40 logic
        cell holds a LUT4 and a flip-flop, so nextpnr counts cells, not
        flip-flops). ``available`` stands where nextpnr does not say.
    bitstream : str
        Bitstream file suffix.
    program : str
        How to load the bitstream into the board's FPGA (``{bit}`` is its path).
    """

    name: str
    platform: str
    family: str
    device: str
    clock_hz: float
    target_hz: float
    baud: int
    resources: dict
    bitstream: str
    program: str

    @property
    def needs_pll(self) -> bool:
        return self.target_hz != self.clock_hz

    def with_clock(self, mhz: float) -> "Board":
        """The same board with the chip clocked at ``mhz`` MHz (a PLL makes it, on the ECP5 only)."""
        if isinstance(mhz, bool) or not isinstance(mhz, (int, float)) or not 1 <= mhz <= 400:
            raise ValueError(f"clock: between 1 and 400 MHz, not {mhz!r}")
        hz = float(mhz) * 1e6
        if hz != self.clock_hz and self.family != "ecp5":
            raise ValueError(f"clock: the {self.name} runs at its {self.clock_hz / 1e6:g} MHz oscillator "
                             f"(this flow has no {self.family} PLL), not {mhz:g} MHz")
        return dataclasses.replace(self, target_hz=hz)

    @property
    def divisor(self) -> int:
        """UART clocks per bit at the target clock."""
        return round(self.target_hz / self.baud)

    def make_platform(self):
        import importlib
        module, cls = self.platform.split(":")
        return getattr(importlib.import_module(module), cls)()


BOARDS: dict[str, Board] = {
    "ulx3s": Board(
        name="ulx3s", platform="amaranth_boards.ulx3s:ULX3S_85F_Platform", family="ecp5",
        device="Lattice ECP5 LFE5U-85F (caBGA381, speed 6)", clock_hz=25e6, target_hz=50e6, baud=115200,
        resources={"LUTs": (("TRELLIS_COMB",), 83640), "FFs": (("TRELLIS_FF",), 83640),
                   "BRAMs": (("DP16KD",), 208), "DSPs": (("MULT18X18D",), 156)},
        bitstream="bit", program="openFPGALoader --board ulx3s {bit}"),
    "icebreaker": Board(
        name="icebreaker", platform="amaranth_boards.icebreaker:ICEBreakerPlatform", family="ice40",
        device="Lattice iCE40 UP5K (SG48)", clock_hz=12e6, target_hz=12e6, baud=115200,
        resources={"LUTs": (("ICESTORM_LC",), 5280), "FFs": (("SB_DFF",), 5280),
                   "BRAMs": (("ICESTORM_RAM",), 30), "SPRAMs": (("ICESTORM_SPRAM",), 4),
                   "DSPs": (("ICESTORM_DSP",), 8)},
        bitstream="bin", program="iceprog {bit}"),
}


def board(name: str) -> Board:
    """The board called ``name``, or a ``ValueError`` that lists the known ones."""
    if name not in BOARDS:
        raise ValueError(f"unknown board {name!r} (known: {', '.join(BOARDS)})")
    return BOARDS[name]


class BoardTop(Elaboratable):
    """The top of a board build.

    Parameters
    ----------
    board : Board
    cfg : Config
        The chip's configuration.
    core : wiring.Component or None
        The board core (``uart_rx`` In(1), ``uart_tx`` Out(1), optionally a
        ``status`` with ``irq`` and ``bridge_error``); by default
        ``BoardCore(cfg, board.divisor)``.
    """

    def __init__(self, board: Board, cfg: Config, core=None):
        if not isinstance(board, Board):
            self._MustUse__silence = True       # never built: no "created but never used" warning
            raise TypeError(f"board must be a Board, not {board!r}")
        if not isinstance(cfg, Config):
            raise TypeError(f"cfg must be a Config, not {cfg!r}")
        self.board = board
        self.cfg = cfg
        self.core = core if core is not None else BoardCore(cfg, board.divisor)

    def elaborate(self, platform):
        m = Module()
        b = self.board
        locked = Const(1)
        if b.needs_pll:
            # The flow adds the PLL's Verilog (module PLL_MODULE, from ecppll) to the platform.
            m.submodules.clk_in = clk_in = io.Buffer("i", platform.request(platform.default_clk, dir="-"))
            m.domains.sync = ClockDomain("sync")
            locked, clk = Signal(), Signal(name="pll_clk")
            m.submodules.pll = Instance(PLL_MODULE, i_clkin=clk_in.i, o_clkout0=clk, o_locked=locked)
            m.d.comb += ClockSignal("sync").eq(clk)
            m.submodules.reset_sync = ResetSynchronizer(~locked, domain="sync")
            platform.add_clock_constraint(clk, b.target_hz)
        m.submodules.core = core = self.core
        uart = platform.request("uart", 0, dir="-")
        m.submodules.uart_rx = rx = io.Buffer("i", uart.rx)
        m.submodules.uart_tx = tx = io.Buffer("o", uart.tx)
        m.d.comb += [core.uart_rx.eq(rx.i), tx.o.eq(core.uart_tx)]
        status = getattr(core, "status", None)
        leds = [status.irq, status.bridge_error] if status is not None else []
        if b.needs_pll:
            beat = Signal(range(int(b.target_hz) // 2))
            heart = Signal()
            with m.If(beat == 0):
                m.d.sync += [beat.eq(int(b.target_hz) // 2 - 1), heart.eq(~heart)]
            with m.Else():
                m.d.sync += beat.eq(beat - 1)
            leds += [heart, locked]
        for i, value in enumerate(leds):
            try:
                led = platform.request("led", i, dir="-")
            except ResourceError:       # a board with fewer LEDs shows fewer lines
                break
            m.submodules[f"led{i}"] = buf = io.Buffer("o", led)
            m.d.comb += buf.o.eq(value)
        return m
