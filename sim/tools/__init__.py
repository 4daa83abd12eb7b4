"""Toolchain helpers: the Verilator/Icarus build cache and cocotb runner (:mod:`.build`),
the SymbiYosys runner (:mod:`.formal`) and the lint waivers (``waivers.vlt``).
"""
