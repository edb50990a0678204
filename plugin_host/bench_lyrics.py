"""`cypher bench lyrics`: the writing path on the held-out opponent couplets, scored by the critic.

Every writer answers each held-out opponent couplet with a planned 2-bar comeback;
the held-out human comebacks are scored against the same plans as a reference row.
Latency is a separate 4-bar write per exchange (the DESIGN budget is per 4 bars).
"""
from __future__ import annotations

import sys
import time

import numpy as np

from dsp.phonetics import rhyme_density
from dsp.text import normalize_words
from models_onnx import rhyme
from models_onnx.corpus import load
from models_onnx.corpus.lint import anchor_in
from models_onnx.critic import NOVELTY_NGRAM, Context, Critic
from models_onnx.planner import Plan, plan
from models_onnx.retrieval import RetrievalWriter
from plugin_host.rap import load_flow

TARGETS = {  # issue 6's targets for the writer
    "rhyme_accuracy": (">=", 0.95),
    "syllable_exactness": (">=", 1.0),
    "grounding_rate": (">=", 0.9),
    "rhyme_flip_rate": (">=", 0.5),
    "novelty": (">=", 0.95),
    "distinct_2": (">=", 0.8),
    "latency_ms_4_bars_p95": ("<=", 40.0),
}


def score_responses(responses: list[list[str]], plans: list[Plan], opponents: list[tuple[str, ...]],
                    labelled: list[tuple[str, ...]], critic: Critic, flow) -> dict[str, float]:
    """The benchmark's metrics for one row: responses[i] answers opponents[i] under plans[i]."""
    pairs_ok, exact, strong, grounded, flipped, novel, density = [], [], [], [], [], [], []
    tokens: list[list[str]] = []
    for bars, p, opp, labels in zip(responses, plans, opponents, labelled):
        flips = False
        for i, (bar, bp) in enumerate(zip(bars, p.bars)):
            partner = p.partner_of(i)
            if partner is not None:
                pairs_ok.append(rhyme.grade(bar, bars[partner]) != rhyme.NONE)
            if bp.rhyme_word:
                pairs_ok.append(rhyme.grade(bar, bp.rhyme_word) != rhyme.NONE)
            s = critic.score(bar, Context(opponent=opp, budget=bp.syllables, flow=flow))
            exact.append(bool(s.syllables_exact))
            if s.stress_on_strong is not None:
                strong.append(s.stress_on_strong)
            novel.append(s.corpus_ngram < NOVELTY_NGRAM)
            flips |= s.flips
        targets = {b.anchor for b in p.bars if b.anchor} | set(labels)
        grounded.append(any(anchor_in(a, " ".join(bars)) for a in targets))
        flipped.append(flips)
        density.append(rhyme_density(" ".join(bars)))
        tokens.append([w for b in bars for w in normalize_words(b)])
    all_tokens = [t for ts in tokens for t in ts]
    bigrams = [g for ts in tokens for g in zip(ts, ts[1:])]
    mean = lambda xs: round(float(np.mean(xs)), 4) if xs else 0.0  # noqa: E731
    return {
        "rhyme_accuracy": mean(pairs_ok),
        "syllable_exactness": mean(exact),
        "stress_on_strong": mean(strong),
        "grounding_rate": mean(grounded),
        "rhyme_flip_rate": mean(flipped),
        "novelty": mean(novel),
        "distinct_1": round(len(set(all_tokens)) / max(1, len(all_tokens)), 4),
        "distinct_2": round(len(set(bigrams)) / max(1, len(bigrams)), 4),
        "rhyme_density": mean(density),
    }


def bench_lyrics(n_exchanges: int | None = None, flow_name: str = "boom-bap", seed: int = 0,
                 progress: bool = True) -> dict:
    corpus = load()
    train = corpus.train()
    heldout = corpus.heldout()[:n_exchanges] if n_exchanges else corpus.heldout()
    flow = load_flow(flow_name)
    critic = Critic(train.bars())
    writers = [RetrievalWriter(train, critic)]

    opponents = [e.opponent for e in heldout]
    labelled = [e.anchors for e in heldout]
    plans = [plan(opp, 2, flow, seed=seed) for opp in opponents]
    rows: dict[str, dict] = {}
    for w in writers:
        responses, latency = [], []
        for k, (opp, p) in enumerate(zip(opponents, plans)):
            responses.append(w.write(p, opp))
            p4 = plan(opp, 4, flow, seed=seed)
            t0 = time.perf_counter()
            w.write(p4, opp)
            latency.append((time.perf_counter() - t0) * 1e3)
            if progress:
                print(f"\rbench lyrics: {w.name} {k + 1}/{len(heldout)}", end="", file=sys.stderr, flush=True)
        if progress:
            print(file=sys.stderr)
        row = score_responses(responses, plans, opponents, labelled, critic, flow)
        row["latency_ms_4_bars_p50"] = round(float(np.percentile(latency, 50)), 2)
        row["latency_ms_4_bars_p95"] = round(float(np.percentile(latency, 95)), 2)
        rows[w.name] = row
        rows[w.name + "_examples"] = [
            {"opponent": list(o), "response": r} for o, r in zip(opponents[:3], responses[:3])]
    rows["human"] = score_responses([list(e.comeback) for e in heldout], plans, opponents, labelled,
                                    critic, flow)
    main = rows[writers[0].name]
    targets = {}
    for name, (op, value) in TARGETS.items():
        met = main[name] >= value if op == ">=" else main[name] <= value
        targets[name] = {"target": value, "met": bool(met)}
    return {
        "bench": "lyrics", "writer": writers[0].name, "exchanges": len(heldout), "flow": flow_name,
        "seed": seed, "rows": rows, "metrics": main, "targets": targets,
    }


def format_table(report: dict) -> str:
    names = [k for k in report["rows"] if not k.endswith("_examples")]
    lines = [f"{'metric':26s}" + "".join(f"{n:>12s}" for n in names) + f"{'target':>10s}"]
    for metric in report["metrics"]:
        cells = "".join(
            f"{report['rows'][n][metric]:>12}" if metric in report["rows"][n] else f"{'-':>12s}" for n in names)
        t = report["targets"].get(metric)
        mark = "" if not t else f"{t['target']:>8} {'✓' if t['met'] else '✗'}"
        lines.append(f"{metric:26s}{cells}{mark:>10s}")
    lines.append(f"({report['exchanges']} held-out exchanges; writer: {report['writer']}; "
                 "human = the held-out comebacks, scored by the same critic against the same plans)")
    return "\n".join(lines)
