"""Benchmarks that print their figures beside their limits: :mod:`.macro` (MVM throughput),
:mod:`.noc` (latency vs load), :mod:`.chip` (where the core's cycles go), :mod:`.gemm`
(utilization vs the roofline), :mod:`.speed` (the model against Verilator), :mod:`.energy`
(the energy model against published macros). The commands keep their names at the top of
:mod:`rramcim.sim` (``python -m rramcim.sim.bench_speed``, ...).
"""
