"""The FuseSoC generator of rramcim.core: the Verilog of a block for a config, made by ``rramcim verilog``.

FuseSoC runs it (generator ``rramcim_verilog`` of rramcim.core) as ``python3 rramcim/fusesoc.py
INPUT.yml`` in a fresh folder, so the Python on PATH must be the one rramcim is installed in (activate
its environment first). It also runs as ``python -m rramcim.fusesoc INPUT.yml``.

The input (FuseSoC's generator API, ``gapi`` 1.0) holds ``files_root`` (the folder of the core that asks)
and ``parameters``:

``config``
    a preset name (tiny, default, large, memwall, ulx3s, icebreaker) or a .toml/.json file, relative to
    ``files_root`` (default: ``default``);
``block``
    chip (default), core, macro, crossbar, mesh or router;
``top_name``
    the top module's name (default: the block's own, e.g. ``rramcim_chip``); the target that uses the
    generated core names it as its ``toplevel``;
``stuck``
    a list of ``ROW,CELL,VALUE`` stuck-at cells (simulation only; default none).

It writes ``TOP.v`` and a core file that lists it (file type ``verilogSource``) in the working folder,
which is what FuseSoC reads back. The Verilator waivers come from rramcim.core's own fileset.
"""

from __future__ import annotations

import sys
from pathlib import Path

GAPI = "1.0"
BLOCKS = ("chip", "core", "macro", "crossbar", "mesh", "router")


def _fail(msg: str):
    print(f"rramcim FuseSoC generator: {msg}", file=sys.stderr)
    raise SystemExit(2)


def generate(gen: dict, out_dir: Path) -> Path:
    """Run ``rramcim verilog`` for the generator input ``gen`` into ``out_dir``; the core file written."""
    from .cli import main as rramcim
    if str(gen.get("gapi")) != GAPI:
        _fail(f"generator API {gen.get('gapi')!r} (this generator speaks {GAPI})")
    p = dict(gen.get("parameters") or {})
    unknown = set(p) - {"config", "block", "top_name", "stuck"}
    if unknown:
        _fail(f"unknown parameters {sorted(unknown)} (known: config, block, top_name, stuck)")
    block = p.get("block", "chip")
    if block not in BLOCKS:
        _fail(f"block {block!r} (known: {', '.join(BLOCKS)})")
    config = str(p.get("config", "default"))
    if config.endswith((".toml", ".json")) and not Path(config).is_absolute():
        config = str(Path(gen.get("files_root", ".")) / config)
    top = p.get("top_name")
    stem = top or f"rramcim_{block}"
    verilog = out_dir / f"{stem}.v"
    try:                                    # the header's command line: short when run in out_dir (FuseSoC)
        shown = verilog.relative_to(Path.cwd())
    except ValueError:
        shown = verilog
    argv = ["verilog", "--config", config, "--block", block, "-o", str(shown)]
    if top:
        argv += ["--top-name", str(top)]
    for s in p.get("stuck") or []:
        argv += ["--stuck", str(s)]
    status = rramcim(argv)
    if status:
        raise SystemExit(status)            # rramcim said why, in one line
    name = gen.get("vlnv") or f"::rramcim-{block}:0"
    core = out_dir / f"{stem}.core"
    core.write_text("CAPI=2:\n"
                    f"name: {name}\n"
                    "filesets:\n"
                    "  rtl:\n"
                    "    files:\n"
                    f"      - {verilog.name}: {{file_type: verilogSource}}\n"
                    "targets:\n"
                    "  default:\n"
                    "    filesets: [rtl]\n")
    return core


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        _fail("usage: python -m rramcim.fusesoc INPUT.yml (FuseSoC passes the input file)")
    try:
        import yaml                         # FuseSoC's own dependency (PyYAML)
    except ImportError:
        _fail("PyYAML is missing: install fusesoc in the environment rramcim is in")
    gen = yaml.safe_load(Path(args[0]).read_text())
    generate(gen, Path.cwd())
    return 0


if __name__ == "__main__":
    if __package__ in (None, ""):           # run as a file by FuseSoC: import rramcim as installed,
        sys.path.pop(0)                     # not this folder's modules as top-level ones
        from rramcim.fusesoc import main as _main
    else:
        _main = main
    sys.exit(_main())
