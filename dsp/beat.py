"""The built-in beat: kick, snare and hats synthesized in numpy at any tempo (no samples).

Every hit starts exactly on `flow.beat_to_sample` of its step, so the beat and the
vocal share one grid. Deterministic for a seed.
"""
from __future__ import annotations

from fractions import Fraction

import numpy as np

from dsp.flow import beat_to_sample

# One bar of 16ths per drum; a boom-bap groove with a ghost kick before beat 3.
KICK = "X.........X.x..."
SNARE = "....X.......X..."
HATS = "x.x.x.x.x.x.x.xx"


def kick(sr: int, length_ms: float = 350.0) -> np.ndarray:
    """A sine kick: pitch sweeps 120 -> 45 Hz with an exponential decay. (n,) float32."""
    n = int(sr * length_ms / 1000)
    t = np.arange(n) / sr
    f_hz = 45.0 + 75.0 * np.exp(-t / 0.035)
    phase = 2 * np.pi * np.cumsum(f_hz) / sr
    env = np.exp(-t / 0.12)
    click = np.exp(-t / 0.002) * 0.3
    return (np.sin(phase) * env + click * np.sin(2 * np.pi * 1500 * t)).astype(np.float32)


def snare(sr: int, rng: np.random.Generator, length_ms: float = 220.0) -> np.ndarray:
    """Noise burst with a 190 Hz body, both decaying. (n,) float32."""
    n = int(sr * length_ms / 1000)
    t = np.arange(n) / sr
    noise = rng.standard_normal(n)
    noise = np.diff(noise, prepend=0.0)  # tilt towards the highs
    body = np.sin(2 * np.pi * 190 * t) * np.exp(-t / 0.05)
    return (0.35 * noise * np.exp(-t / 0.06) + 0.6 * body).astype(np.float32)


def hat(sr: int, rng: np.random.Generator, length_ms: float = 60.0) -> np.ndarray:
    """High-passed noise tick. (n,) float32."""
    n = int(sr * length_ms / 1000)
    t = np.arange(n) / sr
    noise = np.diff(rng.standard_normal(n + 2), n=2)  # second difference: a steep high-pass
    return (0.12 * noise * np.exp(-t / 0.012)).astype(np.float32)


def render_beat(bpm: float, n_bars: int, sr: int, seed: int = 0, beats_per_bar: int = 4,
                gain_db: float = -9.0) -> np.ndarray:
    """`n_bars` of the built-in groove at `bpm`, sample 0 on the first downbeat. (n,) float32.

    Patterns are 16 steps for 4/4; other meters use the first 4*beats_per_bar steps.
    """
    rng = np.random.default_rng(seed)
    steps_per_bar = 4 * beats_per_bar
    n_total = beat_to_sample(n_bars * beats_per_bar, bpm, sr)
    out = np.zeros(n_total + sr, dtype=np.float32)
    sounds = {"kick": kick(sr), "snare": snare(sr, rng), "hat": hat(sr, rng)}
    for bar in range(n_bars):
        for step in range(steps_per_bar):
            beat = Fraction(bar * steps_per_bar + step, 4)
            at = beat_to_sample(beat, bpm, sr)
            for name, pattern in (("kick", KICK), ("snare", SNARE), ("hat", HATS)):
                mark = pattern[step % len(pattern)]
                if mark == ".":
                    continue
                level = 1.0 if mark == "X" else 0.7
                if name == "hat" and step % 4 == 2:
                    level *= 1.3  # off-beat hats a touch louder: the swing of the groove
                s = sounds[name]
                out[at : at + len(s)] += level * s[: len(out) - at]
    out *= np.float32(10 ** (gain_db / 20))
    return out[:n_total]
