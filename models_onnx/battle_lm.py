"""A word trigram language model of battle bars, for the recogniser (ARPA text).

pocketsphinx's own model knows news English; ours knows how battle bars go, which
biases recognition toward the words and phrases an opponent actually uses. Built
from the corpus's training split only (`python -m models_onnx.battle_lm`), so the
listening benchmark, which raps held-out bars, is not scored on text it has seen.
Backoff with absolute discounting; trigrams seen once are pruned to keep it small.
"""
from __future__ import annotations

import math
from collections import Counter, defaultdict
from pathlib import Path

from dsp.text import normalize_words

LM_PATH = Path(__file__).with_name("battle.lm")
DISCOUNT = 0.7
MIN_TRIGRAM_COUNT = 2


def sentences(bars: list[str]) -> list[list[str]]:
    return [["<s>", *words, "</s>"] for words in (normalize_words(b) for b in bars) if words]


def _log10(p: float) -> float:
    return math.log10(max(p, 1e-99))


def build_arpa(bars: list[str], known: set[str] | None = None) -> str:
    """The ARPA text of a backoff trigram model of `bars` (words outside `known` dropped)."""
    sents = sentences(bars)
    if known is not None:
        sents = [[w for w in s if w in known or w in ("<s>", "</s>")] for s in sents]
    c1, c2, c3 = Counter(), Counter(), Counter()
    for s in sents:
        c1.update(s)
        c2.update(zip(s, s[1:]))
        c3.update(zip(s, s[1:], s[2:]))
    c3 = Counter({k: v for k, v in c3.items() if v >= MIN_TRIGRAM_COUNT})
    total = sum(v for w, v in c1.items() if w != "<s>")
    p1 = {w: (c1[w] / total if w != "<s>" else 0.0) for w in c1}

    def discounted(counts: Counter, context_len: int):
        by_ctx: dict[tuple, dict[str, int]] = defaultdict(dict)
        for gram, c in counts.items():
            by_ctx[gram[:context_len]][gram[-1]] = c
        return by_ctx

    def p_bigram(v: str, w: str) -> float:
        seen = bi.get((v,), {})
        if w in seen:
            return (seen[w] - DISCOUNT) / bi_tot[(v,)]
        return bo2.get((v,), 1.0) * p1.get(w, 0.0)

    bi = discounted(c2, 1)
    bi_tot = {ctx: sum(ws.values()) for ctx, ws in bi.items()}
    bo2 = {}
    for ctx, ws in bi.items():
        left = 1.0 - sum((c - DISCOUNT) / bi_tot[ctx] for c in ws.values())
        lower = 1.0 - sum(p1.get(w, 0.0) for w in ws)
        bo2[ctx] = left / lower if lower > 1e-12 else 1.0
    tri = discounted(c3, 2)
    # a trigram's context total counts every continuation, pruned ones too
    ctx_tot = Counter()
    for s in sents:
        ctx_tot.update(zip(s, s[1:-1]))  # every trigram context, pruned continuations too
    bo3 = {}
    for ctx, ws in tri.items():
        left = 1.0 - sum((c - DISCOUNT) / ctx_tot[ctx] for c in ws.values())
        lower = 1.0 - sum(p_bigram(ctx[1], w) for w in ws)
        bo3[ctx] = left / lower if lower > 1e-12 else 1.0

    lines = ["\\data\\", f"ngram 1={len(c1)}", f"ngram 2={len(c2)}", f"ngram 3={len(c3)}", "", "\\1-grams:"]
    for w in sorted(c1):
        prob = -99.0 if w == "<s>" else _log10(p1[w])
        lines.append(f"{prob:.4f}\t{w}\t{_log10(bo2.get((w,), 1.0)):.4f}")
    lines += ["", "\\2-grams:"]
    for (v, w) in sorted(c2):
        prob = (c2[(v, w)] - DISCOUNT) / bi_tot[(v,)]
        lines.append(f"{_log10(prob):.4f}\t{v} {w}\t{_log10(bo3.get((v, w), 1.0)):.4f}")
    lines += ["", "\\3-grams:"]
    for (a, b, w) in sorted(c3):
        lines.append(f"{_log10((c3[(a, b, w)] - DISCOUNT) / ctx_tot[(a, b)]):.4f}\t{a} {b} {w}")
    lines += ["", "\\end\\", ""]
    return "\n".join(lines)


def recognizer_words() -> set[str]:
    """Words the recogniser's pronouncing dictionary holds."""
    from pocketsphinx import get_model_path

    words = set()
    with open(Path(get_model_path()) / "en-us" / "cmudict-en-us.dict", encoding="utf-8") as f:
        for line in f:
            w = line.split(" ", 1)[0]
            words.add(w.split("(", 1)[0])
    return words


def main() -> None:
    from models_onnx.corpus import load

    text = build_arpa(load().train().bars(), recognizer_words())
    tmp = LM_PATH.with_suffix(".part")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(LM_PATH)
    print(f"wrote {LM_PATH} ({LM_PATH.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
