"""What the compiler hands back: a :class:`GemmPlan` of :class:`Window` s, and the
:class:`CompileError` it raises for a GEMM it cannot build (see the package docstring)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..encoding import unpack_vector
from ..config import Config
from ..macro import wrap_signed

__all__ = ["CompileError", "GemmPlan", "Window"]


class CompileError(ValueError):
    """A GEMM the compiler cannot build; the one-line message names the problem."""


@dataclass
class Window:
    """One start-to-done run of the chip."""

    program: list[int]                 # instruction words, loaded at imem address 0
    gbuf: dict[int, list[int]]         # global-buffer words the host writes before start: {address: [words]}
    reads: list[tuple[int, int]]       # (address, n_words) the host reads from the global buffer after done


@dataclass
class GemmPlan:
    """A compiled GEMM: its windows and how ``C`` is put together from what the host reads.

    ``read_map[w][r] = (row0, nrows, nb)``: window ``w``'s read ``r`` holds rows
    ``row0 .. row0+nrows-1`` of ``C``'s column block ``nb`` (columns
    ``nb*cols ..``), ``nrows`` vectors of ``words_a`` words (``words_q`` words of ``xbits``
    elements if ``shift`` is not None: ``outq`` results). ``schedule`` describes the layout
    (passes, units, chunk sizes) for reports. ``rram`` (compiled for a kept chip, ``compile_gemm(...,
    rram=)``): the weights every tile's rows hold after the plan, int64 [mesh_y, mesh_x, rows, cols].
    """

    cfg: Config
    M: int
    K: int
    N: int
    windows: list[Window]
    read_map: list[list[tuple[int, int, int]]] = field(default_factory=list, repr=False)
    schedule: dict = field(default_factory=dict, repr=False)
    shift: int | None = None           # None: C is int32 (``out``); else int8 from ``outq shift=.. relu=..``
    relu: int = 0
    rram: np.ndarray | None = field(default=None, repr=False)   # rows' weights after the plan (compiled with rram=)

    @property
    def macs(self) -> int:
        """The GEMM's multiply-accumulates, ``M * K * N`` (no padding)."""
        return self.M * self.K * self.N

    def result(self, read_words: list[list[list[int]]]) -> np.ndarray:
        """C from what the host read: read_words[w][r] = the words of window w's read r. int32 [M, N]
        (``shift`` None), else the ``outq`` results, int8 [M, N]."""
        cfg = self.cfg
        quant = self.shift is not None
        C = np.zeros((self.M, self.N), dtype=np.int64)
        if len(read_words) != len(self.windows):
            raise ValueError(f"read_words: {len(read_words)} windows, the plan has {len(self.windows)}")
        wa, bits = (cfg.words_q, cfg.xbits) if quant else (cfg.words_a, cfg.acc_bits)
        for w, (win, rmap) in enumerate(zip(self.windows, self.read_map)):
            if len(read_words[w]) != len(win.reads):
                raise ValueError(f"read_words[{w}]: {len(read_words[w])} reads, window {w} has {len(win.reads)}")
            for r, ((addr, n), (row0, nrows, nb)) in enumerate(zip(win.reads, rmap)):
                words = read_words[w][r]
                if len(words) != n:
                    raise ValueError(f"read_words[{w}][{r}]: {len(words)} words, expected {n}")
                c0 = nb * cfg.cols
                nc = min(cfg.cols, self.N - c0)
                for i in range(nrows):
                    v = unpack_vector(words[i * wa:(i + 1) * wa], cfg.cols, bits, cfg.flit_width)
                    C[row0 + i, c0:c0 + nc] = v[:nc]
        if quant:
            return C.astype(np.int8)
        return wrap_signed(C, 32).astype(np.int32)
