import threading

import numpy as np
import pytest

from dsp import espeak, phonetics as P
from dsp.voice import VOICE_SR, Voice, pitch_period, synthesize, to_espeak

LINE = "you talk a lot but your rhymes are weak skrrt zorbakov extraordinary city"


def test_espeak_reports_phonemes_with_sample_positions():
    raw = espeak.synth("[[j'u: t'O:k]]", voice="en-us+m3", range=0)
    assert raw.sr == VOICE_SR
    names = [e.name.lstrip("',") for e in raw.phonemes if not e.name.startswith("_")]
    assert names == ["j", "u:", "t", "O:", "k"]
    samples = [e.sample for e in raw.phonemes]
    assert samples == sorted(samples) and samples[-1] <= len(raw.audio)


def test_to_espeak_marks_stress_and_reduced_vowels():
    assert to_espeak(P.word("medal").phones) == "'mEd@l"
    assert to_espeak(P.word("extraordinary").phones).count("'") == 1


def test_every_syllable_is_found_in_the_audio():
    words = P.words(LINE)
    syn = synthesize(words)
    assert syn.sr == VOICE_SR
    positions = [p for w in syn.words for p in w]
    assert len(positions) == sum(len(w.syllables) for w in words)
    for p in positions:
        assert p.start <= p.vowel_onset < p.coda_onset <= p.end <= len(syn.audio)
    starts = [p.start for p in positions]
    assert starts == sorted(starts)
    # vowels are where the energy is: louder than the line's average
    level = np.sqrt(np.mean(syn.audio**2))
    loud = [np.sqrt(np.mean(syn.audio[p.vowel_onset:p.coda_onset] ** 2)) > 0.5 * level for p in positions]
    assert np.mean(loud) > 0.9


def test_resampled_positions_scale_with_the_rate():
    words = P.words("the city never sleeps")
    a, b = synthesize(words, sr=VOICE_SR), synthesize(words, sr=44100)
    assert abs(len(b.audio) - 2 * len(a.audio)) <= 2
    for wa, wb in zip(a.words, b.words):
        for pa, pb in zip(wa, wb):
            assert abs(pb.vowel_onset - 2 * pa.vowel_onset) <= 1


def test_constant_f0_gives_one_pitch_period():
    syn = synthesize(P.words("cold medal gold metal"), Voice(pitch=40, pitch_range=0))
    assert 40 < syn.period < 400  # 55-550 Hz at 22050
    periods = {pitch_period(syn.audio[p.vowel_onset:p.coda_onset], VOICE_SR)
               for w in syn.words for p in w if p.coda_onset - p.vowel_onset > 1500}
    periods.discard(0)
    assert max(periods) - min(periods) <= 3


def test_voice_parameters_change_the_sound():
    words = P.words("rate and pitch")
    slow = synthesize(words, Voice(rate_wpm=120))
    fast = synthesize(words, Voice(rate_wpm=300))
    assert len(fast.audio) < 0.8 * len(slow.audio)
    low, high = synthesize(words, Voice(pitch=10)), synthesize(words, Voice(pitch=90))
    assert high.period < low.period


def test_one_synth_worker_serves_many_threads():
    words = P.words("one worker owns the library")
    expected = synthesize(words).audio
    from dsp import voice
    results, errors = [], []

    def job():
        try:
            voice.clear_cache()
            results.append(synthesize(words).audio)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=job) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for r in results:
        np.testing.assert_array_equal(r, expected)


def test_voice_presets_are_validated():
    with pytest.raises(ValueError, match="unknown key 'speed'; valid keys: name, variant, rate_wpm"):
        Voice.from_dict("x", {"speed": 3})
    with pytest.raises(ValueError, match="rate_wpm must be a number in 80..450"):
        Voice.from_dict("x", {"rate_wpm": 1000})
    with pytest.raises(ValueError, match="no variant 'zz9'"):
        Voice.from_dict("x", {"variant": "zz9"})
    with pytest.raises(ValueError, match="no language voice 'xx-yy'"):
        Voice.from_dict("x", {"name": "xx-yy"})


def test_synthesis_makes_no_new_ctypes_types():
    """ctypes keeps every array type it makes for good: one per audio chunk length
    leaked memory turn after turn in an all-night session."""
    import gc

    def ctypes_types():
        return sum(type(o).__name__ in ("PyCArrayType", "PyCPointerType") for o in gc.get_objects())

    voice = Voice()
    lines = ["money on my mind", "the crowd is loud tonight and proud", "mic check one two",
             "cash in the stash for the flash of the night", "rhyme"]
    for line in lines:  # the first calls may set up what every later call shares
        synthesize(P.words(line), voice, 48000)
    before = ctypes_types()
    for k in range(40):
        synthesize(P.words(" ".join(lines[k % 5].split()[: 1 + k % 7]) + " go" * (k % 9)), voice, 48000)
    assert ctypes_types() == before
