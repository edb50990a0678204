"""Train the lyric model on the corpus (`cypher train lyrics`) and export it to ONNX.

Objectives on the one transformer of `model.py`:
- next: teacher-forced next-token prediction;
- teacherless: answer inputs replaced by <dummy>, the whole bar predicted in one pass;
- multi: next-token plus extra heads for the tokens 2..k ahead (Gloeckle et al., 2024),
  which also draft tokens for self-speculative decoding at run time.
Direction r2l writes each bar from its rhyme word back to its first word.
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from models_onnx.corpus import Corpus, load
from models_onnx.prompt import DIRECTIONS, answer, prefix
from models_onnx.tokenizer import Tokenizer
from models_onnx.training.lyrics_data import Example, comeback_examples, examples, heldout_examples
from models_onnx.training.model import GPT, GPTConfig
from models_onnx.training.pathstar import _Progress, _save_atomic, pick_device

OBJECTIVES = ("next", "teacherless", "multi")
MIN_WORD_COUNT = 2  # rarer words are spelled in training too, so the model learns to spell new ones
BLOCK_SIZE = 128

SIZES = {
    "tiny": dict(n_layer=2, n_head=2, n_embd=64, steps=60, batch=32, lr=2e-3, eval_every=30),
    "small": dict(n_layer=4, n_head=4, n_embd=128, steps=2000, batch=48, lr=1e-3, eval_every=125, dropout=0.2),
}


@dataclass(frozen=True)
class LyricsRun:
    objective: str = "multi"
    direction: str = "r2l"
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    n_future: int = 3  # heads for "multi" (1 for the other objectives)
    dropout: float = 0.2
    steps: int = 2000
    batch: int = 48
    lr: float = 1e-3
    min_lr: float = 5e-5
    warmup_steps: int = 100
    weight_decay: float = 0.1
    eval_every: int = 125
    seed: int = 0

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ValueError(f"unknown objective {self.objective!r}; valid: {', '.join(OBJECTIVES)}")
        if self.direction not in DIRECTIONS:
            raise ValueError(f"unknown direction {self.direction!r}; valid: {', '.join(DIRECTIONS)}")
        if self.n_embd % self.n_head:
            raise ValueError(f"width {self.n_embd} must be a multiple of heads {self.n_head}")

    @classmethod
    def for_size(cls, size: str, **overrides) -> "LyricsRun":
        values = dict(SIZES[size])
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    @property
    def heads(self) -> int:
        return self.n_future if self.objective == "multi" else 1


def token_features(tok: Tokenizer) -> tuple[np.ndarray, tuple[int, ...]]:
    """Per-token phonetic features for the factored embeddings: (ids (V, 3), table sizes).

    0 rhyme class (the slant key of the word's rhyme tail: "chain" and "name" share it),
    1 assonance class (the tail's vowels), 2 syllable count (capped at 8). Words only;
    every other token has 0s. A model that sees these can learn "land on this sound" and
    "count syllables" from a few thousand bars; from word ids alone it cannot.
    """
    from dsp import phonetics
    from models_onnx import rhyme

    ids = np.zeros((len(tok), 3), dtype=np.int64)
    tails: dict = {}
    vowels: dict = {}
    for t in range(tok.first_word, len(tok)):
        w = phonetics.word(tok.itos[t])
        if not w.syllables:
            continue
        tail = rhyme.tail(w)
        ids[t] = (tails.setdefault(phonetics.slant_key(tail), len(tails) + 1),
                  vowels.setdefault(rhyme.tail_vowels(tail), len(vowels) + 1), min(len(w.syllables), 8))
    return ids, (len(tails) + 1, len(vowels) + 1, 9)


def lr_at(step: int, run: LyricsRun) -> float:
    if step < run.warmup_steps:
        return run.lr * (step + 1) / run.warmup_steps
    progress = min(1.0, (step - run.warmup_steps) / max(1, run.steps - run.warmup_steps))
    return run.min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (run.lr - run.min_lr)


@dataclass
class Encoded:
    """Examples as one padded array: seqs (N, L), prefix lengths and total lengths (N,)."""

    seqs: np.ndarray
    prefix_len: np.ndarray
    length: np.ndarray


def encode(tok: Tokenizer, exs: list[Example], direction: str) -> Encoded:
    rows = []
    for e in exs:
        p, a = prefix(tok, e.request, direction), answer(tok, e.bar, direction)
        if len(p) + len(a) <= BLOCK_SIZE:
            rows.append((p, a))
    L = max(len(p) + len(a) for p, a in rows)
    seqs = np.full((len(rows), L), tok["<pad>"], dtype=np.int64)
    for i, (p, a) in enumerate(rows):
        seqs[i, : len(p) + len(a)] = p + a
    return Encoded(seqs, np.array([len(p) for p, _ in rows]), np.array([len(p) + len(a) for p, a in rows]))


def batch_tensors(enc: Encoded, idx: np.ndarray, objective: str, heads: int, dummy: int, device):
    """inputs (B, T), targets (heads, B, T), masks (heads, B, T) for the rows `idx`.

    targets[h, b, t] is the token h+1 places after input position t; the mask is
    True exactly where that token belongs to the answer (its words and <eos>) and
    t is at or after the last prefix token.
    """
    T = int(enc.length[idx].max())
    seqs = torch.from_numpy(enc.seqs[idx, :T]).to(device)
    p = torch.from_numpy(enc.prefix_len[idx]).to(device)[:, None]
    n = torch.from_numpy(enc.length[idx]).to(device)[:, None]
    inputs = seqs[:, :-1].clone()
    pos = torch.arange(T - 1, device=device)[None, :]
    if objective == "teacherless":
        inputs[pos >= p] = dummy  # input positions holding answer tokens
    targets, masks = [], []
    for h in range(heads):
        tgt_pos = pos + 1 + h  # position of the predicted token in seqs
        shifted = torch.zeros_like(inputs)
        shifted[:, : T - 1 - h] = seqs[:, 1 + h:]
        targets.append(shifted)
        masks.append((tgt_pos >= p) & (tgt_pos < n) & (pos >= p - 1))  # from <sep> on: heads read the plan whole
    return inputs, torch.stack(targets), torch.stack(masks)


def heads_loss(model: GPT, inputs: torch.Tensor, targets: torch.Tensor, masks: torch.Tensor,
               reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy at the masked positions, averaged over heads (targets, masks: (heads, B, T)).

    Logits are computed only where a loss is taken: the unembedding over every
    position of every head would cost more than the rest of the model.
    """
    h = model.trunk(inputs)  # (B, T, C)
    w = model.output_embedding()
    losses = []
    for i in range(targets.shape[0]):
        hi = h[masks[i]]  # (N, C)
        if i > 0:
            hi = model.future[i - 1](hi)  # position-wise, so selecting first is exact
        logits = model.unembed(hi, w)
        losses.append(F.cross_entropy(logits, targets[i][masks[i]], reduction=reduction))
    return torch.stack(losses).mean() if reduction == "mean" else losses[0]


@torch.no_grad()
def answer_nll(model: GPT, enc: Encoded, run: LyricsRun, dummy: int, device, batch: int = 256) -> float:
    """Mean negative log-likelihood per answer token of `enc`, next-token head only
    (teacherless models are scored the way they decode: from dummy inputs)."""
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(enc.seqs), batch):
        idx = np.arange(i, min(i + batch, len(enc.seqs)))
        x, y, m = batch_tensors(enc, idx, run.objective, 1, dummy, device)
        total += float(heads_loss(model, x, y, m, reduction="sum"))
        count += int(m[0].sum())
    model.train()
    return total / max(count, 1)


def train(run: LyricsRun, out_dir: Path, device: str = "auto", log=print, corpus: Corpus | None = None) -> dict:
    """Train one model; checkpoints to out_dir/model.pt (resumed when the settings match),
    the learning curve to out_dir/curve.json. Returns the run record."""
    dev = pick_device(device)
    if dev.type == "cpu":  # the CLI pins BLAS/OpenMP to one thread for the audio path; training wants all cores
        torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(run.seed)
    corpus = corpus or load()
    train_split, val_split = corpus.train().split_validation()
    tok = Tokenizer.build(train_split.bars(), min_count=MIN_WORD_COUNT)
    enc = encode(tok, examples(train_split, run.seed), run.direction)
    val = encode(tok, comeback_examples(val_split.exchanges), run.direction)
    held = encode(tok, heldout_examples(corpus), run.direction)
    feature_ids, feature_sizes = token_features(tok)
    gcfg = GPTConfig(vocab_size=len(tok), block_size=BLOCK_SIZE, n_layer=run.n_layer, n_head=run.n_head,
                     n_embd=run.n_embd, dropout=run.dropout, n_future=run.heads, feature_sizes=feature_sizes)
    model = GPT(gcfg).to(dev)
    model.set_features(feature_ids)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": run.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=run.lr)
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path, curve_path, best_path = out_dir / "model.pt", out_dir / "curve.json", out_dir / "best.pt"
    record = {"run": asdict(run), "model": gcfg.to_dict(), "n_params": model.n_params(),
              "n_examples": len(enc.seqs), "n_validation": len(val.seqs), "n_heldout": len(held.seqs),
              "vocab": len(tok), "device": str(dev), "curve": [], "seconds": 0.0, "best": None}
    start = 0
    if ckpt_path.exists():
        ckpt = torch.load(ckpt_path, map_location=dev, weights_only=False)
        if ckpt["record"]["run"] == asdict(run) and ckpt["tokenizer"] == tok.to_json():
            model.load_state_dict(ckpt["model"])
            opt.load_state_dict(ckpt["opt"])
            record, start = ckpt["record"], ckpt["step"]
            torch.set_rng_state(ckpt["rng"])
            log(f"resuming from step {start}")
        else:
            log(f"{ckpt_path} was trained with other settings or another corpus: starting over")
    rng = np.random.default_rng(run.seed + start)
    dummy = tok["<dummy>"]
    bar = _Progress(run.steps, f"lyrics {run.objective}/{run.direction}")
    t0, running = time.time(), []
    model.train()
    for step in range(start, run.steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, run)
        idx = rng.choice(len(enc.seqs), size=run.batch, replace=False)
        x, y, m = batch_tensors(enc, idx, run.objective, run.heads, dummy, dev)
        batch_loss = heads_loss(model, x, y, m)
        opt.zero_grad(set_to_none=True)
        batch_loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        running.append(float(batch_loss.detach()))
        done = step + 1
        if done % run.eval_every == 0 or done == run.steps:
            nll = answer_nll(model, val, run, dummy, dev)
            point = {"step": done, "train_loss": round(float(np.mean(running)), 4),
                     "val_nll": round(nll, 4), "val_ppl": round(math.exp(nll), 2)}
            running = []
            record["curve"].append(point)
            record["seconds"] = round(record["seconds"] + time.time() - t0, 1)
            t0 = time.time()
            bar.update(done, f"loss {point['train_loss']:.3f} validation ppl {point['val_ppl']:.1f}")
            state = {"model": model.state_dict(), "opt": opt.state_dict(), "record": record, "step": done,
                     "rng": torch.get_rng_state(), "tokenizer": tok.to_json()}
            if record["best"] is None or nll < record["best"]["val_nll"]:
                # the checkpoint we ship is the one validation liked best, with the benchmark's
                # held-out perplexity measured once for the record (never used to choose)
                test_nll = answer_nll(model, held, run, dummy, dev)
                record["best"] = {**point, "heldout_nll": round(test_nll, 4), "heldout_ppl": round(math.exp(test_nll), 2)}
                _save_atomic({**state, "record": record}, best_path)
            _save_atomic(state, ckpt_path)
            tmp = curve_path.with_suffix(".json.part")
            tmp.write_text(json.dumps(record, indent=1))
            os.replace(tmp, curve_path)
        elif done % 10 == 0:
            bar.update(done, f"loss {float(np.mean(running)):.3f}")
    return record


def load_checkpoint(path: Path, device: str = "cpu") -> tuple[GPT, Tokenizer, dict]:
    """A run's model (a folder: its best checkpoint by validation), tokenizer and record."""
    path = Path(path)
    if path.is_dir():
        path = path / "best.pt" if (path / "best.pt").exists() else path / "model.pt"
    ckpt = torch.load(path, map_location=device, weights_only=False)
    cfg = dict(ckpt["record"]["model"])
    cfg["feature_sizes"] = tuple(cfg.get("feature_sizes", ()))
    model = GPT(GPTConfig(**cfg))
    model.load_state_dict(ckpt["model"])
    return model.eval(), Tokenizer.from_json(ckpt["tokenizer"]), ckpt["record"]


def plot_curve(record: dict, path: Path) -> None:
    """Training loss and held-out perplexity against steps, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [p["step"] for p in record["curve"]]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.4), dpi=110)
    a.plot(steps, [p["train_loss"] for p in record["curve"]], marker="o", ms=3, color="#1f77b4")
    a.set_title("training loss (mean over heads)", fontsize=10)
    b.plot(steps, [p["val_ppl"] for p in record["curve"]], marker="o", ms=3, color="#d62728")
    if record.get("best"):
        b.axvline(record["best"]["step"], color="#999999", ls="--", lw=1)
    b.set_title("validation perplexity (next-token head); dashed: shipped", fontsize=10)
    b.set_yscale("log")
    for ax in (a, b):
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    run = record["run"]
    fig.suptitle(f"lyrics: {run['objective']}, {run['direction']}, {run['n_layer']}x{run['n_embd']}", fontsize=10)
    fig.tight_layout()
    tmp = path.with_suffix(".part.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)
