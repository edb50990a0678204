"""Live presets: the shipped ones load; a bad one is refused with the key and what is valid."""
import pytest

import presets
from plugin_host.errors import UsageError
from plugin_host.live_preset import LivePreset, load_live_preset


def test_the_shipped_presets_load():
    names = presets.names("live")
    assert {"default", "battle", "quick-trade"} <= set(names)
    loaded = {n: load_live_preset(n) for n in names}
    assert loaded["default"].mode == "auto" and loaded["battle"].mode == "battle"
    assert loaded["quick-trade"].turn_bars == 1
    assert loaded["default"] == LivePreset("default", description=loaded["default"].description)  # the defaults


@pytest.mark.parametrize("body, message", [
    ('mode = "freestyle"', "mode 'freestyle' is not one of auto, battle, manual"),
    ("turn_bars = 0", "turn_bars must be 1-16, got 0"),
    ("turn_bars = 2.5", "turn_bars must be a whole number, got 2.5"),
    ('turn_bars = "4"', "turn_bars must be a whole number, got '4'"),
    ("tempo = 90", "unknown key 'tempo'; valid keys: description, mode, turn_bars"),
    ('on_clock_stop = "pause"', "on_clock_stop 'pause' is not one of stop, finish-bar"),
    ("output_latency_ms = 900", "output_latency_ms must be -500..500 ms, got 900"),
    ('mode = "battle"\ngap_bars = 1', "gap_bars must be 0-4, and 0 in battle mode"),
    ("mode = ", "not valid TOML"),
])
def test_a_bad_preset_names_the_problem(tmp_path, body, message):
    path = tmp_path / "mine.toml"
    path.write_text(body + "\n")
    with pytest.raises(UsageError) as e:
        load_live_preset(str(path))
    assert message in str(e.value)


def test_serve_names_the_live_presets(cli):
    r = cli("serve", "--preset", "nosuch", "--osc-port", "0")
    assert r.returncode == 2 and "unknown live preset 'nosuch'" in r.stderr and "battle" in r.stderr
    r = cli("serve", "--manual", "--mode", "battle", "--osc-port", "0")
    assert r.returncode == 2 and "--manual and --mode battle disagree" in r.stderr
