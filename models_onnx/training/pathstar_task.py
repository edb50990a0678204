"""The path-star task of Bachmann & Nagarajan (2024), as token sequences. numpy only.

G(d, l, n): a source node with d arms; each arm is a chain of l-1 further nodes, so
the path from the source to an arm's leaf has l nodes. Node labels are distinct,
drawn from 0..n-1. The prefix lists the edges in random order, then the source and
the goal (a leaf); the answer is the path from source to goal:

    u v | u v | ... u v | / s g = s a1 a2 ... g

Every edge points away from the source. Only the first step (which arm to take)
needs planning; after it, each node has one successor.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SPECIALS = ("PAD", "|", "/", "=", "$")  # pad, edge separator, query, answer, dummy


@dataclass(frozen=True)
class PathStar:
    deg: int  # d: arms
    path_len: int  # l: nodes on the source-to-goal path, source included
    nodes: int  # n: label range

    def __post_init__(self) -> None:
        if self.deg < 2 or self.path_len < 2:
            raise ValueError("path-star needs --deg >= 2 and --path-len >= 2")
        need = 1 + self.deg * (self.path_len - 1)
        if self.nodes < need:
            raise ValueError(f"G({self.deg},{self.path_len},n) has {need} nodes: --nodes must be at least {need}")

    @property
    def vocab_size(self) -> int:
        return self.nodes + len(SPECIALS)

    def token(self, special: str) -> int:
        return self.nodes + SPECIALS.index(special)

    @property
    def n_edges(self) -> int:
        return self.deg * (self.path_len - 1)

    @property
    def answer_start(self) -> int:
        return 3 * self.n_edges + 4

    @property
    def seq_len(self) -> int:
        return self.answer_start + self.path_len

    def sample(self, n_graphs: int, seed: int, reverse: bool = False) -> np.ndarray:
        """(n_graphs, seq_len) int64 sequences; the answer is goal-to-source when `reverse`."""
        rng = np.random.default_rng(seed)
        d, l = self.deg, self.path_len
        E = self.n_edges
        out = np.empty((n_graphs, self.seq_len), dtype=np.int64)
        sep, query, answer = self.token("|"), self.token("/"), self.token("=")
        for i in range(n_graphs):
            labels = rng.choice(self.nodes, size=1 + d * (l - 1), replace=False)
            source, arms = labels[0], labels[1:].reshape(d, l - 1)  # (d, l-1)
            chains = np.concatenate([np.full((d, 1), source), arms], axis=1)  # (d, l)
            edges = np.stack([chains[:, :-1].ravel(), chains[:, 1:].ravel()], axis=1)  # (E, 2)
            edges = edges[rng.permutation(E)]
            goal_arm = rng.integers(d)
            path = chains[goal_arm]  # (l,)
            row = out[i]
            row[: 3 * E : 3], row[1 : 3 * E : 3], row[2 : 3 * E : 3] = edges[:, 0], edges[:, 1], sep
            row[3 * E : self.answer_start] = (query, source, path[-1], answer)
            row[self.answer_start :] = path[::-1] if reverse else path
        return out

    def first_decision_index(self, reverse: bool) -> int:
        """Index in the answer of the node after the source: the one planning step."""
        return self.path_len - 2 if reverse else 1
