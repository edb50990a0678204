"""Syllables from loudness and voicing frames, and the cadence they make on a grid.

A syllable is a peak of voice-band loudness inside voiced frames (its vowel, the
nucleus) that stands out from the dips on either side; its onset is where the
loudness rose to within ONSET_DROP_DB of the peak. Pure functions on frame arrays
(see dsp.voicing: frames are hop_s apart).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import find_peaks

PROMINENCE_DB = 4.0  # a nucleus stands this far above the dips around it
MIN_GAP_S = 0.1  # two nuclei are at least this far apart (16ths up to 150 BPM); less on a faster grid
ONSET_DROP_DB = 12.0  # the onset: the last frame before the peak this far below it
MAX_RISE_S = 0.15  # never look further back than this for the onset


@dataclass(frozen=True)
class HeardSyllable:
    onset_s: float  # from the start of the stream
    peak_s: float
    peak_db: float
    stressed: bool = False


def smooth(x: np.ndarray, n: int = 3) -> np.ndarray:
    """Centred moving average over n frames (edges use what exists)."""
    if len(x) < n:
        return x.astype(np.float32)
    kernel = np.ones(n, np.float32) / n
    padded = np.pad(x, (n // 2, n - 1 - n // 2), mode="edge")
    return np.convolve(padded, kernel, mode="valid").astype(np.float32)


def nuclei(env_db: np.ndarray, voiced: np.ndarray, hop_s: float,
           min_gap_s: float = MIN_GAP_S) -> tuple[np.ndarray, np.ndarray]:
    """(peak frames, onset frames) of the syllables in `env_db` (T,), peaks only where `voiced`,
    at least min_gap_s apart."""
    if len(env_db) < 3:
        return np.zeros(0, int), np.zeros(0, int)
    floor = float(env_db.min())
    gated = np.where(voiced, env_db, floor)
    peaks, _ = find_peaks(gated, prominence=PROMINENCE_DB, distance=max(1, int(round(min_gap_s / hop_s))))
    onsets = np.empty(len(peaks), int)
    max_back = int(round(MAX_RISE_S / hop_s))
    for k, p in enumerate(peaks):
        lo = max(0, p - max_back, peaks[k - 1] if k else 0)
        seg = env_db[lo : p + 1]
        below = np.nonzero(seg < env_db[p] - ONSET_DROP_DB)[0]
        onsets[k] = lo + (below[-1] + 1 if len(below) else int(np.argmin(seg)))
    return peaks, onsets


@dataclass(frozen=True)
class Grid:
    """The host's grid: tempo, where a downbeat falls (s from the stream's start), meter."""

    bpm: float
    downbeat_s: float = 0.0
    beats_per_bar: int = 4

    @property
    def beat_s(self) -> float:
        return 60.0 / self.bpm

    def beats(self, t_s):
        return (np.asarray(t_s, float) - self.downbeat_s) / self.beat_s

    @property
    def min_syllable_gap_s(self) -> float:
        """Closest two syllables may be on this grid: most of a 16th, at most MIN_GAP_S."""
        return min(MIN_GAP_S, 0.75 * self.beat_s / 4)

    def bar_of(self, t_s: float) -> int:
        """The bar of the 16th nearest t_s (a syllable a hair early belongs to the next bar)."""
        return int(np.floor((np.round(self.beats(t_s) * 4) / 4) / self.beats_per_bar))


@dataclass(frozen=True)
class Cadence:
    """How the opponent rides the grid: what the planner mirrors or contrasts."""

    n_syllables: int
    syllables_per_bar: tuple[int, ...]  # bars counted from the first bar with a syllable
    syllables_per_beat: float
    slot_counts: tuple[int, ...]  # onsets on each 16th of the bar
    stressed_slots: tuple[int, ...]  # onsets of stressed syllables on each 16th
    mean_offset_ms: float  # mean |onset - nearest 16th|: how tight to the grid
    pauses: tuple[tuple[float, float], ...]  # (start_s, length_s) of rests of an 8th or more
    first_bar: int

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


def cadence(syllables: list[HeardSyllable], grid: Grid, voiced_runs: list[tuple[float, float]]) -> Cadence:
    """The cadence summary of `syllables` on `grid`; `voiced_runs` are (start_s, end_s) of voice."""
    steps_per_bar = 4 * grid.beats_per_bar
    if not syllables:
        return Cadence(0, (), 0.0, (0,) * steps_per_bar, (0,) * steps_per_bar, 0.0, (), 0)
    onsets = np.array([s.onset_s for s in syllables])
    sixteenths = grid.beats(onsets) * 4
    nearest = np.round(sixteenths)
    offset_ms = np.abs(sixteenths - nearest) * grid.beat_s / 4 * 1000
    slots = (nearest.astype(int) % steps_per_bar)
    bars = np.floor(nearest / steps_per_bar).astype(int)
    first, last = int(bars.min()), int(bars.max())
    per_bar = tuple(int(np.sum(bars == b)) for b in range(first, last + 1))
    stressed = np.array([s.stressed for s in syllables])
    span_beats = (last - first + 1) * grid.beats_per_bar
    pauses = []
    eighth_s = grid.beat_s / 2
    for (_, end), (start, _) in zip(voiced_runs, voiced_runs[1:]):
        if start - end >= eighth_s:
            pauses.append((round(float(end), 3), round(float(start - end), 3)))
    return Cadence(
        n_syllables=len(syllables),
        syllables_per_bar=per_bar,
        syllables_per_beat=round(len(syllables) / span_beats, 3),
        slot_counts=tuple(int(np.sum(slots == k)) for k in range(steps_per_bar)),
        stressed_slots=tuple(int(np.sum(slots[stressed] == k)) for k in range(steps_per_bar)),
        mean_offset_ms=round(float(offset_ms.mean()), 2),
        pauses=tuple(pauses),
        first_bar=first,
    )
