"""The objective ablation: next-token vs teacherless vs multi-token, each left-to-right and
right-to-left, on the same data with the same budget (`cypher bench lyrics --ablation`).

Every variant is decoded the way it was trained, with **no constraints**: greedy next-token
for next and multi, one pass over dummy inputs for teacherless. What it measures on the
held-out comebacks: perplexity, whether the bar lands the requested rhyme, has the requested
syllable count, places the requested anchor, avoids copying the corpus, and tokens per second.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from dsp import phonetics
from dsp.text import normalize_words
from models_onnx import rhyme
from models_onnx.corpus import load
from models_onnx.corpus.lint import anchor_in
from models_onnx.critic import NOVELTY_NGRAM, build_index, longest_shared
from models_onnx.prompt import DIRECTIONS, bar_words, prefix
from models_onnx.training.lyrics import OBJECTIVES, LyricsRun, heldout_examples, load_checkpoint, train

MAX_ANSWER = 24


@torch.no_grad()
def decode_unconstrained(model, tok, ids: list[int], objective: str) -> list[int]:
    n = min(MAX_ANSWER, model.cfg.block_size - len(ids) + 1)
    if objective == "teacherless":
        x = torch.tensor([ids + [tok["<dummy>"]] * (n - 1)])
        out = model(x)[0, len(ids) - 1:].argmax(-1).tolist()
    else:
        seq, out = list(ids), []
        for _ in range(n):
            t = int(model(torch.tensor([seq]))[0, -1].argmax())
            out.append(t)
            if t == tok["<eos>"]:
                break
            seq.append(t)
    return out[: out.index(tok["<eos>"]) + 1] if tok["<eos>"] in out else out


def evaluate_variant(folder: Path, corpus, index, n_bars: int | None = None) -> dict:
    model, tok, record = load_checkpoint(folder)
    run = record["run"]
    exs = heldout_examples(corpus)[:n_bars]
    rhyme_hits, syll_ok, anchored, novel, n_tokens = [], [], [], [], 0
    t0 = time.perf_counter()
    bars = []
    for e in exs:
        out = decode_unconstrained(model, tok, prefix(tok, e.request, run["direction"]), run["objective"])
        n_tokens += len(out)
        bars.append((e, bar_words(tok, out, run["direction"])))
    seconds = time.perf_counter() - t0
    for e, words in bars:
        text = " ".join(words)
        if e.request.rhyme_word:
            rhyme_hits.append(bool(words) and rhyme.grade(text, e.request.rhyme_word) != rhyme.NONE)
        syll_ok.append(sum(len(phonetics.word(w).syllables) for w in words) == e.request.syllables)
        if e.request.anchor:
            anchored.append(anchor_in(e.request.anchor, text))
        novel.append(longest_shared(normalize_words(text), index) < NOVELTY_NGRAM)
    mean = lambda xs: round(float(np.mean(xs)), 4) if xs else 0.0  # noqa: E731
    return {
        "objective": run["objective"], "direction": run["direction"], "steps": run["steps"],
        "heldout_ppl": record["best"]["heldout_ppl"],
        "best_step": record["best"]["step"],
        "rhyme_hit_unconstrained": mean(rhyme_hits),
        "syllables_exact_unconstrained": mean(syll_ok),
        "anchor_placed_unconstrained": mean(anchored),
        "novelty": mean(novel),
        "tokens_per_s": round(n_tokens / seconds, 1),
        "bars": len(bars),
        "train_seconds": record["seconds"],
    }


def run_ablation(out_dir: Path, size: str = "small", steps: int | None = None, device: str = "auto",
                 log=print, n_bars: int | None = None) -> dict:
    corpus = load()
    index = build_index(corpus.train().bars())
    rows = {}
    for objective in OBJECTIVES:
        for direction in DIRECTIONS:
            name = f"{objective}-{direction}"
            run = LyricsRun.for_size(size, objective=objective, direction=direction, steps=steps)
            train(run, out_dir / name, device=device, log=log, corpus=corpus)
            rows[name] = evaluate_variant(out_dir / name, corpus, index, n_bars)
            log(f"{name}: {rows[name]}")
    return rows
