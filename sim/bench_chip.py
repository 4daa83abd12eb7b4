"""`python -m rramcim.sim.bench_chip`: the command name of :mod:`rramcim.sim.perf.chip` (where the code is)."""

from .perf.chip import main

if __name__ == "__main__":
    main()
