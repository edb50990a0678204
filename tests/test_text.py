import pytest

from dsp.text import normalize_words, number_to_words, split_bars


@pytest.mark.parametrize("n, words", [
    (0, "zero"), (7, "seven"), (13, "thirteen"), (40, "forty"), (99, "ninety nine"),
    (100, "one hundred"), (512, "five hundred twelve"), (1000, "one thousand"),
    (30001, "thirty thousand one"), (2_000_000, "two million"),
])
def test_number_to_words(n, words):
    assert number_to_words(n) == words


@pytest.mark.parametrize("text, words", [
    ("I got 99 problems", "i got ninety nine problems"),
    ("back in 1994", "back in nineteen ninety four"),
    ("since 2005", "since two thousand five"),
    ("the 90s", "the nineties"),
    ("2nd place, 21st century", "second place twenty first century"),
    ("100% real", "one hundred percent real"),
    ("$5 bills", "five dollars bills"),
    ("3.5 stars", "three point five stars"),
    ("1,000,000 views", "one million views"),
    ("you & me", "you and me"),
])
def test_numbers_and_symbols_are_spoken(text, words):
    assert " ".join(normalize_words(text)) == words


def test_emoji_and_punctuation_are_dropped():
    assert normalize_words("🔥🔥 yo!!! (what?) *mic drop* 💯") == ["yo", "what", "mic", "drop"]


def test_accents_keep_their_letters():
    assert normalize_words("Café naïve Beyoncé") == ["cafe", "naive", "beyonce"]


def test_apostrophes():
    assert normalize_words("flexin' on 'em, don't 'quote' me") == ["flexin'", "on", "em", "don't", "quote", "me"]


def test_split_bars():
    assert split_bars("one two / three four\nfive six\n\n") == ["one two", "three four", "five six"]
    assert split_bars("and/or stays whole") == ["and/or stays whole"]
