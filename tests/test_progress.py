"""Progress display of long simulations, and a clean interrupt."""

import io

import numpy as np

from rramcim import cli
from rramcim.model.mlp import save_net
from rramcim.progress import Progress
from tests.test_run import random_net


def test_plain_progress_is_silent_for_short_runs_and_throttled_for_long_ones():
    buf = io.StringIO()
    p = Progress("windows", stream=buf, rich=False, every=3600)
    for i in range(1, 11):
        p(i, 10)
    assert buf.getvalue() == ""                     # a short run prints nothing
    buf = io.StringIO()
    p = Progress("windows", stream=buf, rich=False, every=0.0)
    for i in range(1, 4):
        p(i, 3)
    assert buf.getvalue().splitlines() == ["  1/3 windows (33%)", "  2/3 windows (66%)", "  3/3 windows (100%)"]


def test_a_new_total_starts_a_new_count():
    buf = io.StringIO()
    p = Progress("windows", stream=buf, rich=False, every=0.0)
    p(2, 2)
    p(1, 5)          # the next layer
    p(1, 1)          # and a layer of one window: done went back
    assert buf.getvalue().splitlines() == ["  2/2 windows (100%)", "  1/5 windows (20%)", "  1/1 windows (100%)"]


def test_rich_bar_draws_on_a_terminal_like_stream():
    class Tty(io.StringIO):
        def isatty(self):
            return True
    buf = Tty()
    with Progress("windows", stream=buf) as p:
        assert p.use_rich
        p(1, 4)
        assert p._bar is not None
        p(4, 4)
        assert p._bar is None                       # stopped when done
    assert "windows" in buf.getvalue()


def _net_files(tmp_path):
    rng = np.random.default_rng(5)
    save_net(tmp_path / "net.npz", random_net(rng, [40, 30, 7]))
    np.save(tmp_path / "x.npy", rng.integers(-128, 128, size=(9, 40)).astype(np.int8))
    return ["--net", str(tmp_path / "net.npz"), "--inputs", str(tmp_path / "x.npy"),
            "--out", str(tmp_path / "y.npy"), "--config", "tiny"]


def test_interrupt_during_a_run_exits_130_and_writes_nothing(tmp_path, monkeypatch, capsys):
    calls = []

    def interrupted(self, done, total):
        calls.append(done)
        raise KeyboardInterrupt
    monkeypatch.setattr(Progress, "__call__", interrupted)
    assert cli.main(["run", *_net_files(tmp_path)]) == 130
    assert calls, "the run never reported progress"
    assert not (tmp_path / "y.npy").exists()
    assert "interrupted" in capsys.readouterr().err
    assert not cli._PROGRESS                        # every progress display closed
