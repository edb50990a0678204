"""The writer: a plan in, bars out — the lyric model under constraints, ranked by the critic.

Per bar: one greedy candidate (self-speculative when the model has extra heads) and
a batch of sampled ones, all under the plan's constraints; the critic scores each
in context and the model's own confidence breaks near-ties.
"""
from __future__ import annotations

import re
from collections import Counter, defaultdict, deque
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from dsp import phonetics
from dsp.flow import Flow
from dsp.text import normalize_words
from models_onnx import decode, rhyme
from models_onnx.critic import Context, Critic, Score
from models_onnx.lyric_model import LyricModel
from models_onnx.planner import Plan
from models_onnx.prompt import BarRequest, bar_words, prefix


@dataclass(frozen=True)
class WriterSettings:
    # per bar: 1 greedy + (candidates - 1) sampled, decoded as one batch. 3 rather than 4:
    # 15 % faster, the same benchmark scores (docs/lyrics.md)
    candidates: int = 3
    temperature: float = 0.9
    top_k: int = 40
    lm_weight: float = 0.5  # weight of the model's mean log-probability beside the critic's total
    # weight of general English's word associations beside the model's logits
    # (models_onnx/english_prior.py; 0.5 is best on the validation split: per-token perplexity 71.3 -> 64.7)
    english_weight: float = 0.5
    # The greedy candidate by self-speculative decoding (same bar, its own calls) instead of
    # as a row of the sampling batch; off by default: on our model it saves ~5 % of calls
    # (docs/lyrics.md) and the batch row costs nothing extra.
    speculative: bool = False
    search: str = "sample"  # "sample": a greedy row + sampled rows; "beam": the most likely bars (repetitive)
    # The writer remembers the word pairs of its last `memory_bars` bars (across turns: a
    # night in `cypher serve`) and takes `repeat_penalty` per earlier use off their logits,
    # at most `repeat_cap` uses' worth: left alone it falls back on a few stock phrases
    # ("on the", "at night cause"); the cap keeps grammar's common pairs usable all night.
    # Beside the pairs, each word's uses against people's rate (`WordMemory`), `word_penalty`
    # per unit of log excess. `cypher bench lyrics` (284 exchanges in a row, 6 bars each),
    # distinct-2: pairs only, 1024 bars 0.68; with words at 5.0 and pairs at 1.5 0.80;
    # 2048 bars 0.86, function words still as predictable as people's (docs/lyrics.md).
    memory_bars: int = 2048
    repeat_penalty: float = 1.5
    repeat_cap: float = 4.0
    word_penalty: float = 5.0


@dataclass(frozen=True)
class Bar:
    text: str
    syllables: int
    end_word: str
    rhyme_key: tuple[str, ...]
    anchor: str | None
    score: Score


def _casing(opponent: Sequence[str]) -> dict[str, str]:
    """Names as the opponent wrote them (capitalised inside a bar), to throw back the same way."""
    out = {}
    for bar in opponent:
        for raw in re.findall(r"[A-Za-z][\w'’-]*", bar)[1:]:  # a bar's first word is capitalised by habit
            norm = normalize_words(raw)
            if len(norm) == 1 and raw[:1].isupper() and norm[0] != "i":
                out.setdefault(norm[0], raw.replace("’", "'"))
    return out


def to_text(words: list[str], casing: dict[str, str]) -> str:
    out = []
    for w in words:
        if w == "i" or w.startswith("i'"):
            w = "I" + w[1:]
        out.append(casing.get(w, w))
    if out:
        out[0] = out[0][:1].upper() + out[0][1:]
    return " ".join(out)


class PairMemory:
    """The word pairs of the last `bars` bars, read as `Constraints.avoid`: `get(word)` ->
    (the words written after it, `penalty` per earlier use, for at most `cap` uses). Kept
    as counts, updated as bars come and go, so a bar's lookups cost nothing to prepare."""

    def __init__(self, bars: int, penalty: float, cap: float = float("inf")):
        self.penalty, self.cap = penalty, cap
        self._bars: deque[list[tuple[int, int]]] = deque(maxlen=max(0, bars))
        self._next: defaultdict[int, Counter] = defaultdict(Counter)
        self._arrays: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def __bool__(self) -> bool:
        return bool(self._next) and bool(self.penalty)

    def clear(self) -> None:
        self._bars.clear()
        self._next.clear()
        self._arrays.clear()

    def add(self, pairs: list[tuple[int, int]]) -> None:
        if self._bars.maxlen == 0:
            return
        if len(self._bars) == self._bars.maxlen:
            self._count(self._bars[0], -1)
        self._bars.append(pairs)
        self._count(pairs, +1)

    def _count(self, pairs: list[tuple[int, int]], sign: int) -> None:
        for prev, nxt in pairs:
            after = self._next[prev]
            after[nxt] += sign
            if after[nxt] <= 0:
                del after[nxt]
                if not after:
                    del self._next[prev]
            self._arrays.pop(prev, None)

    def get(self, prev: int, default=((), ())):
        if prev not in self._next:
            return default
        if prev not in self._arrays:
            after = self._next[prev]
            uses = np.fromiter(after.values(), dtype=np.float32, count=len(after))
            self._arrays[prev] = (np.fromiter(after.keys(), dtype=np.int64, count=len(after)),
                                  np.minimum(uses, self.cap) * self.penalty)
        return self._arrays[prev]


class WordMemory:
    """Each word's uses in the last `bars` bars, against how often people use it:
    `penalty()` (V,) takes `weight` * log((uses + 1) / (expected uses + 1)) off every word
    used more often than its share of the corpus's words (`share`, (V,)) expects, and
    nothing off the rest, so common glue ("the", "you") stays free while a night's pet
    words ("crowd", "cause") wear out."""

    def __init__(self, bars: int, share: np.ndarray, weight: float):
        self.share, self.weight = share.astype(np.float32), np.float32(weight)
        self._bars: deque[np.ndarray] = deque(maxlen=max(0, bars))
        self._uses = np.zeros(len(share), dtype=np.float32)

    def __bool__(self) -> bool:
        return bool(self.weight) and bool(self._bars)

    def clear(self) -> None:
        self._bars.clear()
        self._uses[:] = 0

    def add(self, tokens: np.ndarray) -> None:
        if self._bars.maxlen == 0:
            return
        if len(self._bars) == self._bars.maxlen:
            np.subtract.at(self._uses, self._bars[0], 1)
        self._bars.append(tokens)
        np.add.at(self._uses, tokens, 1)

    def penalty(self) -> np.ndarray:
        expected = self.share * self._uses.sum()
        return self.weight * np.maximum(np.float32(0), np.log((self._uses + 1) / (expected + 1)))


def word_shares(tok, counts: Counter) -> np.ndarray:
    """(V,) each whole-word token's share of the words in `counts` (0 for the rest)."""
    share = np.zeros(len(tok), dtype=np.float64)
    for t, w in enumerate(tok.itos):
        if tok.is_word(t):
            share[t] = counts.get(w, 0)
    return share / max(1.0, share.sum())


class ModelWriter:
    name = "model"

    def __init__(self, model: LyricModel, critic: Critic, flow: Flow | None = None,
                 settings: WriterSettings = WriterSettings()):
        self.model, self.critic, self.flow, self.settings = model, critic, flow, settings
        self._recent = PairMemory(settings.memory_bars, settings.repeat_penalty, settings.repeat_cap)
        counts = critic.word_counts  # empty for a critic without a corpus: no yardstick, no word memory
        self._words = WordMemory(settings.memory_bars, word_shares(model.tok, counts), settings.word_penalty) \
            if counts and settings.word_penalty else None

    def forget(self) -> None:
        """Drop the memory of recent word pairs and words (a new night)."""
        self._recent.clear()
        if self._words is not None:
            self._words.clear()

    def _remember(self, tokens: list[int]) -> None:
        """Keep the bar's whole words, and their pairs in writing order (the first with
        START); letters of a spelled word are not a phrase, and break the chain."""
        tok, pairs, words, prev = self.model.tok, [], [], decode.START
        for t in tokens:
            if t == tok["<eos>"]:
                break
            if tok.is_word(t):
                words.append(t)
                if prev is not None:
                    pairs.append((prev, t))
                prev = t
            else:
                prev = None
        self._recent.add(pairs)
        if self._words is not None:
            self._words.add(np.array(words, dtype=np.int64))

    def write_bar(self, req: BarRequest, partner: str | None, history: Sequence[str], rng: np.random.Generator,
                  casing: dict[str, str], used_end_words: Sequence[str] = (),
                  shared: decode.PrefixCache | None = None) -> Bar:
        m, s = self.model, self.settings
        anchor_words = normalize_words(req.anchor) if req.anchor else []
        anchor_syll = sum(len(phonetics.word(w).syllables) for w in anchor_words)
        cons = decode.constraints(m, req.syllables, req.rhyme_word, anchor_words, anchor_syll, used_end_words,
                                  s.english_weight, self._recent or None,
                                  self._words.penalty() if self._words else None)
        ids = prefix(m.tok, req, m.direction)
        if s.speculative and m.n_future > 1:
            states = [decode.greedy_speculative(m, ids, cons)[0]]
            if s.candidates > 1:
                states += decode.sample(m, ids, cons, s.candidates - 1, s.temperature, s.top_k, rng)
        elif s.search == "beam":
            states = decode.beam(m, ids, cons, s.candidates)
        else:
            states = decode.sample(m, ids, cons, s.candidates, s.temperature, s.top_k, rng, greedy_rows=1,
                                   shared=shared)
        ctx = Context(partner=partner or req.rhyme_word, opponent=req.opponent, anchor=req.anchor,
                      budget=req.syllables, flow=self.flow, history=tuple(history))
        texts, kept, seen = [], [], set()
        for st in states:
            words = bar_words(m.tok, st.tokens, m.direction)
            key = " ".join(words)
            if not words or key in seen:
                continue
            seen.add(key)
            texts.append(to_text(words, casing))
            kept.append(st)
        best = None
        for text, st, score in zip(texts, kept, self.critic.score_all(texts, ctx)):
            rank = score.total + s.lm_weight * st.logp / max(1, len(st.tokens))
            if best is None or rank > best[0]:
                best = (rank, text, score, st.tokens)
        _, text, score, tokens = best
        self._remember(tokens)
        ends = rhyme.end_words(text, 1)
        end = ends[-1] if ends else None
        return Bar(text, score.syllables, end.text if end else "", rhyme.tail(end) if end else (), req.anchor, score)

    def write_bars(self, plan: Plan, opponent: Sequence[str], history: Sequence[str] = (),
                   seed: int | None = None) -> list[Bar]:
        rng = np.random.default_rng(plan.seed if seed is None else seed)
        casing = _casing(opponent)
        shared = decode.PrefixCache(self.model.tok["<prev>"])  # every bar reads the same opponent words first
        bars: list[Bar] = []
        for i, bp in enumerate(plan.bars):
            j = plan.partner_of(i)
            partner = bars[j].text if j is not None else None
            rhyme_word = bp.rhyme_word or (bars[j].end_word if j is not None else None)
            req = BarRequest(tuple(opponent), bars[-1].text if bars else None, bp.syllables, bp.tactics,
                             rhyme_word, bp.anchor)
            bars.append(self.write_bar(req, partner, [*history, *(b.text for b in bars)], rng, casing,
                                       [b.end_word for b in bars], shared))
        return bars

    def write(self, plan: Plan, opponent: Sequence[str], history: Sequence[str] = ()) -> list[str]:
        return [b.text for b in self.write_bars(plan, opponent, history)]
