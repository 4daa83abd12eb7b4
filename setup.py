"""The wheel's packages, found rather than listed; the rest of the metadata is in pyproject.toml.

The import package ``rramcim`` is made of five folders, mapped in pyproject's
``[tool.setuptools.package-dir]``: rramcim/ (the CLI) is ``rramcim``, and rtl/, model/, sim/
and fpga/ are ``rramcim.rtl`` ... ``rramcim.fpga``. setuptools' ``packages.find`` names what it
finds under a folder after that folder (``noc``, not ``rramcim.rtl.noc``), so the names are put
together here: every folder with an ``__init__.py`` under a mapped folder is a package.
"""

import tomllib
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).resolve().parent
PACKAGE_DIR = tomllib.loads((HERE / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]


def packages() -> list[str]:
    found = set(PACKAGE_DIR)
    for name, folder in PACKAGE_DIR.items():
        found |= {f"{name}.{p}" for p in find_packages(str(HERE / folder))}
    return sorted(found)


if __name__ == "__main__":
    setup(packages=packages())
