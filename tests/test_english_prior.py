"""General English beside the lyric model: word associations from pocketsphinx's US English model."""
import json
import logging
import math

import numpy as np
import pytest

from models_onnx import english_prior
from models_onnx.english_prior import EnglishPrior, build
from models_onnx.tokenizer import Tokenizer

WORDS = ["crowd", "loud", "money", "of", "one", "the", "zzqxv"]


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    path = tmp_path_factory.mktemp("english") / "pairs.npz"
    stats = build(WORDS, path, progress=False)
    tok = Tokenizer(WORDS)
    return EnglishPrior(tok, path), tok, stats


def test_the_table_holds_the_pairs_english_knows(small):
    prior, tok, stats = small
    assert stats["words"] == len(WORDS) and stats["known"] == len(WORDS) - 1  # all but the made-up word
    assert 0 < stats["pairs"] < len(WORDS) ** 2
    before_the = prior.backward(tok["the"])  # right to left: which word stands before "the"?
    assert before_the[tok["of"]] > before_the[tok["loud"]]  # "of the" is English, "loud the" is not
    after_one = prior.forward(tok["one"])  # left to right: which word follows "one"?
    assert after_one[tok["of"]] > after_one[tok["the"]]


def test_a_bar_ends_on_a_word_that_can_end_a_sentence(small):
    prior, tok, _ = small
    last = prior.backward(prior.end)
    assert last[tok["money"]] > last[tok["the"]]


def test_no_say_where_english_does_not_know_the_words(small):
    prior, tok, _ = small
    assert not prior.backward(tok["zzqxv"]).any()  # a neighbour English lacks
    assert prior.backward(tok["the"])[tok["zzqxv"]] == 0.0  # a word English lacks
    letters = [tok[f"#{c}"] for c in "abc"]
    assert not prior.backward(tok["the"])[letters].any()  # a spelled word
    assert not prior.backward(None).any()


def test_the_shipped_table_follows_the_shipped_model():
    from models_onnx.lyric_model import LyricModel

    model = LyricModel()
    words = json.loads(str(np.load(english_prior.PRIOR_PATH)["words"]))
    assert words == model.tok.itos[model.tok.first_word:]  # else: python -m models_onnx.english_prior
    assert model.english is not None


def test_a_damaged_table_is_named_with_the_fix(tmp_path, monkeypatch):
    from models_onnx.lyric_model import LyricModel, ModelError

    bad = tmp_path / "english_pairs.npz"
    bad.write_bytes(b"not a table")
    monkeypatch.setattr(english_prior, "PRIOR_PATH", bad)
    with pytest.raises(ModelError) as err:
        LyricModel()
    assert str(bad) in str(err.value) and "python -m models_onnx.english_prior" in str(err.value)


def test_without_the_table_the_model_writes_alone_and_says_so(tmp_path, monkeypatch, caplog):
    from models_onnx.lyric_model import LyricModel

    monkeypatch.setattr(english_prior, "PRIOR_PATH", tmp_path / "missing.npz")
    with caplog.at_level(logging.WARNING, logger="cypher"):
        model = LyricModel()
    assert model.english is None
    assert "missing.npz is missing" in caplog.text


def test_english_perplexity_knows_english_word_order():
    from models_onnx.english_prior import english_perplexity

    said = ["I walked into the club at night", "you can not hide from the rain"]
    scrambled = [" ".join(reversed(b.split())) for b in said]
    assert english_perplexity(said) < english_perplexity(scrambled) / 5
    assert math.isnan(english_perplexity([]))


def test_glue_perplexity_reads_function_words_not_rare_ones():
    from dsp.anchors import STOPWORDS
    from models_onnx.english_prior import english_perplexity

    plain = ["I walked into the room and you were on the floor"]
    rare = ["I tiptoed into the vestibule and you were on the linoleum"]  # rarer words, the same glue
    broken = ["I walked the into room you and on were the the floor"]  # the same words, broken glue

    def glue(bars):
        return english_perplexity(bars, STOPWORDS)

    all_words = english_perplexity(rare) / english_perplexity(plain)
    assert all_words > 5  # over all words, rare words cost
    assert glue(rare) / glue(plain) < all_words / 4  # over the glue, far less
    assert glue(broken) > 5 * glue(plain)
