"""Keep the corpus honest: counts, duplicates, variety, pronunciation, rhymes, metadata, language.

    python -m models_onnx.corpus.lint                 # the whole corpus, with the totals
    python -m models_onnx.corpus.lint FILE.toml ...   # just these files (no totals)

Hard problems (each must be fixed) are listed per item; rhyme and tactic checks
are rates, because a hand-written slant rhyme can fool the phonetic test now and then.
"""
from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass, field
from pathlib import Path

from dsp import phonetics
from dsp.text import normalize_words
from models_onnx import rhyme
from models_onnx.corpus import Corpus, CorpusError, Exchange, load

MIN_EXCHANGES = 1200
MIN_BARS = 4000
MIN_TOPICS = 40
MIN_HELDOUT = 100
MIN_DISTINCT_BIGRAMS = 0.6
BIGRAM_CHUNK = 5000  # distinct-bigram ratio is measured per chunk of this many bigrams: size-independent
MIN_RATE = 0.9  # couplet rhymes, verified flips, verified anchor turns
BAR_SYLLABLES = (6, 20)

PROFANITY = frozenset(
    "fuck fucking fucked fucker fuckin motherfucker motherfuckers shit shits shitty bullshit "
    "bitch bitches ass asses asshole assholes bastard bastards dick dicks pussy cunt cunts piss pissed".split())
# Slurs are never allowed; stored as hashes so the list itself is not repeated here.
_SLUR_HASHES = frozenset(
    "044eb98b18769b88 08a841e996781e9e 0ce875d620076b53 120f6e5b4ea32f65 12e6274e4309293e "
    "158869a97379229b 16ea09fc78ca83ca 17bde8b4064612e2 1e02eec4f1095143 22fc75e65a0e9d34 "
    "268651b3ece98010 333f7618092958c7 341d56384afc0f47 402f7ebd98864afe 45cd3e1bb472d8e2 "
    "5b3ae48be122f7ed 82159dd02870c13e 886d51e97ad7931d 8f5083e3e5c7dc89 92a9bf818e7e0002 "
    "98b52c4b6b7d1f48 9915ba2d822280f2 bb209d506bb8b178 bd331fb1d24298f5 c1cabb6f6e431f9c "
    "c3de533e9b7fe63b cc02032349c833ac daec0c235d3135fc e7b98c6aa5b944e0 eef3bd091670c344 "
    "f9d0d9b18ae9033a".split())


def is_slur(word: str) -> bool:
    return hashlib.sha256(word.encode()).hexdigest()[:16] in _SLUR_HASHES


def stem(word: str) -> str:
    """A crude stem so an anchor counts when the comeback inflects it ("train" / "trains")."""
    w = word.removesuffix("'s")
    for suffix, repl in (("ies", "y"), ("ing", ""), ("in'", ""), ("es", ""), ("ed", ""), ("s", "")):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            return w[: len(w) - len(suffix)] + repl
    return w


def anchor_in(anchor: str, text: str) -> bool:
    """True when every word of `anchor` occurs (up to inflection) in `text`."""
    have = {stem(w) for w in normalize_words(text)}
    want = [stem(w) for w in normalize_words(anchor)]
    return bool(want) and all(w in have for w in want)


def distinct_ratio(bigrams: list, chunk: int = BIGRAM_CHUNK) -> float:
    """Mean share of distinct bigrams per chunk of `chunk` bigrams (the last, shorter chunk
    only when it is the only one). A whole-corpus ratio falls as the corpus grows; this does not."""
    if not bigrams:
        return 1.0
    chunks = [bigrams[i:i + chunk] for i in range(0, len(bigrams), chunk)]
    if len(chunks) > 1 and len(chunks[-1]) < chunk:
        chunks.pop()
    return sum(len(set(c)) / len(c) for c in chunks) / len(chunks)


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    rate_failures: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


def _rate(report: Report, name: str, passed: list[bool], ids: list[str]) -> None:
    report.metrics[name] = sum(passed) / len(passed) if passed else 1.0
    report.rate_failures[name] = [i for i, p in zip(ids, passed) if not p]
    if report.metrics[name] < MIN_RATE:
        report.problems.append(f"{name} is {report.metrics[name]:.2f}, below {MIN_RATE} "
                               f"(failing: {', '.join(report.rate_failures[name][:20])})")


def lint(corpus: Corpus, totals: bool = True) -> Report:
    report = Report()
    items: list[tuple[str, str, bool]] = []  # (item id, bar, explicit item)
    for e in corpus.exchanges:
        items += [(e.id, b, e.explicit) for b in (*e.opponent, *e.comeback)]
        items += [(e.id, b, False) for b in e.clean]
    for v in corpus.verses:
        items += [(v.id, b, False) for b in v.bars]

    seen: dict[str, str] = {}
    bigrams: list[tuple[str, str]] = []
    n_espeak = 0
    for item_id, bar, explicit in items:
        ws = normalize_words(bar)
        key = " ".join(ws)
        if key in seen:
            report.problems.append(f"{item_id}: duplicate bar {bar!r} (also in {seen[key]})")
        seen.setdefault(key, item_id)
        bigrams += list(zip(ws, ws[1:]))
        n_syll = 0
        for w in ws:
            pw = phonetics.word(w)
            if not pw.syllables:
                report.problems.append(f"{item_id}: {w!r} has no pronounceable vowel (write it as it is said)")
            n_espeak += pw.source == "espeak"
            n_syll += len(pw.syllables)
            if is_slur(w):
                report.problems.append(f"{item_id}: a slur; never allowed")
            elif w in PROFANITY and not explicit:
                report.problems.append(f"{item_id}: {w!r} is profanity; mark the item explicit and give a clean alternative")
        lo, hi = BAR_SYLLABLES
        if not lo <= n_syll <= hi:
            report.problems.append(f"{item_id}: {n_syll} syllables in {bar!r} (a bar has {lo}-{hi})")

    couplets, couplet_ids, flips, flip_ids, turns, turn_ids = [], [], [], [], [], []
    for e in corpus.exchanges:
        opp = " ".join(e.opponent)
        for a in e.anchors:
            if not anchor_in(a, opp):
                report.problems.append(f"{e.id}: anchor {a!r} is not in the opponent's bars")
        if e.explicit and not e.clean:
            report.problems.append(f"{e.id}: explicit item without a clean alternative (clean = [...])")
        for pair in (e.opponent, e.comeback):
            couplets.append(rhyme.grade(*pair) != rhyme.NONE)
            couplet_ids.append(e.id)
        if "flip-rhyme" in e.tactics:
            flips.append(any(rhyme.grade(c, e.opponent[-1]) != rhyme.NONE
                             or c.split()[-1].lower() == e.opponent[-1].split()[-1].lower()
                             for c in e.comeback))
            flip_ids.append(e.id)
        if "turn-anchor" in e.tactics:
            turns.append(any(anchor_in(a, " ".join(e.comeback)) for a in e.anchors))
            turn_ids.append(e.id)
    for v in corpus.verses:
        for pair in ((v.bars[0], v.bars[1]), (v.bars[2], v.bars[3])):
            couplets.append(rhyme.grade(*pair) != rhyme.NONE)
            couplet_ids.append(v.id)
    _rate(report, "couplet_rhyme_rate", couplets, couplet_ids)
    _rate(report, "flip_rhyme_verified", flips, flip_ids)
    _rate(report, "turn_anchor_verified", turns, turn_ids)

    n_bars = len(corpus.bars())
    report.metrics.update(
        exchanges=len(corpus.exchanges), verses=len(corpus.verses), bars=n_bars,
        topics=len(corpus.topics), heldout_exchanges=len(corpus.heldout()),
        distinct_bigrams=distinct_ratio(bigrams),
        espeak_words=n_espeak, explicit_items=sum(e.explicit for e in corpus.exchanges))
    if report.metrics["distinct_bigrams"] < MIN_DISTINCT_BIGRAMS:
        report.problems.append(f"distinct-bigram ratio {report.metrics['distinct_bigrams']:.2f} is below "
                               f"{MIN_DISTINCT_BIGRAMS}: too many repeated phrases")
    if totals:
        for name, least in (("exchanges", MIN_EXCHANGES), ("bars", MIN_BARS), ("topics", MIN_TOPICS),
                            ("heldout_exchanges", MIN_HELDOUT)):
            if report.metrics[name] < least:
                report.problems.append(f"{report.metrics[name]} {name}; the corpus needs at least {least}")
    return report


def main(argv: list[str] | None = None) -> int:
    files = [Path(a) for a in (sys.argv[1:] if argv is None else argv)]
    try:
        corpus = load(files=files) if files else load()
    except CorpusError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    report = lint(corpus, totals=not files)
    for name, value in report.metrics.items():
        print(f"{name:>22}: {value:.3f}" if isinstance(value, float) else f"{name:>22}: {value}")
    for name, failing in report.rate_failures.items():
        if failing:
            print(f"{name} failing: {', '.join(failing)}")
    for p in report.problems:
        print(f"problem: {p}")
    print("ok" if report.ok else f"{len(report.problems)} problem(s)")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
