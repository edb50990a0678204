import json

import numpy as np
import pytest

from dsp.beat import render_beat
from dsp.listener import ListenSettings, Listener
from dsp.syllables import Grid
from plugin_host.bench_listen import SR, match_onsets, synthesize, word_error_rate

VERSE = ("They say we're little men in green, they say we come to steal\n"
         "But I came to show the planet what a verse can make you feel\n"
         "I leave a circle in the corn to prove I passed this way\n"
         "And every farmer in the county hums my song today")
BPM = 90.0


@pytest.fixture(scope="module")
def take():
    """A verse rapped over the beat, a bar of beat first; its true attacks and voice end."""
    case = {"verse": VERSE, "voice": "mc", "bpm": BPM, "level_db": -6.0, "beat": True, "snr_db": None}
    mix, syllables, end_s = synthesize(case, seed=1)
    return mix, np.array([s.attack_sample / SR for s in syllables]), end_s


def hear(audio, sr=SR, block=512, text=None, settings=ListenSettings(recognize=False), grid=Grid(BPM)):
    listener = Listener(sr, grid, settings)
    if text is not None:
        listener.set_text(text)
    for i in range(0, len(audio), block):
        listener.push(audio[i : i + block])
    return listener.finish()


def onset_f1(truth, heard):
    found = np.array([s.onset_s for s in heard.syllables])
    m = match_onsets(truth, found)
    p, r = m / max(1, len(found)), m / len(truth)
    return 2 * p * r / max(1e-9, p + r)


def test_hears_the_verse_over_the_beat(take):
    mix, truth, end_s = take
    heard = hear(mix)
    assert heard.state == "ended"
    assert abs(heard.verse_start_s - truth[0]) < 0.06  # not fooled by the bar of beat before it
    assert end_s - 0.2 < heard.verse_end_s < end_s + 0.25
    assert onset_f1(truth, heard) >= 0.85
    c = heard.cadence
    assert c.n_syllables == len(heard.syllables) == sum(c.slot_counts) == sum(c.syllables_per_bar)
    assert len(c.syllables_per_bar) == 4 and c.first_bar == 1
    assert c.mean_offset_ms < 30  # the synthesised rapper is on the grid
    assert any(s.stressed for s in heard.syllables) and not all(s.stressed for s in heard.syllables)


def test_the_analysis_is_there_while_the_verse_goes_on(take):
    mix, truth, _ = take
    listener = Listener(SR, Grid(BPM), ListenSettings(recognize=False))
    half = int((truth[0] + truth[-1]) / 2 * SR)
    for i in range(0, half, 512):
        listener.push(mix[i : min(i + 512, half)])
    now = listener.heard()
    assert now.state in ("verse", "ended") and now.verse_start_s is not None
    # syllables are committed as they settle: about half of them by the middle
    assert 0.35 * len(truth) < len(now.syllables) < 0.65 * len(truth)


def test_given_text_takes_precedence_and_is_timed(take):
    mix, truth, _ = take
    heard = hear(mix, text=VERSE)
    assert heard.text_source == "given"
    assert heard.text.splitlines()[0].startswith("They say we're little men")
    assert [r.word for r in heard.end_rhymes] == ["steal", "feel", "way", "today"]
    assert heard.end_rhymes[0].rhyme_key == heard.end_rhymes[1].rhyme_key  # steal / feel
    assert {"farmer", "planet", "circle"} & {a.text for a in heard.anchors}
    starts = [w.start_s for w in heard.words]
    assert starts == sorted(starts) and abs(starts[0] - truth[0]) < 0.06


def test_recognizer_streams_words_with_times(take):
    mix, truth, end_s = take
    heard = hear(mix, settings=ListenSettings())
    assert heard.text_source == "recognized" and len(heard.words) >= 5
    times = [w.start_s for w in heard.words]
    assert times == sorted(times) and truth[0] - 0.2 <= times[0] and times[-1] <= end_s + 0.2
    assert all(0.0 < w.confidence <= 1.0 for w in heard.words)


def test_silence_and_a_beat_alone_are_not_a_verse():
    assert hear(np.zeros(3 * SR, np.float32)).state == "idle"
    beat = render_beat(BPM, 4, SR, seed=2)
    heard = hear(beat * 0.8)
    assert heard.state == "idle" and heard.syllables == () and heard.words == ()


def test_other_rates_and_stereo_give_the_same_syllables(take):
    import soxr

    mix, truth, _ = take
    base = len(hear(mix).syllables)
    for sr in (48000, 22050):
        heard = hear(soxr.resample(mix, SR, sr), sr=sr)
        assert abs(len(heard.syllables) - base) <= 0.08 * base, sr
    stereo = np.stack([mix, 0.5 * mix], axis=1)
    assert abs(len(hear(stereo).syllables) - base) <= 0.05 * base


def test_dc_offset_does_not_change_what_is_heard(take):
    mix, truth, _ = take
    assert onset_f1(truth, hear(mix + 0.3)) >= 0.85


def test_clipping_is_heard_with_a_warning(take):
    mix, truth, _ = take
    heard = hear(np.clip(mix * 4, -1, 1))  # the voice 6 dB over full scale
    assert heard.state == "ended" and len(heard.syllables) > 0.7 * len(truth)
    assert any("clipped" in w and "input gain" in w for w in heard.warnings)


def test_nan_and_inf_samples_are_silence_with_a_warning(take):
    mix, truth, _ = take
    bad = mix.copy()
    bad[SR : SR + 100] = np.nan
    bad[2 * SR] = np.inf
    heard = hear(bad)
    assert heard.state == "ended" and any("NaN or infinite" in w for w in heard.warnings)
    assert onset_f1(truth, heard) >= 0.8


def test_a_verse_of_minutes_is_cut_with_bounded_memory():
    sr = 16000
    t = np.arange(int(40 * sr)) / sr
    # a voice-like tone pulsing four times a second, for 40 s against a 20 s cap
    tone = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 8))
    audio = (0.2 * tone * (0.55 + 0.45 * np.sin(2 * np.pi * 4 * t))).astype(np.float32)
    listener = Listener(sr, Grid(120), ListenSettings(recognize=False, max_verse_s=20))
    sizes = set()
    for i in range(0, len(audio), 4096):
        listener.push(audio[i : i + 4096])
        sizes.add(listener._db.nbytes)
    heard = listener.finish()
    assert len(sizes) == 1  # nothing grows
    assert any("longer than 20 s" in w for w in heard.warnings)
    assert heard.verse_end_s - heard.verse_start_s <= 20.5


def test_without_a_grid_it_says_so(take):
    mix, _, _ = take
    heard = hear(mix, grid=None)
    assert any("no grid" in w for w in heard.warnings)


@pytest.mark.parametrize("bad, message", [
    (dict(sr=4000), "too low to hear a voice"),
])
def test_bad_setup_is_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        Listener(**bad)


def test_block_shapes_are_checked():
    with pytest.raises(ValueError, match=r"\(n,\) or \(n, channels\)"):
        Listener(SR).push(np.zeros((2, 2, 2), np.float32))


def test_word_error_rate_counts_edits():
    assert word_error_rate("a b c d".split(), "a x c".split()) == (2, 4)
    assert word_error_rate([], []) == (0, 0)


def test_cli_bench_listen(cli):
    proc = cli("bench", "listen", "--cases", "1", "--json", timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert set(report["metrics"]) >= {"onset_f1", "word_error_rate", "anchor_recall_given", "realtime_fraction",
                                      "verse_end_delay_ms_p95", "final_update_ms_p95"}
    assert 0.0 <= report["metrics"]["onset_f1"] <= 1.0
    proc = cli("bench", "listen", "--cases", "0")
    assert proc.returncode == 2 and "--cases must be at least 1" in proc.stderr
