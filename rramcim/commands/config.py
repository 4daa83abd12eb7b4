"""``rramcim config``: print a config (preset or file) resolved over 'default', with its derived figures
(``derived.model_memory_bytes``: the golden model's memory estimate,
:func:`rramcim.model.config.model_memory_bytes`)."""

from __future__ import annotations

import json

from .common import config


def add_parser(sub):
    sp = sub.add_parser("config", help="print a config (preset or file) with its derived figures")
    sp.add_argument("config", nargs="?", default="default", metavar="NAME|FILE")
    sp.set_defaults(func=main)


def main(args):
    cfg = config(args.config)
    d = cfg.as_dict()
    d["derived"] = {"steps": cfg.steps, "peak_macs_per_cycle_per_macro": cfg.peak_macs_per_cycle,
                    "cells_per_row": cfg.cells_per_row, "tiles": cfg.tiles,
                    "model_memory_bytes": cfg.model_memory_bytes}
    print(json.dumps(d, indent=2))
