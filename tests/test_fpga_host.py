"""``--backend fpga`` without a board: the one-line errors of the CLI and of the serial link.

(The host code behind the serial link is the one the board-core cocotb tests run over
cocotbext-uart: tests/sim/test_board_cocotb.py.)
"""

import asyncio

import numpy as np
import pytest

from rramcim.cli import main
from rramcim.fpga.host import FpgaError, SerialLink, open_board
from rramcim.fpga.protocol import BridgeTransport, ProtocolError, encode_reg_write, encode_stream_write


@pytest.fixture
def ab(tmp_path):
    a, b = tmp_path / "a.npy", tmp_path / "b.npy"
    np.save(a, np.ones((2, 3), dtype=np.int8))
    np.save(b, np.ones((3, 2), dtype=np.int8))
    return ["--a", str(a), "--b", str(b), "--out", str(tmp_path / "c.npy"), "--config", "tiny"]


def _one_line_error(capsys, argv, *needles):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("rramcim: error: "), err
    for n in needles:
        assert n in err, err
    return err


def test_port_missing(capsys, ab):
    _one_line_error(capsys, ["gemm", *ab, "--backend", "fpga"], "--backend fpga needs --port")
    _one_line_error(capsys, ["run", "--backend", "fpga"], "--backend fpga needs --port")


def test_port_without_fpga_backend(capsys, ab):
    _one_line_error(capsys, ["gemm", *ab, "--port", "/dev/ttyUSB0"], "only with --backend fpga")


def test_port_cannot_be_opened(capsys, ab, tmp_path):
    _one_line_error(capsys, ["gemm", *ab, "--backend", "fpga", "--port", str(tmp_path / "ttyNONE")],
                    "cannot open it", "ttyNONE")


def test_port_is_not_a_board(capsys, ab, tmp_path):
    """A loopback port echoes the command: the bridge's check names the reply byte; no output written."""
    _one_line_error(capsys, ["gemm", *ab, "--backend", "fpga", "--port", "loop://"], "INFO", "0x06",
                    "rramcim bitstream")
    assert not (tmp_path / "c.npy").exists()


def test_serial_link_timeout():
    link = open_board("loop://")
    link.timeout = link.ser.timeout = 0.05
    with pytest.raises(FpgaError, match="no reply from the board"):
        asyncio.run(link.recv(1))
    link.close()
    with pytest.raises(FpgaError, match="needs --port"):
        open_board(None)


def test_transport_bytes_on_the_wire():
    """The serial transport sends exactly the documented bytes (a loopback port echoes them back)."""
    link = SerialLink("loop://", timeout=0.2)
    t = BridgeTransport(link, 64)
    asyncio.run(link.send(encode_reg_write(0x40, 0x0102_0304)))
    assert asyncio.run(link.recv(6)) == bytes([0x01, 0x40, 0x04, 0x03, 0x02, 0x01])
    asyncio.run(link.send(encode_stream_write([0x1122, 5], 8, last=False)))
    assert asyncio.run(link.recv(3 + 16)) == bytes([0x04, 1, 0, 0x22, 0x11, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0])
    with pytest.raises(ProtocolError, match="reply byte 0x02, expected 0x82"):
        asyncio.run(t.reg_read(0))           # the echo of the command is not the reply
    link.close()


def test_serial_timeout_reaches_the_link():
    """``serial_timeout=`` of the jobs reaches the serial link: a board that never answers (a TCP port
    nobody reads) fails after that many seconds, naming them; the default is a loaded machine's."""
    import socket

    from rramcim.model.compiler import compile_gemm
    from rramcim.model.config import PRESETS
    from rramcim.sim.backends.fpga import DEFAULT_SERIAL_TIMEOUT
    from rramcim.sim.backends.jobs import JobError, run_plan
    assert DEFAULT_SERIAL_TIMEOUT >= 30
    plan = compile_gemm(PRESETS["tiny"], np.ones((2, 3), dtype=np.int8), np.ones((3, 2), dtype=np.int8))
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)                            # connections wait in the backlog, unanswered
        port = f"socket://127.0.0.1:{srv.getsockname()[1]}"
        with pytest.raises(JobError, match=r"no reply from the board within 0\.2 s"):
            run_plan(plan, "fpga", port=port, serial_timeout=0.2)
        for bad in (0, -1.0, float("nan")):
            with pytest.raises(JobError, match="serial time-out must be a positive number"):
                run_plan(plan, "fpga", port=port, serial_timeout=bad)
