"""The wheel, installed away from the checkout, works: every module imports, ``rramcim verilog --lint``
and the demo run.

The wheel is built from a copy of the sources (so that the build leaves nothing in the checkout)
with ``pip wheel --no-deps --no-build-isolation`` and installed without its dependencies into a
fresh virtual environment; the dependencies come from this environment's site-packages through a
``.pth`` file (a path on ``sys.path``, its own ``.pth`` files not run: the editable install of the
checkout stays out). The commands run there with the working folder outside the checkout. A
package left out of the wheel fails the import of every module; a data file left out (the lint
waivers) fails ``--lint``.
"""

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("rramcim", "rtl", "model", "sim", "fpga", "pyproject.toml", "setup.py", "README.md")

IMPORT_ALL = """
import importlib, pkgutil, sys
import rramcim
assert rramcim.__file__.startswith(sys.prefix), rramcim.__file__
names = [m.name for m in pkgutil.walk_packages(rramcim.__path__, "rramcim.") if not m.name.endswith("__main__")]
for name in names:
    mod = importlib.import_module(name)
    assert mod.__file__.startswith(sys.prefix), mod.__file__
import rramcim.sim.tools.build as b
assert b.waivers_file().is_file(), b.waivers_file()
print(len(names), "modules")
"""


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    pytest.importorskip("wheel", reason="building the wheel needs the 'wheel' package (pip install -e '.[test]')")
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in SOURCES:
        p = ROOT / name
        if p.is_dir():
            shutil.copytree(p, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(p, src / name)
    dist = tmp / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(dist), str(src)],
         cwd=tmp)
    wheel, = dist.glob("rramcim-*.whl")
    env_dir = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], cwd=tmp)
    python = env_dir / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index",
          str(wheel)], cwd=tmp)
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                     cwd=tmp).strip())
    (site / "zz_rramcim_test_deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    work = tmp / "work"
    work.mkdir()
    return env_dir, work


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTEST_CURRENT_TEST", "VIRTUAL_ENV")}
    return env


def _run(cmd, cwd) -> str:
    p = subprocess.run([str(c) for c in cmd], cwd=cwd, env=_env(), capture_output=True, text=True)
    assert p.returncode == 0, f"{' '.join(map(str, cmd))}: exit {p.returncode}\n{p.stdout}\n{p.stderr}"
    return p.stdout


def test_every_module_imports_from_the_wheel(venv):
    env_dir, work = venv
    out = _run([env_dir / "bin" / "python", "-c", IMPORT_ALL], cwd=work)
    assert int(out.split()[0]) > 50, out


def test_verilog_with_lint_from_the_wheel(venv):
    env_dir, work = venv
    out = _run([env_dir / "bin" / "rramcim", "verilog", "--config", "tiny", "--lint", "-o", "x.v"], cwd=work)
    assert (work / "x.v").stat().st_size > 10_000, out
    assert "lint" in out.lower(), out


def test_demo_from_the_wheel(venv):
    env_dir, work = venv
    out = _run([env_dir / "bin" / "rramcim", "run"], cwd=work)
    assert "inferences" in out, out
