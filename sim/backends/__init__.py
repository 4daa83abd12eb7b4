"""Run backends: the cycle-exact model, the RTL (Verilator, Icarus) and an FPGA board.

:mod:`.jobs` runs a compiled plan, a GEMM or an MLP on any of them and checks an RTL or
board run against the model window by window; :mod:`.rtl` runs windows on the chip's
Verilog through its AXI ports; :mod:`.model` runs them on the cycle-exact model.
"""
