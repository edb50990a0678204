"""The planner: from what the opponent said, a plan per bar of the comeback.

A plan fixes, per bar: the syllable budget and the stress grid (from the flow and
the opponent's cadence), the rhyme group and the sound to land on (their end
rhyme when we flip it), the anchor to hit and the tactic. It is pure, cheap
(re-run it as the opponent's words arrive) and deterministic for a seed.
"""
from __future__ import annotations

import random
import statistics
from dataclasses import dataclass
from typing import Sequence

from dsp import phonetics
from dsp.anchors import Anchor, HeardWord, heard_words, rank
from dsp.flow import Flow
from models_onnx import rhyme

SCHEMES = ("AABB", "ABAB", "AAAA")


@dataclass(frozen=True)
class BarPlan:
    index: int
    syllables: int  # exact budget
    pattern: str  # the flow's stress grid for this bar
    group: str  # rhyme group letter within the scheme
    rhyme_word: str | None  # a word carrying the sound to land on (None: the writer picks, partners follow)
    rhyme_key: tuple[str, ...]  # that sound (rhyme_key of rhyme_word), () when free
    anchor: str | None
    tactics: tuple[str, ...]


@dataclass(frozen=True)
class Plan:
    bars: tuple[BarPlan, ...]
    scheme: str
    anchors: tuple[Anchor, ...]
    opponent_end_words: tuple[str, ...]
    seed: int

    def partner_of(self, i: int) -> int | None:
        """The earlier bar that bar i must rhyme with (first bar of its group), or None."""
        for j in range(i):
            if self.bars[j].group == self.bars[i].group:
                return j
        return None


@dataclass(frozen=True)
class Style:
    scheme: str = "AABB"
    flip: bool = True  # land the first group on the opponent's end rhyme
    density: int = 0  # syllables added to (or taken from) the mirrored cadence


def _budget(opponent_bars: Sequence[str], flow: Flow, style: Style) -> int:
    """Mirror the opponent's syllables per bar, kept inside what the flow holds well."""
    counts = [phonetics.syllable_count(b) for b in opponent_bars if b.strip()]
    lo = sum(c in "Xx" for c in flow.pattern)
    hi = flow.capacity
    mirrored = round(statistics.median(counts)) if counts else lo + (hi - lo) // 2
    return max(lo, min(hi, mirrored + style.density))


def plan(opponent_bars: Sequence[str], n_bars: int, flow: Flow, style: Style = Style(), seed: int = 0,
         words: Sequence[HeardWord] | None = None) -> Plan:
    """Plan `n_bars` of comeback to `opponent_bars` (text; `words` adds recognizer confidences)."""
    if style.scheme not in SCHEMES:
        raise ValueError(f"unknown rhyme scheme {style.scheme!r}; use one of {', '.join(SCHEMES)}")
    rng = random.Random(seed)
    heard = list(words) if words is not None else heard_words("\n".join(opponent_bars))
    anchors = tuple(rank(heard))
    ends = []
    for b in opponent_bars:
        ws = rhyme.end_words(b, 1)
        if ws:
            ends.append(ws[-1].text)
    budget = _budget(opponent_bars, flow, style)
    groups = (style.scheme * ((n_bars + 3) // 4))[:n_bars]
    # Anchors spread over the bars, strongest first; a few bars free for a punchline.
    picks = list(anchors[: max(1, (n_bars + 1) // 2)])
    bars = []
    free_sound: dict[str, str | None] = {}
    for i, g in enumerate(groups):
        tactics: list[str] = []
        word = None
        if g not in free_sound:
            if g == "A" and style.flip and ends:
                word = ends[-1]
                tactics.append("flip-rhyme")
            free_sound[g] = word
        else:
            word = free_sound[g]
            if word is not None:
                tactics.append("flip-rhyme")
        anchor = None
        if picks and i % 2 == 0:
            anchor = picks.pop(0).text
            tactics.append("turn-anchor")
        if i == n_bars - 1 or (i % 2 == 1 and not anchor):
            tactics.append("punchline")
        # Vary the budget a syllable either way for breath, never below the accents.
        jitter = rng.choice((0, 0, 1, -1)) if i % 2 == 1 else 0
        n = max(sum(c in "Xx" for c in flow.pattern), min(flow.capacity, budget + jitter))
        bars.append(BarPlan(i, n, flow.pattern, g, word,
                            phonetics.rhyme_key(word) if word else (), anchor, tuple(tactics)))
    return Plan(tuple(bars), style.scheme, anchors, tuple(ends), seed)
