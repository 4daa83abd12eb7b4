"""`python -m rramcim.sim.bench_speed`: the command name of :mod:`rramcim.sim.perf.speed` (where the code is)."""

from .perf.speed import main

if __name__ == "__main__":
    main()
