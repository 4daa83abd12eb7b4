"""Verification and measurement of the chip: rooms by role.

=================  ===========================================================================
``benches/``       simulator-independent benches (stimulus, stalls, model prediction, checker)
                   and their I/O adapters for cocotb and Amaranth's simulator
``tb/``            cocotb entry modules, the ones a simulator loads
``host/``          the host side shared by simulators and boards: driver, transports
``backends/``      run backends (model, RTL, FPGA): running windows, plans, GEMMs and MLPs
``tools/``         the Verilator/Icarus build cache and cocotb runner, SymbiYosys, lint waivers
``perf/``          benchmarks (their commands keep their names here: ``bench_*``, ``repro_energy``)
``report/``        plots and report writers
=================  ===========================================================================

Imports go downward: everything here may use :mod:`rramcim.rtl`, :mod:`rramcim.model` and
:mod:`rramcim.fpga`; ``host/`` uses only :mod:`rramcim.rtl` and :mod:`rramcim.model`.
"""
