"""Training examples for the lyric model, built from the corpus.

Every bar of the corpus becomes one example: the request it answers (budget =
its own syllables, rhyme word = its partner's end word, anchor = an opponent word
it uses) and its words. Comebacks see the opponent's couplet; opponent bars and
verse bars see their own earlier bar. A second copy of each bar with the anchor or
the tactics left out teaches the model to write when the plan says less.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from dsp import phonetics
from dsp.anchors import heard_words, rank
from models_onnx import rhyme
from models_onnx.corpus import Corpus
from models_onnx.corpus.lint import anchor_in
from models_onnx.prompt import BarRequest


@dataclass(frozen=True)
class Example:
    request: BarRequest
    bar: str


def _end_word(bar: str) -> str | None:
    ws = rhyme.end_words(bar, 1)
    return ws[-1].text if ws else None


def _own_anchor(bar: str, rng: random.Random) -> str | None:
    """A content word of the bar itself, to teach placing a word we are given."""
    ranked = [a.text for a in rank(heard_words(bar)) if not a.at_bar_end]
    return rng.choice(ranked[:3]) if ranked else None


def bar_examples(opponent: tuple[str, ...], bars: tuple[str, ...], tactics: tuple[str, ...],
                 anchors: tuple[str, ...], rng: random.Random) -> list[Example]:
    out = []
    for i, bar in enumerate(bars):
        previous = bars[i - 1] if i else None
        if i % 2 == 1:
            rhyme_word = _end_word(bars[i - 1])
        else:  # the first bar of a couplet: rhymes with the opponent's end if it flips it
            last = _end_word(opponent[-1]) if opponent else None
            rhyme_word = last if last and rhyme.grade(bar, last) != rhyme.NONE else None
        if rhyme_word and rhyme.grade(bar, rhyme_word) == rhyme.NONE:
            rhyme_word = None  # a couplet the phonetics cannot confirm: no rhyme promise
        anchor = next((a for a in anchors if anchor_in(a, bar)), None) or _own_anchor(bar, rng)
        n = phonetics.syllable_count(bar)
        out.append(Example(BarRequest(opponent, previous, n, tactics, rhyme_word, anchor), bar))
        out.append(Example(BarRequest(opponent, previous, n, (), rhyme_word,
                                      anchor if rng.random() < 0.5 else None), bar))
    return out


def examples(corpus: Corpus, seed: int = 0) -> list[Example]:
    """All examples of a corpus split, in a fixed order for a seed."""
    rng = random.Random(seed)
    out: list[Example] = []
    for e in corpus.exchanges:
        out += bar_examples((), e.opponent, (), (), rng)
        out += bar_examples(e.opponent, e.comeback, e.tactics, e.anchors, rng)
    for v in corpus.verses:
        out += bar_examples((), v.bars, (), (), rng)
    return out


def comeback_examples(exchanges) -> list[Example]:
    """Comeback bars asked for the way the training bars were (full plan)."""
    rng = random.Random(12345)
    out = []
    for e in exchanges:
        out += bar_examples(e.opponent, e.comeback, e.tactics, e.anchors, rng)[::2]
    return out


def heldout_examples(corpus: Corpus) -> list[Example]:
    """The benchmark's held-out comebacks (never used to train or to choose a checkpoint)."""
    return comeback_examples(corpus.heldout())
