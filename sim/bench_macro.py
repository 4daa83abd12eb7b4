"""`python -m rramcim.sim.bench_macro`: the command name of :mod:`rramcim.sim.perf.macro` (where the code is)."""

from .perf.macro import main

if __name__ == "__main__":
    main()
