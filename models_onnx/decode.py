"""Constrained decoding of one bar: exact syllables, the rhyme word, the anchor placed.

The constraints are masks over the vocabulary, recomputed from each candidate's
state at every token:

- syllables: a word may only take syllables that are left; <eos> only at exactly 0;
- rhyme: right-to-left, the first word must rhyme with the target; left-to-right,
  a word that would end the bar must rhyme, and room is kept for such a word;
- anchor: room is kept for it; it is forced in when the room left equals its size.

Candidates decode as one batch (one onnxruntime call per token for all of them).
`greedy_speculative` decodes one candidate greedily with self-speculative
decoding: the extra heads draft the next tokens, one call verifies them with the
next-token head, and every draft the next-token head agrees with is kept — the
output is the same as one token at a time, in fewer calls.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from dsp import phonetics
from dsp.text import normalize_words
from models_onnx import rhyme
from models_onnx.lyric_model import LyricModel

NEG = -1e9
RHYME_BONUS = {rhyme.PERFECT: 2.0, rhyme.SLANT: 1.0, rhyme.ASSONANCE: 0.0}
ANCHOR_BONUS = 2.0  # a nudge to place the anchor where the model likes it, before it is forced
REPEAT_PENALTY = 1.5  # a word already in this bar


@dataclass(frozen=True)
class Constraints:
    syllables: int
    direction: str  # "r2l" or "l2r"
    rhyme_grades: np.ndarray | None = None  # (V,) grade per token, None: free
    anchor: tuple[int, ...] = ()  # token ids in writing order
    anchor_syllables: int = 0
    min_last: int = 1  # fewest syllables of a word that can end the bar (a rhyming one, if asked)
    english_weight: float = 0.0  # weight of general English's word associations beside the model (shallow fusion)
    # word pairs to avoid: {word written last (START before the first): (next tokens, logit penalties)}
    avoid: dict = field(default_factory=dict)
    word_penalty: np.ndarray | None = None  # (V,) taken off every word's logit (the writer's overused words)


START = -1  # `Constraints.avoid`'s key for the bar's first word


@dataclass
class BarState:
    tokens: list[int] = field(default_factory=list)
    used: int = 0  # syllables written
    forced: list[int] = field(default_factory=list)  # tokens that must come next
    anchor_done: bool = False
    done: bool = False
    logp: float = 0.0
    spelling: str = ""  # letters of a spelled word in progress (its syllables count when it closes)

    def copy(self) -> "BarState":
        return BarState(list(self.tokens), self.used, list(self.forced), self.anchor_done, self.done, self.logp,
                        self.spelling)


def constraints(model: LyricModel, syllables: int, rhyme_word: str | None, anchor_words: list[str],
                anchor_syllables: int, used_end_words: Sequence[str] = (), english_weight: float = 0.0,
                avoid: dict | None = None, word_penalty: np.ndarray | None = None) -> Constraints:
    """`used_end_words`: words earlier bars ended on; a rhyme may not reuse them. `avoid`:
    see `Constraints.avoid` (the writer's memory of its own recent word pairs)."""
    rhyme_word = (normalize_words(rhyme_word) or [None])[-1] if rhyme_word else None
    grades = model.rhyme_grades(rhyme_word) if rhyme_word else None
    if grades is not None:
        for w in used_end_words:
            if w in model.tok.stoi:
                grades[model.tok.stoi[w]] = rhyme.NONE
    if grades is not None and not (grades > 0).any():
        grades = None  # nothing in the vocabulary rhymes: decode free rather than fail
    anchor = tuple(model.tok.encode(anchor_words if model.direction == "l2r" else anchor_words[::-1]))
    min_last = int(model.info.syllables[grades > 0].min()) if grades is not None else 1
    if anchor_syllables + min_last > syllables:
        anchor, anchor_syllables = (), 0  # cannot fit beside a rhyme word
    english_weight = english_weight if model.english is not None else 0.0
    return Constraints(syllables, model.direction, grades, anchor, anchor_syllables, min_last, english_weight,
                       avoid or {}, word_penalty)


class Masker:
    """Masks logits for one bar's constraints. The allowed set depends only on (syllables
    left, first word or not, anchor still owed), so each mask is built once per bar and
    reused by every candidate and step."""

    def __init__(self, model: LyricModel, cons: Constraints):
        self.model, self.cons = model, cons
        self.eos = model.tok["<eos>"]
        self.cache: dict[tuple[int, bool, bool], tuple[np.ndarray, np.ndarray] | int] = {}

    def _build(self, remaining: int, first: bool, need_anchor: bool):
        """(allowed (V,) bool, bonus (V,) float, its complement), or a single token id that must come now."""
        cons, info = self.cons, self.model.info
        syll = info.syllables
        ok = info.is_word & (syll <= remaining)
        rhyme_ok = cons.rhyme_grades > 0 if cons.rhyme_grades is not None else None
        if cons.direction == "r2l":
            if first and rhyme_ok is not None:
                ok &= rhyme_ok
            if need_anchor and not first:
                ok &= syll <= remaining - cons.anchor_syllables
        else:
            room = remaining - (cons.anchor_syllables if need_anchor else 0)
            keeps_room = syll <= room - cons.min_last
            may_end = (syll == remaining) & (rhyme_ok if rhyme_ok is not None else True) if not need_anchor else False
            ok &= keeps_room | may_end
        bonus = np.zeros(len(ok), dtype=np.float32) if cons.word_penalty is None else -cons.word_penalty
        if need_anchor:
            start = cons.anchor[0]
            fits = cons.direction == "l2r" or not first
            room_left = remaining - cons.anchor_syllables - (0 if cons.direction == "r2l" else cons.min_last)
            if fits and room_left <= 0:  # no room left for anything else: place it now
                return start
            if fits:
                ok[start] = True
                bonus[start] += ANCHOR_BONUS
        if first and cons.rhyme_grades is not None and cons.direction == "r2l":
            for grade, b in RHYME_BONUS.items():
                bonus[cons.rhyme_grades == grade] += b
        if not ok.any():
            return self.eos  # a dead end; the critic will reject the short bar
        return ok, bonus, ~ok

    def _english(self, state: BarState) -> np.ndarray:
        """General English's say on the next token, given the word written last (its
        right-hand neighbour when writing right to left)."""
        prior, tok = self.model.english, self.model.tok
        last = state.tokens[-1] if state.tokens else None
        if last is not None and not tok.is_word(last):
            last = None  # after a spelled word: English does not know it
        if self.cons.direction == "r2l":
            return prior.backward(prior.end if not state.tokens else last)
        return prior.forward(last)

    def __call__(self, state: BarState, logits: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """logits (V,) with everything the constraints forbid at this point set to NEG,
        written into `out` when given (the decoder's rows: no new arrays per token)."""
        out = np.empty_like(logits) if out is None else out
        remaining = self.cons.syllables - state.used
        if state.forced or remaining <= 0:
            only = state.forced[0] if state.forced else self.eos
        else:
            key = (remaining, not state.tokens, bool(self.cons.anchor) and not state.anchor_done)
            if key not in self.cache:
                self.cache[key] = self._build(*key)
            built = self.cache[key]
            if not isinstance(built, int):
                ok, bonus, barred = built
                if self.cons.english_weight:
                    np.multiply(self._english(state), self.cons.english_weight, out=out)
                    out += bonus
                    out += logits
                else:
                    np.add(logits, bonus, out=out)
                np.copyto(out, NEG, where=barred)
                if self.cons.avoid:
                    last = state.tokens[-1] if state.tokens else START
                    ids, penalty = self.cons.avoid.get(last, ((), ()))
                    if len(ids):
                        out[ids] -= penalty
                if state.tokens:
                    out[state.tokens] -= REPEAT_PENALTY
                return out
            only = built
        out.fill(NEG)
        out[only] = logits[only] if only != self.eos else 0.0
        return out


def advance(model: LyricModel, cons: Constraints, state: BarState, token: int, logp: float = 0.0) -> None:
    """Append `token` to a candidate and update its syllables, anchor and forced queue."""
    tok = model.tok
    state.logp += logp
    if token == tok["<eos>"]:
        state.done = True
        return
    state.tokens.append(token)
    if state.forced and state.forced[0] == token:
        state.forced.pop(0)
        if not state.forced:
            state.anchor_done = True
    elif cons.anchor and not state.anchor_done and token == cons.anchor[0]:
        state.forced = list(cons.anchor[1:])
        state.anchor_done = not state.forced
    state.used += int(model.info.syllables[token])
    if tok.is_letter(token):
        state.spelling += tok.itos[token][1:]
    elif token == tok.end_of_spelling:  # a spelled word closes: now its syllables are known
        state.used += len(phonetics.word(state.spelling).syllables) if state.spelling else 0
        state.spelling = ""


def choose(masked: np.ndarray, temperature: float, top_k: int, rng: np.random.Generator | None) -> tuple[int, float]:
    """A token from masked logits: the best at temperature 0, else sampled from the top_k."""
    top_value = masked.max()
    log_z = top_value + np.log(np.exp(masked - top_value).sum())
    if temperature <= 0 or rng is None:
        t = int(np.argmax(masked))
        return t, float(masked[t] - log_z)
    k = min(top_k, int((masked > NEG / 2).sum()))
    top = np.argpartition(-masked, k - 1)[:k] if k < len(masked) else np.arange(len(masked))
    p = np.exp((masked[top] - top_value) / temperature)
    t = int(top[rng.choice(k, p=p / p.sum())])
    return t, float(masked[t] - log_z)


def choose_rows(masked: np.ndarray, greedy: np.ndarray, temperature: float, top_k: int,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """`choose` for every row of masked logits (n, V) at once: row i greedy where
    greedy[i], else sampled from its top_k at `temperature` (by the Gumbel-max trick: the
    same distribution as drawing from the renormalised softmax). Returns tokens (n,) and
    their log-probabilities under the masked distribution (n,)."""
    top = masked.max(axis=1, keepdims=True)
    log_z = top[:, 0] + np.log(np.exp(masked - top).sum(axis=1))
    picks = masked.argmax(axis=1)
    if temperature > 0 and not greedy.all():
        k = min(top_k, masked.shape[1])
        idx = np.argpartition(-masked, k - 1, axis=1)[:, :k] if k < masked.shape[1] else \
            np.broadcast_to(np.arange(masked.shape[1]), masked.shape)
        vals = np.take_along_axis(masked, idx, axis=1)
        # forbidden tokens in the top k (fewer than k allowed) sit at NEG / temperature: never drawn
        gumbel = -np.log(-np.log(rng.uniform(1e-12, 1.0, size=vals.shape)))
        sampled = np.take_along_axis(idx, (vals / temperature + gumbel).argmax(axis=1)[:, None], axis=1)[:, 0]
        picks = np.where(greedy, picks, sampled)
    return picks, masked[np.arange(len(picks)), picks] - log_z


def max_tokens(cons: Constraints) -> int:
    return cons.syllables + len(cons.anchor) + 2


class PrefixCache:
    """The key/value cache of the longest prefix start seen so far that a new prefix
    shares up to a given token (the writer's bars share `<bos> <opp> ...opponent words`)."""

    def __init__(self, until_token: int | None = None):
        self.until = until_token
        self.ids: list[int] = []
        self.keys = self.values = None

    def run(self, model: LyricModel, prefix_ids: list[int]):
        """logits, keys, values after `prefix_ids`, reusing the shared start when it matches."""
        cut = prefix_ids.index(self.until) + 1 if self.until in prefix_ids else 0
        if cut and self.keys is not None and prefix_ids[:cut] == self.ids:
            keys, values = self.keys, self.values
        else:
            keys, values = model.empty_cache(1)
            if cut:
                _, keys, values = model.step(np.array([prefix_ids[:cut]], dtype=np.int64), keys, values)
                self.ids, self.keys, self.values = prefix_ids[:cut], keys, values
            else:
                cut = 0
        return model.step(np.array([prefix_ids[cut:]], dtype=np.int64), keys, values)


def sample(model: LyricModel, prefix_ids: list[int], cons: Constraints, n: int, temperature: float,
           top_k: int, rng: np.random.Generator, greedy_rows: int = 0, shared: "PrefixCache | None" = None
           ) -> list[BarState]:
    """`n` candidates decoded as one batch; the first `greedy_rows` greedily, the rest sampled.
    `shared` keeps the cache of a prefix start that several bars share (the opponent's words)."""
    logits, keys, values = (shared or PrefixCache()).run(model, prefix_ids)
    last = np.repeat(logits[:, -1, 0], n, axis=0)  # (n, V)
    keys, values = np.repeat(keys, n, axis=1), np.repeat(values, n, axis=1)
    states = [BarState() for _ in range(n)]
    eos = model.tok["<eos>"]
    mask = Masker(model, cons)
    greedy = np.arange(n) < greedy_rows
    rows = np.empty_like(last)  # the masked logits of the live candidates, rewritten every token
    for _ in range(max_tokens(cons)):
        nxt = np.full((n, 1), eos, dtype=np.int64)
        live = [i for i, s in enumerate(states) if not s.done]
        for j, i in enumerate(live):
            mask(states[i], last[i], out=rows[j])
        tokens, logps = choose_rows(rows[: len(live)], greedy[live], temperature, top_k, rng)
        for i, t, lp in zip(live, tokens.tolist(), logps.tolist()):
            advance(model, cons, states[i], t, lp)
            nxt[i, 0] = t
        if all(s.done for s in states):
            break
        logits, keys, values = model.step_bound(nxt, keys, values)
        last = logits[:, 0, 0]
    return states


def beam(model: LyricModel, prefix_ids: list[int], cons: Constraints, width: int) -> list[BarState]:
    """Beam search under the constraints: the `width` most likely bars (summed log-probability),
    best first. One batched model call per token, like `sample`."""
    keys, values = model.empty_cache(1)
    logits, keys, values = model.step(np.array([prefix_ids], dtype=np.int64), keys, values)
    last = logits[:, -1, 0]  # (beams, V)
    beams = [BarState()]
    mask = Masker(model, cons)
    eos = model.tok["<eos>"]
    finished: list[BarState] = []
    for _ in range(max_tokens(cons)):
        options = []  # (score, beam index, token, token logp)
        for i, b in enumerate(beams):
            masked = mask(b, last[i])
            top_value = masked.max()
            logp = masked - (top_value + np.log(np.exp(masked - top_value).sum()))
            k = min(width, int((masked > NEG / 2).sum()))
            for t in np.argpartition(-masked, k - 1)[:k]:
                options.append((b.logp + float(logp[t]), i, int(t), float(logp[t])))
        options.sort(key=lambda o: -o[0])
        nxt_beams, rows, toks = [], [], []
        for score, i, t, lp in options:
            st = beams[i].copy()
            advance(model, cons, st, t, lp)
            if st.done:
                finished.append(st)
            else:
                nxt_beams.append(st)
                rows.append(i)
                toks.append(t)
            if len(nxt_beams) == width:
                break
        if len(finished) >= width or not nxt_beams:
            break
        beams = nxt_beams
        keys, values = keys[:, rows], values[:, rows]
        logits, keys, values = model.step(np.array(toks, dtype=np.int64)[:, None], keys, values)
        last = logits[:, 0, 0]
    finished.sort(key=lambda st: -st.logp)
    return finished[:width] or beams[:width]


def greedy(model: LyricModel, prefix_ids: list[int], cons: Constraints) -> tuple[BarState, int]:
    """One token at a time, greedy; returns the bar and the number of model calls."""
    keys, values = model.empty_cache(1)
    logits, keys, values = model.step(np.array([prefix_ids], dtype=np.int64), keys, values)
    calls, state, last = 1, BarState(), logits[0, -1, 0]
    mask = Masker(model, cons)
    for _ in range(max_tokens(cons)):
        t, lp = choose(mask(state, last), 0.0, 1, None)
        advance(model, cons, state, t, lp)
        if state.done:
            break
        logits, keys, values = model.step(np.array([[t]], dtype=np.int64), keys, values)
        calls += 1
        last = logits[0, 0, 0]
    return state, calls


def greedy_speculative(model: LyricModel, prefix_ids: list[int], cons: Constraints) -> tuple[BarState, int]:
    """Greedy with self-speculative decoding; the same bar as `greedy`, and the calls it took."""
    keys, values = model.empty_cache(1)
    logits, keys, values = model.step(np.array([prefix_ids], dtype=np.int64), keys, values, drafts=True)
    calls, state = 1, BarState()
    heads = logits[0, -1]  # (n_future, V) at the last committed position
    budget = max_tokens(cons)
    mask = Masker(model, cons)
    while not state.done and len(state.tokens) < budget:
        # Draft: head 0 is exact; heads 1.. guess further ahead under the same constraints.
        drafts, draft_state = [], state.copy()
        for h in range(model.n_future):
            t, lp = choose(mask(draft_state, heads[h]), 0.0, 1, None)
            drafts.append((t, lp if h == 0 else 0.0))
            advance(model, cons, draft_state, t)
            if draft_state.done:
                break
        t0, lp0 = drafts[0]
        advance(model, cons, state, t0, lp0)
        if state.done:
            break
        feed = np.array([[t for t, _ in drafts if t != model.tok["<eos>"]]], dtype=np.int64)
        past = keys.shape[3]
        logits, keys2, values2 = model.step(feed, keys, values, drafts=True)
        calls += 1
        j = 0  # index in feed of the last accepted token
        while j + 1 < len(drafts):
            t, lp = choose(mask(state, logits[0, j, 0]), 0.0, 1, None)
            if t != drafts[j + 1][0]:
                break
            advance(model, cons, state, t, lp)
            if state.done:
                break
            j += 1
        keys, values = keys2[:, :, :, : past + j + 1], values2[:, :, :, : past + j + 1]
        heads = logits[0, j]
    return state, calls
