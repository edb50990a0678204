"""`cypher train` and the path-star bench: the bridge to models_onnx.training (torch)."""
from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

from plugin_host.errors import UsageError

OBJECTIVES = ["next", "teacherless", "reverse"]
FRESH_SEED = 7_777_777  # the bench's graphs: a stream neither training nor its per-epoch test uses


def need_torch(what: str = "training") -> None:
    """A usage error naming the fix when the train extra is not installed."""
    if importlib.util.find_spec("torch") is None:
        raise UsageError(f"{what} needs torch: install the train extra with pip install -e '.[train]'")


def _torch_modules():
    need_torch()
    from models_onnx.training import pathstar

    return pathstar


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


PATHSTAR_FLAGS = {"deg": "deg", "path_len": "path_len", "nodes": "nodes", "n_train": "n_train", "n_test": "n_test",
                  "epochs": "epochs", "batch": "batch", "lr": "lr", "layers": "n_layer", "width": "n_embd",
                  "heads": "n_head", "commas": "commas", "constant_lr": "constant_lr", "precision": "precision",
                  "fresh": "fresh", "every_goal": "every_goal"}


def _overrides(args, names: dict[str, str] = PATHSTAR_FLAGS) -> dict:
    """{config field: value} for the flags in `names` that were given; each must be positive."""
    out = {}
    for arg, field in names.items():
        value = getattr(args, arg, None)
        if value is not None:
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value <= 0:
                raise UsageError(f"--{arg.replace('_', '-')} must be positive, got {value}")
            out[field] = value
    return out


def _run(pathstar, size: str, objectives: list[str], out: Path, device: str, seed: int, overrides: dict):
    try:
        cfg = pathstar.RunConfig.for_size(size, objectives[0], seed=seed, **overrides)
        cfg.task  # validates the graph's sizes
        if cfg.n_embd % cfg.n_head:
            raise ValueError(f"--width {cfg.n_embd} must be a multiple of --heads {cfg.n_head}")
        return pathstar.train_all(size, objectives, out, device=device, log=_log, seed=seed, **overrides)
    except ValueError as e:
        raise UsageError(str(e)) from None


def train_pathstar(args) -> None:
    pathstar = _torch_modules()
    args.size = args.size or "tiny"
    if args.size not in ("tiny", "cpu", "paper"):
        raise UsageError(f"pathstar has sizes tiny, cpu and paper, not {args.size!r}")
    if args.objective == "multi":
        raise UsageError("pathstar objectives are next, teacherless, reverse or all")
    if args.steps is not None:
        raise UsageError("pathstar trains by --epochs, not --steps")
    out = Path(args.out or f"runs/pathstar-{args.size}")
    objectives = OBJECTIVES if args.objective in (None, "all") else [args.objective]
    _run(pathstar, args.size, objectives, out, args.device, args.seed, _overrides(args))
    _log(f"cypher train pathstar: wrote {out}/ ({', '.join(o + '.pt' for o in objectives)}, curves.png, nodes.png)")


def bench_pathstar(size: str = "tiny", from_dir: str | None = None, out: str | None = None,
                   device: str = "auto", n_fresh: int = 2000) -> dict:
    """Exact-match and first-step accuracy per objective on fresh graphs, with a curve plot."""
    pathstar = _torch_modules()
    if from_dir:
        folder = Path(from_dir)
        found = [o for o in OBJECTIVES if (folder / f"{o}.pt").exists()]
        if not found:
            raise UsageError(f"{folder} holds no next.pt, teacherless.pt or reverse.pt; run cypher train pathstar --out {folder}")
        import json

        records = {o: json.loads((folder / f"{o}.json").read_text()) for o in found}
        pathstar.plot_run(records, folder, f"path-star, from {folder}")
    else:
        folder = Path(out or f"runs/pathstar-{size}")
        records = _run(pathstar, size, OBJECTIVES, folder, device, 0, {})
        found = OBJECTIVES
    metrics, setup = {}, {}
    for o in found:
        acc = pathstar.evaluate_checkpoint(folder / f"{o}.pt", n_fresh, FRESH_SEED, device=device)
        metrics[f"{o}_exact"] = round(acc["exact"], 4)
        metrics[f"{o}_first_step"] = round(acc["first"], 4)
        metrics[f"{o}_epochs"] = len(records[o]["curve"])
        setup[o] = {k: records[o]["run"][k] for k in ("deg", "path_len", "nodes", "n_train", "epochs", "batch", "lr")}
        setup[o]["model"] = {k: records[o]["model"][k] for k in ("n_layer", "n_head", "n_embd")}
        setup[o]["trained_on"] = records[o].get("device_name", records[o]["device"])
    targets = {}
    if "next_exact" in metrics:  # the failure: teacher forcing stays near chance (1/d)
        targets["next_exact"] = {"target": "<= 0.6", "met": metrics["next_exact"] <= 0.6}
    for o in ("teacherless", "reverse"):
        if f"{o}_exact" in metrics:
            targets[f"{o}_exact"] = {"target": ">= 0.95", "met": metrics[f"{o}_exact"] >= 0.95}
    return {"bench": "pathstar", "setup": {"folder": str(folder), "fresh_graphs": n_fresh, "runs": setup,
                                           "plot": str(folder / "curves.png"),
                                           "plot_nodes": str(folder / "nodes.png")},
            "metrics": metrics, "targets": targets}


LYRIC_FLAGS = {"steps": "steps", "batch": "batch", "lr": "lr", "layers": "n_layer", "width": "n_embd",
               "heads": "n_head"}


def train_lyrics(args) -> None:
    need_torch()
    from models_onnx.training import export, lyrics

    size = args.size or "small"
    if size not in lyrics.SIZES:
        raise UsageError(f"lyrics has sizes {', '.join(lyrics.SIZES)}, not {size!r}")
    objective = args.objective or "multi"
    if objective not in lyrics.OBJECTIVES:
        raise UsageError(f"lyrics objectives are {', '.join(lyrics.OBJECTIVES)}, not {objective!r}")
    pathstar_only = [f for f in ("deg", "path_len", "nodes", "n_train", "n_test", "epochs", "commas", "constant_lr",
                                 "fresh", "every_goal", "precision")
                     if getattr(args, f, None) is not None]
    if pathstar_only:
        raise UsageError(f"--{pathstar_only[0].replace('_', '-')} is a pathstar option; lyrics trains by --steps")
    overrides = _overrides(args, LYRIC_FLAGS)
    try:
        run = lyrics.LyricsRun.for_size(size, objective=objective, direction=args.direction, seed=args.seed,
                                        **overrides)
        lyrics.pick_device(args.device)
    except ValueError as e:
        raise UsageError(str(e)) from None
    out = Path(args.out or "runs/lyrics")
    record = lyrics.train(run, out, device=args.device, log=_log)
    model, tok, best_record = lyrics.load_checkpoint(out)
    onnx_path = export.export(model, tok, best_record, out / "lyrics.onnx")
    lyrics.plot_curve(record, out / "curve.png")
    best = record["best"]
    _log(f"cypher train lyrics: {record['n_params']:,} parameters, {record['curve'][-1]['step']} steps in "
         f"{record['seconds']:.0f} s; best at step {best['step']} (validation perplexity {best['val_ppl']}, "
         f"held-out {best['heldout_ppl']}); wrote {out}/model.pt, best.pt, curve.json, curve.png, {onnx_path.name}")
    _log(f"install it as the shipped model with: cypher export lyrics --from {out}")


def export_lyrics(args) -> None:
    need_torch("export")
    from models_onnx.lyric_model import MODEL_PATH
    from models_onnx.training import export, lyrics

    ckpt = Path(args.from_dir) / "model.pt"
    if not ckpt.exists():
        raise UsageError(f"{ckpt} does not exist; train one first with cypher train lyrics --out {args.from_dir}")
    model, tok, record = lyrics.load_checkpoint(Path(args.from_dir))
    target = Path(args.out) if args.out else MODEL_PATH
    target.parent.mkdir(parents=True, exist_ok=True)
    full = target.with_suffix(".float.part.onnx")  # the target is replaced only once this passes its checks
    try:
        export.export(model, tok, record, full)
        probe = list(range(5, min(len(tok), 5 + 24)))
        diff = export.parity(model, full, probe, len(probe) // 2)
        if diff > 1e-4:
            raise UsageError(f"torch and onnxruntime disagree by {diff:.2e} (more than 1e-4); {target} is unchanged")
        _log(f"cypher export lyrics: torch vs onnxruntime max |logit difference| {diff:.2e}")
        if args.fp32:
            os.replace(full, target)
        else:
            try:
                export.quantize(full, target)
            except ImportError as e:
                raise UsageError(f"8-bit weights need onnxruntime's quantiser ({e.name} is missing): "
                                 "pip install -e '.[train]', or export float weights with --fp32; "
                                 f"{target} is unchanged") from None
            close = export.agreement(full, target, probe)
            _log(f"cypher export lyrics: 8-bit weights: max |logit difference| from float {close['max_abs_diff']:.3f}, "
                 f"same top token at {close['same_top']:.0%} of positions")
    finally:
        full.unlink(missing_ok=True)
    _log(f"cypher export lyrics: wrote {target} ({target.stat().st_size / 1e6:.1f} MB)")
    if target == MODEL_PATH:  # the English word pairs follow the shipped model's vocabulary
        from models_onnx import english_prior

        stats = english_prior.build(tok.itos[tok.first_word:])
        _log(f"cypher export lyrics: wrote {english_prior.PRIOR_PATH} ({stats['pairs']:,} English word pairs "
             f"over {stats['known']} of {stats['words']} words)")
