"""`cypher write`: the opponent's words in, a planned and written comeback out.

Loads the lyric model and the critic once per process (the engine keeps them warm);
every call plans and writes with its own seed.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import presets
from dsp.flow import Flow
from dsp.text import split_bars
from models_onnx.corpus import CorpusError, load
from models_onnx.critic import Critic
from models_onnx.lyric_model import MODEL_PATH, LyricModel, ModelError
from models_onnx.planner import SCHEMES, Style, plan
from models_onnx.writer import ModelWriter, WriterSettings
from plugin_host.errors import UsageError

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif"}
MAX_OPPONENT_BARS = 32


@dataclass(frozen=True)
class StylePreset:
    name: str
    style: Style
    writer: WriterSettings
    clean: bool = True


_STYLE_KEYS = {"description": str, "scheme": str, "flip": bool, "density": int, "candidates": int,
               "temperature": float, "clean": bool}


def load_style(name: str) -> StylePreset:
    try:
        data = presets.load("styles", name)
    except presets.PresetError as e:
        raise UsageError(str(e)) from None
    for key, value in data.items():
        kind = _STYLE_KEYS.get(key)
        if kind is None:
            raise UsageError(f"style {name!r}: unknown key {key!r}; valid keys: {', '.join(_STYLE_KEYS)}")
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if kind is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok:
            raise UsageError(f"style {name!r}: {key} must be a {kind.__name__}, got {value!r}")
    scheme = data.get("scheme", "AABB")
    if scheme not in SCHEMES:
        raise UsageError(f"style {name!r}: scheme {scheme!r} is not one of {', '.join(SCHEMES)}")
    if not 1 <= data.get("candidates", WriterSettings.candidates) <= 32:
        raise UsageError(f"style {name!r}: candidates must be 1-32")
    if not 0 <= data.get("temperature", 0.9) <= 2:
        raise UsageError(f"style {name!r}: temperature must be 0-2")
    if not -4 <= data.get("density", 0) <= 4:
        raise UsageError(f"style {name!r}: density must be -4..4 syllables")
    return StylePreset(name, Style(scheme, data.get("flip", True), data.get("density", 0)),
                       WriterSettings(candidates=data.get("candidates", WriterSettings.candidates), temperature=float(data.get("temperature", 0.9))),
                       data.get("clean", True))


def read_opponent(arg: str, bpm: float | None = None) -> list[str]:
    """The opponent's bars from text (bars split on ' / ' or newlines), a .txt file, or a
    recorded verse (heard by the listener; bars on `bpm` when given)."""
    path = Path(arg)
    if path.suffix.lower() in AUDIO_SUFFIXES:
        from plugin_host.hear import heard_bars, hear_file

        return heard_bars(hear_file(path, bpm))[-MAX_OPPONENT_BARS:]
    if path.suffix.lower() == ".txt" or (len(arg) < 4096 and "\n" not in arg and path.is_file()):
        try:
            arg = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise UsageError(f"{arg}: no such file; pass the opponent's words as text or an existing .txt file") from None
        except (OSError, UnicodeDecodeError) as e:
            raise UsageError(f"{arg}: cannot read it as UTF-8 text ({e})") from None
    bars = split_bars(arg)
    if not any(ch.isalpha() for b in bars for ch in b):
        raise UsageError("the opponent's verse has no words; give text like \"You came from the suburbs / ...\"")
    return bars[-MAX_OPPONENT_BARS:]


class Comeback:
    """Holds the model, the critic and its corpus index; `write` answers one verse."""

    def __init__(self, flow: Flow, model_path: Path | None = None):
        t0 = time.perf_counter()
        try:
            self.model = LyricModel(model_path or MODEL_PATH)
            corpus = load()
        except (ModelError, CorpusError) as e:
            raise UsageError(str(e)) from None
        self.critic = Critic(corpus.train().bars())
        self.flow = flow
        self.load_ms = (time.perf_counter() - t0) * 1e3

    def write(self, opponent: Sequence[str], n_bars: int, style: StylePreset, seed: int = 0) -> dict:
        t0 = time.perf_counter()
        p = plan(opponent, n_bars, self.flow, style.style, seed=seed)
        t1 = time.perf_counter()
        writer = ModelWriter(self.model, self.critic, self.flow, style.writer)
        bars = writer.write_bars(p, opponent)
        t2 = time.perf_counter()
        return {
            "bars": [{"text": b.text, "syllables": b.syllables, "end_word": b.end_word,
                      "rhyme_key": " ".join(b.rhyme_key), "anchor": b.anchor,
                      "planned": {"syllables": bp.syllables, "rhyme_word": bp.rhyme_word, "tactics": list(bp.tactics)},
                      "critic": round(b.score.total, 3)} for b, bp in zip(bars, p.bars)],
            "anchors": [a.text for a in p.anchors[:8]],
            "opponent_end_words": list(p.opponent_end_words),
            "style": style.name, "seed": seed, "flow": self.flow.name,
            "latency_ms": {"plan": round((t1 - t0) * 1e3, 2), "write": round((t2 - t1) * 1e3, 2),
                           "total": round((t2 - t0) * 1e3, 2), "model_load": round(self.load_ms, 1)},
        }
