"""Text to a performed take: words, voice, flow, effects. Used by `say`, `demo` and the benches."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

import presets
from dsp import phonetics
from dsp.flow import Flow, Performance, perform, split_line
from dsp.fx import FxChain, FxPreset
from dsp.text import split_bars
from dsp.voice import Voice, synthesize
from plugin_host.errors import UsageError

BPM_RANGE = (40.0, 240.0)


def _preset(kind: str, name: str, build):
    try:
        return build(name.removesuffix(".toml").rsplit("/", 1)[-1], presets.load(kind, name))
    except (ValueError, TypeError) as e:
        raise UsageError(str(e)) from None


def load_flow(name: str) -> Flow:
    return _preset("flows", name, Flow.from_dict)


def load_voice(name: str) -> Voice:
    return _preset("voices", name, Voice.from_dict)


def load_fx(name: str) -> FxPreset:
    return _preset("fx", name, FxPreset.from_dict)


def check_bpm(bpm: float) -> float:
    lo, hi = BPM_RANGE
    if not lo <= bpm <= hi:
        raise UsageError(f"--bpm {bpm:g} is outside {lo:g}-{hi:g}; give a tempo in that range")
    return float(bpm)


def lines_to_bars(text: str, flow: Flow) -> list[list[phonetics.Word]]:
    """Bars of pronounced words: one per line (` / ` or newline), long lines split to fit the flow."""
    bars = []
    for line in split_bars(text):
        words = [w for w in phonetics.words(line) if w.syllables]
        if words:
            bars.extend(split_line(words, flow.capacity))
    if not bars:
        raise UsageError("nothing to rap: the text has no words (symbols and emoji are dropped); give some words")
    return bars


_chains: dict[tuple, FxChain] = {}


def _chain(fx: FxPreset, sr: int, bpm: float) -> FxChain:
    """A ready chain for this preset and rate, kept between takes: building one and its
    first buffers cost more than processing a bar."""
    key = (fx.name, repr(fx.effects), sr)
    chain = _chains.get(key)
    if chain is None:
        chain = _chains[key] = FxChain(fx, sr, bpm)
    elif chain.bpm != bpm:
        chain.set_bpm(bpm)
    return chain


@dataclass(frozen=True)
class Take:
    """A performed verse: the dry vocal, the vocal through the fx chain, and its timing."""

    performance: Performance
    dry: np.ndarray  # (n_samples,) float32
    wet: np.ndarray  # (n_samples,) float32
    voice: Voice
    fx: FxPreset
    latency_ms: dict[str, float] = field(default_factory=dict)

    @property
    def sr(self) -> int:
        return self.performance.sr


def rap(text: str, bpm: float, flow: Flow, voice: Voice, fx: FxPreset, sr: int = 44100,
        start_beat: Fraction | int = 0, tail_s: float = 1.0) -> Take:
    """Perform `text` on the grid: bar b starts at `start_beat + b * beats_per_bar`."""
    t0 = time.perf_counter()
    bars = lines_to_bars(text, flow)
    t1 = time.perf_counter()
    syntheses = [synthesize(bar, voice, sr) for bar in bars]
    t2 = time.perf_counter()
    perf = perform(bars, syntheses, flow, bpm, start_beat=start_beat, tail_s=tail_s)
    t3 = time.perf_counter()
    wet = _chain(fx, sr, bpm)(perf.audio)
    t4 = time.perf_counter()
    latency = {"phonetics": t1 - t0, "voice": t2 - t1, "flow": t3 - t2, "fx": t4 - t3, "total": t4 - t0}
    return Take(perf, perf.audio, wet, voice, fx, {k: v * 1000 for k, v in latency.items()})


def syllable_records(perf: Performance) -> list[dict]:
    """Every syllable with its attack in samples, seconds and beats (JSON-ready)."""
    return [
        {
            "bar": s.bar,
            "step": s.step,
            "word": s.word,
            "word_index": s.word_index,
            "syllable": s.syllable_index,
            "phones": " ".join(s.phones),
            "stress": s.stress,
            "start_sample": s.attack_sample,
            "start_s": round(s.attack_sample / perf.sr, 6),
            "start_beat": float(s.beat),
            "vowel_sample": s.vowel_sample,
        }
        for s in perf.syllables
    ]


def bar_records(perf: Performance) -> list[dict]:
    out = []
    for b, words in enumerate(perf.bars):
        end = words[-1]
        out.append({
            "bar": b,
            "text": " ".join(w.text for w in words),
            "syllables": sum(len(w.syllables) for w in words),
            "end_word": end.text,
            "rhyme_key": " ".join(phonetics.rhyme_key(end)),
        })
    return out
