import numpy as np

from dsp.beat import HATS, KICK, SNARE, render_beat
from dsp.flow import beat_to_sample


def _rise_at(x: np.ndarray, i: int, n: int = 256) -> float:
    before = np.sqrt(np.mean(x[max(0, i - n):i] ** 2)) + 1e-9
    after = np.sqrt(np.mean(x[i:i + n] ** 2))
    return after / before


def test_length_and_determinism():
    a = render_beat(93.0, 2, 44100, seed=3)
    assert len(a) == beat_to_sample(8, 93.0, 44100)
    np.testing.assert_array_equal(a, render_beat(93.0, 2, 44100, seed=3))
    assert not np.array_equal(a, render_beat(93.0, 2, 44100, seed=4))
    assert np.max(np.abs(a)) < 1.0


def test_hits_start_on_their_grid_samples():
    bpm, sr = 120.0, 44100  # a 16th is 5512.5 samples: rounding must follow beat_to_sample
    x = render_beat(bpm, 1, sr)
    assert x[0] != 0  # kick on the downbeat, from sample 0
    snare_at = beat_to_sample(1, bpm, sr)  # step 4
    assert SNARE[4] == "X" and _rise_at(x, snare_at) > 3
    # rebuild the bar without the snare: everything before the snare's sample is unchanged
    import dsp.beat as beat
    saved = beat.SNARE
    try:
        beat.SNARE = "." * 16
        no_snare = render_beat(bpm, 1, sr)
    finally:
        beat.SNARE = saved
    np.testing.assert_array_equal(no_snare[:snare_at], x[:snare_at])
    assert no_snare[snare_at] != x[snare_at]


def test_patterns_are_one_bar_of_16ths():
    assert len(KICK) == len(SNARE) == len(HATS) == 16


def test_tempo_is_recoverable():
    import librosa

    for bpm in (85.0, 100.0):
        y = render_beat(bpm, 8, 22050)
        onsets = librosa.onset.onset_detect(y=y, sr=22050, units="time", hop_length=128)
        grid = 60.0 / bpm / 4
        err = np.abs(onsets / grid - np.round(onsets / grid)) * grid
        assert np.median(err) < 0.012  # every hit sits on the 16th grid
