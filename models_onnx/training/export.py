"""Export a trained lyric model to ONNX with a key/value cache (`cypher export lyrics`).

The graph: input_ids (B, T) int64, past_keys and past_values (n_layer, B, H, P, D)
float32 -> logits (B, T, 1, V) of the next-token head, present_keys, present_values
(P+T positions), and with extra heads draft_logits (B, T, n_future-1, V): a separate
output, so a caller that does not fetch it does not compute it.
The tokenizer and the settings the runtime needs ride in the model's metadata, so
one file is the whole model.
"""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from models_onnx.tokenizer import Tokenizer
from models_onnx.training.model import GPT

OPSET = 17


class _Cached(torch.nn.Module):
    def __init__(self, model: GPT) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids, past_keys, past_values):
        logits, keys, values = self.model.forward_cached(input_ids, past_keys, past_values)
        if self.model.cfg.n_future > 1:  # a separate output: a caller that does not fetch it does not pay for it
            return logits[:, :, :1], keys, values, logits[:, :, 1:]
        return logits, keys, values


def _export(model: GPT, ids, past, path: Path) -> None:
    outputs = ["logits", "present_keys", "present_values"] + (["draft_logits"] if model.cfg.n_future > 1 else [])
    axes = {"input_ids": {0: "batch", 1: "new"}, "past_keys": {1: "batch", 3: "past"},
            "past_values": {1: "batch", 3: "past"}, "logits": {0: "batch", 1: "new"},
            "present_keys": {1: "batch", 3: "total"}, "present_values": {1: "batch", 3: "total"},
            "draft_logits": {0: "batch", 1: "new"}}
    torch.onnx.export(
        _Cached(model), (ids, past, past.clone()), str(path), dynamo=False, opset_version=OPSET,
        input_names=["input_ids", "past_keys", "past_values"], output_names=outputs,
        dynamic_axes={k: v for k, v in axes.items() if k in outputs or k.startswith(("input", "past"))})


def export(model: GPT, tok: Tokenizer, record: dict, path: Path) -> Path:
    """Write `path` atomically; returns it."""
    import onnx

    model = model.eval().fused()
    cfg = model.cfg
    head_dim = cfg.n_embd // cfg.n_head
    ids = torch.zeros((1, 3), dtype=torch.long)
    past = torch.zeros((cfg.n_layer, 1, cfg.n_head, 2, head_dim))
    tmp = path.with_suffix(".part.onnx")
    with warnings.catch_warnings():  # the TorchScript exporter's deprecation and tracer notes
        warnings.simplefilter("ignore")
        _export(model, ids, past, tmp)
    proto = onnx.load(str(tmp))
    meta = {"tokenizer": tok.to_json(), "config": json.dumps(cfg.to_dict()),
            "run": json.dumps(record.get("run", {})), "best": json.dumps(record.get("best"))}
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(tmp))
    os.replace(tmp, path)
    return path


@torch.no_grad()
def parity(model: GPT, path: Path, tokens: list[int], split: int) -> float:
    """Max |torch - onnxruntime| over logits, feeding `tokens` in two pieces through the cache."""
    import onnxruntime as ort

    model = model.eval()
    cfg = model.cfg
    head_dim = cfg.n_embd // cfg.n_head
    ref = model.forward_heads(torch.tensor([tokens])).permute(1, 2, 0, 3).numpy()  # (1, T, H, V)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    empty = np.zeros((cfg.n_layer, 1, cfg.n_head, 0, head_dim), dtype=np.float32)
    a = np.array([tokens[:split]], dtype=np.int64)
    b = np.array([tokens[split:]], dtype=np.int64)
    outs_a = sess.run(None, {"input_ids": a, "past_keys": empty, "past_values": empty})
    outs_b = sess.run(None, {"input_ids": b, "past_keys": outs_a[1], "past_values": outs_a[2]})
    heads = [np.concatenate([o[0]] + o[3:], axis=2) for o in (outs_a, outs_b)]
    got = np.concatenate(heads, axis=1)
    return float(np.abs(got - ref).max())
