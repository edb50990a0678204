"""Words to syllables with stress, rhyme keys, rhyme tests and rhyme density.

Pronunciations are ARPAbet as in the CMU dictionary (vowels carry a stress digit:
1 primary, 2 secondary, 0 none). Words the dictionary lacks (names, slang) are
transcribed by espeak-ng and mapped onto the same ARPAbet set.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Iterable, Sequence

import pronouncing

from dsp import espeak
from dsp.text import normalize_words

VOWELS = frozenset("AA AE AH AO AW AY EH ER EY IH IY OW OY UH UW".split())

# Onsets English allows, for the maximal-onset syllabification.
_ONSETS = frozenset(
    tuple(o.split())
    for o in """
    P T K B D G F V TH DH S Z SH ZH HH CH JH M N L R W Y
    P R|T R|K R|B R|D R|G R|F R|TH R|SH R|P L|K L|B L|G L|F L|S L
    S P|S T|S K|S M|S N|S W|S L|S F|T W|D W|K W|G W|TH W
    P Y|B Y|K Y|F Y|M Y|V Y|HH Y|S K Y|S P Y|N Y|L Y|T Y|D Y|HH W
    S P R|S T R|S K R|S P L|S K W|S K L|V R|V L
    """.replace("\n", "|").split("|")
    if o.strip()
)

# espeak-ng (en-us) mnemonics to ARPAbet; longest match first when tokenizing.
_ESPEAK_TO_ARPA = {
    "aI@": ("AY", "ER"), "aI3": ("AY", "ER"), "aU@": ("AW", "ER"), "i@3": ("IH", "R"),
    "A@": ("AA", "R"), "e@": ("EH", "R"), "i@": ("IH", "R"), "o@": ("AO", "R"), "O@": ("AO", "R"),
    "U@": ("UH", "R"), "3:": ("ER",), "3": ("ER",), "@L": ("AH", "L"), "@2": ("AH",), "@5": ("AH",),
    "@": ("AH",), "a#": ("AH",), "aI": ("AY",), "aU": ("AW",), "aa": ("AE",), "a": ("AE",),
    "A:": ("AA",), "A": ("AA",), "E2": ("EH",), "E": ("EH",), "eI": ("EY",), "I#": ("IH",),
    "I2": ("IH",), "I": ("IH",), "i:": ("IY",), "i": ("IY",), "0": ("AA",), "O:": ("AO",),
    "OI": ("OY",), "O": ("AO",), "oU": ("OW",), "o": ("OW",), "U": ("UH",), "u:": ("UW",),
    "u": ("UW",), "V": ("AH",),
    "tS": ("CH",), "dZ": ("JH",), "D": ("DH",), "T": ("TH",), "S": ("SH",), "Z": ("ZH",),
    "N": ("NG",), "j": ("Y",), "h": ("HH",), "r-": ("R",), "r": ("R",), "l-": ("L",), "l": ("L",),
    "w": ("W",), "n-": ("N",), "n": ("N",), "m-": ("M",), "m": ("M",), "t#": ("T",), "t": ("T",),
    "d#": ("D",), "d": ("D",), "k": ("K",), "g": ("G",), "p": ("P",), "b": ("B",), "f": ("F",),
    "v": ("V",), "s": ("S",), "z": ("Z",), "x": ("K",),
}
_ESPEAK_TOKENS = sorted(_ESPEAK_TO_ARPA, key=len, reverse=True)


@dataclass(frozen=True)
class Syllable:
    """One syllable: ARPAbet phones without stress digits, the index of its vowel, its stress."""

    phones: tuple[str, ...]
    nucleus: int
    stress: int  # 0 none, 1 primary, 2 secondary

    @property
    def vowel(self) -> str:
        return self.phones[self.nucleus]

    @property
    def onset(self) -> tuple[str, ...]:
        return self.phones[: self.nucleus]


@dataclass(frozen=True)
class Word:
    """A spoken word: its normalised spelling, ARPAbet phones (with stress digits),
    syllables, and where the pronunciation came from ("cmu" or "espeak")."""

    text: str
    phones: tuple[str, ...]
    syllables: tuple[Syllable, ...]
    source: str


def is_vowel(phone: str) -> bool:
    return phone.rstrip("012") in VOWELS


def espeak_to_arpabet(mnemonics: str) -> tuple[str, ...]:
    """Map espeak-ng mnemonics ("fl'EksIn") to ARPAbet with stress digits."""
    out: list[str] = []
    stress = 0
    i = 0
    while i < len(mnemonics):
        ch = mnemonics[i]
        if ch == "'":
            stress, i = 1, i + 1
            continue
        if ch == ",":
            stress, i = 2, i + 1
            continue
        for tok in _ESPEAK_TOKENS:
            if mnemonics.startswith(tok, i):
                for ph in _ESPEAK_TO_ARPA[tok]:
                    if ph in VOWELS:
                        out.append(f"{ph}{stress}")
                        stress = 0
                    else:
                        out.append(ph)
                i += len(tok)
                break
        else:
            i += 1  # pauses, syllable marks, glottal stops: not phones we rap
    # espeak marks stress before the syllable's onset, so a stress digit given to a
    # vowel is right; words of one syllable with no mark are still stressed.
    vowels = [j for j, p in enumerate(out) if is_vowel(p)]
    if vowels and not any(out[j][-1] in "12" for j in vowels):
        j = vowels[0]
        out[j] = out[j][:-1] + "1"
    return tuple(out)


def _cmu(word: str) -> tuple[str, ...] | None:
    found = pronouncing.phones_for_word(word)
    return tuple(found[0].split()) if found else None


@functools.lru_cache(maxsize=65536)
def pronounce(word: str) -> tuple[tuple[str, ...], str]:
    """ARPAbet phones of one normalised word and their source ("cmu" or "espeak")."""
    phones = _cmu(word)
    if phones:
        return phones, "cmu"
    if word.endswith("in'") or word.endswith("in"):  # g-dropping: flexin' -> flexing, -NG -> -N
        full = _cmu(word.rstrip("'") + "g")
        if full and full[-1] == "NG":
            return full[:-1] + ("N",), "cmu"
    spelled = word.replace("'", "")
    if not any(c in "aeiouy" for c in spelled) and "r" in spelled:
        # Vowelless slang ("skrrt", "brr"): the r run is a syllabic r, as rappers say it.
        head, _, _ = spelled.partition("r")
        spelled = head + "ur" + spelled[len(head):].lstrip("r")
    phones = espeak_to_arpabet(espeak.text_to_phonemes(spelled))
    return phones, "espeak"


def syllabify(phones: Sequence[str]) -> tuple[Syllable, ...]:
    """Split ARPAbet phones into syllables by the maximal-onset principle."""
    nuclei = [i for i, p in enumerate(phones) if is_vowel(p)]
    if not nuclei:
        return ()
    bare = [p.rstrip("012") for p in phones]
    starts = [0]
    for a, b in zip(nuclei, nuclei[1:]):
        cluster = bare[a + 1 : b]
        split = len(cluster)  # default: all consonants go to the coda
        for k in range(len(cluster) + 1):
            if k == len(cluster) or tuple(cluster[k:]) in _ONSETS:
                split = k
                break
        starts.append(a + 1 + split)
    ends = starts[1:] + [len(phones)]
    sylls = []
    for start, end, nuc in zip(starts, ends, nuclei):
        stress = int(phones[nuc][-1]) if phones[nuc][-1] in "012" else 0
        sylls.append(Syllable(tuple(bare[start:end]), nuc - start, stress))
    return tuple(sylls)


@functools.lru_cache(maxsize=65536)
def word(text: str) -> Word:
    """One normalised word, pronounced and syllabified."""
    phones, source = pronounce(text)
    return Word(text, phones, syllabify(phones), source)


@functools.lru_cache(maxsize=2048)
def _words(text: str) -> tuple[Word, ...]:
    return tuple(word(w) for w in normalize_words(text))


def words(text: str) -> list[Word]:
    """Every spoken word of `text` (numbers spelled, symbols dropped), pronounced."""
    return list(_words(text))


def syllable_count(text: str) -> int:
    return sum(len(w.syllables) for w in words(text))


def _phones_of(x: str | Word | Iterable[Word]) -> tuple[str, ...]:
    if isinstance(x, Word):
        return x.phones
    if isinstance(x, str):
        x = words(x)
    return tuple(p for w in x for p in w.phones)


def rhyme_key(x: str | Word | Iterable[Word], n_syllables: int = 1) -> tuple[str, ...]:
    """The phones that must match for a rhyme, stress digits stripped.

    n_syllables=1: from the last stressed vowel to the end ("medal" -> EH D AH L).
    n_syllables=k>1: from the k-th last vowel to the end, for multi-syllable rhymes
    spanning words ("cold medal" with k=3 -> OW L D M EH D AH L).
    """
    return _key(_phones_of(x), n_syllables)


def _key(phones: Sequence[str], n_syllables: int) -> tuple[str, ...]:
    vowels = [i for i, p in enumerate(phones) if is_vowel(p)]
    if not vowels:
        return ()
    if n_syllables <= 1:
        stressed = [i for i in vowels if phones[i][-1] in "12"]
        start = stressed[-1] if stressed else vowels[-1]
    else:
        start = vowels[-min(n_syllables, len(vowels))]
    return tuple(p.rstrip("012") for p in phones[start:])


def vowel_key(x: str | Word | Iterable[Word], n_syllables: int = 1) -> tuple[str, ...]:
    """The last `n_syllables` vowels (assonance), stress digits stripped."""
    vowels = [p.rstrip("012") for p in _phones_of(x) if is_vowel(p)]
    return tuple(vowels[-n_syllables:])


# Consonants that sound alike at the end of a slant rhyme: voicing and nasal place ignored.
_CODA_CLASS = {
    "P": "P", "B": "P", "T": "T", "D": "T", "K": "K", "G": "K", "F": "F", "V": "F",
    "TH": "F", "DH": "F", "S": "S", "Z": "S", "SH": "S", "ZH": "S", "CH": "S", "JH": "S",
    "M": "N", "N": "N", "NG": "N", "L": "L", "R": "R", "HH": "H", "W": "W", "Y": "Y",
}


def slant_key(key: tuple[str, ...]) -> tuple[str, ...]:
    """A rhyme key with consonants reduced to the classes a listener confuses at a line end."""
    return tuple(p if p in VOWELS else _CODA_CLASS.get(p, p) for p in key)


def rhymes(a: str | Word | Iterable[Word], b: str | Word | Iterable[Word], n_syllables: int = 1,
           slant: bool = False) -> bool:
    """True when a and b rhyme over their last `n_syllables` (see `rhyme_key`).

    Identical endings of identical words are not rhymes ("cat" / "cat").
    slant=True also accepts codas that differ only in voicing or nasal place
    ("medal" / "metal", "time" / "line").
    """
    pa, pb = _phones_of(a), _phones_of(b)
    if not pa or not pb or pa == pb:
        return False
    ka, kb = _key(pa, n_syllables), _key(pb, n_syllables)
    if ka == kb:
        return True
    return slant and slant_key(ka) == slant_key(kb)


def rhyme_density(text: str, window_words: int = 15) -> float:
    """Rhyme density after Malmi et al. (DopeLearning, 2016).

    The text becomes one sequence of vowels (stress stripped). For each word, take the
    longest run of vowels that matches backwards from its last vowel and from the last
    vowel of one of the previous `window_words` words; the two runs may not overlap.
    Identical words score 0, and a run of length 1 scores 0. The density is the mean
    over words that have a vowel.
    """
    ws = [w for w in words(text) if w.syllables]
    vowels: list[str] = []
    last: list[int] = []  # index in `vowels` of each word's last vowel
    for w in ws:
        vowels.extend(s.vowel for s in w.syllables)
        last.append(len(vowels) - 1)
    if not ws:
        return 0.0
    total = 0
    for i in range(len(ws)):
        best = 0
        for j in range(max(0, i - window_words), i):
            if ws[j].text == ws[i].text:
                continue
            ei, ej = last[i], last[j]
            n = 0
            while n < ei - ej and ej - n >= 0 and vowels[ei - n] == vowels[ej - n]:
                n += 1
            best = max(best, n)
        total += best if best >= 2 else 0
    return total / len(ws)
