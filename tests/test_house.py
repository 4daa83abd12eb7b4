"""The house rules of docs/architecture.md ("The map of the house"), checked on the tree.

Sizes (no module outside tests/ over 700 lines, no function over 120), at most 10 modules at the
top of sim/, imports that only go downward, every package in the wheel (setup.py), and every
repository path named in the docs, the README and the sources exists.
"""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = {"rtl": "rramcim.rtl", "model": "rramcim.model", "sim": "rramcim.sim", "fpga": "rramcim.fpga",
           "rramcim": "rramcim"}
MAX_MODULE, MAX_FUNCTION, MAX_SIM_TOP = 700, 120, 10


def _sources():
    for folder in FOLDERS:
        for p in sorted((ROOT / folder).rglob("*.py")):
            if "__pycache__" not in p.parts:
                yield p


def _module_name(p: Path) -> str:
    rel = p.relative_to(ROOT)
    parts = list(rel.with_suffix("").parts)
    name = FOLDERS.get(parts[0], parts[0]).split(".") + parts[1:]
    return ".".join(name[:-1] if name[-1] == "__init__" else name)


def _imports(p: Path) -> set[str]:
    """Every module ``p`` imports (relative imports resolved), at any depth in the file; for
    ``from X import a`` both ``X`` and ``X.a``."""
    return {m for mod, names in _import_froms(p) for m in [mod, *(f"{mod}.{a}" for a in names)]}


def _import_froms(p: Path) -> list[tuple[str, list[str]]]:
    """``(module, [names])`` of each import statement of ``p`` (``names`` empty for ``import X``)."""
    me = _module_name(p)
    package = me if p.name == "__init__.py" else me.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(ast.parse(p.read_text())):
        if isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module
            out.append((mod, [a.name for a in node.names]))
    return out


def _module_exists(name: str) -> bool:
    """Whether ``rramcim.x.y`` is a module or package of the tree."""
    parts = name.split(".")
    if parts[0] != "rramcim":
        return True
    if len(parts) == 1:
        return True
    top = parts[1] if parts[1] in FOLDERS and parts[1] != "rramcim" else None
    base = ROOT / top if top else ROOT / "rramcim"
    rest = parts[2:] if top else parts[1:]
    path = base.joinpath(*rest) if rest else base
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def check_sizes(files) -> list[str]:
    bad = []
    for p in files:
        text = p.read_text()
        if text.count("\n") > MAX_MODULE:
            bad.append(f"{p.relative_to(ROOT)}: {text.count(chr(10))} lines (at most {MAX_MODULE})")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION:
                    bad.append(f"{p.relative_to(ROOT)}:{node.lineno} {node.name}: {n} lines (at most {MAX_FUNCTION})")
    return bad


# what a room may not import (a prefix match on the imported module)
FORBIDDEN = {
    "rramcim.model": ("rramcim.rtl", "rramcim.sim", "rramcim.fpga", "rramcim.cli", "rramcim.commands", "amaranth",
                      "cocotb"),
    "rramcim.rtl": ("rramcim.sim", "rramcim.fpga", "rramcim.cli", "rramcim.commands", "cocotb"),
    "rramcim.sim.host": ("rramcim.sim.backends", "rramcim.sim.benches", "rramcim.sim.tb", "rramcim.sim.tools",
                         "rramcim.sim.perf", "rramcim.sim.report", "rramcim.fpga", "rramcim.cli", "rramcim.commands"),
    "rramcim.sim": ("rramcim.cli", "rramcim.commands"),
    "rramcim.fpga": ("rramcim.cli", "rramcim.commands", "rramcim.sim"),
}


def check_imports(files) -> list[str]:
    bad = []
    for p in files:
        me = _module_name(p)
        rules = [(room, ban) for room, bans in FORBIDDEN.items() if me == room or me.startswith(room + ".")
                 for ban in bans]
        mods = sorted(_imports(p))
        for room, ban in rules:
            hit = next((mod for mod in mods if mod == ban or mod.startswith(ban + ".")), None)
            if hit:
                bad.append(f"{p.relative_to(ROOT)} imports {hit} ({room} may not import {ban})")
        below_cli = me.split(".")[1] in ("model", "rtl", "sim", "fpga") if "." in me else False
        for mod, names in _import_froms(p):
            if not _module_exists(mod):
                bad.append(f"{p.relative_to(ROOT)} imports {mod}, which is not a module of the tree")
            elif below_cli and mod.startswith("rramcim.") and mod.split(".")[1] not in ("model", "rtl", "sim", "fpga"):
                bad.append(f"{p.relative_to(ROOT)} imports {mod} (only the CLI uses the rramcim/ folder)")
    return bad


def check_import_names(files) -> list[str]:
    """Names imported with ``from rramcim.X import a`` that ``rramcim.X`` does not define."""
    import importlib
    bad = []
    for p in files:
        for mod, names in _import_froms(p):
            if not mod.startswith("rramcim") or not _module_exists(mod):
                continue
            m = importlib.import_module(mod)
            for a in names:
                if a != "*" and not hasattr(m, a) and not _module_exists(f"{mod}.{a}"):
                    bad.append(f"{p.relative_to(ROOT)} imports {a} from {mod}, which does not define it")
    return bad


PATH_RE = re.compile(r"(?<![\w./-])((?:rtl|model|sim|fpga|rramcim|tests|docs)/[\w./-]*\w)")


def check_paths(files) -> list[str]:
    """Repository paths (a top folder, a slash, the rest) named in ``files`` that do not exist."""
    bad = []
    for p in files:
        for n, line in enumerate(p.read_text().splitlines(), 1):
            for m in PATH_RE.finditer(line):
                path = m.group(1).rstrip(".")
                if "*" in path or "{" in path:
                    continue
                if not (ROOT / path).exists():
                    bad.append(f"{p.relative_to(ROOT)}:{n}: {path}")
    return bad


def test_no_module_or_function_too_long():
    assert check_sizes(_sources()) == []


def test_at_most_ten_modules_at_the_top_of_sim():
    top = sorted(p.name for p in (ROOT / "sim").glob("*.py"))
    assert len(top) <= MAX_SIM_TOP, top


def test_imports_only_go_downward():
    assert check_imports(_sources()) == []


def test_every_imported_name_exists():
    assert check_import_names([*_sources(), *sorted((ROOT / "tests").rglob("*.py"))]) == []


def test_every_package_goes_into_the_wheel():
    """setup.py finds the wheel's packages under the folders of pyproject's package-dir; a folder of
    sources without an ``__init__.py`` would be left out of the wheel."""
    import importlib.util
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "packages" not in cfg, "setup.py finds the packages: list none in pyproject.toml"
    assert cfg["package-dir"] == {name: folder for folder, name in FOLDERS.items()}
    spec = importlib.util.spec_from_file_location("rramcim_setup", ROOT / "setup.py")
    setup = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(setup)                       # setup() runs only as __main__
    found = {_module_name(p) for p in _sources() if p.name == "__init__.py"}
    assert set(setup.packages()) == found
    no_init = {str(p.parent.relative_to(ROOT)) for p in _sources() if not (p.parent / "__init__.py").is_file()}
    assert no_init == set(), "folders of sources without an __init__.py: not in the wheel"


def test_every_path_named_in_docs_and_sources_exists():
    files = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *_sources(),
             *(p for p in sorted((ROOT / "tests").rglob("*.py")) if p.name != "test_house.py")]
    assert check_paths(files) == []


def test_the_checks_can_fail(tmp_path):
    """Each checker reports a planted violation."""
    global ROOT
    root = ROOT
    try:
        ROOT = tmp_path
        (tmp_path / "model").mkdir()
        (tmp_path / "docs").mkdir()
        long = tmp_path / "model" / "long.py"
        long.write_text("import amaranth\nfrom ..sim.tools import build\nfrom .nowhere import x\n"
                        "from ..progress import Progress\n\ndef f():\n" + "    x = 1\n" * 130)
        doc = tmp_path / "docs" / "a.md"
        missing = "/".join(("sim", "nowhere.py"))     # joined, so this file names no missing path itself
        rel = {f: f.relative_to(tmp_path).as_posix() for f in (long, doc)}
        doc.write_text(f"see `{missing}` and {rel[doc]}\n")
        assert [s.split(":")[0] for s in check_sizes([long])] == [rel[long]]
        (tmp_path / "rramcim").mkdir()
        (tmp_path / "rramcim" / "progress.py").write_text("")
        msgs = check_imports([long])
        assert any("may not import amaranth" in m for m in msgs)
        assert any("may not import rramcim.sim" in m for m in msgs)
        assert any("rramcim.model.nowhere, which is not a module" in m for m in msgs)
        assert any("rramcim.progress (only the CLI" in m for m in msgs)
        (tmp_path / "model" / "encoding.py").write_text("")
        uses = tmp_path / "model" / "uses.py"
        uses.write_text("from .encoding import NOT_DEFINED, pack_fields\n")
        assert check_import_names([uses]) == [
            f"{uses.relative_to(tmp_path).as_posix()} imports NOT_DEFINED from rramcim.model.encoding, "
            "which does not define it"]
        assert check_paths([doc]) == [f"{rel[doc]}:1: {missing}"]
    finally:
        ROOT = root


if __name__ == "__main__":
    pytest.main([__file__])
