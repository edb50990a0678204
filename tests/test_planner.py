"""Anchors from the opponent's words, and the per-bar plan built on them."""
import pytest

from dsp import phonetics
from dsp.anchors import HeardWord, heard_words, rank
from dsp.flow import Flow
from models_onnx.planner import Style, plan

BOOM_BAP = Flow("boom-bap", "Xx-xX-x-Xx-xX-.-")
VERSE = ["They call me Marcus and I run Detroit",
         "You rap like a toaster with a broken joint",
         "I came up hungry in a kitchen with no stove",
         "Now my kitchen is a palace and my palace is gold"]


def test_names_and_bar_ends_rank_first():
    top = [a.text for a in rank(heard_words("\n".join(VERSE)), top=7)]
    assert top[:2] == ["detroit", "marcus"]  # names; Detroit also ends its bar
    assert set(top[2:5]) == {"joint", "stove", "gold"}  # the other bar ends
    assert top.index("kitchen") < top.index("toaster") if "toaster" in top else "kitchen" in top  # repeats rise
    assert not {"they", "call", "and", "like", "with", "now"} & {a.text for a in rank(heard_words("\n".join(VERSE)))}


def test_the_first_word_of_a_bar_is_not_a_name():
    ranked = {a.text: a for a in rank(heard_words("Toasters are my thing\nyou rap like a Toaster"))}
    assert ranked["toasters"].is_name is False
    assert ranked["toaster"].is_name is True


def test_low_confidence_words_are_not_trusted():
    words = [HeardWord("Marcus", 0, 0.2, confidence=0.3), HeardWord("runs", 0, 0.5),
             HeardWord("Detroit", 0, 0.8, confidence=0.95)]
    ranked = [a.text for a in rank(words)]
    assert "marcus" not in ranked and ranked[0] == "detroit"
    assert rank(words, min_confidence=0.2)[0].text in {"marcus", "detroit"}


def test_plan_flips_the_opponents_last_rhyme_and_hits_anchors():
    p = plan(VERSE, 4, BOOM_BAP, seed=3)
    assert p.opponent_end_words == ("detroit", "joint", "stove", "gold")
    a0, a1, b0, b1 = p.bars
    assert a0.rhyme_word == a1.rhyme_word == "gold" and a0.rhyme_key == phonetics.rhyme_key("gold")
    assert "flip-rhyme" in a0.tactics and b0.rhyme_word is None
    assert [p.partner_of(i) for i in range(4)] == [None, 0, None, 2]
    anchors = [b.anchor for b in p.bars if b.anchor]
    assert anchors and all(a in {x.text for x in p.anchors} for a in anchors)
    assert "punchline" in b1.tactics


def test_budget_mirrors_the_opponent_inside_the_flow():
    strong = sum(c in "Xx" for c in BOOM_BAP.pattern)
    short = plan(["you lose", "I win"], 2, BOOM_BAP)
    dense = plan(["I got a whole lot of syllables coming at you every single time I open up"] * 2, 2, BOOM_BAP)
    assert all(b.syllables == strong for b in short.bars)  # never fewer than the accents
    assert dense.bars[0].syllables == BOOM_BAP.capacity
    assert all(BOOM_BAP.capacity - 1 <= b.syllables <= BOOM_BAP.capacity for b in dense.bars)
    mid = plan(VERSE, 2, BOOM_BAP)
    assert all(abs(b.syllables - 12) <= 1 for b in mid.bars)  # median of 10, 11, 12, 14


def test_plan_is_deterministic_for_a_seed():
    assert plan(VERSE, 8, BOOM_BAP, seed=7) == plan(VERSE, 8, BOOM_BAP, seed=7)
    budgets = {tuple(b.syllables for b in plan(VERSE, 8, BOOM_BAP, seed=s).bars) for s in range(8)}
    assert len(budgets) > 1  # the seed varies the breath


def test_schemes():
    abab = plan(VERSE, 4, BOOM_BAP, Style(scheme="ABAB"))
    assert [b.group for b in abab.bars] == list("ABAB")
    assert [abab.partner_of(i) for i in range(4)] == [None, None, 0, 1]
    no_flip = plan(VERSE, 2, BOOM_BAP, Style(flip=False))
    assert all(b.rhyme_word is None for b in no_flip.bars)
    with pytest.raises(ValueError, match="unknown rhyme scheme 'ABBA'"):
        plan(VERSE, 4, BOOM_BAP, Style(scheme="ABBA"))
