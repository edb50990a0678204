"""The critic and the rhyme grading on hand-made examples."""
import pytest

from dsp.flow import Flow
from models_onnx import rhyme
from models_onnx.critic import Context, Critic, stress_on_strong

BOOM_BAP = Flow("boom-bap", "Xx-xX-x-Xx-xX-.-")
OPPONENT = ("You came from the suburbs with a borrowed chain",
            "Your mama still drives you, you can't catch a train")


@pytest.mark.parametrize("a, b, grade", [
    ("I caught the last train", "you still wear the chain", rhyme.PERFECT),
    ("my city", "such a pity", rhyme.PERFECT),
    ("you borrowed a chain", "they all know your name", rhyme.SLANT),  # N / M
    ("a gold medal", "heavy metal", rhyme.SLANT),  # D / T
    ("I carry my pride", "you are running on time", rhyme.ASSONANCE),
    ("the weather", "you never get better", rhyme.ASSONANCE),
    ("I drive a car", "you ride a bus", rhyme.NONE),
    ("you lost the game", "you lost the game", rhyme.NONE),  # the same word is not a rhyme
    ("look at the clock", "it is a lock", rhyme.PERFECT),
    ("I run the whole year", "you never come here", rhyme.PERFECT),  # IH / IY before R
    ("you talk like a boss", "I count every loss", rhyme.PERFECT),  # cot / caught
    ("the trophy is yours", "I kicked in the doors", rhyme.PERFECT),
    ("I drive a nice car", "you rot to the core", rhyme.NONE),  # AA R is not AO R
])
def test_rhyme_grades(a, b, grade):
    assert rhyme.grade(a, b) == grade


def test_multi_syllable_rhyme_length():
    assert rhyme.length("I won the cold medal", "you wear the gold metal") == 4  # "the" rhymes along
    assert rhyme.length("catch a train", "borrowed chain") == 1
    assert rhyme.length("I drive a car", "you ride a bus") == 0


@pytest.fixture(scope="module")
def critic():
    return Critic(["I carry my city on my back every night",
                   "the money keeps coming and the future is bright"])


def test_end_rhyme_and_flip(critic):
    ctx = Context(partner="You talk about trains but you missed every ride", opponent=OPPONENT)
    good = critic.score("I carry my city, you carry your pride", ctx)
    bad = critic.score("I carry my city, you carry your bag", ctx)
    assert good.rhyme_grade == rhyme.PERFECT and bad.rhyme_grade == rhyme.NONE
    assert good.total > bad.total
    last = Context(opponent=OPPONENT[1:])
    assert not critic.score("you left your brain on the back of the train", last).flips  # their word is no flip
    assert critic.score("you left your brain in the rain", last).flips
    assert not critic.score("you left your brain in the car", last).flips


def test_syllable_budget(critic):
    bar = "I carry my city, you carry your pride"  # 11 syllables
    assert critic.score(bar).syllables == 11
    assert critic.score(bar, Context(budget=11)).syllables_exact is True
    assert critic.score(bar, Context(budget=10)).syllables_exact is False
    assert critic.score(bar, Context(budget=11)).total > critic.score(bar, Context(budget=14)).total
    assert critic.score(bar).syllables_exact is None


def test_stress_on_strong_slots():
    # stressed syllables fill every accent; a run of unstressed ones cannot
    assert stress_on_strong("Big dogs bark loud when the rain comes down", BOOM_BAP) == 1.0
    weak = stress_on_strong("the ability of a company to an identity", BOOM_BAP)
    assert weak is not None and weak < 1.0
    assert stress_on_strong("la " * 20, BOOM_BAP) is None  # does not fit a bar


def test_anchor_and_grounding(critic):
    ctx = Context(opponent=OPPONENT, anchor="train")
    hit = critic.score("your mama drove the trains that you could never ride", ctx)
    miss = critic.score("I am better than you on a regular night", ctx)
    assert hit.hits_anchor and hit.grounded
    assert miss.hits_anchor is False and not miss.grounded
    assert critic.score("those suburbs never made a rapper", Context(opponent=OPPONENT)).grounded
    assert hit.total > miss.total


def test_novelty_and_repetition(critic):
    copied = critic.score("I carry my city on my back every night")
    fresh = critic.score("the river remembers every name you forgot")
    assert copied.corpus_ngram == 8 and not copied.novel
    assert fresh.novel
    history = ("the river remembers every name you forgot",)
    again = critic.score("the river remembers every name you forgot", Context(history=history))
    assert again.repeat_ngram >= 4 and again.repeats_end_word
    assert again.total < fresh.total


def test_clean_mode():
    c = Critic()
    assert not c.score("you are full of shit").clean
    assert c.score("you are full of shit", Context(clean=False)).clean
    assert c.score("you are full of it").clean
