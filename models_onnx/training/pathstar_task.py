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

SPECIALS = ("PAD", "|", "/", "=", "$", ",")  # pad, edge separator, query, answer, dummy, comma


@dataclass(frozen=True)
class PathStar:
    deg: int  # d: arms
    path_len: int  # l: nodes on the source-to-goal path, source included
    nodes: int  # n: label range
    # A spelling with commas: `u , v | ... / s , g = s , a1 , ... , g` (the reference code's
    # text files have them, but its tokenizer for the from-scratch GPT drops them). The commas
    # in the answer give the dummy positions of teacherless training an easy target that
    # depends only on position.
    commas: bool = False

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
    def edge_len(self) -> int:
        """Tokens per edge: `u v |`, or `u , v |`."""
        return 4 if self.commas else 3

    @property
    def answer_start(self) -> int:
        return self.edge_len * self.n_edges + (5 if self.commas else 4)

    @property
    def answer_len(self) -> int:
        return 2 * self.path_len - 1 if self.commas else self.path_len

    @property
    def seq_len(self) -> int:
        return self.answer_start + self.answer_len

    def sample(self, n_graphs: int, seed: int, reverse: bool = False, every_goal: bool = False) -> np.ndarray:
        """(n_graphs, seq_len) int64 sequences; the answer is goal-to-source when `reverse`.
        `every_goal`: each graph once per arm's leaf as the goal, in consecutive rows
        (n_graphs * deg rows; Frydenlund's "structured samples", 2024): the same edges,
        in the same order, ask for different answers."""
        rng = np.random.default_rng(seed)
        d, l = self.deg, self.path_len
        E, k = self.n_edges, self.edge_len
        per = d if every_goal else 1
        out = np.empty((n_graphs * per, self.seq_len), dtype=np.int64)
        sep, query, answer, comma = (self.token(t) for t in ("|", "/", "=", ","))
        for i in range(n_graphs):
            labels = rng.choice(self.nodes, size=1 + d * (l - 1), replace=False)
            source, arms = labels[0], labels[1:].reshape(d, l - 1)  # (d, l-1)
            chains = np.concatenate([np.full((d, 1), source), arms], axis=1)  # (d, l)
            edges = np.stack([chains[:, :-1].ravel(), chains[:, 1:].ravel()], axis=1)  # (E, 2)
            edges = edges[rng.permutation(E)]
            first = rng.integers(d)
            for j in range(per):
                goal_arm = (first + j) % d
                path = chains[goal_arm]  # (l,)
                if reverse:
                    path = path[::-1]
                row = out[i * per + j]
                row[0 : k * E : k], row[k - 2 : k * E : k], row[k - 1 : k * E : k] = edges[:, 0], edges[:, 1], sep
                if self.commas:
                    row[1 : k * E : k] = comma
                    row[k * E : self.answer_start] = (query, source, comma, chains[goal_arm][-1], answer)
                    row[self.answer_start :: 2], row[self.answer_start + 1 :: 2] = path, comma
                else:
                    row[k * E : self.answer_start] = (query, source, chains[goal_arm][-1], answer)
                    row[self.answer_start :] = path
        return out

    def path_nodes(self, answers):
        """The node columns of answers (..., answer_len): every other token when spelled with commas."""
        return answers[..., ::2] if self.commas else answers

    def first_decision_index(self, reverse: bool) -> int:
        """Index in the answer of the node after the source: the one planning step."""
        node = self.path_len - 2 if reverse else 1
        return 2 * node if self.commas else node
