"""Tempo and first downbeat of a beat file."""
import numpy as np
import pytest

from dsp.beat import render_beat
from dsp.tempo import beat_grid


@pytest.mark.parametrize("bpm, offset_s, sr", [(70, 0.1, 44100), (90, 0.3, 48000), (97.5, 0.0, 44100),
                                               (120, 1.234, 44100), (85, 0.7, 22050)])
def test_tempo_and_downbeat_of_our_beat(bpm, offset_s, sr):
    y = np.concatenate([np.zeros(int(offset_s * sr), np.float32), render_beat(bpm, 8, sr)])
    grid = beat_grid(y, sr)
    assert abs(grid.bpm - bpm) < 0.1
    assert abs(grid.first_downbeat_s - offset_s) < 0.005  # the kick on the one, not a backbeat


def test_fast_beats_fold_into_the_felt_octave():
    grid = beat_grid(render_beat(160, 12, 44100), 44100)
    assert abs(grid.bpm - 80) < 1.0  # documented: pass --bpm for a double-time feel


@pytest.mark.parametrize("y, reason", [
    (np.random.default_rng(0).normal(size=44100 * 6).astype(np.float32) * 0.1, "no clear pulse"),
    (np.zeros(44100 * 6, np.float32), "silent"),
    (np.zeros(1000, np.float32), "too short"),
])
def test_no_tempo_is_an_error_with_a_reason(y, reason):
    with pytest.raises(ValueError, match=reason):
        beat_grid(y, 44100)
