"""Windows being built: a round of operations goes into the current window if it fits the
instruction memory and the global buffer, else the window is closed and the round opens the next
(see "Windows" in the package docstring)."""

from __future__ import annotations

from ..config import Config
from ..isa import encode
from .layout import _tiles
from .plan import CompileError, Window
from .refs import _Ref, _tile_of

class _Emitter:
    """Windows being built: instructions, host writes and reads, and what a window must end with."""

    def __init__(self, cfg: Config, limit: int):
        self.cfg, self.limit = cfg, limit          # allocatable global buffer: [0, limit)
        self.windows: list[Window] = []
        self.read_maps: list = []
        self.kinds: list = []
        self.tiles = _tiles(cfg)
        self.kind = "gemm"
        self._new()

    def _new(self):
        self.prog: list[int] = []
        self.gbuf: dict[int, list[int]] = {}
        self.reads: list = []
        self.rmap: list = []
        self.ptr = 0
        self.keys: dict = {}
        self.dirty: set = set()         # tiles sent something since their last sync
        self.outstanding = False        # syncs or partial sums since the last barrier

    def close(self):
        """End the window: ``sync`` every tile sent anything since its last one, ``barrier``, ``halt``."""
        if not self.prog:
            return
        for t in self.tiles:
            if t in self.dirty:
                self.prog.append(encode("sync", tx=t[0], ty=t[1]))
                self.outstanding = True
        if self.outstanding:
            self.prog.append(encode("barrier"))
        self.prog.append(encode("halt"))
        merged: dict[int, list[int]] = {}
        last = None
        for a in sorted(self.gbuf):
            if last is not None and last + len(merged[last]) == a:
                merged[last] += self.gbuf[a]
            else:
                merged[a] = list(self.gbuf[a])
                last = a
        self.windows.append(Window(self.prog, merged, self.reads))
        self.read_maps.append(self.rmap)
        self.kinds.append(self.kind)
        self._new()

    def _need(self, ops) -> tuple[int, int]:
        seen, words = set(), 0
        for _, _, ref in ops:
            if ref is None or ref.kind == "fixed":
                continue
            if ref.kind == "out" or (ref.key not in self.keys and ref.key not in seen):
                words += ref.nwords
                seen.add(ref.key)
        return len(ops), words

    def _closing(self, ops) -> int:
        """Instructions the window needs to end after ``ops``: a sync per tile sent anything, barrier, halt."""
        return len(self.dirty | {_tile_of(op) for op in ops if op[0] != "sync"} - {None}) + 2

    def fits(self, ops) -> bool:
        n, words = self._need(ops)
        return len(self.prog) + n + self._closing(ops) <= self.cfg.imem_depth and self.ptr + words <= self.limit

    def round(self, ops, what: str):
        """Emit ``ops`` (``[(name, operands, _Ref or None)]``) in one window, starting a new one if needed."""
        if not self.fits(ops):
            self.close()
            if not self.fits(ops):
                n, words = self._need(ops)
                cfg = self.cfg
                if n + self._closing(ops) > cfg.imem_depth:
                    raise CompileError(f"imem_depth: {what} needs windows of at least {n + self._closing(ops)} "
                                       f"instructions; config {cfg.name!r} has {cfg.imem_depth}")
                raise CompileError(f"gbuf_words: {what} needs at least {words} free global-buffer words in a "
                                   f"window; config {cfg.name!r} has {self.limit} besides the partial sums")
        for name, operands, ref in ops:
            if ref is not None:
                operands = dict(operands, gaddr=self._addr(ref))
            self.emit(name, **operands)

    def _addr(self, ref: _Ref) -> int:
        if ref.kind == "fixed":
            return ref.addr
        if ref.kind == "in" and ref.key in self.keys:
            return self.keys[ref.key]
        a = self.ptr
        self.ptr += ref.nwords
        if ref.kind == "in":
            self.keys[ref.key] = a
            self.gbuf[a] = ref.make()
        else:
            self.reads.append((a, ref.nwords))
            self.rmap.append(ref.read)
        return a

    def emit(self, name, **ops):
        self.prog.append(encode(name, **ops))
        if name == "barrier":
            self.outstanding = False
        elif name == "sync":
            self.dirty.discard((ops["tx"], ops["ty"]))
            self.outstanding = True
        elif "tx" in ops:
            self.dirty.add((ops["tx"], ops["ty"]))
            if name == "psum":
                self.outstanding = True
