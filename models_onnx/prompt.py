"""What the lyric model reads before a bar, and how a bar is laid out after it.

    <bos> <opp> opponent words <prev> our previous bar <syl:N> <tac:...>...
    <rhyme> rhyme word | <free>  <anchor> anchor | <free>  <r2l>|<l2r> <sep>  bar <eos>

Right-to-left (r2l) writes the bar's words last to first, so the rhyme word is the
first decision and the rest of the line is written toward it; letters inside a
spelled word keep their order. The trainer and the runtime both use this module,
so the two cannot disagree on the format.
"""
from __future__ import annotations

from dataclasses import dataclass

from dsp.text import normalize_words
from models_onnx.tokenizer import MAX_SYLLABLES, MIN_SYLLABLES, Tokenizer

DIRECTIONS = ("r2l", "l2r")
# Token caps per field keep every prefix under 105 tokens, so prefix + bar fits 128.
MAX_OPPONENT_TOKENS = 40  # the opponent's last words; older ones fall off the front
MAX_PREV_TOKENS = 24
MAX_WORD_TOKENS = 13  # a spelled rhyme word or anchor longer than 12 letters is left out


@dataclass(frozen=True)
class BarRequest:
    """Everything the model is told about one bar it must write."""

    opponent: tuple[str, ...]  # the opponent's bars (text)
    previous: str | None  # our bar before this one, if any
    syllables: int
    tactics: tuple[str, ...] = ()
    rhyme_word: str | None = None  # land on this word's rhyme
    anchor: str | None = None  # place this word


def prefix(tok: Tokenizer, req: BarRequest, direction: str) -> list[int]:
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    opp = _tail(tok, [w for b in req.opponent for w in normalize_words(b)], MAX_OPPONENT_TOKENS)
    prev = _tail(tok, normalize_words(req.previous) if req.previous else [], MAX_PREV_TOKENS)
    n = min(MAX_SYLLABLES, max(MIN_SYLLABLES, req.syllables))
    ids = [tok["<bos>"], tok["<opp>"], *opp, tok["<prev>"], *prev, tok[f"<syl:{n}>"]]
    ids += [tok[f"<tac:{t}>"] for t in req.tactics]
    rhyme = tok.encode(normalize_words(req.rhyme_word)[-1:]) if req.rhyme_word else []
    ids += [tok["<rhyme>"], *(rhyme if 0 < len(rhyme) <= MAX_WORD_TOKENS else [tok["<free>"]])]
    anchor = tok.encode(normalize_words(req.anchor)) if req.anchor else []
    ids += [tok["<anchor>"], *(anchor if 0 < len(anchor) <= MAX_WORD_TOKENS else [tok["<free>"]])]
    ids += [tok[f"<{direction}>"], tok["<sep>"]]
    return ids


def _tail(tok: Tokenizer, words: list[str], max_tokens: int) -> list[int]:
    """Tokens of the last whole words that fit in `max_tokens`."""
    out: list[int] = []
    for w in reversed(words):
        t = tok.encode_word(w)
        if len(out) + len(t) > max_tokens:
            break
        out = t + out
    return out


def answer(tok: Tokenizer, bar: str | list[str], direction: str) -> list[int]:
    """The bar's tokens in writing order, ending with <eos>."""
    words = normalize_words(bar) if isinstance(bar, str) else list(bar)
    if direction == "r2l":
        words = words[::-1]
    return [*tok.encode(words), tok["<eos>"]]


def bar_words(tok: Tokenizer, tokens: list[int], direction: str) -> list[str]:
    """Words of a written bar in reading order (stops at <eos>)."""
    if tok["<eos>"] in tokens:
        tokens = tokens[: tokens.index(tok["<eos>"])]
    words = tok.words(tokens)
    return words[::-1] if direction == "r2l" else words
