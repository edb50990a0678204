import math

from models_onnx.battle_lm import LM_PATH, build_arpa
from models_onnx.corpus import load

BARS = ["you came to battle", "you came to lose", "i came to battle and win", "you came to battle"]


def _sections(text):
    out, name = {}, None
    for line in text.splitlines():
        if line.startswith("\\") and line.endswith("-grams:"):
            name = int(line[1])
            out[name] = []
        elif line.strip() and name and not line.startswith("\\"):
            out[name].append(line.split("\t"))
    return out


def test_arpa_probabilities_are_a_distribution():
    sec = _sections(build_arpa(BARS))
    uni = {w: float(p) for p, w, *_ in sec[1]}
    assert uni["<s>"] == -99.0 and "battle" in uni
    assert abs(sum(10 ** p for w, p in uni.items() if w != "<s>") - 1.0) < 1e-3
    # explicit continuations of a context leave mass for backing off
    came = [10 ** float(p) for p, g, *_ in sec[2] if g.startswith("came ")]
    assert 0.5 < sum(came) < 1.0
    # trigrams seen once are pruned, twice kept
    tri = {g for _, g in sec[3]}
    assert "you came to" in tri and "to battle and" not in tri
    assert all(math.isfinite(float(b)) for _, _, b in sec[1] + sec[2] if b)


def test_words_the_recogniser_cannot_say_are_left_out():
    sec = _sections(build_arpa(BARS, known={"you", "came", "to", "battle"}))
    assert {w for _, w, *_ in sec[1]} == {"<s>", "</s>", "you", "came", "to", "battle"}


def test_the_shipped_model_is_built_from_the_training_split_and_loads():
    from pocketsphinx import Decoder

    from dsp.text import normalize_words

    corpus = load()
    text = LM_PATH.read_text(encoding="utf-8")
    unigrams = {line.split("\t")[1] for line in text.split("\\2-grams:")[0].splitlines() if "\t" in line}
    train_words = {w for b in corpus.train().bars() for w in normalize_words(b)}
    held_words = {w for e in corpus.heldout() for b in e.opponent for w in normalize_words(b)}
    assert held_words - train_words  # the held-out bars do have words of their own ...
    assert not (held_words - train_words) & unigrams  # ... and the model has never seen them
    Decoder(lm=str(LM_PATH), loglevel="ERROR")  # pocketsphinx reads it
