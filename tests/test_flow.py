from fractions import Fraction

import numpy as np
import pytest

from dsp import phonetics as P
from dsp.flow import (ATTACK_SEARCH_AFTER_MS, GAP_MS, Flow, assign_steps, attack_offsets, beat_to_sample, fit_vowel, perform,
                      split_line)
from dsp.onset import frame_params
from dsp.voice import synthesize
from plugin_host.rap import load_flow

SR = 44100


@pytest.fixture(scope="module")
def boom_bap():
    return load_flow("boom-bap")


def test_beat_to_sample_is_exact():
    assert beat_to_sample(1, 90, 44100) == 29400
    assert beat_to_sample(Fraction(1, 4), 90, 44100) == 7350
    assert beat_to_sample(Fraction(1, 4), 97, 48000) == round(Fraction(1, 4) * 60 * 48000 / 97)
    # no drift: bar 100 is exactly 100 bars, not 100 rounded bars
    assert beat_to_sample(400, 97, 48000) == round(Fraction(400 * 60 * 48000, 97))
    assert beat_to_sample(4, 92.5, 44100) == round(Fraction(4 * 60 * 44100) / Fraction("92.5"))


def test_assign_steps_lands_the_last_syllable_and_rises(boom_bap):
    for n in range(1, 14):
        steps = assign_steps([1] * n, boom_bap)
        assert len(steps) == n
        assert steps == sorted(set(steps))
        assert steps[-1] == boom_bap.landing_step == 12


def test_assign_steps_puts_stresses_on_accents(boom_bap):
    # "you talk a lot but your rhymes are weak": stressed syllables take the X slots
    stresses = [s.stress for w in P.words("the cat in the hat is back") for s in w.syllables]
    steps = assign_steps(stresses, boom_bap)
    on_accent = [stresses[i] for i, st in enumerate(steps) if boom_bap.pattern[st] == "X"]
    assert on_accent and all(s > 0 for s in on_accent)


def test_assign_steps_uses_rests_only_when_needed(boom_bap):
    assert all(boom_bap.pattern[s] != "." for s in assign_steps([1] * boom_bap.capacity, boom_bap))
    assert len(assign_steps([1] * 16, boom_bap)) == 16
    with pytest.raises(ValueError, match="17 syllables do not fit one bar of 16 steps"):
        assign_steps([1] * 17, boom_bap)


def test_split_line_balances_bars():
    words = P.words("every syllable I'm spitting has a purpose and a goal and it keeps going")
    bars = split_line(words, 14)
    counts = [sum(len(w.syllables) for w in b) for b in bars]
    assert len(bars) == 2 and max(counts) <= 14 and abs(counts[0] - counts[1]) <= 3
    assert [w for b in bars for w in b] == words


def test_flow_validation_names_the_fix():
    with pytest.raises(ValueError, match=r"unknown key 'tempo'; valid keys: pattern, description, accent_db"):
        Flow.from_dict("f", {"pattern": "X" * 16, "tempo": 3})
    with pytest.raises(ValueError, match=r"use only X \(accent\), x \(slot\), - \(optional\), \. \(rest\)"):
        Flow.from_dict("f", {"pattern": "Xo" * 8})
    with pytest.raises(ValueError, match="needs a whole number of beats"):
        Flow.from_dict("f", {"pattern": "X" * 15})
    with pytest.raises(ValueError, match="missing key 'pattern'"):
        Flow.from_dict("f", {})


def test_fit_vowel_splices_whole_periods_without_clicks():
    period = 200
    t = np.arange(4000)
    vowel = (np.sin(2 * np.pi * t / period) + 0.5 * np.sin(4 * np.pi * t / period)).astype(np.float32)
    max_step = np.max(np.abs(np.diff(vowel)))
    for target in (1500, 2600, 6000, 9000):
        out = fit_vowel(vowel, target, period)
        assert abs(len(out) - target) <= period
        assert np.max(np.abs(np.diff(out))) <= 1.05 * max_step  # no discontinuity at the joins
    assert len(fit_vowel(vowel, 9000, 0)) == 4000  # no known period: unchanged


def test_attack_of_a_step_onset():
    n_fft, hop = frame_params(SR)
    tone = np.sin(2 * np.pi * 180 * np.arange(SR // 10) / SR).astype(np.float32)
    for at in (0, 1000, 2205):
        head = np.concatenate([np.zeros(at, np.float32), tone])
        (offset,) = attack_offsets([head], [at], SR, 1000)
        # the first analysis frame that hears the tone is centred up to half a window before it
        assert at - n_fft // 2 - hop <= offset <= at + hop


@pytest.fixture(scope="module")
def line_take(boom_bap):
    bars = [P.words("you talk a lot but your rhymes are weak"), P.words("strengths into weakness, I reverse the plot")]
    syns = [synthesize(b, sr=SR) for b in bars]
    return bars, syns


def test_every_attack_is_on_its_grid_sample(boom_bap, line_take):
    bars, syns = line_take
    perf = perform(bars, syns, boom_bap, 90, start_beat=4)
    assert len(perf.syllables) == sum(len(w.syllables) for b in bars for w in b)
    for s in perf.syllables:
        beat = 4 + s.bar * 4 + Fraction(s.step, 4)
        assert s.beat == beat
        assert s.attack_sample == beat * 29400  # 90 BPM at 44.1 kHz: 7350 samples per 16th


def test_the_audio_moves_with_the_grid_sample_for_sample(boom_bap, line_take):
    bars, syns = line_take
    a = perform(bars, syns, boom_bap, 90, start_beat=4).audio
    b = perform(bars, syns, boom_bap, 90, start_beat=5).audio  # one beat later
    np.testing.assert_array_equal(b[29400:29400 + len(a) - 29400 * 2], a[: len(a) - 29400 * 2])


def test_each_syllable_starts_where_placed(boom_bap, line_take):
    """Measured on the rendered audio: silence for GAP_MS before each piece, and the attack
    found again in the output where the syllable says it is."""
    bars, syns = line_take
    perf = perform(bars, syns, boom_bap, 90, start_beat=4)
    n_fft, hop = frame_params(SR)
    gap = int(GAP_MS * SR / 1000)
    after = int(ATTACK_SEARCH_AFTER_MS * SR / 1000)
    for s in perf.syllables:
        assert s.start_sample <= s.attack_sample <= s.vowel_sample + after < s.end_sample
        assert not np.any(perf.audio[s.start_sample - gap : s.start_sample]), s
        head = perf.audio[s.start_sample : s.vowel_sample + after + n_fft].copy()
        head[-n_fft:] *= np.linspace(1, 0, n_fft)
        (offset,) = attack_offsets([head], [s.vowel_sample - s.start_sample], SR, after)
        assert abs(s.start_sample + offset - s.attack_sample) <= hop, s
    assert np.max(np.abs(perf.audio)) < 1.0
