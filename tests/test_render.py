"""`cypher render`: every file opened with a real reader, timings agreeing across files and
with the audio, the beat's tempo found, bad input refused, the same seed byte for byte."""
import json

import matplotlib.image
import mido
import numpy as np
import pytest
import soundfile as sf

from dsp.beat import render_beat
from models_onnx.lyric_model import MODEL_PATH
from plugin_host.bench import detect_onsets_s, onset_errors_ms

pytestmark = pytest.mark.skipif(not MODEL_PATH.exists(), reason="the shipped lyric model is not built")

VERSE = "They call me Marcus and I run Detroit / You rap like a toaster with a broken joint"
FILES = ["take.wav", "vocal_dry.wav", "vocal_fx.wav", "lyrics.json", "lyrics.lrc", "flow.mid", "flow.png"]


@pytest.fixture(scope="module")
def beat_file(tmp_path_factory):
    """Our built-in beat at 96 BPM, 48 kHz, stereo, starting 0.25 s into the file."""
    sr, bpm = 48000, 96.0
    beat = render_beat(bpm, 10, sr)
    audio = np.concatenate([np.zeros(int(0.25 * sr), np.float32), beat])
    path = tmp_path_factory.mktemp("beat") / "beat.wav"
    sf.write(path, np.stack([audio, audio * 0.8], axis=1), sr, subtype="PCM_24")
    return path


@pytest.fixture(scope="module")
def take(tmp_path_factory, beat_file):
    from conftest import run_cli

    out = tmp_path_factory.mktemp("takes") / "take1"
    r = run_cli("render", "--opponent", VERSE, "--beat", str(beat_file), "--out", str(out), "--json", timeout=300)
    assert r.returncode == 0, r.stderr
    return out, json.loads(r.stdout)


def test_every_file_opens_and_timings_agree(take):
    out, result = take
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    lyrics = json.loads((out / "lyrics.json").read_text())
    sr = lyrics["sr"]
    assert sr == 48000 and abs(lyrics["bpm"] - 96.0) < 0.1 and lyrics["bpm_detected"]
    assert abs(lyrics["first_downbeat_s"] - 0.25) < 0.005
    for name in ("take.wav", "vocal_dry.wav", "vocal_fx.wav"):
        info = sf.info(out / name)
        assert info.samplerate == sr and info.subtype == "PCM_24"
    assert sf.info(out / "take.wav").channels == 2  # the beat's channels
    syll = lyrics["syllables"]
    assert len(lyrics["bars"]) == 4 and len(syll) > 30
    period_s = 60 / lyrics["bpm"]
    for s in syll:
        assert s["start_s"] == pytest.approx(s["start_sample"] / sr, abs=1e-6)
        # beats from the first downbeat, one bar of count-in, each on a 16th
        assert (s["start_beat"] * 4) == int(s["start_beat"] * 4) and s["start_beat"] >= 4
        grid_s = lyrics["first_downbeat_s"] + s["start_beat"] * period_s
        assert abs(s["start_s"] - grid_s) < 1.5 / sr
    # flow.mid: one note per syllable, at the same beats, at the same tempo
    mid = mido.MidiFile(out / "flow.mid")
    tempo = next(m.tempo for m in mid.tracks[0] if m.type == "set_tempo")
    assert mido.tempo2bpm(tempo) == pytest.approx(lyrics["bpm"], abs=0.01)
    t, onsets = 0, []
    for m in mid.tracks[0]:
        t += m.time
        if m.type == "note_on":
            onsets.append(t)
    assert len(onsets) == len(syll)
    seconds = np.array(onsets) / mid.ticks_per_beat * period_s
    assert np.max(np.abs(seconds - np.array([s["start_s"] for s in syll]))) < 0.002
    # lyrics.lrc: one line per bar at its first syllable
    lines = (out / "lyrics.lrc").read_text().splitlines()
    assert len(lines) == 4
    firsts = [next(s for s in syll if s["bar"] == b)["start_s"] for b in range(4)]
    for line, first in zip(lines, firsts):
        mm, ss = line[1:9].split(":")
        assert abs(int(mm) * 60 + float(ss) - first) < 0.006
    # flow.png is an image
    img = matplotlib.image.imread(out / "flow.png")
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 400


def test_onsets_in_the_audio_are_where_lyrics_json_says(take):
    out, _ = take
    lyrics = json.loads((out / "lyrics.json").read_text())
    dry, sr = sf.read(out / "vocal_dry.wav", dtype="float32")
    intended = np.array([s["start_s"] for s in lyrics["syllables"]])
    err = onset_errors_ms(intended, detect_onsets_s(dry, sr), 0.05)
    assert np.mean(~np.isnan(err)) > 0.85
    assert np.nanmedian(np.abs(err)) < 10.0


def test_same_seed_gives_byte_identical_files(cli, tmp_path):
    outs = [tmp_path / "a", tmp_path / "b"]
    for out in outs:
        r = cli("render", "--opponent", VERSE, "--out", str(out), "--seed", "5", "--bars", "2", timeout=300)
        assert r.returncode == 0, r.stderr
    for name in FILES:
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name


def test_refuses_a_non_empty_folder_unless_forced(cli, tmp_path):
    out = tmp_path / "take"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    r = cli("render", "--opponent", VERSE, "--out", str(out), "--bars", "1")
    assert r.returncode == 2 and "exists and is not empty" in r.stderr and "--force" in r.stderr
    assert (out / "keep.txt").read_text() == "mine"
    r = cli("render", "--opponent", VERSE, "--out", str(out), "--bars", "1", "--force")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)


def test_bad_inputs(cli, tmp_path):
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"RIFF but not really a wave file")
    noise = tmp_path / "noise.wav"
    sf.write(noise, np.random.default_rng(0).normal(size=48000 * 6).astype(np.float32) * 0.1, 48000)
    cases = [
        (["--beat", str(tmp_path / "missing.wav")], "missing.wav: no such file"),
        (["--beat", str(garbage)], "cannot read it as audio"),
        (["--beat", str(noise)], "no detectable tempo"),
        (["--opponent", str(tmp_path / "missing.txt")], "missing.txt: no such file"),
        (["--opponent", "verse.wav"], "verse.wav: no such file"),
        (["--bpm", "500"], "--bpm 500 is outside 40-240"),
    ]
    for extra, message in cases:
        args = ["render", "--opponent", VERSE, "--out", str(tmp_path / "x"), *extra]
        r = cli(*args)
        assert r.returncode == 2, (extra, r.stderr)
        assert message in r.stderr and "Traceback" not in r.stderr
        assert not (tmp_path / "x").exists()  # nothing half-written
