"""Training objectives on one transformer: teacher-forced next-token, teacherless, reversed.

A batch is whole sequences `seq` (B, L): a prefix, then an answer from `answer_start`.
The model reads `seq[:, :-1]` and is scored on predicting `seq[:, 1:]` at the answer
positions only.

- next: teacher forcing. Each answer token is predicted from the true tokens before it.
- teacherless (Bachmann & Nagarajan, 2024): the answer tokens in the *input* are
  replaced by a dummy token, so the whole answer is predicted in one pass from the
  prefix alone; nothing of the answer can be copied from the input.
- reverse: the answer is reversed by the data (goal to source), then next-token.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

OBJECTIVES = ("next", "teacherless", "reverse")


def inputs_and_targets(seq: torch.Tensor, answer_start: int, objective: str, dummy_id: int):
    """(inputs (B, L-1), targets (B, L-1), loss_mask (B, L-1) bool) for `objective`.

    loss_mask is True exactly where the target is an answer token.
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; valid: {', '.join(OBJECTIVES)}")
    inputs, targets = seq[:, :-1].clone(), seq[:, 1:]
    L = seq.shape[1]
    mask = torch.zeros(L - 1, dtype=torch.bool, device=seq.device)
    mask[answer_start - 1 :] = True
    if objective == "teacherless":
        inputs[:, answer_start:] = dummy_id  # input positions that hold answer tokens
    return inputs, targets, mask.expand_as(targets)


def loss(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over masked positions. logits (B, T, V), targets and mask (B, T)."""
    # ignore_index rather than boolean indexing: indexing waits for the GPU every step
    return F.cross_entropy(logits.transpose(1, 2), torch.where(mask, targets, -100), ignore_index=-100)


@torch.no_grad()
def decode(model, prefix: torch.Tensor, answer_len: int, objective: str, dummy_id: int) -> torch.Tensor:
    """Predicted answers (B, answer_len) for prefixes (B, P) that end just before the answer.

    teacherless: one pass with dummy inputs; otherwise greedy, one token at a time.
    """
    if objective == "teacherless":
        B = prefix.shape[0]
        dummies = torch.full((B, answer_len - 1), dummy_id, dtype=prefix.dtype, device=prefix.device)
        logits = model(torch.cat([prefix, dummies], dim=1))  # (B, P + answer_len - 1, V)
        return logits[:, prefix.shape[1] - 1 :].argmax(-1)
    seq = prefix
    for _ in range(answer_len):
        nxt = model(seq)[:, -1].argmax(-1, keepdim=True)  # (B, 1)
        seq = torch.cat([seq, nxt], dim=1)
    return seq[:, prefix.shape[1] :]
