"""`python -m rramcim.sim.bench_noc`: the command name of :mod:`rramcim.sim.perf.noc` (where the code is)."""

from .perf.noc import main

if __name__ == "__main__":
    main()
