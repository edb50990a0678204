"""Anchors: the opponent's words worth attacking — names, places, objects, claims — ranked.

Works on words with optional confidences (from a recognizer) or on plain text (all
confidence 1). No tagger: a word is a candidate when it is not a function word, a
pronoun, a filler or a common verb; it scores higher when it is capitalised inside a
bar (a name or a place), ends a bar (the rhyme word the crowd heard loudest), is
long, or is repeated. Words below `min_confidence` are never trusted.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from dsp.text import normalize_words, split_bars

# Function words, pronouns, fillers and the commonest verbs/adverbs: never anchors.
STOPWORDS = frozenset("""
a an the and or but nor so yet for of to in on at by with from into onto upon over under about above
below between through during before after against without within around off out up down than then
as if when while where because though although till until since once just only also too very even
still ever never always again here there now
i me my mine myself you your yours yourself we us our ours he him his she her hers it its they them
their theirs this that these those who whom whose which what whatever whoever anybody anyone someone
somebody something anything everything nothing everyone everybody nobody none all any each every both
either neither some many much more most less least few other another such same own
am is are was were be been being do does did done doing have has had having will would shall should
can could may might must ought cannot can't won't don't doesn't didn't isn't aren't wasn't weren't
haven't hasn't hadn't wouldn't shouldn't couldn't ain't i'm you're he's she's it's we're they're i've
you've we've they've i'd you'd he'd she'd we'd they'd i'll you'll he'll she'll we'll they'll that's
there's what's who's let's y'all gonna wanna gotta
get gets got getting gotten go goes went gone going come comes came coming make makes made making
take takes took taking give gives gave giving say says said saying tell tells told know knows knew
think thinks thought see sees saw seen look looks looked want wants wanted need needs needed like
likes liked keep keeps kept let lets put puts call calls called try tries tried feel feels felt
leave leaves left bring brings brought stay stays stayed turn turns run runs ran talk talks talking
act acts play plays played show shows showed use used way ways thing things stuff lot lots kind
yeah yo uh um oh ah hey okay ok man bro dude like really right well huh nah yep
not no yes one two three first last next back new old big little good bad best worse worst better
""".split())

NAME_BONUS = 2.0  # capitalised inside a bar: a name or a place
END_BONUS = 1.5  # the last content word of a bar
REPEAT_BONUS = 0.75  # each further mention
LENGTH_WEIGHT = 0.15  # per letter beyond four: long words are specific


@dataclass(frozen=True)
class HeardWord:
    """A word as heard: its spelling, the bar it came in, its time (s) and recognizer confidence."""

    text: str
    bar: int = 0
    start_s: float | None = None
    confidence: float = 1.0


@dataclass(frozen=True)
class Anchor:
    """One attackable word: normalised text, score, how it was said (bar, time, as a name)."""

    text: str
    score: float
    bar: int
    start_s: float | None
    is_name: bool
    at_bar_end: bool


def heard_words(text: str) -> list[HeardWord]:
    """Words of a verse given as text (bars split on newlines or ' / '), each fully trusted."""
    out = []
    for b, bar in enumerate(split_bars(text)):
        out += [HeardWord(w, b) for w in re.findall(r"[A-Za-z0-9][\w'’-]*", bar)]
    return out


def rank(words: Sequence[HeardWord], min_confidence: float = 0.6, top: int | None = None) -> list[Anchor]:
    """Candidate anchors, best first. Capitalisation of each word's spelling marks names;
    the first word of a bar is capitalised by habit, so it does not count as a name."""
    best: dict[str, Anchor] = {}
    counts: dict[str, int] = {}
    last_content: dict[int, int] = {}
    first_of_bar: set[int] = set()
    seen_bars: set[int] = set()
    normed: list[str | None] = []
    for i, w in enumerate(words):
        if w.bar not in seen_bars:
            seen_bars.add(w.bar)
            first_of_bar.add(i)
        spoken = normalize_words(w.text)
        t = spoken[0] if len(spoken) == 1 else None
        ok = (t is not None and w.confidence >= min_confidence and t not in STOPWORDS
              and len(t) > 2 and not t.isdigit())
        normed.append(t if ok else None)
        if ok:
            last_content[w.bar] = i
            counts[t] = counts.get(t, 0) + 1
    for i, (w, t) in enumerate(zip(words, normed)):
        if t is None:
            continue
        is_name = w.text[:1].isupper() and i not in first_of_bar and w.text.lower() != "i"
        at_end = last_content.get(w.bar) == i
        score = (1.0 + NAME_BONUS * is_name + END_BONUS * at_end
                 + LENGTH_WEIGHT * max(0, len(t) - 4) + REPEAT_BONUS * (counts[t] - 1))
        score *= w.confidence
        if t not in best or score > best[t].score:
            best[t] = Anchor(t, round(score, 4), w.bar, w.start_s, is_name, at_end)
    ranked = sorted(best.values(), key=lambda a: (-a.score, a.bar, a.text))
    return ranked[:top] if top is not None else ranked
