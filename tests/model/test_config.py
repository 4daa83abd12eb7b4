import json
import re

import pytest

from rramcim.model.config import PRESETS, Config, ConfigError, load_config


def test_presets_match_the_architecture():
    tiny, default, large = PRESETS["tiny"], PRESETS["default"], PRESETS["large"]
    assert (tiny.mesh_x, tiny.mesh_y, tiny.rows, tiny.cols, tiny.wbits, tiny.xbits, tiny.par) == (2, 2, 8, 8, 8, 8, 1)
    assert (default.mesh_x, default.mesh_y, default.rows, default.cols, default.par) == (2, 2, 32, 32, 1)
    assert (large.mesh_x, large.mesh_y, large.rows, large.cols) == (4, 4, 128, 128)
    assert load_config("tiny") is tiny and load_config(None) is default


def test_derived_widths():
    c = Config(rows=12, cols=6, wbits=4, xbits=8, par=2)
    assert c.steps == 4 and c.row_bits == 4 and c.popcount_bits == 4 and c.cells_per_row == 24
    assert c.peak_macs_per_cycle == 12 * 6 * 2 / 8
    assert Config(rows=1).row_bits == 1 and Config(rows=1).popcount_bits == 1


@pytest.mark.parametrize("changes, field", [
    (dict(par=3), "par"),
    (dict(rows=0), "rows"),
    (dict(cols=-1), "cols"),
    (dict(wbits=1), "wbits"),
    (dict(xbits=17), "xbits"),
    (dict(rram_write_cycles=0), "rram_write_cycles"),
    (dict(macro_out_depth=0), "macro_out_depth"),
    (dict(mesh_x="2"), "mesh_x"),
    (dict(rows=True), "rows"),
    (dict(acc_bits=4), "acc_bits"),
    (dict(name="a b"), "name"),
    (dict(rows=1100, flit_width=32), "rows"),                         # an input vector of 275 words
    (dict(acc_bits=8, xbits=16, cols=600, flit_width=32), "cols"),    # an outq vector of 300 words
    (dict(mesh_x=17), "mesh_x"),
    (dict(imem_depth=(1 << 16) + 1), "imem_depth"),
])
def test_validation_names_the_field(changes, field):
    with pytest.raises(ConfigError) as e:
        PRESETS["default"].replace(**changes)
    assert str(e.value).startswith(field + ":")


def test_toml_file_overrides_default(tmp_path):
    p = tmp_path / "chip.toml"
    p.write_text("rows = 16\npar = 2\nwbits = 4\n")
    c = load_config(p)
    assert (c.rows, c.par, c.wbits, c.cols, c.mesh_x) == (16, 2, 4, 32, 2)
    assert c.name == "chip"


def test_json_file(tmp_path):
    p = tmp_path / "c.json"
    p.write_text(json.dumps({"cols": 8, "name": "mine"}))
    c = load_config(str(p))
    assert c.cols == 8 and c.name == "mine" and c.rows == 32


@pytest.mark.parametrize("text, words", [
    ("rows = 16\nbogus = 1\n", ["unknown key 'bogus'"]),
    ("par = 3\n", ["par:", "xbits=8"]),
    ("rows = 0\n", ["rows:", "> 0"]),
    ("rows = [\n", ["cannot parse"]),
    ("rows = 'x'\n", ["rows:", "integer"]),
])
def test_bad_files(tmp_path, text, words):
    p = tmp_path / "bad.toml"
    p.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_config(p)
    for w in words:
        assert w in str(e.value)
    assert "\n" not in str(e.value)


def test_missing_file_and_unknown_name(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="not a preset"):
        load_config("huge")


# -- issue 17: every field in range, every file parsed or refused in one line, memory bounded ---------------

def test_every_preset_loads_and_is_small():
    from rramcim.model.config import model_memory_bytes
    for name, cfg in PRESETS.items():
        assert load_config(name) is cfg
        assert 0 < cfg.model_memory_bytes == model_memory_bytes(cfg) < 1 << 30, name
    sizes = [PRESETS[n].model_memory_bytes for n in ("icebreaker", "tiny", "default", "large")]
    assert sizes == sorted(sizes)


@pytest.mark.parametrize("changes, field, words", [
    (dict(macro_out_depth=257), "macro_out_depth", ["1..256"]),
    (dict(rram_write_cycles=65536), "rram_write_cycles", ["1..65535"]),
    (dict(rram_verify_cycles=10**6), "rram_verify_cycles", ["1..65535"]),
    (dict(rram_max_attempts=256), "rram_max_attempts", ["1..255"]),
    (dict(flit_width=4097), "flit_width", ["4096"]),
    (dict(noc_fifo_depth=1025), "noc_fifo_depth", ["1..1024"]),
    (dict(rows=4097), "rows", ["1..4096"]),
    (dict(gbuf_words=(1 << 20) + 1), "gbuf_words", [str(1 << 20)]),
    (dict(rows=10**5000), "rows", ["1..4096", "bit integer"]),
    (dict(cols=-(10**30)), "cols", ["> 0"]),
    (dict(name="n" * 65), "name", ["64"]),
    (dict(mesh_y=[1] * 10000), "mesh_y", ["integer"]),
])
def test_every_field_has_a_range_in_its_message(changes, field, words):
    with pytest.raises(ConfigError) as e:
        PRESETS["default"].replace(**changes)
    msg = str(e.value)
    assert msg.startswith(field + ":") and "\n" not in msg and len(msg) < 200, msg
    for w in words:
        assert w in msg, msg


@pytest.mark.parametrize("suffix, text, words", [
    (".json", '{"a":' * 50000 + "1" + "}" * 50000, ["nested too deeply"]),
    (".toml", "rows = " + "[" * 50000 + "]" * 50000, ["cannot parse"]),
    (".json", '{"rows": ' + "7" * 5000 + "}", ["cannot parse"]),
    (".toml", "rows = " + "7" * 60 + "\n", ["rows:", "1..4096"]),
    (".json", '{"rows": 1e400}', ["rows:", "integer"]),
    (".json", "[1, 2]", ["table"]),
    (".toml", "[rows]\na = 1\n", ["rows:", "integer"]),
    (".json", '{"' + "k" * 10000 + '": 1}', ["unknown key"]),
    (".toml", b"rows = 16 # \xff\xfe\n", ["cannot parse"]),
    (".toml", "# " + "x" * (1 << 20) + "\n", ["limit"]),
])
def test_any_bad_file_is_one_config_error(tmp_path, suffix, text, words):
    p = tmp_path / ("bad" + suffix)
    (p.write_bytes if isinstance(text, bytes) else p.write_text)(text)
    with pytest.raises(ConfigError) as e:
        load_config(p)
    msg = str(e.value)
    assert "\n" not in msg and len(msg) < 450 and "bad" + suffix in msg, msg
    for w in words:
        assert w in msg, msg


def test_a_file_name_that_is_no_config_name(tmp_path):
    p = tmp_path / "my chip.v2.toml"
    p.write_text("rows = 16\n")
    assert load_config(p).name == "my_chip_v2"


def _traced_peak(cfg) -> int:
    """What the model allocates for ``cfg``: a chip state, a row written and read on every macro, the
    cycle model's weights kept, every imem and global-buffer word holding a full-width value."""
    import tracemalloc

    import numpy as np

    from rramcim.model.chip import ChipState
    from rramcim.model.macro import MacroCore
    tracemalloc.start()
    try:
        st = ChipState(cfg)
        keep = []
        for t in st.tiles.values():
            t.macro.program_row(cfg.rows - 1, np.full(cfg.cols, -1))
            t.macro.mvm(np.ones(cfg.rows, np.int64))
            core = MacroCore(cfg, t.macro, fast=True)
            core._weights = t.macro.effective_weights()
            keep.append(core)
        st.imem[:] = [(1 << 63) | i for i in range(cfg.imem_depth)]
        st.gbuf[:] = [(1 << cfg.flit_width) - 1 - i for i in range(cfg.gbuf_words)]
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("changes", [dict(mesh_x=2, mesh_y=2, rows=512, cols=256, flit_width=128),
                                     dict(mesh_x=1, mesh_y=1, rows=1024, cols=256, wbits=16, xbits=16,
                                          flit_width=256, gbuf_words=1 << 16)])
def test_the_memory_estimate_is_within_a_factor_of_two(changes):
    cfg = PRESETS["default"].replace(name="m", **changes)
    peak = _traced_peak(cfg)
    assert peak > 20 << 20                      # big enough that the interpreter's noise does not count
    assert 0.5 <= cfg.model_memory_bytes / peak <= 2, (cfg.model_memory_bytes, peak)


def test_a_config_bigger_than_the_machine_is_refused(tmp_path, monkeypatch):
    import rramcim.model.config as C
    p = tmp_path / "huge.toml"
    p.write_text("mesh_x = 16\nmesh_y = 16\nrows = 4096\ncols = 2048\nflit_width = 1024\n")
    monkeypatch.setattr(C, "machine_memory_bytes", lambda: (8 << 30, "physical memory"))
    with pytest.raises(ConfigError) as e:
        load_config(p)
    msg = str(e.value)
    assert msg.startswith(f"config file '{p}': mesh_x, mesh_y, rows, cols") and "\n" not in msg, msg
    need = 16 * 16 * 4096 * 2048 * (3 * 8 + 8)          # cells, two fault maps, int64 weights: 64 GiB
    stated = float(re.search(r"needs about ([0-9.]+) GiB", msg).group(1)) * 2**30
    assert need <= stated <= 2 * need, (stated, need)
    assert "physical memory of 8 GiB" in msg
    assert load_config(p, check_memory_limit=False).model_memory_bytes >= need
    for name in PRESETS:                                # the presets fit 8 GiB
        load_config(name)
    monkeypatch.setattr(C, "machine_memory_bytes", lambda: (1 << 20, "cgroup memory limit"))
    with pytest.raises(ConfigError, match="large") as e:
        load_config("large")
    assert "cgroup memory limit of" in str(e.value)


def test_the_machine_limit_is_the_smaller_of_ram_and_cgroup():
    import os

    from rramcim.model.config import machine_memory_bytes
    limit, what = machine_memory_bytes()
    assert limit is not None and 0 < limit <= os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    assert what in ("physical memory", "cgroup memory limit")


def test_a_directory_named_like_a_config(tmp_path):
    (tmp_path / "d.toml").mkdir()
    with pytest.raises(ConfigError, match="not a regular file"):
        load_config(tmp_path / "d.toml")
