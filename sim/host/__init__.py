"""The host side of the chip, shared by simulators and boards: the driver and its transports.

:mod:`.driver` (:class:`~.driver.HostDriver`: identification, program and data loads, start,
done, counters, error register, the window loop) talks to the chip's AXI registers and streams
through a transport (:mod:`.transport`: cocotbext-axi in a simulator, a UART line in a simulated
board, the bridge protocol of :mod:`rramcim.fpga.protocol` over the serial link of a real
board, :mod:`rramcim.fpga.host`; :mod:`rramcim.sim.backends.fpga` puts them together). It imports
only :mod:`rramcim.rtl.top` (the register map) and :mod:`rramcim.model`.
"""
