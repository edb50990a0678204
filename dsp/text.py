"""Text normalisation for rapping: numbers spoken, symbols dropped, lines split into bars."""
from __future__ import annotations

import functools
import re
import unicodedata

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen "
    "fourteen fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ((10**9, "billion"), (10**6, "million"), (1000, "thousand"), (100, "hundred"))
_ORDINAL_IRREGULAR = {
    "one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
    "nine": "ninth", "twelve": "twelfth",
}
_SYMBOL_WORDS = {"&": "and", "%": "percent", "+": "plus", "@": "at", "=": "equals"}

# A number token: optional $, digits with optional thousands commas and decimals,
# optional ordinal suffix or %.
_NUMBER = re.compile(r"(\$)?(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?(st|nd|rd|th|s)?(%)?", re.IGNORECASE)
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)*'?", re.IGNORECASE)


def number_to_words(n: int) -> str:
    """Spell a non-negative integer in English: 1994 -> 'one thousand nine hundred ninety four'."""
    if n < 0:
        return "minus " + number_to_words(-n)
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + ("" if ones == 0 else " " + _ONES[ones])
    for scale, name in _SCALES:
        if n >= scale:
            head, rest = divmod(n, scale)
            words = number_to_words(head) + " " + name
            return words if rest == 0 else words + " " + number_to_words(rest)
    raise AssertionError("unreachable")


def _year_or_number(digits: str) -> str:
    n = int(digits)
    # Four-digit years are said in pairs: 1994 -> nineteen ninety four; 2000-2009 stay whole.
    if len(digits) == 4 and 1100 <= n <= 2099 and not 2000 <= n <= 2009:
        hi, lo = divmod(n, 100)
        return number_to_words(hi) + (" hundred" if lo == 0 else (" oh " if lo < 10 else " ") + number_to_words(lo))
    return number_to_words(n)


def _ordinal(words: str) -> str:
    head, _, last = words.rpartition(" ")
    if last in _ORDINAL_IRREGULAR:
        last = _ORDINAL_IRREGULAR[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return (head + " " + last).strip()


def _speak_number(m: re.Match) -> str:
    dollar, digits, decimals, suffix, percent = m.groups()
    digits = digits.replace(",", "")
    words = _year_or_number(digits) if not dollar and "," not in m.group(2) else number_to_words(int(digits))
    suffix = (suffix or "").lower()
    if suffix in ("st", "nd", "rd", "th"):
        words = _ordinal(number_to_words(int(digits)))
    elif suffix == "s":  # the 90s -> nineties
        words = _ordinal(words)[:-2] + "s" if words.endswith("y") else words + "s"
        words = words.replace("ieths", "ies")
    if decimals:
        words += " point " + " ".join(_ONES[int(d)] for d in decimals)
    if dollar:
        words += " dollar" if int(digits) == 1 and not decimals else " dollars"
    if percent:
        words += " percent"
    return f" {words} "


def normalize_words(text: str) -> list[str]:
    """Lower-case words to speak, in order: numbers spelled out, symbols and emoji dropped.

    >>> normalize_words("I got 99 problems & 2 cars!")
    ['i', 'got', 'ninety', 'nine', 'problems', 'and', 'two', 'cars']
    """
    return list(_normalize(text))


@functools.lru_cache(maxsize=2048)  # the writer and critic see the same bars many times (bounded: ~2 KB a bar with phonetics._words)
def _normalize(text: str) -> tuple[str, ...]:
    text = text.replace("\u2019", "'").replace("\u2018", "'")
    # Accented Latin letters keep their base letter (café -> cafe); other scripts drop out.
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    text = _NUMBER.sub(_speak_number, text)
    for sym, word in _SYMBOL_WORDS.items():
        text = text.replace(sym, f" {word} ")
    words = []
    for m in _WORD.finditer(text):
        word = m.group(0).lower()
        # Quotes around a word are not apostrophes; g-dropping ("flexin'") keeps its mark.
        word = word.lstrip("'")
        if word.endswith("'") and not word.endswith("in'"):
            word = word.rstrip("'")
        if word:
            words.append(word)
    return tuple(words)


def split_bars(text: str) -> list[str]:
    """Split a verse into bars on newlines or ' / '; blank bars are dropped."""
    parts = re.split(r"\s+/\s+|\n|\s/$|^/\s", text.strip())
    return [p.strip() for p in parts if p.strip()]
