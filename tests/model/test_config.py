import json

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
