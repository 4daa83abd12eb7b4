"""The host side of the chip, shared by simulators and boards: the driver and its transports.

:mod:`.driver` (:class:`~.driver.HostDriver`: identification, program and data loads, start,
done, counters, error register, the window loop) talks to the chip's AXI registers and streams
through a transport (:mod:`.transport`: cocotbext-axi in a simulator, a UART line in a simulated
board; the serial link of a real board is :mod:`rramcim.fpga.host`). It imports only
:mod:`rramcim.rtl.top` (the register map) and :mod:`rramcim.model`, so :mod:`rramcim.fpga` can use it.
"""
