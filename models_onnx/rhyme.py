"""How well two line endings rhyme, the way a battle crowd hears it.

Rap rhymes are mostly about vowels: "chain / name" (slant), "pride / time"
(assonance) both land. We grade an ending pair and count how many syllables the
match runs back (multi-syllable rhymes: "cold medal / gold metal" runs over 3).
"""
from __future__ import annotations

from dsp import phonetics

# Grades, strongest first; 0 means no rhyme.
PERFECT, SLANT, ASSONANCE, NONE = 3, 2, 1, 0
GRADE_NAMES = {PERFECT: "perfect", SLANT: "slant", ASSONANCE: "assonance", NONE: "none"}


def _phones(words: list[phonetics.Word]) -> tuple[str, ...]:
    return tuple(p for w in words for p in w.phones)


# Vowels most rappers (and listeners) do not tell apart at a line end: the cot/caught
# merger away from R, and the vowels that collapse before R ("year / here",
# "yours / doors", "tour / sure").
_MERGED = {"AO": "AA"}
_MERGED_BEFORE_R = {"IH": "IY", "UH": "AO", "UW": "AO", "OW": "AO", "AO": "AO", "EY": "EH"}


def _merge(key: tuple[str, ...]) -> tuple[str, ...]:
    out = []
    for i, p in enumerate(key):
        if i + 1 < len(key) and key[i + 1] == "R":
            out.append(_MERGED_BEFORE_R.get(p, p))
        else:
            out.append(_MERGED.get(p, p))
    return tuple(out)


def _tail_from_stress(phones: tuple[str, ...]) -> tuple[str, ...]:
    """Phones from the last stressed vowel (or the last vowel) to the end, stress stripped,
    with merged vowels made equal."""
    return _merge(phonetics.rhyme_key(phonetics.Word("", phones, phonetics.syllabify(phones), "")))


def tail(word: phonetics.Word) -> tuple[str, ...]:
    """A word's rhyme tail as `grade` compares it: two words with equal tails rhyme perfectly,
    equal `phonetics.slant_key`s slant, equal `tail_vowels` assonate."""
    return _tail_from_stress(word.phones)


def tail_vowels(tail: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(p for p in tail if p in phonetics.VOWELS)


def end_words(line: str, n_words: int = 4) -> list[phonetics.Word]:
    """The last `n_words` spoken words of a line that carry a vowel."""
    ws = [w for w in phonetics.words(line) if w.syllables]
    return ws[-n_words:]


def grade(a: str | list[phonetics.Word], b: str | list[phonetics.Word]) -> int:
    """PERFECT, SLANT, ASSONANCE or NONE for the endings of two lines (or word lists).

    The final words are compared from their last stressed vowel; the same word
    at both ends is not a rhyme.
    """
    wa = end_words(a) if isinstance(a, str) else a
    wb = end_words(b) if isinstance(b, str) else b
    if not wa or not wb or wa[-1].text == wb[-1].text:
        return NONE
    ka, kb = _tail_from_stress(wa[-1].phones), _tail_from_stress(wb[-1].phones)
    if not ka or not kb:
        return NONE
    if ka == kb:
        return PERFECT
    if phonetics.slant_key(ka) == phonetics.slant_key(kb):
        return SLANT
    if tail_vowels(ka) == tail_vowels(kb):
        return ASSONANCE
    return NONE


def length(a: str | list[phonetics.Word], b: str | list[phonetics.Word]) -> int:
    """How many syllables the endings match back (vowels equal), 0 when they do not rhyme.

    "cold medal / gold metal" -> 3; "chain / train" -> 1.
    """
    wa = end_words(a) if isinstance(a, str) else a
    wb = end_words(b) if isinstance(b, str) else b
    if grade(wa, wb) == NONE:
        return 0
    va = [_MERGED.get(s.vowel, s.vowel) for w in wa for s in w.syllables]
    vb = [_MERGED.get(s.vowel, s.vowel) for w in wb for s in w.syllables]
    n = 0
    while n < min(len(va), len(vb)) and va[-1 - n] == vb[-1 - n]:
        n += 1
    return max(n, 1)
