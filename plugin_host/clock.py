"""The clock of record: host time (monotonic seconds) to beats, with tempo, phase and meter.

Sources feed it: `InternalClock` (standalone, demo, tests) and `MidiClockFollower`
(24 PPQN MIDI clock with Start/Stop/Continue and Song Position Pointer). Times are
whatever monotonic seconds the source stamps with; the JACK input stamps with JACK
frame time / sample rate, so the whole engine measures in samples of the audio graph.

MIDI clock smoothing is a windowed least-squares fit of tick time against tick index
over the last `window_ticks` ticks (default 96, one bar of 4/4): the slope is the tick
period, the intercept the phase. Its error under timing jitter falls as window^-1.5,
so the window is the bandwidth knob (shorter follows faster, longer rejects more
jitter). A pause in the ticks restarts the fit, keeping the tempo. A tempo change restarts the fit: when `change_ticks` ticks in a row land
more than `change_tolerance` of a period away from the prediction, the window keeps
only those ticks, so a step 90 -> 120 BPM settles within a beat rather than a bar.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

PPQN = 24
SIXTEENTHS_PER_BEAT = 4
TICKS_PER_SPP_UNIT = 6  # Song Position Pointer counts 16ths ("MIDI beats")
GAP_PERIODS = 2.5  # a silence this many tick periods long restarts the fit (the master paused)
LOST_PERIODS = 1.5  # a gap this many periods long means a tick was lost
ARRIVAL_LOST_AFTER_TICKS = 8  # ticks stamped on arrival: count lost ones only once a fit used this many
DUPLICATE_PERIODS = 0.25  # a tick this soon after the last one is a duplicate and is dropped


@dataclass(frozen=True)
class Meter:
    """Time signature. `beats_per_bar` counts the beats the clock's tempo counts (quarter
    notes for x/4; for 6/8 the clock beat is a quarter note too, and a bar is 3 of them)."""

    numerator: int = 4
    denominator: int = 4

    def __post_init__(self) -> None:
        if self.numerator < 1 or self.denominator not in (1, 2, 4, 8, 16):
            raise ValueError(f"time signature {self.numerator}/{self.denominator} is not supported; "
                             "use n/4 or n/8, e.g. 4/4, 3/4, 6/8")

    @property
    def beats_per_bar(self) -> Fraction:
        return Fraction(self.numerator * 4, self.denominator)

    @classmethod
    def parse(cls, text: str) -> "Meter":
        try:
            num, den = (int(x) for x in text.split("/"))
        except ValueError:
            raise ValueError(f"time signature {text!r} is not n/d; use e.g. 4/4, 3/4, 6/8") from None
        return cls(num, den)


@dataclass(frozen=True)
class Position:
    bar: int  # from 0
    beat: int  # in the bar, from 0
    sixteenth: int  # in the beat, from 0
    beats: float  # since beat 0


class Clock:
    """A linear map from host time to beats: beat(t) = beat0 + (t - t0) * bpm / 60.

    Subclasses keep (t0, beat0, bpm, running) up to date. Queries are cheap and pure.
    """

    def __init__(self, meter: Meter = Meter()) -> None:
        self.meter = meter
        self.t0 = 0.0
        self.beat0 = 0.0
        self.bpm = 120.0
        self.running = False
        self.stopped_beat = 0.0  # where the position rests while stopped

    def poll(self) -> None:
        """Take news from the clock's source; a clock fed by calls (MIDI, commands) has none."""

    def beat_at(self, t: float) -> float:
        """Beat position at host time `t` (s); `stopped_beat` while stopped."""
        if not self.running:
            return self.stopped_beat
        return self.beat0 + (t - self.t0) * self.bpm / 60.0

    def time_of(self, beat: float) -> float:
        """Host time (s) at which `beat` falls on the current (or last running) tempo map."""
        return self.t0 + (beat - self.beat0) * 60.0 / self.bpm

    def next_downbeat(self, t: float, bars_ahead: int = 0) -> float:
        """Beat number of the first bar line at or after host time `t` (+ whole bars)."""
        bpb = float(self.meter.beats_per_bar)
        b = self.beat_at(t)
        return (math.ceil(b / bpb - 1e-9) + bars_ahead) * bpb

    def position(self, t: float) -> Position:
        beats = self.beat_at(t)
        bpb = float(self.meter.beats_per_bar)
        bar = int(math.floor(beats / bpb + 1e-9))
        in_bar = beats - bar * bpb
        beat = int(math.floor(in_bar + 1e-9))
        six = int(math.floor((in_bar - beat) * SIXTEENTHS_PER_BEAT + 1e-9))
        return Position(bar, beat, min(six, SIXTEENTHS_PER_BEAT - 1), beats)


class InternalClock(Clock):
    """cypher's own tempo: starts when told, at any BPM."""

    def __init__(self, bpm: float = 90.0, meter: Meter = Meter()) -> None:
        super().__init__(meter)
        self.bpm = float(bpm)

    def start(self, t: float, beat: float = 0.0) -> None:
        self.t0, self.beat0, self.running = t, beat, True

    def stop(self, t: float) -> None:
        self.stopped_beat = self.beat_at(t)
        self.running = False

    def set_bpm(self, bpm: float, t: float) -> None:
        """Change tempo at host time `t` without a jump in position."""
        self.beat0, self.t0, self.bpm = self.beat_at(t), t, float(bpm)


class MidiClockFollower(Clock):
    """Follows a MIDI clock master: ticks (0xF8), Start (0xFA), Continue (0xFB),
    Stop (0xFC) and Song Position Pointer (0xF2), each stamped with host time.

    Ticks while stopped still refine the tempo, but the position moves only while
    running. After Start the first tick is beat 0; after Continue the first tick is
    the song position (from SPP or where Stop left it).
    """

    def __init__(self, meter: Meter = Meter(), window_ticks: int = 96, change_ticks: int = 4,
                 change_tolerance: float = 0.25, lost_after_ticks: int = 2) -> None:
        super().__init__(meter)
        if window_ticks < 3:
            raise ValueError("window_ticks must be at least 3")
        self.window_ticks = window_ticks
        self.change_ticks = change_ticks
        self.change_tolerance = change_tolerance
        self._times = np.zeros(window_ticks)  # ring buffer of tick times (s), preallocated
        self._ks = np.zeros(window_ticks)  # and of their tick numbers (a lost tick leaves a hole)
        self._n = 0  # ticks held (<= window_ticks)
        self._head = 0  # next slot
        self._count = 0  # ticks since the fit restarted, indexes the regression
        self._misses = 0
        self.period = 60.0 / (self.bpm * PPQN)
        self._intercept = 0.0
        self._last_t = 0.0
        self._song_ticks = 0  # ticks since beat 0 of the song at the next tick
        self._pending_start = False
        self.ticks_total = 0
        self.duplicates = 0
        self.lost = 0  # ticks that never arrived, counted in from the gap they left
        self._period_ticks = 0  # the most ticks a tempo fit has used (a restart keeps the period it had)
        # Count lost ticks once a fit has used this many: 2 for exact stamps (JACK MIDI); more
        # where ticks are stamped on arrival and the first pair may come half a period apart.
        self.lost_after_ticks = lost_after_ticks

    # -- message handlers (each O(window_ticks)) -------------------------------------------
    def tick(self, t: float) -> None:
        self.ticks_total += 1
        if self._n and t - self._last_t < DUPLICATE_PERIODS * self.period:
            self.duplicates += 1  # two ticks at once: a master's double send, not a tempo
            return
        if self._n >= 2 and self._period_ticks >= self.lost_after_ticks and t - self._last_t > LOST_PERIODS * self.period:
            # Ticks went missing on the way (a running master never pauses without Stop):
            # count them, or every later beat would fall that many ticks late.
            missing = int(round((t - self._last_t) / self.period)) - 1
            self.lost += missing
            self._count += missing
            if self.running:
                self._song_ticks += missing
        if self._n and t - self._last_t > GAP_PERIODS * self.period:
            self._restart_from_recent(0)  # a long gap: the tempo may have moved under it
        self._last_t = t
        if self._n >= 2:
            predicted = self._predict(self._count)
            if abs(t - predicted) > self.change_tolerance * self.period:
                self._misses += 1
                if self._misses >= self.change_ticks:
                    self._restart_from_recent(self.change_ticks - 1)
            else:
                self._misses = 0
        self._times[self._head] = t
        self._ks[self._head] = self._count
        self._head = (self._head + 1) % self.window_ticks
        self._n = min(self._n + 1, self.window_ticks)
        self._count += 1
        self._fit()
        if self._pending_start:
            self._pending_start = False
            self.running = True
        if self.running:
            # Anchor the beat map on the fitted time of this tick.
            self.t0 = self._predict(self._count - 1) if self._n >= 2 else t
            self.beat0 = self._song_ticks / PPQN
            self._song_ticks += 1

    def start(self) -> None:
        """0xFA: the next tick is beat 0."""
        self._song_ticks = 0
        self.stopped_beat = 0.0
        self._pending_start = True

    def continue_(self) -> None:
        """0xFB: the next tick is the current song position."""
        self._pending_start = True

    def stop(self, t: float) -> None:
        """0xFC: the position rests where the next tick would have been."""
        self.running = False
        self._pending_start = False
        self.stopped_beat = self._song_ticks / PPQN

    def song_position(self, sixteenths: int) -> None:
        """0xF2: move to `sixteenths` 16th notes from the start (honoured while stopped)."""
        if self.running:
            return  # masters send SPP only while stopped; ignore it mid-play
        self._song_ticks = sixteenths * TICKS_PER_SPP_UNIT
        self.stopped_beat = self._song_ticks / PPQN

    # -- fitting ---------------------------------------------------------------------------
    def _window(self) -> tuple[np.ndarray, np.ndarray]:
        n = self._n
        idx = (self._head - n + np.arange(n)) % self.window_ticks
        return self._ks[idx], self._times[idx]

    def _fit(self) -> None:
        if self._n < 2:
            return
        x, y = self._window()
        xm, ym = x.mean(), y.mean()
        dx = x - xm
        slope = float(np.dot(dx, y - ym) / np.dot(dx, dx))
        if slope <= 0:
            return
        self.period = slope
        self._period_ticks = max(self._period_ticks, self._n)
        self._intercept = ym - slope * xm
        self.bpm = 60.0 / (slope * PPQN)

    def _predict(self, k: int) -> float:
        return self._intercept + self.period * k

    def _restart_from_recent(self, keep: int) -> None:
        """Keep only the last `keep` ticks: the tempo changed under them."""
        x, y = self._window()
        kept = list(zip(x[-keep:], y[-keep:])) if keep > 0 else []
        self._times[:] = 0.0
        self._n = 0
        self._head = 0
        for k, t in kept:
            self._times[self._head], self._ks[self._head] = t, k
            self._head += 1
            self._n += 1
        self._misses = 0
        if self._n >= 2:
            self._fit()


CLOCK_SOURCES = ("internal", "midi", "link")


def open_clock(source: str, bpm: float = 90.0, meter: Meter = Meter()) -> Clock:
    """The clock for `--clock SOURCE`: internal, midi (fed by a MIDI input) or link."""
    if source == "internal":
        return InternalClock(bpm, meter)
    if source == "midi":
        return MidiClockFollower(meter)
    if source == "link":
        from plugin_host.link_clock import LinkClock

        return LinkClock(bpm, meter)
    raise ValueError(f"unknown clock {source!r}; valid: {', '.join(CLOCK_SOURCES)}")
