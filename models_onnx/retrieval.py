"""The retrieval baseline: answer with the best-fitting couplet from the training corpus.

This is the yardstick the model must beat. It rhymes and scans (people wrote it),
but it can only answer an opponent with somebody else's comeback: grounding is
luck and novelty is zero by construction. The benchmark reports it beside the model.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from dsp import phonetics
from dsp.text import normalize_words
from models_onnx import rhyme
from models_onnx.corpus import Corpus
from models_onnx.corpus.lint import stem
from models_onnx.critic import Context, Critic, content_words
from models_onnx.planner import Plan

SHORTLIST = 24  # couplets scored by the critic after the cheap prefilter


@dataclass(frozen=True)
class _Couplet:
    bars: tuple[str, str]
    stems: frozenset[str]
    end_vowels: tuple[str, ...]  # vowels of the rhyme key of the last bar's end word
    syllables: tuple[int, int]


def _end_vowels(bar: str) -> tuple[str, ...]:
    ws = rhyme.end_words(bar, 1)
    key = phonetics.rhyme_key(ws[-1]) if ws else ()
    return tuple(p for p in key if p in phonetics.VOWELS)


class RetrievalWriter:
    name = "retrieval"

    def __init__(self, corpus: Corpus, critic: Critic):
        self.critic = critic
        pairs = [e.comeback for e in corpus.exchanges]
        pairs += [p for v in corpus.verses for p in (v.bars[:2], v.bars[2:])]
        self.pool = [
            _Couplet((a, b), frozenset(stem(w) for w in normalize_words(a + " " + b)), _end_vowels(b),
                     (phonetics.syllable_count(a), phonetics.syllable_count(b)))
            for a, b in pairs]

    def write(self, plan: Plan, opponent: Sequence[str], history: Sequence[str] = ()) -> list[str]:
        out: list[str] = []
        used: set[int] = set()
        opp_stems = {stem(w) for w in content_words(opponent)}
        for i in range(0, len(plan.bars), 2):
            pair = plan.bars[i:i + 2]
            want_vowels = tuple(p for p in pair[0].rhyme_key if p in phonetics.VOWELS)
            anchors = {stem(b.anchor) for b in pair if b.anchor}

            def quick(k: int) -> float:
                c = self.pool[k]
                return (3.0 * (bool(want_vowels) and c.end_vowels == want_vowels)
                        + 2.0 * len(anchors & c.stems) + 0.5 * len(opp_stems & c.stems)
                        - 0.2 * sum(abs(n - b.syllables) for n, b in zip(c.syllables, pair)))

            shortlist = sorted((k for k in range(len(self.pool)) if k not in used), key=quick, reverse=True)
            best_k, best_total = None, float("-inf")
            for k in shortlist[:SHORTLIST]:
                total = 0.0
                for j, (bar, bp) in enumerate(zip(self.pool[k].bars, pair)):
                    partner = self.pool[k].bars[0] if j == 1 else (bp.rhyme_word or None)
                    ctx = Context(partner=partner, opponent=tuple(opponent), anchor=bp.anchor,
                                  budget=bp.syllables, history=tuple([*history, *out]))
                    total += self.critic.score(bar, ctx).total
                if total > best_total:
                    best_k, best_total = k, total
            used.add(best_k)
            out += list(self.pool[best_k].bars[: len(pair)])
        return out
