"""The output discipline (rramcim/commands/outputs.py) and the CLI's one-line errors, one test per kind of
failure: each checks the exit code, the one line, that no output appeared, and that an existing output and
every input are byte-for-byte unchanged."""

import os
import subprocess
import sys

import numpy as np
import pytest

from rramcim.cli import main
from rramcim.model.mlp import Layer, Net, save_net


def call(capsys, *args):
    """``rramcim ARGS`` in this process: (exit code, stdout, stderr)."""
    try:
        rc = main([str(a) for a in args])
    except SystemExit as e:                  # argparse
        rc = e.code
    out, err = capsys.readouterr()
    return rc, out, err


def one_line(rc, err, *words, code=2):
    assert rc == code, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for w in words:
        assert w in lines[0], lines[0]


def snapshot(*paths):
    """Every given path's bytes (None if missing), to compare after a failed command."""
    return {p: (p.read_bytes() if p.is_file() else None) for p in paths}


@pytest.fixture
def net_files(tmp_path):
    rng = np.random.default_rng(5)
    layers = [Layer(rng.integers(-128, 128, (6, 5)).astype(np.int8), rng.integers(-999, 999, 5).astype(np.int32),
                    4, 1),
              Layer(rng.integers(-128, 128, (5, 3)).astype(np.int8), rng.integers(-999, 999, 3).astype(np.int32),
                    None, 0)]
    save_net(tmp_path / "net.npz", Net(layers))
    np.save(tmp_path / "x.npy", rng.integers(-128, 128, (4, 6)).astype(np.int8))
    (tmp_path / "old.npy").write_bytes(b"an existing output")
    return tmp_path / "net.npz", tmp_path / "x.npy", tmp_path / "old.npy"


def run_args(net, x, out, *more):
    return ("run", "--config", "default", "--net", net, "--inputs", x, "--out", out, *more)


@pytest.mark.parametrize("make_out, words", [
    (lambda d, net, x: d, "is a directory"),
    (lambda d, net, x: d / "missing" / "y.npy", "does not exist"),
    (lambda d, net, x: f"{d}/new/", "is a directory"),
    (lambda d, net, x: net, "the same file as the input --net"),
    (lambda d, net, x: x, "the same file as the input --inputs"),
    (lambda d, net, x: _link(d / "link.npy", x), "the same file as the input --inputs"),
    (lambda d, net, x: _hardlink(d / "hard.npy", net), "the same file as the input --net"),
    (lambda d, net, x: _fifo(d / "fifo"), "not a regular file"),
    (lambda d, net, x: "/dev/null", "not a regular file"),
    (lambda d, net, x: "-", "standard output is not accepted"),
])
def test_run_refuses_a_bad_out_before_any_work(capsys, tmp_path, net_files, make_out, words):
    net, x, old = net_files
    out = make_out(tmp_path, net, x)
    before = snapshot(net, x, old)
    kind = os.stat(out).st_mode if os.path.exists(out) else None
    rc, stdout, err = call(capsys, *run_args(net, x, out, "--report", old))
    one_line(rc, err, words)
    assert stdout == ""                      # refused before any work
    assert snapshot(net, x, old) == before
    assert (os.stat(out).st_mode if os.path.exists(out) else None) == kind


def _link(link, target):
    link.symlink_to(target)
    return link


def _hardlink(link, target):
    os.link(target, link)
    return link


def _fifo(path):
    os.mkfifo(path)
    return path


def test_two_outputs_naming_one_file_are_refused(capsys, tmp_path, net_files):
    net, x, old = net_files
    rc, _, err = call(capsys, *run_args(net, x, old, "--report", _link(tmp_path / "r.json", old)))
    one_line(rc, err, "--report and --out name the same file")
    assert old.read_bytes() == b"an existing output"


def test_a_failure_after_the_work_leaves_every_output_as_it_was(capsys, monkeypatch, net_files):
    net, x, old = net_files
    report = old.parent / "r.json"
    report.write_text("an existing report")
    before = snapshot(net, x, old, report)
    import rramcim.model.mlp as mlp
    monkeypatch.setattr(mlp, "reference", lambda net, X: np.zeros((X.shape[0], 3), np.int64) + 7)
    rc, stdout, err = call(capsys, *run_args(net, x, old, "--report", report, "--plot", old.parent / "plots"))
    one_line(rc, err, "differs from the numpy reference")
    assert "rramcim run:" in stdout          # the work was done
    assert snapshot(net, x, old, report) == before
    assert not (old.parent / "plots").exists()
    assert not [p for p in old.parent.iterdir() if p.name.endswith(".tmp")]


def test_ctrl_c_writes_nothing_and_exits_130(capsys, monkeypatch, net_files):
    net, x, old = net_files
    before = snapshot(net, x, old)
    import rramcim.sim.backends.jobs as jobs

    def interrupted(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(jobs, "run_net", interrupted)
    rc, _, err = call(capsys, *run_args(net, x, old))
    one_line(rc, err, "interrupted", code=130)
    assert snapshot(net, x, old) == before


def test_success_writes_every_output_through_a_symlink(capsys, tmp_path, net_files):
    net, x, old = net_files
    link = _link(tmp_path / "y.npy", old)
    rc, stdout, err = call(capsys, *run_args(net, x, link, "--report", tmp_path / "r.json", "--plot",
                                             tmp_path / "new" / "plots"))
    assert rc == 0, err
    assert link.is_symlink() and np.load(old).shape == (4, 3)
    assert sorted(p.name for p in (tmp_path / "new" / "plots").iterdir()) == ["energy.png", "layers.png",
                                                                              "timeline.png"]
    assert (tmp_path / "r.json").read_text().startswith("{")


def test_plot_dir_that_is_a_file_is_refused(capsys, net_files):
    net, x, old = net_files
    rc, stdout, err = call(capsys, *run_args(net, x, old.parent / "y.npy", "--plot", old))
    one_line(rc, err, "--plot", "not a directory")
    assert not (old.parent / "y.npy").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_unwritable_directory_is_refused_before_the_work(capsys, tmp_path, net_files):
    net, x, old = net_files
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        rc, stdout, err = call(capsys, *run_args(net, x, old, "--report", ro / "r.json"))
    finally:
        ro.chmod(0o755)
    one_line(rc, err, "--report", "not writable")
    assert stdout == "" and old.read_bytes() == b"an existing output"


def test_gemm_out_equal_to_an_input_is_refused(capsys, tmp_path):
    a, b = tmp_path / "a.npy", tmp_path / "b.npy"
    np.save(a, np.ones((3, 4), np.int8))
    np.save(b, np.ones((4, 2), np.int8))
    before = snapshot(a, b)
    for out, flag in ((a, "--a"), (b, "--b")):
        rc, _, err = call(capsys, "gemm", "--config", "default", "--a", a, "--b", b, "--out", out)
        one_line(rc, err, f"the same file as the input {flag}")
    rc, _, err = call(capsys, "gemm", "--config", "default", "--a", a, "--b", b, "--out", tmp_path / "c.npy",
                      "--report", b)
    one_line(rc, err, "--report", "the same file as the input --b")
    assert snapshot(a, b) == before and not (tmp_path / "c.npy").exists()


def test_asm_and_disasm_outputs(capsys, tmp_path):
    src = tmp_path / "p.s"
    src.write_text("nop\nhalt\n")
    rc, _, err = call(capsys, "asm", src, "-o", src)
    one_line(rc, err, "the same file as the input PROG.s")
    assert src.read_text() == "nop\nhalt\n"
    rc, out, err = call(capsys, "asm", src, "-o", "-")
    assert rc == 0 and len(out.split()) == 2 and all(len(w) == 16 for w in out.split())
    hexfile = tmp_path / "p.hex"
    hexfile.write_text(out)
    rc, _, err = call(capsys, "disasm", hexfile, "-o", hexfile)
    one_line(rc, err, "the same file as the input PROG.hex")
    rc, out, _ = call(capsys, "disasm", hexfile)
    assert rc == 0 and out.split() == ["nop", "halt"]


@pytest.mark.parametrize("args, words", [
    (("demo", "--stall", "1.0"), "--stall: 1.0 is out of range"),
    (("demo", "--stall", "inf"), "--stall: inf is out of range"),
    (("demo", "--stall", "nan"), "--stall: nan is out of range"),
    (("demo", "--stall", "-0.1"), "--stall: -0.1 is out of range"),
    (("demo", "--seed", "-1"), "--seed: -1 is out of range"),
    (("demo", "--mvms", "0"), "--mvms: 0 is out of range"),
    (("demo", "--mvms", "9" * 5000), "is too long"),
    (("demo", "--mvms", "1e3"), "is not an integer"),
    (("gemm", "--a", "a", "--b", "b", "--out", "c", "--baud", "0"), "--baud: 0 is out of range"),
    (("run", "--serial-timeout", "-5"), "--serial-timeout: -5 is out of range"),
    (("fpga", "build", "--board", "ulx3s", "--clock", "0"), "--clock: 0 is out of range"),
    (("run", "--no-such-option"), "unrecognized arguments"),
    (("gemm", "--a", "a"), "the following arguments are required"),
    (("demo", "--backend", "spice"), "invalid choice"),
])
def test_bad_options_are_one_line_with_a_hint(capsys, args, words):
    rc, out, err = call(capsys, *args)
    one_line(rc, err, words, "--help")
    assert "usage:" not in err and out == ""


def _cli(args, **kw):
    return subprocess.run([sys.executable, "-m", "rramcim", *map(str, args)], capture_output=False,
                          stderr=subprocess.PIPE, text=True, **kw)


def test_full_or_closed_standard_output_is_one_line(tmp_path):
    src = tmp_path / "p.s"
    src.write_text("nop\nhalt\n")
    with open("/dev/full", "w") as full:
        p = _cli(["asm", src, "-o", tmp_path / "p.hex"], stdout=full)
    one_line(p.returncode, p.stderr, "standard output: cannot write")
    assert not (tmp_path / "p.hex").exists()
    p = subprocess.run(f"'{sys.executable}' -m rramcim asm '{src}' -o '{tmp_path / 'q.hex'}' >&-", shell=True,
                       stderr=subprocess.PIPE, text=True)
    one_line(p.returncode, p.stderr, "standard output is closed")
    assert not (tmp_path / "q.hex").exists()


def test_gemm_refuses_a_result_over_the_array_limit(capsys, tmp_path):
    from rramcim.model.npfile import MAX_ARRAY_BYTES
    n = int((MAX_ARRAY_BYTES // 4) ** 0.5) + 1               # C = n x n int32 just over the limit
    a, b = tmp_path / "a.npy", tmp_path / "b.npy"
    np.save(a, np.ones((n, 1), np.int8))
    np.save(b, np.ones((1, n), np.int8))
    rc, out, err = call(capsys, "gemm", "--a", a, "--b", b, "--out", tmp_path / "c.npy")
    one_line(rc, err, "--out", "MiB limit")
    assert not (tmp_path / "c.npy").exists()


@pytest.mark.parametrize("stuck", ["1,2", "1,2," + "9" * 5000, "a,b,c", "1,2,3,4"])
def test_bad_stuck_cells_are_one_line(capsys, tmp_path, stuck):
    rc, _, err = call(capsys, "verilog", "--config", "tiny", "--stuck", stuck, "-o", tmp_path / "m.v")
    one_line(rc, err, "--stuck", "ROW,CELL,VALUE")
    assert not (tmp_path / "m.v").exists()


def test_a_program_source_that_is_not_a_file_is_one_line(capsys, tmp_path):
    rc, _, err = call(capsys, "asm", tmp_path, "-o", tmp_path / "p.hex")
    one_line(rc, err, "not a regular file")


def test_verilog_never_overwrites_its_config_and_a_failed_lint_writes_nothing(capsys, monkeypatch, tmp_path):
    cfg = tmp_path / "chip.toml"
    cfg.write_text('name = "mine"\n')
    rc, _, err = call(capsys, "verilog", "--config", cfg, "--block", "macro", "-o", cfg)
    one_line(rc, err, "the same file as the input --config")
    assert cfg.read_text() == 'name = "mine"\n'
    import rramcim.sim.tools.build as build
    monkeypatch.setattr(build, "lint", lambda *a, **k: (False, "%Warning-PLANTED: a planted lint problem"))
    out = tmp_path / "m.v"
    out.write_text("an existing file")
    rc, _, err = call(capsys, "verilog", "--config", "tiny", "--block", "macro", "-o", out, "--lint")
    assert rc == 2 and "PLANTED" in err and "nothing written" in err.splitlines()[-1]
    assert out.read_text() == "an existing file" and not (tmp_path / "m.vlt").exists()
