"""Progress display for long simulations.

:class:`Progress` is a ``progress(done, total)`` callback, the kind the
backends call (:func:`rramcim.sim.backends.jobs.run_net`, :func:`rramcim.sim.backends.rtl.run_windows`).
On a terminal it draws a rich progress bar with the elapsed and remaining
time (it disappears when done); otherwise (a log file, CI) it prints a plain
line at most every ``every`` seconds, and a last one if it printed any, so
short runs stay silent and logs readable. A new ``total``, or ``done`` going back, starts a
new bar (the next layer of a network, say). Use it as a context manager so
that an interrupt (Ctrl-C) leaves the terminal clean.
"""

from __future__ import annotations

import sys
import time

__all__ = ["Progress"]


class Progress:
    """Parameters
    ----------
    what : str
        What is counted ("windows", "MVMs checked against the model").
    stream : file, optional
        Where to draw (default: standard output).
    rich : bool, optional
        Force the rich bar on or off (default: on if ``stream`` is a terminal).
    every : float
        Plain mode: seconds between lines.
    """

    def __init__(self, what: str, stream=None, rich: bool | None = None, every: float = 5.0):
        self.what = what
        self.stream = stream if stream is not None else sys.stdout
        self.use_rich = self.stream.isatty() if rich is None else rich
        self._bar = None          # rich.progress.Progress while a bar is shown
        self._task = None
        self._total = None
        self.every = every
        self._last = None         # plain mode: when the last line was printed (or the bar began)
        self._printed = False
        self._done = -1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __call__(self, done: int, total: int):
        if total != self._total or done < self._done:
            self._new(total)
        self._done = done
        if self._bar is not None:
            self._bar.update(self._task, completed=done)
            if done >= total:
                self.close()
            return
        now = time.monotonic()
        if now - self._last >= self.every or (done >= total and self._printed):
            self._last, self._printed = now, True
            print(f"  {done}/{total} {self.what} ({100 * done // max(1, total)}%)", file=self.stream, flush=True)

    def _new(self, total: int):
        self.close()
        self._total, self._last, self._printed, self._done = total, time.monotonic(), False, -1
        if not self.use_rich:
            return
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)
        self._bar = RichProgress(TextColumn(f"  {self.what}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                                 console=Console(file=self.stream), transient=True)
        self._bar.start()
        self._task = self._bar.add_task(self.what, total=total)

    def close(self):
        """Stop drawing (idempotent)."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        self._total = None
