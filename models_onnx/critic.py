"""The critic: scores a candidate bar in its context, the way a battle judge would.

Each score is a plain number the benchmark can average; `total` weighs them for
ranking candidates. What it checks:

- end rhyme with the partner bar (grade and how many syllables the match runs),
- the flip: does the bar end on one of the opponent's end-rhyme sounds,
- internal rhyme (rhyme density of the bar),
- meter: syllable count against the budget; stressed syllables on the flow's accents,
- grounding: the planned anchor, or any of the opponent's content words,
- novelty: the longest n-gram shared with the training corpus,
- repetition within the battle (n-grams and end words already used),
- clean mode (no profanity, never a slur).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from dsp import phonetics
from dsp.anchors import STOPWORDS
from dsp.flow import Flow, assign_steps
from dsp.text import normalize_words
from models_onnx import rhyme
from models_onnx.corpus.lint import PROFANITY, anchor_in, is_slur

MAX_NGRAM = 8  # shared n-grams are measured up to this length
NOVELTY_NGRAM = 6  # a bar sharing a 6-gram with the corpus is not novel
REPEAT_NGRAM = 4  # a bar sharing a 4-gram with earlier bars of the battle repeats itself

_GRADE_VALUE = {rhyme.PERFECT: 1.0, rhyme.SLANT: 0.85, rhyme.ASSONANCE: 0.7, rhyme.NONE: 0.0}


@dataclass(frozen=True)
class Context:
    """What a bar is judged against. Every field is optional: a missing one is not scored."""

    partner: str | None = None  # the bar this one must rhyme with
    opponent: tuple[str, ...] = ()  # the opponent's bars
    anchor: str | None = None  # the planned anchor
    budget: int | None = None  # planned syllable count
    flow: Flow | None = None  # for stresses on accents
    history: tuple[str, ...] = ()  # our earlier bars in this battle
    clean: bool = True


@dataclass(frozen=True)
class Score:
    rhyme_grade: int  # rhyme.PERFECT .. rhyme.NONE with the partner (NONE without one)
    rhyme_length: int  # syllables the end rhyme runs back
    flips: bool  # ends on an opponent end-rhyme sound
    internal: float  # rhyme density of the bar
    syllables: int
    syllables_exact: bool | None  # None without a budget
    stress_on_strong: float | None  # share of accent slots carrying a stressed syllable
    hits_anchor: bool | None  # None without a planned anchor
    grounded: bool  # the planned anchor, or any opponent content word
    corpus_ngram: int  # longest n-gram shared with the corpus (capped at MAX_NGRAM)
    repeat_ngram: int  # longest n-gram shared with earlier bars of the battle
    repeats_end_word: bool
    clean: bool
    total: float = field(default=0.0)

    @property
    def novel(self) -> bool:
        return self.corpus_ngram < NOVELTY_NGRAM


def ngrams(tokens: Sequence[str], n: int) -> Iterable[tuple[str, ...]]:
    return (tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def longest_shared(tokens: Sequence[str], index: Sequence[set]) -> int:
    """Longest n (<= len(index)) such that some n-gram of `tokens` is in index[n-1]."""
    best = 0
    for n in range(1, len(index) + 1):
        grams = index[n - 1]
        if any(hash(g) in grams for g in ngrams(tokens, n)):
            best = n
        else:
            break  # no shared n-gram means no shared longer one
    return best


def build_index(bars: Iterable[str], max_n: int = MAX_NGRAM) -> list[set]:
    """Hashed n-grams (n = 1..max_n) of every bar, for `longest_shared`."""
    index: list[set] = [set() for _ in range(max_n)]
    for bar in bars:
        toks = normalize_words(bar)
        for n in range(1, max_n + 1):
            index[n - 1].update(hash(g) for g in ngrams(toks, n))
    return index


def stress_on_strong(bar: str, flow: Flow) -> float | None:
    """Share of the flow's accent (X) slots that the bar fills with a stressed syllable,
    among the accent slots it fills at all. None when the bar does not fit the flow."""
    sylls = [s for w in phonetics.words(bar) for s in w.syllables]
    try:
        steps = assign_steps([s.stress for s in sylls], flow)
    except ValueError:
        return None
    on_accent = [s.stress > 0 for s, j in zip(sylls, steps) if flow.pattern[j] == "X"]
    return sum(on_accent) / len(on_accent) if on_accent else None


def content_words(bars: Iterable[str]) -> set[str]:
    return {w for b in bars for w in normalize_words(b) if w not in STOPWORDS and len(w) > 2}


class _Judged:
    """What a context contributes to every bar scored against it, worked out once."""

    def __init__(self, ctx: Context):
        self.partner_ends = rhyme.end_words(ctx.partner) if ctx.partner else None
        self.opponent_ends = [rhyme.end_words(o) for o in ctx.opponent]
        self.opponent_words = content_words(ctx.opponent)
        self.history_index = build_index(ctx.history, REPEAT_NGRAM) if ctx.history else None
        self.history_ends = {w for h in ctx.history for w in normalize_words(h)[-1:]}


class Critic:
    """Scores bars; holds the corpus n-gram index for novelty and its word counts (build it once)."""

    def __init__(self, corpus_bars: Iterable[str] = ()):
        bars = list(corpus_bars)
        self.index = build_index(bars)
        # how often people use each word: the writer's yardstick for words it overuses
        self.word_counts = Counter(w for b in bars for w in normalize_words(b))

    def score(self, bar: str, ctx: Context = Context()) -> Score:
        return self.score_all([bar], ctx)[0]

    def score_all(self, bars: Sequence[str], ctx: Context = Context()) -> list[Score]:
        """`score` for each of `bars` (candidates for one slot: the context is read once)."""
        judged = _Judged(ctx)
        return [self._score(bar, ctx, judged) for bar in bars]

    def _score(self, bar: str, ctx: Context, judged: _Judged) -> Score:
        toks = normalize_words(bar)
        ends = rhyme.end_words(bar)
        partner = judged.partner_ends
        grade = rhyme.grade(ends, partner) if partner is not None else rhyme.NONE
        length = rhyme.length(ends, partner) if partner is not None else 0
        flips = any(rhyme.grade(ends, o) != rhyme.NONE for o in judged.opponent_ends)
        n_syll = phonetics.syllable_count(bar)
        hits = anchor_in(ctx.anchor, bar) if ctx.anchor else None
        grounded = bool(hits) or bool(judged.opponent_words & set(toks))
        repeat = longest_shared(toks, judged.history_index) if judged.history_index else 0
        end_word = toks[-1] if toks else ""
        repeats_end = end_word in judged.history_ends
        clean = not any(is_slur(w) or (ctx.clean and w in PROFANITY) for w in toks)
        s = Score(
            rhyme_grade=grade, rhyme_length=length, flips=flips,
            internal=phonetics.rhyme_density(bar) if toks else 0.0,
            syllables=n_syll,
            syllables_exact=(n_syll == ctx.budget) if ctx.budget is not None else None,
            stress_on_strong=stress_on_strong(bar, ctx.flow) if ctx.flow else None,
            hits_anchor=hits, grounded=grounded,
            corpus_ngram=longest_shared(toks, self.index), repeat_ngram=repeat,
            repeats_end_word=repeats_end, clean=clean)
        return _with_total(s, ctx)


def _with_total(s: Score, ctx: Context) -> Score:
    total = 0.0
    if ctx.partner:
        total += 3.0 * _GRADE_VALUE[s.rhyme_grade] + 0.3 * max(0, s.rhyme_length - 1)
    total += 1.0 * s.flips + 0.5 * s.internal
    if ctx.budget is not None:
        total += 2.0 if s.syllables_exact else -0.5 * abs(s.syllables - ctx.budget)
    if s.stress_on_strong is not None:
        total += 1.0 * s.stress_on_strong
    total += 1.5 * bool(s.hits_anchor) + 0.5 * s.grounded
    total -= 2.0 * (not s.novel) + 2.0 * (s.repeat_ngram >= REPEAT_NGRAM) + 1.0 * s.repeats_end_word
    total -= 10.0 * (not s.clean)
    return Score(**{**s.__dict__, "total": round(total, 4)})
