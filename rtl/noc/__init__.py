"""The 2D-mesh on-chip network: flits, FIFO, route select, arbiter, router, link, NI, mesh."""
