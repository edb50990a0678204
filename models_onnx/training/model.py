"""A decoder-only transformer you can read in one sitting (after nanoGPT).

One model for every objective: `forward` gives next-token logits; with n_future > 1
it also carries extra heads (after Gloeckle et al., 2024): head i is a residual MLP
on the shared trunk's output, predicting the token i+1 places ahead, through the
same final norm and unembedding. (Gloeckle's heads are whole transformer layers;
ours have no attention, so they need no cache of their own and the cached
inference path computes them exactly.) `trunk_cached` is the inference path with a
key/value cache (what the ONNX export runs). The config travels with every
checkpoint, so a saved model rebuilds exactly as trained.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class GPTConfig:
    vocab_size: int
    block_size: int  # longest sequence the position table covers
    n_layer: int = 6
    n_head: int = 6
    n_embd: int = 384
    dropout: float = 0.0
    pos_init_std: float = 0.02  # 1.0 (PyTorch's default) lets dummy inputs tell positions apart from the start
    n_future: int = 1  # heads: 1 = next token only; k = next token and k-1 further ahead
    feature_sizes: tuple = ()  # per-token categorical features (e.g. rhyme class, syllables): table sizes

    def to_dict(self) -> dict:
        return asdict(self)


class SelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        assert cfg.n_embd % cfg.n_head == 0, "n_embd must divide into n_head heads"
        self.n_head = cfg.n_head
        self.qkv = nn.Linear(cfg.n_embd, 3 * cfg.n_embd)
        self.proj = nn.Linear(cfg.n_embd, cfg.n_embd)
        self.dropout = cfg.dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, T, C) -> (B, T, C), causal."""
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)  # 3 x (B, T, C)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, H, T, C/H)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                           dropout_p=self.dropout if self.training else 0.0)  # (B, H, T, C/H)
        return self.proj(y.transpose(1, 2).contiguous().view(B, T, C))  # (B, T, C)

    def step(self, x: torch.Tensor, past_k: torch.Tensor, past_v: torch.Tensor, mask: torch.Tensor,
             B: int, T: int):
        """The same with a cache: x (B, T, C) follows P positions whose keys and values are
        past_k, past_v (B, H, P, C/H); mask (T, P+T) is 0 where a query sees a key and -inf
        where it must not. Returns y and the keys and values extended by x's T positions.
        Written for a small exported graph: B and T come from the caller (one shape
        computation for every layer), q, k and v come out of one reshape, and the attention
        is spelled out (no NaN guard around the softmax). At a few rows per call,
        onnxruntime's time goes mostly to per-node overhead."""
        H, C = self.n_head, self.qkv.in_features
        qkv = self.qkv(x).view(B, T, 3, H, C // H).permute(2, 0, 3, 1, 4)  # (3, B, H, T, C/H)
        k = torch.cat([past_k, qkv[1]], dim=2)  # (B, H, P+T, C/H)
        v = torch.cat([past_v, qkv[2]], dim=2)
        att = (qkv[0] @ k.transpose(2, 3)) * (C // H) ** -0.5 + mask  # (B, H, T, P+T)
        y = att.softmax(dim=-1) @ v  # (B, H, T, C/H)
        return self.proj(y.transpose(1, 2).reshape(B, T, C)), k, v


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.n_embd)
        self.attn = SelfAttention(cfg)
        self.ln2 = nn.LayerNorm(cfg.n_embd)
        self.mlp = nn.Sequential(
            nn.Linear(cfg.n_embd, 4 * cfg.n_embd), nn.GELU(), nn.Linear(4 * cfg.n_embd, cfg.n_embd), nn.Dropout(cfg.dropout)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))

    def step(self, x: torch.Tensor, past_k: torch.Tensor, past_v: torch.Tensor, mask: torch.Tensor,
             B: int, T: int):
        a, k, v = self.attn.step(self.ln1(x), past_k, past_v, mask, B, T)
        x = x + a
        return x + self.mlp(self.ln2(x)), k, v


class FutureHead(nn.Module):
    """An extra head's own layer: a residual MLP on the trunk's output (position-wise)."""

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.ln = nn.LayerNorm(cfg.n_embd)
        self.mlp = nn.Sequential(nn.Linear(cfg.n_embd, 4 * cfg.n_embd), nn.GELU(), nn.Linear(4 * cfg.n_embd, cfg.n_embd))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mlp(self.ln(x))


class GPT(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.tok = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.pos = nn.Embedding(cfg.block_size, cfg.n_embd)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.future = nn.ModuleList(FutureHead(cfg) for _ in range(cfg.n_future - 1))
        self.ln_f = nn.LayerNorm(cfg.n_embd)
        self.head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        self.head.weight = self.tok.weight  # tied embeddings
        # Factored embeddings: a token's vector is its own plus one per feature it has
        # (tokens sharing a rhyme class share a component), in and out alike.
        self.features = nn.ModuleList(nn.Embedding(n, cfg.n_embd) for n in cfg.feature_sizes)
        self.register_buffer("feature_ids", torch.zeros((cfg.vocab_size, len(cfg.feature_sizes)), dtype=torch.long))
        self.apply(self._init)
        nn.init.normal_(self.pos.weight, mean=0.0, std=cfg.pos_init_std)
        for f in self.features:
            nn.init.zeros_(f.weight)  # start as a plain embedding; features earn their weight
        for name, p in self.named_parameters():  # scaled init of residual projections (GPT-2)
            if name.endswith("proj.weight") or name.endswith("mlp.2.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)

    def trunk(self, idx: torch.Tensor) -> torch.Tensor:
        B, T = idx.shape
        if T > self.cfg.block_size:
            raise ValueError(f"sequence of {T} tokens is longer than block_size {self.cfg.block_size}")
        pos = torch.arange(T, device=idx.device)
        x = self.drop(self.embed(idx) + self.pos(pos))  # (B, T, C)
        for block in self.blocks:
            x = block(x)
        return x

    def set_features(self, ids) -> None:
        """ids (vocab_size, n_features) ints: each token's value of each feature."""
        self.feature_ids.copy_(torch.as_tensor(ids, dtype=torch.long))

    @torch.no_grad()
    def fused(self) -> "GPT":
        """The same model with the feature tables folded into one embedding (for export:
        identical logits, no per-call gathering)."""
        if not self.cfg.feature_sizes:
            return self
        cfg = GPTConfig(**{**self.cfg.to_dict(), "feature_sizes": ()})
        out = GPT(cfg)
        state = {k: v for k, v in self.state_dict().items() if not k.startswith("features.") and k != "feature_ids"}
        state["tok.weight"] = self.output_embedding().detach().clone()
        state["head.weight"] = state["tok.weight"]
        state["feature_ids"] = out.feature_ids
        out.load_state_dict(state)
        return out.eval()

    def embed(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.tok(idx)
        for i, f in enumerate(self.features):
            x = x + f(self.feature_ids[idx, i])
        return x

    def output_embedding(self) -> torch.Tensor:
        """(V, C): the vectors the logits are scored against (tied with the input side)."""
        w = self.tok.weight
        for i, f in enumerate(self.features):
            w = w + f(self.feature_ids[:, i])
        return w

    def unembed(self, h: torch.Tensor, w: torch.Tensor | None = None) -> torch.Tensor:
        """Logits from trunk outputs h (..., C)."""
        return F.linear(self.ln_f(h), self.output_embedding() if w is None else w)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """idx: (B, T) token ids -> logits (B, T, vocab_size) for the token after each position."""
        return self.unembed(self.trunk(idx))  # (B, T, V)

    def forward_heads(self, idx: torch.Tensor) -> torch.Tensor:
        """Logits of every head, (n_future, B, T, V): head i predicts the token i+1 places ahead."""
        h = self.trunk(idx)
        w = self.output_embedding()
        return torch.stack([self.unembed(h, w)] + [self.unembed(f(h), w) for f in self.future])

    def trunk_cached(self, idx: torch.Tensor, past_keys: torch.Tensor, past_values: torch.Tensor):
        """The trunk with a key/value cache (the inference path).

        idx (B, T) follows P cached positions; past_keys/values (n_layer, B, H, P, C/H).
        Returns the trunk's output (B, T, C) and the caches extended to P+T positions.
        """
        B, T = idx.shape
        P = past_keys.shape[3]
        pos = P + torch.arange(T, device=idx.device)
        # query t (absolute position P+t) sees keys 0..P+t; worked out once for every layer
        seen = torch.arange(P + T, device=idx.device)[None, :] <= pos[:, None]  # (T, P+T)
        mask = torch.zeros(seen.shape, device=idx.device).masked_fill(~seen, float("-inf"))
        x = self.embed(idx) + self.pos(pos)
        keys, values = [], []
        for layer, block in enumerate(self.blocks):
            x, k, v = block.step(x, past_keys[layer], past_values[layer], mask, B, T)
            keys.append(k)
            values.append(v)
        return x, torch.stack(keys), torch.stack(values)

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
