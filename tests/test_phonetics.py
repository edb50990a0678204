import pytest

from dsp import phonetics as P


@pytest.mark.parametrize("word, n", [
    ("cat", 1), ("fire", 2), ("medal", 2), ("beautiful", 3), ("extraordinary", 6),
    ("strengths", 1), ("the", 1), ("a", 1), ("microphone", 3), ("architecture", 4),
    # not in the CMU dictionary: espeak-ng, g-dropping and syllabic r
    ("skrrt", 1), ("brr", 1), ("flexin", 2), ("flexin'", 2), ("zorbakov", 3), ("kendrickson", 3),
])
def test_syllable_counts(word, n):
    assert len(P.word(word).syllables) == n


def test_out_of_dictionary_words_come_from_espeak():
    assert P.word("zorbakov").source == "espeak"
    assert P.word("cat").source == "cmu"
    assert P.word("skrrt").phones == ("S", "K", "ER1", "T")


def test_stress():
    assert [s.stress for s in P.word("beautiful").syllables] == [1, 0, 0]
    assert [s.stress for s in P.word("extraordinary").syllables] == [2, 0, 1, 0, 2, 0]
    # espeak-derived words carry stress too: at least one primary
    assert 1 in [s.stress for s in P.word("zorbakov").syllables]


def test_syllabify_maximal_onset():
    sylls = P.syllabify(("EH2", "K", "S", "T", "R", "AH0", "AO1", "R", "D"))
    assert [s.phones for s in sylls] == [("EH", "K"), ("S", "T", "R", "AH"), ("AO", "R", "D")]
    assert [s.vowel for s in sylls] == ["EH", "AH", "AO"]


def test_espeak_mnemonics_map_to_arpabet():
    assert P.espeak_to_arpabet("fl'EksIn") == ("F", "L", "EH1", "K", "S", "IH0", "N")
    assert P.espeak_to_arpabet("h@l'oU") == ("HH", "AH0", "L", "OW1")


def test_rhyme_keys():
    assert P.rhyme_key("medal") == ("EH", "D", "AH", "L")
    assert P.rhyme_key("cold medal", n_syllables=3) == ("OW", "L", "D", "M", "EH", "D", "AH", "L")
    assert P.vowel_key("cold medal", n_syllables=3) == ("OW", "EH", "AH")


@pytest.mark.parametrize("a, b", [
    ("cat", "hat"), ("weak", "speak"), ("crown", "town"), ("chest", "rest"), ("fire", "higher"),
    ("nation", "station"), ("toaster", "poster"),
])
def test_rhyme_pairs(a, b):
    assert P.rhymes(a, b)


@pytest.mark.parametrize("a, b", [
    ("cat", "dog"), ("cat", "cat"), ("weak", "week"), ("time", "line"), ("medal", "metal"),
    ("fire", "fine"), ("love", "move"),
])
def test_rhyme_non_pairs(a, b):
    # identical pronunciations ("weak"/"week") are the same word to the ear, not a rhyme
    assert not P.rhymes(a, b)


def test_slant_rhymes():
    assert P.rhymes("time", "line", slant=True)
    assert P.rhymes("medal", "metal", slant=True)
    assert not P.rhymes("time", "tore", slant=True)


def test_multisyllable_rhymes():
    assert P.rhymes("cold medal", "gold metal", n_syllables=3, slant=True)
    assert not P.rhymes("cold medal", "gold metal", n_syllables=3)
    assert not P.rhymes("cold medal", "bold level", n_syllables=3, slant=True)


@pytest.mark.parametrize("text, density", [
    # cold~gold: OW+AH(the) = 2; metal~medal: AH OW EH AH = 4; others 0 -> 6/6
    ("the cold medal the gold metal", 1.0),
    # single-vowel matches score 0
    ("cat bat hat", 0.0),
    ("i go to the store", 0.0),
    # better~letter: EH ER = 2 -> 2/2
    ("better letter", 1.0),
    # the third word is identical to the first (scores 0 against it) but matches letter -> 4/3
    ("better letter better", 4 / 3),
    ("", 0.0),
])
def test_rhyme_density(text, density):
    assert P.rhyme_density(text) == pytest.approx(density)


def test_rhyme_density_window_is_15_words():
    filler = " ".join(["go"] * 15)
    assert P.rhyme_density(f"better {filler} letter") == 0.0
    assert P.rhyme_density(f"better {' '.join(['go'] * 14)} letter") == pytest.approx(2 / 16)
