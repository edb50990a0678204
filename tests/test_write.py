"""`cypher write` with the shipped lyric model: the JSON contract, the plan kept, bad input."""
import json

import pytest

from dsp import phonetics
from models_onnx import rhyme
from models_onnx.lyric_model import MODEL_PATH

needs_model = pytest.mark.skipif(not MODEL_PATH.exists(), reason="the shipped lyric model is not built")

VERSE = "They call me Marcus and I run Detroit / You rap like a toaster with a broken joint"


@needs_model
def test_write_json_keeps_the_plan(cli):
    r = cli("write", "--opponent", VERSE, "--bars", "4", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert len(out["bars"]) == 4
    assert {"text", "syllables", "end_word", "rhyme_key", "anchor"} <= set(out["bars"][0])
    assert "marcus" in out["anchors"] and "detroit" in out["anchors"]
    assert set(out["latency_ms"]) >= {"plan", "write", "total"}
    for bar in out["bars"]:
        assert phonetics.syllable_count(bar["text"]) == bar["syllables"] == bar["planned"]["syllables"]
        if bar["planned"]["rhyme_word"]:
            assert rhyme.grade(bar["text"], bar["planned"]["rhyme_word"]) != rhyme.NONE
        if bar["anchor"]:
            assert bar["anchor"].lower() in bar["text"].lower()
    a, b, c, d = (bar["text"] for bar in out["bars"])
    assert rhyme.grade(a, b) != rhyme.NONE and rhyme.grade(c, d) != rhyme.NONE  # AABB
    assert rhyme.grade(a, "joint") != rhyme.NONE  # the first couplet flips their last rhyme


@needs_model
def test_same_seed_same_bars_other_seed_other_bars(cli, tmp_path):
    verse = tmp_path / "verse.txt"
    verse.write_text(VERSE.replace(" / ", "\n"))
    one = cli("write", "--opponent", str(verse), "--seed", "3", "--json")
    two = cli("write", "--opponent", str(verse), "--seed", "3", "--json")
    other = cli("write", "--opponent", str(verse), "--seed", "4", "--json")
    texts = [[b["text"] for b in json.loads(p.stdout)["bars"]] for p in (one, two, other)]
    assert texts[0] == texts[1]
    assert texts[0] != texts[2]


@needs_model
def test_plain_output_is_the_bars(cli):
    r = cli("write", "--opponent", VERSE, "--bars", "2", "--style", "laid-back")
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.strip().splitlines()) == 2


@needs_model
@pytest.mark.parametrize("args, message", [
    (["--opponent", "verse.wav"], "verse.wav: no such file"),
    (["--opponent", "missing.txt"], "missing.txt: no such file"),
    (["--opponent", " / "], "the opponent's verse has no words"),
    (["--opponent", VERSE, "--bars", "0"], "--bars must be 1-16"),
    (["--opponent", VERSE, "--style", "polite"], "unknown style 'polite'; valid names:"),
    (["--opponent", VERSE, "--flow", "polka"], "unknown flow 'polka'"),
])
def test_bad_input_is_one_line_and_exit_2(cli, args, message):
    r = cli("write", *args)
    assert r.returncode == 2
    assert message in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("text, message", [
    ('scheme = "ABBA"\n', "scheme 'ABBA' is not one of AABB, ABAB, AAAA"),
    ("candidates = 0\n", "candidates must be 1-32"),
    ('flip = "yes"\n', "flip must be a bool"),
    ("loudness = 3\n", "unknown key 'loudness'"),
])
def test_style_presets_are_validated(tmp_path, text, message):
    from plugin_host.errors import UsageError
    from plugin_host.write import load_style

    path = tmp_path / "mine.toml"
    path.write_text(text)
    with pytest.raises(UsageError, match=message):
        load_style(str(path))


@pytest.fixture(scope="module")
def rapped_verse(tmp_path_factory):
    """The opponent's verse as a recording: rapped by another voice over the beat."""
    import soundfile as sf

    from plugin_host.bench_listen import synthesize

    folder = tmp_path_factory.mktemp("opponent")
    case = {"verse": VERSE.replace(" / ", "\n"), "voice": "rival", "bpm": 90.0, "level_db": -6.0, "beat": True,
            "snr_db": None}
    mix, _, _ = synthesize(case, seed=3)
    sf.write(folder / "heard.wav", mix, 44100)
    sf.write(folder / "given.wav", mix, 44100)
    (folder / "given.txt").write_text(case["verse"])
    sf.write(folder / "silent.wav", 0 * mix, 44100)
    return folder


@needs_model
def test_a_recorded_verse_with_its_words_beside_it(cli, rapped_verse):
    r = cli("write", "--opponent", str(rapped_verse / "given.wav"), "--bars", "2", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert "marcus" in out["anchors"] and "detroit" in out["anchors"]  # the words came from given.txt
    assert rhyme.grade(out["bars"][0]["text"], "joint") != rhyme.NONE
    assert "no grid" not in r.stderr


@needs_model
def test_a_recorded_verse_is_heard(cli, rapped_verse):
    r = cli("write", "--opponent", str(rapped_verse / "heard.wav"), "--bars", "2", "--json")
    assert r.returncode == 0, r.stderr
    assert len(json.loads(r.stdout)["bars"]) == 2
    assert "bars assumed at 90 BPM" in r.stderr  # it says how it split the words into bars


@needs_model
def test_a_silent_recording_is_refused(cli, rapped_verse):
    r = cli("write", "--opponent", str(rapped_verse / "silent.wav"))
    assert r.returncode == 2 and "no voice was heard" in r.stderr and "Traceback" not in r.stderr
