"""Tempo and the first downbeat of a beat file (librosa's beat tracker, refined).

librosa finds beat times; a straight line fitted through them gives the tempo and
phase more precisely than its tempo estimate, folded into 70-140 BPM (trackers lock
onto 8th notes or half notes; a 160 BPM beat reads as 80). The phase is moved onto
the hits' attacks (frame-based tracking lags ~10 ms). Which beat is the "one" is a
backbeat prior: the downbeat carries the kick (low band), beats 2 and 4 the snare
(high band); the phase that best fits that pattern wins.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_BEATS = 8  # fewer tracked beats than this: no tempo we would trust
MAX_JITTER = 0.08  # beats further than this (share of a period) from the fitted line: unreliable
MIN_PULSE = 3.0  # onset strength on the beats / its mean (beats: 12-20, noise: 1.3-1.5)
TEMPO_RANGE = (70.0, 140.0)  # trackers lock onto 8th notes or half notes; fold into this octave
ATTACK_WINDOW_S = 0.05  # the attack of each hit is searched this far around its tracked beat


@dataclass(frozen=True)
class BeatGrid:
    bpm: float
    first_downbeat_s: float  # the first downbeat at or after the file's start
    beats_per_bar: int
    n_beats: int  # beats the tracker found
    jitter: float  # RMS distance of tracked beats from the fitted grid, in periods


def _band_onsets(y: np.ndarray, sr: int, hop: int, fmin: float, fmax: float) -> np.ndarray:
    import librosa

    mel = librosa.feature.melspectrogram(y=y, sr=sr, hop_length=hop, n_mels=64, fmin=20.0, fmax=min(sr / 2, 16000.0))
    freqs = librosa.mel_frequencies(n_mels=64, fmin=20.0, fmax=min(sr / 2, 16000.0))
    band = mel[(freqs >= fmin) & (freqs < fmax)].sum(axis=0)
    flux = np.maximum(0.0, np.diff(np.log1p(band), prepend=np.log1p(band[:1])))
    return flux


def beat_grid(y: np.ndarray, sr: int, beats_per_bar: int = 4) -> BeatGrid:
    """The beat's grid. y: mono float (n_samples,). Raises ValueError when no tempo is found."""
    import librosa

    if y.size < sr * 2 or not np.isfinite(y).all() or float(np.max(np.abs(y))) < 1e-4:
        raise ValueError("too short, silent or not finite")
    hop = 512
    _, frames = librosa.beat.beat_track(y=y, sr=sr, hop_length=hop)
    times = librosa.frames_to_time(frames, sr=sr, hop_length=hop)
    if len(times) < MIN_BEATS:
        raise ValueError(f"only {len(times)} beats found")
    env = librosa.onset.onset_strength(y=y, sr=sr, hop_length=hop)
    pulse = float(env[frames].mean() / max(env.mean(), 1e-9))
    if pulse < MIN_PULSE:
        raise ValueError(f"no clear pulse (beat onsets only {pulse:.2f}x the average)")
    k = np.arange(len(times))
    slope, intercept = np.polyfit(k, times, 1)
    if not 60 / 240 <= slope <= 60 / 40:
        raise ValueError(f"tempo {60 / slope:.1f} BPM is outside 40-240")
    jitter = float(np.sqrt(np.mean((times - (intercept + slope * k)) ** 2)) / slope)
    if jitter > MAX_JITTER:
        raise ValueError(f"beats too irregular ({jitter:.2f} of a period)")
    # Octave: the tracked pulse may be 8ths (x2) or half notes (/2) of the felt beat.
    step = 1.0  # felt beats per tracked beat
    bpm = 60.0 / slope
    while bpm >= TEMPO_RANGE[1]:
        bpm, step = bpm / 2, step * 2
    while bpm < TEMPO_RANGE[0]:
        bpm, step = bpm * 2, step / 2
    period = 60.0 / bpm
    grid = intercept + period * np.arange(int((times[-1] - intercept) / period) + 1)  # felt beats
    intercept += _attack_offset_s(y, sr, grid)
    grid = intercept + period * np.arange(len(grid))
    low = _band_onsets(y, sr, hop, 20.0, 150.0)
    high = _band_onsets(y, sr, hop, 2000.0, 16000.0)
    # With tracked 8ths, the felt beats may sit on the tracked beats or between them.
    shifts = [0.0, 0.5] if step == 2 else [0.0]

    def score(p: int, shift: float) -> float:
        at = np.clip(np.round((grid + shift * period) * sr / hop).astype(int), 0, len(low) - 1)

        def mean(signal: np.ndarray, phase: int) -> float:
            sel = at[phase % beats_per_bar::beats_per_bar]
            return float(signal[sel].mean()) if len(sel) else 0.0

        backbeats = [p + 1, p + 3] if beats_per_bar == 4 else []
        return mean(low, p) - mean(high, p) + sum(mean(high, b) for b in backbeats)

    phase, shift = max(((p, sh) for p in range(beats_per_bar) for sh in shifts), key=lambda ps: score(*ps))
    first = intercept + (phase + shift) * period
    bar_s = period * beats_per_bar
    first -= np.floor((first + 0.01) / bar_s) * bar_s  # the earliest downbeat from 10 ms before the start on
    first = max(first, 0.0)
    return BeatGrid(round(bpm, 3), float(first), beats_per_bar, len(times), round(jitter, 4))


def _attack_offset_s(y: np.ndarray, sr: int, grid_s: np.ndarray) -> float:
    """Median distance from the tracked beats to the hits' attacks (the first sample whose
    1 ms envelope reaches half its peak near the beat): frame-based trackers lag by ~10 ms."""
    w = max(1, int(sr * 0.001))
    env = np.convolve(np.abs(y), np.ones(w) / w, mode="same")
    half = int(ATTACK_WINDOW_S * sr)
    offsets = []
    for t in grid_s:
        c = int(round(t * sr))
        lo, hi = max(0, c - half), min(len(env), c + half)
        seg = env[lo:hi]
        if len(seg) < half or seg.max() <= 0:
            continue
        peak = int(np.argmax(seg))
        above = np.nonzero(seg[: peak + 1] >= 0.5 * seg[peak])[0]
        offsets.append((lo + int(above[0])) / sr - t)
    return float(np.median(offsets)) if offsets else 0.0
