"""General English, as a prior beside the lyric model: word-pair log-probabilities.

Our model learns from 11,520 bars; it learns which words go with a rhyme, but not
much English (held-out perplexity ~59; "you're it on the night"). pocketsphinx, a
runtime dependency already, ships a US English trigram model estimated from far more
text (72,547 words, 2.05 M word pairs). Its word pairs over our vocabulary are kept
here, and the decoder adds them to the model's logits with a weight (shallow fusion,
Gulcehre et al., 2015): the model plans the rhyme and the content, English votes on
which word may stand next to which.

What is added is the association of a word with its neighbour, log P(w, n) / P(w) P(n)
(pointwise mutual information), not the words' own frequencies, which the model has
learned already. It is symmetric, so right to left (the decoder picks the word *before*
the one it wrote last, r) it is log P(r | w) - log P(r) from the forward model's pairs,
backed off to bo(w) where the model holds no pair; the bar's last word is scored with
r = </s>. Left to right it is log P(w | l) - log P(w).

    python -m models_onnx.english_prior   # rebuild the table for the shipped model's vocabulary
"""
from __future__ import annotations

import functools
import json
import math
import sys
from collections import OrderedDict
from pathlib import Path
from typing import Iterable

import numpy as np

PRIOR_PATH = Path(__file__).parent / "english_pairs.npz"
LN_LOGMATH = math.log(1.0001)  # pocketsphinx's log base: its integer scores * this = natural log
MISSING = -536870912  # pocketsphinx's log of zero (a word it does not know)


@functools.lru_cache(maxsize=1)
def _lm():
    import os

    import pocketsphinx

    path = os.path.join(os.path.dirname(pocketsphinx.__file__), "model", "en-us", "en-us.lm.bin")
    return pocketsphinx.NGramModel.readfile(path), path


def build(words: list[str], path: Path = PRIOR_PATH, progress: bool = True) -> dict:
    """The table for `words` (a tokenizer's vocabulary), from pocketsphinx's en-us model:
    each word's unigram and back-off weight, and every pair the model holds explicitly
    (not backed off). Returns counts for the record."""
    lm, source = _lm()
    cols = [*words, "</s>"]
    uni_raw = np.array([lm.prob([w]) for w in cols], dtype=np.int64)
    known = uni_raw != MISSING
    known_cols = np.flatnonzero(known)
    row_ptr, col, logp, bo = [0], [], [], np.zeros(len(words), dtype=np.float32)
    carriage, end = ("\r", "") if sys.stderr.isatty() else ("", "\n")  # in place on a terminal, lines in a log
    for i, w in enumerate(words):
        if known[i]:
            row = np.array([lm.prob([cols[j], w]) for j in known_cols], dtype=np.int64)
            # a pair the model lacks is backed off: log P(r | w) = bo(w) + log P(r); bo(w)
            # is then the most common difference (give or take pocketsphinx's rounding of
            # its integer logs), and every other pair is one the model holds
            diff = row - uni_raw[known_cols]
            values, counts = np.unique(diff, return_counts=True)
            b = values[counts.argmax()]
            bo[i] = b * LN_LOGMATH
            explicit = np.abs(diff - b) > 2
            col += known_cols[explicit].tolist()
            logp += (row[explicit] * LN_LOGMATH).tolist()
        row_ptr.append(len(col))
        if progress and (i % 500 == 0 or i == len(words) - 1):
            print(f"{carriage}english prior: {i + 1}/{len(words)} words, {len(col):,} pairs", end=end,
                  file=sys.stderr, flush=True)
    if progress and carriage:
        print(file=sys.stderr)
    uni = np.where(known, uni_raw * LN_LOGMATH, np.nan).astype(np.float32)
    tmp = path.with_suffix(".part.npz")
    np.savez_compressed(tmp, words=np.array(json.dumps(words)), unigram=uni, backoff=bo,
                        row_ptr=np.array(row_ptr, dtype=np.int32), col=np.array(col, dtype=np.uint16),
                        logp=np.array(logp, dtype=np.float16),
                        source=np.array(f"pocketsphinx {Path(source).name}"))
    tmp.replace(path)
    return {"words": len(words), "known": int(known[:-1].sum()), "pairs": len(col)}


class EnglishPrior:
    """How strongly general English ties each word to its neighbour, over a tokenizer's
    vocabulary: the pointwise mutual information log P(w, n) / (P(w) P(n)) of word w
    beside neighbour n, (V,) float32 in natural-log units. `backward(r)`: w written
    before r (right to left); `forward(l)`: w after l. Only the association is added to
    the model: how common a word is, the model knows already (adding English's unigrams
    too made held-out perplexity worse). Words English lacks, the tokens that spell a
    word, and a neighbour English lacks, get 0: no say."""

    def __init__(self, tok, path: Path = PRIOR_PATH, cache: int = 64):
        data = np.load(path)
        words = json.loads(str(data["words"]))
        V = len(tok)
        ids = np.array([tok.stoi.get(w, -1) for w in words], dtype=np.int32)
        uni, bo = data["unigram"], data["backoff"]
        known = (ids >= 0) & ~np.isnan(uni[:-1])
        self.known = np.zeros(V, dtype=bool)
        self.known[ids[known]] = True
        # right to left, a pair English lacks: log P(r | w) - log P(r) = bo(w)
        self._backoff = np.zeros(V, dtype=np.float32)
        self._backoff[ids[known]] = bo[known]
        # pairs on token ids, int32 throughout (the table is half a million pairs)
        n, col = len(words), data["col"].astype(np.int32)
        first = np.repeat(np.arange(n, dtype=np.int32), np.diff(data["row_ptr"]))
        col_known = np.r_[known, True]  # the last column is </s>
        keep = known[first] & col_known[col]
        first, col = first[keep], col[keep]
        pmi = data["logp"][keep].astype(np.float32) - uni[col]  # log P(second | first) - log P(second)
        first_id = ids[first]
        second_id = np.r_[ids, np.int32(-1)][col]  # </s> -> -1 (self.end)
        del col, keep
        self._by_second = _group(second_id, first_id, pmi)
        fwd = second_id >= 0
        # forward, a pair English lacks scores bo(l) for every w alike: kept out (the softmax
        # does not see a constant), so a pair it holds scores its PMI less bo(l)
        self._by_first = _group(first_id[fwd], second_id[fwd], pmi[fwd] - bo[first[fwd]])
        self._zeros = np.zeros(V, dtype=np.float32)
        self._cache: OrderedDict = OrderedDict()
        self._cache_size = cache
        self.end = -1  # the neighbour of a bar's last word, right to left: </s>

    def backward(self, right: int | None) -> np.ndarray:
        """PMI of every token w with the word after it, `right` (self.end: the bar ends
        after w; None: a word English does not know)."""
        if right is None or (right != self.end and not self.known[right]):
            return self._zeros
        return self._cached(("b", right), lambda: self._backward(right))

    def forward(self, left: int | None) -> np.ndarray:
        """PMI of every token w with the word before it, `left` (None: no say), up to a
        constant the softmax does not see."""
        if left is None or not self.known[left]:
            return self._zeros
        return self._cached(("f", left), lambda: self._forward(left))

    def _backward(self, right):
        return _scattered(self._backoff, self._by_second.get(right))

    def _forward(self, left):
        return _scattered(self._zeros, self._by_first.get(left))

    def _cached(self, key, make):
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        value = make()
        self._cache[key] = value
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return value


def perplexity(model, examples, english_weight: float) -> float:
    """Per-token perplexity of `model` with English at `english_weight` on the bars of
    `examples` (their requests as prefixes), unconstrained; <eos> is left out (the
    decoder's syllable count decides it). Bars too long for the model are skipped."""
    from models_onnx.prompt import answer, prefix

    tok, prior, nll = model.tok, model.english, []
    for ex in examples:
        p, a = prefix(tok, ex.request, model.direction), answer(tok, ex.bar, model.direction)
        if len(p) + len(a) > model.block_size:
            continue
        logits = model.step(np.array([p + a[:-1]], dtype=np.int64), *model.empty_cache(1))[0][0, len(p) - 1:, 0]
        for j, t in enumerate(a[:-1]):
            z = logits[j]
            if english_weight and prior is not None:
                last = a[j - 1] if j else None
                last = last if last is None or tok.is_word(last) else None
                z = z + english_weight * (prior.backward(prior.end if j == 0 else last) if model.direction == "r2l"
                                          else prior.forward(last))
            z = z - z.max()
            nll.append(np.log(np.exp(z).sum()) - z[t])
    return float(np.exp(np.mean(nll)))


def english_perplexity(bars: Iterable[str], only: frozenset[str] | None = None) -> float:
    """Per-word perplexity of `bars` under pocketsphinx's US English trigram model (each
    bar a sentence, </s> included; words it does not know are skipped). Not a grade: it
    measures how common the word sequences are. Stock phrases score low, broken grammar
    and rare words high; people's comebacks sit near 360. `only`: score just these words
    (and </s>), each still given its two left neighbours: over function words it reads
    the glue between words, which rare content words hardly move (people's: ~54)."""
    from dsp.text import normalize_words

    lm, _ = _lm()
    total, n = 0.0, 0
    for bar in bars:
        words = ["<s>", *normalize_words(bar), "</s>"]
        for i in range(1, len(words)):
            if only is not None and words[i] not in only and words[i] != "</s>":
                continue
            score = lm.prob([words[i], *words[max(0, i - 2):i][::-1]])  # the word, then its history newest first
            if score > MISSING // 2:
                total, n = total + score * LN_LOGMATH, n + 1
    return math.exp(-total / n) if n else float("nan")


def _scattered(base: np.ndarray, pairs) -> np.ndarray:
    """A copy of `base` with `pairs` = (token ids, values) put in (None: a plain copy)."""
    out = base.copy()
    if pairs is not None:
        out[pairs[0]] = pairs[1]
    return out


def _group(keys: np.ndarray, values: np.ndarray, logp: np.ndarray) -> dict:
    order = np.argsort(keys, kind="stable")
    keys, values, logp = keys[order], values[order], logp[order]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    ends = np.r_[starts[1:], len(keys)]
    return {int(keys[s]): (values[s:e], logp[s:e]) for s, e in zip(starts, ends)}


def main() -> int:
    from models_onnx.lyric_model import MODEL_PATH, LyricModel

    model = LyricModel(MODEL_PATH, english=False)
    stats = build(model.tok.itos[model.tok.first_word:])
    print(f"{PRIOR_PATH.name}: {stats['known']} of {stats['words']} words known to English, "
          f"{stats['pairs']:,} pairs, {PRIOR_PATH.stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
