"""The GEMM compiler: ``C = A @ B`` (int8 operands, int32 result) as chip programs.

:func:`compile_gemm` turns ``A`` [M, K] and ``B`` [K, N] into a :class:`GemmPlan`:
a list of :class:`Window` s, each one start-to-done run of the chip (a program
loaded at instruction address 0, the global-buffer words the host writes
before the start, the ranges it reads after done), and
:meth:`GemmPlan.result`, which assembles ``C`` from what the host read.
:func:`rramcim.sim.backends.model.run_on_model` runs a plan on the cycle-exact
model. Compilation is deterministic: the same operands and config give the
same plan, whatever backend runs it. Every program keeps the rules of docs/isa.md that make its
result independent of timing (a test runs each plan on the cycle-exact and on
the functional, program-order model and compares the global buffers).

Blocks and passes
-----------------
``B`` is cut into blocks of ``rows`` x ``cols`` (``Kb`` x ``Nb`` blocks, zero
padded; a block's padding rows are never programmed, since the activations'
zero padding makes them irrelevant, and padding columns are dropped by
:meth:`GemmPlan.result`). A *pass* holds up to ``T = mesh_x * mesh_y`` blocks
in the tiles' RRAM and streams rows of ``A`` through them. A *unit* is the set
of tiles of a pass that hold the K-blocks of one N-block:

* ``Kb <= T``: a pass holds ``T // Kb`` whole N-blocks (N split over units, K
  split over a unit's tiles); there are ``ceil(Nb / (T // Kb))`` passes and
  each block is programmed once.
* ``Kb > T``: an N-block's K-blocks go in K-groups of ``T``, one pass each. A
  K-group's results are partial sums: ``out`` to a region at the top of the
  global buffer (the *P region*), added back by the next K-group's roots with
  ``ldpsum``; the last K-group sends ``C``. Rows go in *M-blocks* whose partial
  sums fit the P region (half the buffer); each M-block reprograms its passes.
* A pass that uses at most half the tiles is replicated (rows split over the
  copies) when the estimate says the speed-up pays for the extra programming.

Each pass starts with windows that only program RRAM (``ldw``, a few rows to
each tile in turn, so that a tile writes a row while the controller sends the
others theirs; each tile's ``ldw`` follows its last use of the old weights in
its own packet order, so no barrier is needed before it). Keeping them apart
measures the programming share of the cycles exactly.

Rounds
------
Rows go through a unit in chunks of ``n`` (one ``ldact`` per tile and row
range, one ``mvm`` command per chunk, ``mvm acc=0`` first: nothing is assumed
about the accumulators' content). The chunks' commands are grouped in rounds;
the controller sends a round's commands to the tiles in turn.

* One tile (no K split): round ``c`` has the ``ldact`` and ``mvm`` of chunk ``c``
  into accumulator set ``c % 2``, round ``c + 1`` its ``out`` before the next
  chunk's loads. A tile handles its packets in arrival order and the
  controller's packets to it arrive in order, so no barrier is needed.
* Several tiles (K split): every tile computes the chunk's partial sums for
  its K-block; the rows are cut into shares, tile ``j`` the root of share
  ``j`` (``dag``), or one root per chunk (``root``), rotating with the chunk.
  A tile sends each share's partial sums to its root (``psum``), the root adds
  them to its own and sends the share ``out``. Two hazards need the
  controller: a partial sum must reach a root after the root's ``mvm acc=0``
  wrote the slots (a ``sync`` answered after that ``mvm``, then a barrier), and
  the root's ``out`` must follow every partial sum (the barrier after the
  ``psum`` s). So each round ends with one ``barrier``; a ``sync`` at the start
  of round ``c + 1`` (answered once the tile is done with round ``c``, or the
  answer to its first ``psum`` of that round, which shows the same) lets the
  partial sums of chunk ``c`` go in round ``c + 2`` (``dag``: ``c + 2`` and
  ``c + 3``) and its ``out`` in the round after; the barrier ending a round
  does not wait for that round's MVMs. Accumulator sets: 4 (``dag``), 3
  (``root``), so ``n = tile_acc_depth // sets``.
* Deadlock: a tile takes a packet only when idle, so two tiles sending
  partial sums to each other at once wait for each other forever. In a round
  the tiles send partial sums only forward in that round's order of the unit
  (``dag``: reversed every other round, so a chunk's exchange takes two rounds),
  and :func:`_deadlock_free` checks each round's wait-for graph (routes, ports,
  and the tiles' results to the controller); if no scheme passes, a pass with
  several units is split into passes of one.

Windows
-------
A round goes into the current window if its instructions, plus the closing
``sync`` s, ``barrier`` and ``halt``, fit ``imem_depth`` and its new global-buffer
words fit below the P region; else the window is closed (``sync`` to every
tile sent anything since its last ``sync``, ``barrier``, ``halt``) and the round
opens the next one. Tile accumulators and RRAM persist between windows, so a
pipeline runs on across a window boundary (a round ends on a barrier anyway);
the global buffer persists too, which the P region relies on. Activations are
stored once per window and row range and sent to every tile that needs them
(N split: the same words go to each tile). A schedule whose round does not
fit is retried with smaller rounds (:func:`compile_gemm`).

Epilogue (one int8 layer)
-------------------------
``compile_gemm(cfg, A, B, bias, shift, relu)``: with a bias or a shift, every pass starts with a
round that ``ldbias`` es each tile of a final unit (the tiles that may send ``C``: a unit's only tile,
or every root of a K split) with its N-block's slice of the bias (zeros without one). The register
is per tile and persists across windows; a tile handles its packets in order, so the load follows
the ``out`` s of the passes before and precedes this pass's. Only the final ``out`` of an output adds
it: ``out bias=1`` (``shift`` None, int32 ``C``) or ``outq shift=.. relu=..`` (int8 ``C``,
``words_q`` words a vector); partial sums to another tile (``psum``) or to the P region stay raw.

Performance (``python -m rramcim.sim.bench_gemm``): the roofline
(:func:`roofline`) is the controller's port, one flit a cycle each way, over
the activations a GEMM must send and the int32 results it must take back. An
N split that fills the default chip is bound by the results (int32 ``out``
packets) and reaches over 90 % of it; a K split over tiles is bound instead
by the partial sums between tiles, which a tile can neither receive nor send
while it computes or takes activations; :func:`traffic_bound` gives the bound
of a plan's own data movement, tiles included.

Modules
-------
:mod:`.plan` (:class:`Window`, :class:`GemmPlan`, :class:`CompileError`), :mod:`.checks` (the
operands and the epilogue), :mod:`.layout` (blocks, units, passes, M-blocks, replication),
:mod:`.reduction` (partial-sum schemes and the deadlock check), :mod:`.refs` (operations and their
global-buffer operands), :mod:`.emitter` (rounds into windows), :mod:`.rounds` (a pass's rows in
rounds), :mod:`.gemm` (:func:`compile_gemm`), :mod:`.analysis` (:func:`roofline`,
:func:`traffic_bound`).

Pure Python and numpy: no Amaranth or cocotb here.
"""

from .analysis import pipeline_limit, roofline, traffic_bound
from .gemm import compile_gemm
from .plan import CompileError, GemmPlan, Window

__all__ = ["CompileError", "GemmPlan", "Window", "compile_gemm", "pipeline_limit", "roofline", "traffic_bound"]
