"""An open-vocabulary word tokenizer for bars.

Words the corpus knows are one token each, so the decoder's constraints (syllables,
rhyme) are per token. Any other word — the opponent's name, a new place — is
spelled with letter tokens and closed by `</w>`, so whatever the opponent says can
be written back. Conditioning markers (syllable budget, tactic, rhyme target)
are tokens too. Plain Python: the runtime and the trainer share it.
"""
from __future__ import annotations

import json
from collections import Counter
from typing import Iterable, Sequence

from dsp.text import normalize_words
from models_onnx.corpus import TACTICS

MIN_SYLLABLES, MAX_SYLLABLES = 4, 24
SPECIALS = (
    "<pad>", "<bos>", "<eos>", "<sep>", "<dummy>",
    "<opp>", "<prev>", "<rhyme>", "<anchor>", "<free>", "<r2l>", "<l2r>", "</w>",
    *(f"<syl:{n}>" for n in range(MIN_SYLLABLES, MAX_SYLLABLES + 1)),
    *(f"<tac:{t}>" for t in TACTICS),
)
LETTERS = tuple("abcdefghijklmnopqrstuvwxyz'")


class Tokenizer:
    def __init__(self, words: Sequence[str]):
        self.itos: list[str] = [*SPECIALS, *(f"#{c}" for c in LETTERS), *words]
        self.stoi = {s: i for i, s in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise ValueError("tokenizer vocabulary has duplicates")
        self.first_word = len(SPECIALS) + len(LETTERS)
        self.end_of_spelling = self.stoi["</w>"]

    @classmethod
    def build(cls, bars: Iterable[str], min_count: int = 1) -> "Tokenizer":
        counts = Counter(w for b in bars for w in normalize_words(b))
        words = sorted(w for w, n in counts.items() if n >= min_count and f"#{w}" not in LETTERS)
        return cls(words)

    def __len__(self) -> int:
        return len(self.itos)

    def __getitem__(self, special: str) -> int:
        return self.stoi[special]

    def to_json(self) -> str:
        return json.dumps({"words": self.itos[self.first_word:]})

    @classmethod
    def from_json(cls, text: str) -> "Tokenizer":
        return cls(json.loads(text)["words"])

    def is_word(self, token: int) -> bool:
        return token >= self.first_word

    def is_letter(self, token: int) -> bool:
        return len(SPECIALS) <= token < self.first_word

    def encode_word(self, word: str) -> list[int]:
        if word in self.stoi and self.stoi[word] >= self.first_word:
            return [self.stoi[word]]
        letters = [self.stoi[f"#{c}"] for c in word if f"#{c}" in self.stoi]
        return [*letters, self.end_of_spelling] if letters else []

    def encode(self, words: Iterable[str]) -> list[int]:
        return [t for w in words for t in self.encode_word(w)]

    def words(self, tokens: Iterable[int]) -> list[str]:
        """Decode word and letter tokens back to words; markers are skipped."""
        out, spelled = [], ""
        for t in tokens:
            if self.is_word(t):
                out.append(self.itos[t])
            elif self.is_letter(t):
                spelled += self.itos[t][1:]
            elif t == self.end_of_spelling and spelled:
                out.append(spelled)
                spelled = ""
        if spelled:
            out.append(spelled)
        return out
