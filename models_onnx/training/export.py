"""Export a trained lyric model to ONNX with a key/value cache (`cypher export lyrics`).

The graph: input_ids (B, T) int64, past_keys and past_values (n_layer, B, H, P, D)
float32 -> logits (B, T, 1, V) of the next-token head, present_keys, present_values
(P+T positions), and with extra heads draft_logits (B, T, n_future-1, V).
onnxruntime runs every node of a graph whatever outputs are fetched, so the extra
heads sit inside an `If` on a boolean input `drafts`: a call that does not ask for
drafts skips them (two of the three vocabulary projections; ~25 % of a decoding step
on our model) and gets an empty draft_logits.
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
        m = self.model
        h, keys, values = m.trunk_cached(input_ids, past_keys, past_values)
        w = m.output_embedding()
        logits = m.unembed(h, w)[:, :, None]  # (B, T, 1, V): from the trunk alone, not from the drafts
        if m.cfg.n_future > 1:
            drafts = torch.stack([m.unembed(f(h), w) for f in m.future], dim=2)  # (B, T, n_future-1, V)
            return logits, keys, values, drafts
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


def gate_drafts(proto) -> None:
    """Move the nodes only draft_logits needs into the `then` branch of an `If` on a new
    boolean input `drafts` (a scalar); the `else` branch gives an empty (0, 0, 0, 0)
    tensor. The branch reads the trunk's output and the heads' weights from the outer
    graph."""
    from onnx import TensorProto, helper, numpy_helper

    g = proto.graph
    producer = {out: n for n in g.node for out in n.output}
    needed: set[int] = set()  # ids of nodes the other outputs depend on
    todo = [o.name for o in g.output if o.name != "draft_logits"]
    while todo:
        node = producer.get(todo.pop())
        if node is not None and id(node) not in needed:
            needed.add(id(node))
            todo.extend(node.input)
    keep = [n for n in g.node if id(n) in needed]
    branch = [n for n in g.node if id(n) not in needed]  # graph order is topological
    inner = "draft_logits_computed"
    for n in branch:
        n.output[:] = [inner if o == "draft_logits" else o for o in n.output]
    rank4 = [None] * 4  # (B, T, n_future-1, V) or (0, 0, 0, 0)
    then_g = helper.make_graph(branch, "drafts", [], [helper.make_tensor_value_info(inner, TensorProto.FLOAT, rank4)])
    empty = helper.make_node("Constant", [], ["no_drafts"],
                             value=numpy_helper.from_array(np.zeros((0, 0, 0, 0), np.float32)))
    else_g = helper.make_graph([empty], "no_drafts", [],
                               [helper.make_tensor_value_info("no_drafts", TensorProto.FLOAT, rank4)])
    gate = helper.make_node("If", ["drafts"], ["draft_logits"], then_branch=then_g, else_branch=else_g)
    del g.node[:]
    g.node.extend(keep + [gate])
    g.input.append(helper.make_tensor_value_info("drafts", TensorProto.BOOL, []))
    out = next(o for o in g.output if o.name == "draft_logits")
    for dim in out.type.tensor_type.shape.dim:  # empty when not asked for: no fixed sizes
        dim.Clear()


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
    if cfg.n_future > 1:
        gate_drafts(proto)
        onnx.checker.check_model(proto)
    meta = {"tokenizer": tok.to_json(), "config": json.dumps(cfg.to_dict()),
            "run": json.dumps(record.get("run", {})), "best": json.dumps(record.get("best"))}
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(tmp))
    os.replace(tmp, path)
    return path


def quantize(src: Path, dst: Path) -> Path:
    """Write `src` with its weight matrices in 8 bits (blocks of 64 along the input, one
    scale each; com.microsoft.MatMulNBits, onnxruntime >= 1.22) to `dst`, atomically.
    A decoding step is a few rows, so it costs mostly the reading of weights. Activations
    are quantised row by row (accuracy level 4: int8 products), so a candidate's logits
    do not depend on the other rows of its batch. (onnxruntime's dynamic int8 quantises a
    whole batch with one scale: logits moved with their neighbours, and self-speculative
    decoding matched one token at a time in 90 % of bars, against 99.8 % here.)"""
    import logging

    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    logging.disable(logging.INFO)  # a line per node otherwise
    try:
        q = MatMulNBitsQuantizer(onnx.load(str(src)), bits=8, block_size=64, is_symmetric=True, accuracy_level=4)
        q.process()
        tmp = dst.with_suffix(".part.onnx")
        q.model.save_model_to_file(str(tmp))
    finally:
        logging.disable(logging.NOTSET)
    os.replace(tmp, dst)
    return dst


def agreement(reference: Path, other: Path, tokens: list[int]) -> dict:
    """How far `other`'s next-token logits are from `reference`'s on `tokens`: max |difference|
    and the share of positions where both pick the same token."""
    import onnxruntime as ort

    logits = []
    for path in (reference, other):
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        feeds = {i.name: i for i in sess.get_inputs()}
        shape = feeds["past_keys"].shape
        empty = np.zeros((shape[0], 1, shape[2], 0, shape[4]), dtype=np.float32)
        run = {"input_ids": np.array([tokens], dtype=np.int64), "past_keys": empty, "past_values": empty}
        if "drafts" in feeds:
            run["drafts"] = np.array(False)
        logits.append(sess.run(["logits"], run)[0][0, :, 0])  # (T, V)
    a, b = logits
    return {"max_abs_diff": float(np.abs(a - b).max()), "same_top": float((a.argmax(-1) == b.argmax(-1)).mean())}


@torch.no_grad()
def parity(model: GPT, path: Path, tokens: list[int], split: int) -> float:
    """Max |torch - onnxruntime| over logits, feeding `tokens` in two pieces through the cache
    (with and without the draft heads)."""
    import onnxruntime as ort

    model = model.eval()
    cfg = model.cfg
    head_dim = cfg.n_embd // cfg.n_head
    ref = model.forward_heads(torch.tensor([tokens])).permute(1, 2, 0, 3).numpy()  # (1, T, H, V)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    empty = np.zeros((cfg.n_layer, 1, cfg.n_head, 0, head_dim), dtype=np.float32)
    a = np.array([tokens[:split]], dtype=np.int64)
    b = np.array([tokens[split:]], dtype=np.int64)
    drafts = {"drafts": np.array(True)} if cfg.n_future > 1 else {}
    outs_a = sess.run(None, {"input_ids": a, "past_keys": empty, "past_values": empty, **drafts})
    outs_b = sess.run(None, {"input_ids": b, "past_keys": outs_a[1], "past_values": outs_a[2], **drafts})
    heads = [np.concatenate([o[0]] + o[3:], axis=2) for o in (outs_a, outs_b)]
    got = np.concatenate(heads, axis=1)
    diff = float(np.abs(got - ref).max())
    if drafts:  # without drafts asked for: the same next-token logits, and no drafts computed
        off = {"drafts": np.array(False)}
        plain_a = sess.run(None, {"input_ids": a, "past_keys": empty, "past_values": empty, **off})
        plain_b = sess.run(None, {"input_ids": b, "past_keys": plain_a[1], "past_values": plain_a[2], **off})
        if plain_a[3].size or plain_b[3].size:
            raise RuntimeError(f"{path}: the draft heads ran although drafts were not asked for")
        plain = np.concatenate([plain_a[0], plain_b[0]], axis=1)
        diff = max(diff, float(np.abs(plain - ref[:, :, :1]).max()))
    return diff
