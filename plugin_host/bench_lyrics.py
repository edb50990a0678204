"""`cypher bench lyrics`: the writing path on the held-out opponent couplets, scored by the critic.

Every writer answers each held-out opponent couplet with a planned 2-bar comeback;
the held-out human comebacks are scored against the same plans as a reference row.
Latency is a separate 4-bar write per exchange (the DESIGN budget is per 4 bars).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from dsp.anchors import STOPWORDS
from dsp.phonetics import rhyme_density
from dsp.text import normalize_words
from models_onnx import rhyme
from models_onnx.corpus import load
from models_onnx.corpus.lint import anchor_in
from models_onnx.critic import NOVELTY_NGRAM, Context, Critic
from models_onnx.english_prior import english_perplexity
from models_onnx.planner import Plan, plan
from models_onnx.retrieval import RetrievalWriter
from models_onnx.lyric_model import MODEL_PATH, LyricModel
from models_onnx.writer import ModelWriter, WriterSettings
from plugin_host.rap import load_flow

TARGETS = {  # issue 6's targets for the writer
    "rhyme_accuracy": (">=", 0.95),
    "syllable_exactness": (">=", 1.0),
    "grounding_rate": (">=", 0.9),
    "rhyme_flip_rate": (">=", 0.5),
    "novelty": (">=", 0.95),
    "distinct_2": (">=", 0.8),
    "latency_ms_4_bars_p95": ("<=", 40.0),
    "model_rss_mb": ("<=", 200.0),
}


def _rss_mb() -> float:
    """Resident memory of this process now (Linux), in MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


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
        "english_ppl_per_word": round(english_perplexity(b for bars in responses for b in bars), 1),
        "glue_ppl_per_word": round(english_perplexity((b for bars in responses for b in bars), STOPWORDS), 1),
    }


def bench_lyrics(n_exchanges: int | None = None, flow_name: str = "boom-bap", seed: int = 0,
                 progress: bool = True, model_path: Path | None = None) -> dict:
    """The writer rows (the model, then the retrieval baseline) and the human reference row."""
    corpus = load()
    train = corpus.train()
    heldout = corpus.heldout()[:n_exchanges] if n_exchanges else corpus.heldout()
    flow = load_flow(flow_name)
    critic = Critic(train.bars())
    rss_before = _rss_mb()
    model = LyricModel(model_path or MODEL_PATH)
    model_rss = _rss_mb() - rss_before
    writers = [ModelWriter(model, critic, flow), RetrievalWriter(train, critic)]

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
            if progress and (sys.stderr.isatty() or (k + 1) % max(1, len(heldout) // 10) == 0):
                end = "" if sys.stderr.isatty() else "\n"
                print(f"\rbench lyrics: {w.name} {k + 1}/{len(heldout)}", end=end, file=sys.stderr, flush=True)
        if progress and sys.stderr.isatty():
            print(file=sys.stderr)
        row = score_responses(responses, plans, opponents, labelled, critic, flow)
        row["latency_ms_4_bars_p50"] = round(float(np.percentile(latency, 50)), 2)
        row["latency_ms_4_bars_p95"] = round(float(np.percentile(latency, 95)), 2)
        rows[w.name] = row
        rows[w.name + "_examples"] = [
            {"opponent": list(o), "response": r} for o, r in zip(opponents[:3], responses[:3])]
    # The writer above remembers its recent word pairs across exchanges, as it does across
    # a night's turns in `cypher serve`; each answer from a fresh writer, for comparison:
    fresh = []
    for opp, p in zip(opponents, plans):
        writers[0].forget()
        fresh.append(writers[0].write(p, opp))
    rows[writers[0].name]["distinct_2_fresh"] = score_responses(fresh, plans, opponents, labelled, critic,
                                                                flow)["distinct_2"]
    if model.n_future > 1:
        rows[writers[0].name].update(bench_speculative(model, opponents, plans))
    if model.english is not None:  # what general English adds, as per-token perplexity on the held-out bars
        from models_onnx.english_prior import perplexity
        from models_onnx.training.lyrics_data import comeback_examples

        held_bars = comeback_examples(heldout)
        weight = writers[0].settings.english_weight
        rows[writers[0].name]["heldout_ppl_per_token"] = round(perplexity(model, held_bars, weight), 2)
        rows[writers[0].name]["heldout_ppl_per_token_alone"] = round(perplexity(model, held_bars, 0.0), 2)
    rows["human"] = score_responses([list(e.comeback) for e in heldout], plans, opponents, labelled,
                                    critic, flow)
    main = rows[writers[0].name]
    main["model_rss_mb"] = round(model_rss, 1)
    targets = {}
    for name, (op, value) in TARGETS.items():
        met = main[name] >= value if op == ">=" else main[name] <= value
        targets[name] = {"target": value, "met": bool(met)}
    import resource

    return {
        "bench": "lyrics", "writer": writers[0].name, "exchanges": len(heldout), "flow": flow_name,
        "seed": seed, "model": {"file": str(model.path), "mb": round(model.path.stat().st_size / 1e6, 1),
                                 **{k: model.config[k] for k in ("n_layer", "n_head", "n_embd", "n_future")},
                                 "objective": model.run.get("objective"), "direction": model.direction},
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "model_rss_mb": round(model_rss, 1),
        "rows": rows, "metrics": main, "targets": targets,
    }


def bench_ablation(out: str | None = None, size: str = "small", steps: int | None = None,
                   device: str = "auto", n_exchanges: int | None = None) -> dict:
    """Train (or resume) every objective x direction on the same data and budget, decode each
    without constraints, and report them side by side."""
    from plugin_host.training import need_torch

    need_torch("the ablation")  # it trains models
    from models_onnx.training.ablation import run_ablation

    folder = Path(out or "runs/ablation")
    rows = run_ablation(folder, size=size, steps=steps, device=device, log=lambda s: print(s, file=sys.stderr),
                        n_bars=2 * n_exchanges if n_exchanges else None)
    metrics = {f"{name}_{k}": v for name, row in rows.items() for k, v in row.items()
               if isinstance(v, (int, float)) and k not in ("steps", "bars")}
    return {"bench": "lyrics-ablation", "folder": str(folder), "rows": rows, "metrics": metrics, "targets": {}}


def format_ablation(report: dict) -> str:
    cols = ["heldout_ppl", "rhyme_hit_unconstrained", "syllables_exact_unconstrained",
            "anchor_placed_unconstrained", "novelty", "tokens_per_s"]
    short = ["ppl", "rhyme hit", "syll exact", "anchor", "novelty", "tok/s"]
    lines = [f"{'variant':18s}" + "".join(f"{c:>12s}" for c in short)]
    for name, row in report["rows"].items():
        lines.append(f"{name:18s}" + "".join(f"{row[c]:>12}" for c in cols))
    any_row = next(iter(report["rows"].values()))
    lines.append(f"(unconstrained greedy decoding of {any_row['bars']} held-out bars; "
                 f"{any_row['steps']} training steps each; models in {report['folder']})")
    return "\n".join(lines)


def bench_speculative(model: LyricModel, opponents: list[tuple[str, ...]], plans: list[Plan]) -> dict:
    """Greedy decoding one token at a time vs self-speculative, on every planned bar:
    whether the bars are identical, and the ratio of model calls and of wall time."""
    from dsp import phonetics
    from models_onnx import decode
    from models_onnx.prompt import BarRequest, prefix

    same, calls_plain, calls_spec, t_plain, t_spec, tokens = [], 0, 0, 0.0, 0.0, 0
    for opp, p in zip(opponents, plans):
        for bp in p.bars:
            anchor = normalize_words(bp.anchor) if bp.anchor else []
            syll = sum(len(phonetics.word(w).syllables) for w in anchor)
            cons = decode.constraints(model, bp.syllables, bp.rhyme_word, anchor, syll,
                                      english_weight=WriterSettings().english_weight)
            ids = prefix(model.tok, BarRequest(opp, None, bp.syllables, bp.tactics, bp.rhyme_word, bp.anchor),
                         model.direction)
            t0 = time.perf_counter()
            a, n_a = decode.greedy(model, ids, cons)
            t1 = time.perf_counter()
            b, n_b = decode.greedy_speculative(model, ids, cons)
            t2 = time.perf_counter()
            same.append(a.tokens == b.tokens)
            calls_plain, calls_spec = calls_plain + n_a, calls_spec + n_b
            t_plain, t_spec = t_plain + t1 - t0, t_spec + t2 - t1
            tokens += len(a.tokens) + 1
    return {"speculative_identical": round(float(np.mean(same)), 4),
            "speculative_tokens_per_call": round(tokens / max(1, calls_spec), 3),
            "speculative_call_ratio": round(calls_plain / max(1, calls_spec), 3),
            "speculative_speedup": round(t_plain / max(t_spec, 1e-9), 3)}


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
