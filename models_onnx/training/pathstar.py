"""Train and evaluate the path-star task with each objective (`cypher train pathstar`).

Three sizes: `tiny` checks the harness end to end in seconds (CI), `cpu` is for a
laptop, `paper` is Bachmann & Nagarajan's G(2,5,50) with a 6-layer, 384-wide, 6-head
GPT on 200,000 graphs, for a GPU. Flags override a size's values.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from models_onnx.training.model import GPT, GPTConfig
from models_onnx.training.objectives import decode, inputs_and_targets, loss
from models_onnx.training.pathstar_task import PathStar

SIZES = {
    "tiny": dict(deg=2, path_len=4, nodes=20, n_layer=2, n_head=2, n_embd=64, n_train=3000, n_test=500,
                 epochs=3, batch=128, lr=1e-3),
    # the smallest graph with a planning step, and the recipe that shows the split on 2 CPU
    # cores in ~10 minutes an objective (docs/pathstar.md: teacherless 0.998, next 0.51)
    "cpu": dict(deg=2, path_len=3, nodes=50, n_layer=3, n_head=3, n_embd=96, n_train=64000, n_test=1000,
                epochs=15, batch=64, lr=5e-4, constant_lr=True, fresh=True, every_goal=True),
    "paper": dict(deg=2, path_len=5, nodes=50, n_layer=6, n_head=6, n_embd=384, n_train=200000, n_test=2000,
                  epochs=30, batch=256, lr=5e-4),
}
TEST_SEED_OFFSET = 1_000_003  # test graphs come from a different stream than training graphs
NEW_GRAPHS_OFFSET = 2 * TEST_SEED_OFFSET  # --fresh epoch e trains on stream seed + this + e


def training_seed(cfg: "RunConfig", epoch: int) -> int:
    """The sample stream of an epoch's training graphs: one fixed set, or a new one per epoch."""
    return cfg.seed + NEW_GRAPHS_OFFSET + epoch if cfg.fresh else cfg.seed


@dataclass(frozen=True)
class RunConfig:
    objective: str
    deg: int
    path_len: int
    nodes: int
    n_layer: int
    n_head: int
    n_embd: int
    n_train: int  # samples an epoch: with every_goal, n_train // deg graphs, each once per goal
    n_test: int
    epochs: int
    batch: int
    lr: float
    weight_decay: float = 0.0
    warmup_steps: int = 100  # linear warm-up, then cosine decay to min_lr over the whole run
    min_lr: float = 1e-5
    pos_init_std: float = 0.02
    commas: bool = False  # spell graphs with commas (see PathStar)
    constant_lr: bool = False  # after warm-up; the reference code's decay horizon is so long the rate barely moves
    precision: str = "bf16"  # on CUDA: bf16 or fp16 autocast (fp16 with a gradient scaler), or fp32; CPU runs fp32
    fresh: bool = False  # new training graphs every epoch: nothing to memorise, only the rule to learn
    every_goal: bool = False  # each training graph once per goal, side by side in a batch (structured samples)
    seed: int = 0

    @classmethod
    def for_size(cls, size: str, objective: str, **overrides) -> "RunConfig":
        values = dict(SIZES[size])
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(objective=objective, **values)

    @property
    def task(self) -> PathStar:
        return PathStar(self.deg, self.path_len, self.nodes, self.commas)


def lr_at(step: int, total: int, cfg: RunConfig) -> float:
    """Learning rate at optimiser step `step` of `total`: warm-up, then cosine to min_lr."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.constant_lr:
        return cfg.lr
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps))
    return cfg.min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (cfg.lr - cfg.min_lr)


def batch_order(n_rows: int, per: int, device) -> torch.Tensor:
    """A shuffled order of n_rows rows that keeps each graph's `per` consecutive rows
    together (so in one batch when the batch size is a multiple of `per`)."""
    return (torch.randperm(n_rows // per, device=device)[:, None] * per + torch.arange(per, device=device)).flatten()


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda asked for, but torch sees no CUDA GPU; use --device cpu or auto")
    return torch.device(name)


@torch.no_grad()
def evaluate(model: GPT, task: PathStar, seqs: torch.Tensor, objective: str, batch: int = 1024) -> dict:
    """Exact-match accuracy of whole paths, accuracy of the first decision (the node
    after the source), and accuracy of each node of the path in answer order, on `seqs`
    (N, L) with answers in the objective's order."""
    model.eval()
    right = []
    k = task.first_decision_index(objective == "reverse")
    for i in range(0, len(seqs), batch):
        chunk = seqs[i : i + batch]
        pred = decode(model, chunk[:, : task.answer_start], task.answer_len, objective, task.token("$"))
        right.append(pred == chunk[:, task.answer_start :])  # (b, answer_len)
    model.train()
    right = torch.cat(right)
    return {"exact": float(right.all(dim=1).float().mean()), "first": float(right[:, k].float().mean()),
            "nodes": [round(float(a), 4) for a in task.path_nodes(right.float().mean(dim=0))]}


def _save_atomic(obj, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".part")
    torch.save(obj, tmp)
    os.replace(tmp, path)


class _Progress:
    """A one-line progress bar on stderr (updates in place on a terminal, every 10 % otherwise)."""

    def __init__(self, total: int, label: str) -> None:
        self.total, self.label, self.t0, self.shown = total, label, time.time(), -1
        self.tty = sys.stderr.isatty()

    def update(self, done: int, note: str = "") -> None:
        tenth = 10 * done // self.total
        if not self.tty and tenth == self.shown and done != self.total:
            return
        self.shown = tenth
        bar = "#" * (30 * done // self.total)
        eta = (time.time() - self.t0) / max(done, 1) * (self.total - done)
        line = f"{self.label} [{bar:<30}] {done}/{self.total} {note} eta {eta:4.0f}s"
        print(("\r" if self.tty else "") + line, end="" if self.tty and done < self.total else "\n",
              file=sys.stderr, flush=True)


def resumable(saved: dict, wanted: dict) -> bool:
    """Whether a checkpoint trained with `saved` settings can go on as `wanted`.

    The same settings; or, under a constant learning rate, more epochs and/or a new rate
    from the next epoch on (a step schedule set by hand, e.g. a lower rate once a curve
    flattens). A cosine schedule's length and peak are part of its shape, so they cannot
    change midway.
    """
    if saved == wanted:
        return True
    free = {"epochs": wanted["epochs"], "lr": wanted["lr"]}
    return ({**saved, **free} == wanted and saved["constant_lr"] and wanted["constant_lr"]
            and wanted["epochs"] >= saved["epochs"])


def train(cfg: RunConfig, out_dir: Path, device: str = "auto", log=print) -> dict:
    """Train one objective, evaluating on fresh graphs after every epoch.

    Writes `out_dir/<objective>.pt` (model, optimiser, configs, curve; resumed from if it
    exists with the same config, or extended when only `epochs` grew under a constant
    rate) and `out_dir/<objective>.json` (the learning curve).
    Returns the curve record.
    """
    dev = pick_device(device)
    torch.manual_seed(cfg.seed)
    task = cfg.task
    reverse = cfg.objective == "reverse"
    train_seqs = None
    test_seqs = torch.from_numpy(task.sample(cfg.n_test, cfg.seed + TEST_SEED_OFFSET, reverse=reverse)).to(dev)
    gcfg = GPTConfig(vocab_size=task.vocab_size, block_size=task.seq_len, n_layer=cfg.n_layer,
                     n_head=cfg.n_head, n_embd=cfg.n_embd, pos_init_std=cfg.pos_init_std)
    model = GPT(gcfg).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=dev.type == "cuda")
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path, curve_path = out_dir / f"{cfg.objective}.pt", out_dir / f"{cfg.objective}.json"
    record = {"run": asdict(cfg), "model": gcfg.to_dict(), "n_params": model.n_params(), "device": str(dev),
              "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu", "curve": []}
    start_epoch = 0
    if ckpt_path.exists():
        ckpt = torch.load(ckpt_path, map_location=dev, weights_only=False)
        if resumable(ckpt["record"]["run"], asdict(cfg)):
            model.load_state_dict(ckpt["model"])
            opt.load_state_dict(ckpt["opt"])
            record = ckpt["record"]
            start_epoch = len(record["curve"])
            torch.set_rng_state(ckpt["rng"])
            if record["run"]["epochs"] != cfg.epochs:
                log(f"extending {cfg.objective} from {record['run']['epochs']} to {cfg.epochs} epochs")
                record["run"]["epochs"] = cfg.epochs
            if record["run"]["lr"] != cfg.lr:
                log(f"{cfg.objective}: learning rate {record['run']['lr']:g} -> {cfg.lr:g} from epoch {start_epoch + 1}")
                record["run"]["lr"] = cfg.lr
            log(f"resuming {cfg.objective} from epoch {start_epoch}")
        else:
            log(f"{ckpt_path} was trained with other settings: starting over")
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.precision) if dev.type == "cuda" else None
    scaler = torch.amp.GradScaler(dev.type, enabled=amp_dtype == torch.float16)
    dummy = task.token("$")
    per = task.deg if cfg.every_goal else 1  # rows per training graph
    steps_per_epoch = -(-(cfg.n_train // per * per) // cfg.batch)
    for epoch in range(start_epoch, cfg.epochs):
        t0 = time.time()
        if train_seqs is None or cfg.fresh:
            train_seqs = torch.from_numpy(task.sample(cfg.n_train // per, training_seed(cfg, epoch), reverse=reverse,
                                                      every_goal=cfg.every_goal)).to(dev)
        bar = _Progress(steps_per_epoch, f"{cfg.objective} epoch {epoch + 1}/{cfg.epochs}")
        order = batch_order(len(train_seqs), per, dev)
        total = torch.zeros((), device=dev)  # summed on the device: no sync per step
        for step in range(steps_per_epoch):
            for group in opt.param_groups:
                group["lr"] = lr_at(epoch * steps_per_epoch + step, cfg.epochs * steps_per_epoch, cfg)
            seq = train_seqs[order[step * cfg.batch : (step + 1) * cfg.batch]]
            x, y, mask = inputs_and_targets(seq, task.answer_start, cfg.objective, dummy)
            with torch.autocast(dev.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
                batch_loss = loss(model(x), y, mask)
            opt.zero_grad(set_to_none=True)
            scaler.scale(batch_loss).backward()
            scaler.step(opt)
            scaler.update()
            total += batch_loss.detach()
            if (step + 1) % 100 == 0 or step + 1 == steps_per_epoch:
                bar.update(step + 1, f"loss {float(total) / (step + 1):.4f}")
        acc = evaluate(model, task, test_seqs, cfg.objective)
        point = {"epoch": epoch + 1, "loss": float(total) / steps_per_epoch, **acc,
                 "lr": opt.param_groups[0]["lr"], "seconds": round(time.time() - t0, 2)}
        record["curve"].append(point)
        log(f"{cfg.objective} epoch {epoch + 1}: loss {point['loss']:.4f}  exact {acc['exact']:.3f}  "
            f"first-step {acc['first']:.3f}  per node {' '.join(f'{a:.2f}' for a in acc['nodes'])}  "
            f"({point['seconds']} s)")
        _save_atomic({"model": model.state_dict(), "opt": opt.state_dict(), "record": record,
                      "rng": torch.get_rng_state()}, ckpt_path)
        tmp = curve_path.with_suffix(".json.part")
        tmp.write_text(json.dumps(record, indent=1))
        os.replace(tmp, curve_path)
    return record


def evaluate_checkpoint(path: Path, n_test: int, seed: int, device: str = "auto") -> dict:
    """Accuracy of a saved model on `n_test` fresh graphs from stream `seed`."""
    dev = pick_device(device)
    ckpt = torch.load(path, map_location=dev, weights_only=False)
    run = RunConfig(**ckpt["record"]["run"])
    model = GPT(GPTConfig(**ckpt["record"]["model"])).to(dev)
    model.load_state_dict(ckpt["model"])
    seqs = torch.from_numpy(run.task.sample(n_test, seed, reverse=run.objective == "reverse")).to(dev)
    return evaluate(model, run.task, seqs, run.objective)


def _save(fig, path: Path) -> None:
    """Write a figure whole or not at all, and free it."""
    import matplotlib.pyplot as plt

    tmp = path.with_suffix(".part.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)


def _epoch_axis(ax) -> None:
    """Whole epochs only: a 3-epoch run would otherwise be ticked 1.00, 1.25, ..."""
    from matplotlib.ticker import MaxNLocator

    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def plot_curves(records: dict[str, dict], path: Path, title: str) -> None:
    """Learning curves (exact match and first decision) per objective, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), dpi=110, sharey=True)
    colours = {"next": "#d62728", "teacherless": "#1f77b4", "reverse": "#2ca02c"}
    for objective, rec in records.items():
        epochs = [p["epoch"] for p in rec["curve"]]
        for ax, key in zip(axes, ("exact", "first")):
            ax.plot(epochs, [p[key] for p in rec["curve"]], marker="o", ms=3, label=objective,
                    color=colours.get(objective))
    deg = next(iter(records.values()))["run"]["deg"]
    for ax, name in zip(axes, ("whole path (exact match)", "first step after the source")):
        ax.axhline(1 / deg, color="#999999", ls="--", lw=1)
        ax.set_title(name, fontsize=10)
        _epoch_axis(ax)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("test accuracy")
    axes[0].legend(loc="lower right", fontsize=8)
    axes[1].text(0.02, 1 / deg + 0.02, f"chance 1/{deg}", transform=axes[1].get_yaxis_transform(), fontsize=8,
                 color="#666666")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    _save(fig, path)


def plot_nodes(records: dict[str, dict], path: Path, title: str) -> None:
    """Accuracy at each answer position (a1 .. the goal) per epoch, one panel per objective:
    where along the path each objective learns, e.g. teacherless backwards from the goal."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(records), figsize=(4.2 * len(records), 3.6), dpi=110, sharey=True,
                             squeeze=False)
    for ax, (objective, rec) in zip(axes[0], records.items()):
        epochs = [p["epoch"] for p in rec["curve"]]
        nodes = np.array([p["nodes"] for p in rec["curve"]])  # (epochs, answer positions)
        if objective == "reverse":  # its answer runs goal -> source: put it in path order
            nodes = nodes[:, ::-1]
        last = nodes.shape[1] - 1  # position 0 is the source (given), `last` the goal
        colours = plt.cm.viridis(np.linspace(0, 0.9, last))
        for k in range(1, last + 1):
            ax.plot(epochs, nodes[:, k], color=colours[k - 1], lw=1.4, label="goal" if k == last else f"a{k}")
        ax.axhline(1 / rec["run"]["deg"], color="#999999", ls="--", lw=1)
        ax.set_title(objective, fontsize=10)
        _epoch_axis(ax)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("test accuracy at that node")
    axes[0][-1].legend(loc="lower right", fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    _save(fig, path)


def plot_run(records: dict[str, dict], folder: Path, title: str) -> None:
    """A run folder's two plots: curves.png (whole path, first step) and nodes.png (each node)."""
    plot_curves(records, folder / "curves.png", title)
    plot_nodes(records, folder / "nodes.png", title + ": accuracy at each node")


def train_all(size: str, objectives: list[str], out_dir: Path, device: str = "auto", log=print,
              **overrides) -> dict[str, dict]:
    """Train each objective in turn and draw their plots into out_dir (`plot_run`)."""
    records = {}
    for objective in objectives:
        cfg = RunConfig.for_size(size, objective, **overrides)
        records[objective] = train(cfg, out_dir, device=device, log=log)
    cfg = RunConfig.for_size(size, objectives[0], **overrides)
    plot_run(records, out_dir, f"path-star G({cfg.deg},{cfg.path_len},{cfg.nodes}), "
                               f"{cfg.n_layer}x{cfg.n_embd} GPT, {cfg.n_train} samples an epoch")
    return records

