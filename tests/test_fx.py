import numpy as np
import pytest

import presets
from dsp.fx import EFFECTS, FxChain, FxPreset, check_effect
from plugin_host.rap import load_fx

SR = 44100


def _signal(n_channels: int, n: int = 30000) -> np.ndarray:
    rng = np.random.default_rng(7)
    x = np.zeros((n_channels, n), np.float32)
    x[:, 2000:] = 0.3 * rng.standard_normal((n_channels, n - 2000)).astype(np.float32)
    x[:, 12000:12100] = 0.9  # a transient for the compressor and limiter to chew on
    return x if n_channels > 1 else x[0]


@pytest.mark.parametrize("name", presets.names("fx"))
@pytest.mark.parametrize("block", [1, 64, 65, 8193])
@pytest.mark.parametrize("n_channels", [1, 2])
def test_streaming_equals_one_shot(name, block, n_channels):
    if n_channels > 1 and block <= n_channels:
        pytest.skip("multichannel blocks must be longer than the channel count (see FxChain.process)")
    chain = FxChain(load_fx(name), SR, 95.0)
    x = _signal(n_channels, 9000 if block == 1 else 30000)
    whole = chain(x)
    chain.reset()
    parts = [chain.process(x[..., i:i + block]) for i in range(0, x.shape[-1], block)]
    np.testing.assert_allclose(np.concatenate(parts, axis=-1), whole, atol=1e-6)
    assert whole.shape == x.shape and chain.latency_samples == 0


def test_multichannel_blocks_must_outnumber_channels():
    chain = FxChain(load_fx("dry"), SR, 90.0)
    with pytest.raises(ValueError, match="a 2-channel block needs more than 2 samples, got 1"):
        chain.process(np.zeros((2, 1), np.float32))


def test_reset_clears_tails():
    chain = FxChain(load_fx("arena"), SR, 90.0)
    chain(_signal(1))
    chain.reset()
    assert np.all(chain.process(np.zeros(4096, np.float32)) == 0)


@pytest.mark.parametrize("bpm, beats", [(90.0, 0.75), (120.0, 1.0), (73.0, 0.5)])
def test_delay_is_tempo_synced(bpm, beats):
    preset = FxPreset.from_dict("echo", {"effect": [{"type": "delay", "beats": beats, "feedback": 0.0, "mix": 1.0}]})
    impulse = np.zeros(SR * 2, np.float32)
    impulse[100] = 1.0
    out = FxChain(preset, SR, bpm)(impulse)
    peak = int(np.argmax(np.abs(out)))
    assert abs(peak - (100 + beats * 60 / bpm * SR)) <= 1


def test_set_bpm_moves_the_delay():
    preset = FxPreset.from_dict("echo", {"effect": [{"type": "delay", "beats": 1.0, "feedback": 0.0, "mix": 1.0}]})
    chain = FxChain(preset, SR, 90.0)
    chain.set_bpm(120.0)
    impulse = np.zeros(SR, np.float32)
    impulse[0] = 1.0
    assert abs(int(np.argmax(np.abs(chain(impulse)))) - SR // 2) <= 1


def test_every_effect_type_builds_with_defaults():
    for kind in EFFECTS:
        FxChain(FxPreset.from_dict("one", {"effect": [{"type": kind}]}), SR, 90.0)(np.zeros(512, np.float32))


@pytest.mark.parametrize("table, error, text", [
    ({"type": "flanger"}, ValueError, "type 'flanger' is not an effect; valid types: highpass, lowpass, compressor"),
    ({"type": "reverb", "size": 1}, ValueError, "unknown key 'size'; valid keys: room_size, damping, wet, dry, width"),
    ({"type": "compressor", "ratio": 50}, ValueError, "ratio = 50 is outside 1..20"),
    ({"type": "delay", "beats": "dotted eighth"}, TypeError, "beats must be a number, got 'dotted eighth'"),
])
def test_bad_effects_name_the_fix(table, error, text):
    with pytest.raises(error, match=text):
        check_effect("mine", 2, table)
    with pytest.raises(error, match=r"fx preset 'mine', effect 3"):
        check_effect("mine", 2, table)


def test_unknown_preset_key():
    with pytest.raises(ValueError, match="unknown key 'effects'; valid keys: description, effect"):
        FxPreset.from_dict("mine", {"effects": []})
