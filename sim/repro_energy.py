"""`python -m rramcim.sim.repro_energy`: the command name of :mod:`rramcim.sim.perf.energy` (where the code is)."""

from .perf.energy import main

if __name__ == "__main__":
    main()
