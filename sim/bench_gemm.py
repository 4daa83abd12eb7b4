"""`python -m rramcim.sim.bench_gemm`: the command name of :mod:`rramcim.sim.perf.gemm` (where the code is)."""

from .perf.gemm import main

if __name__ == "__main__":
    main()
