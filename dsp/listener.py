"""Hearing the opponent as they rap: verse boundaries, syllables, cadence, words, anchors.

`Listener.push(block)` takes audio as it arrives (any rate, mono or multichannel);
`Listener.heard()` returns the analysis so far at any time. It is cheap enough to run
beside the audio callback (never inside it: it allocates). By the time the verse
ends, syllables and cadence are already known; the words come from the streaming
recognizer a few milliseconds later, or from text given by a studio file or an
external recognizer over OSC (`set_text`), which takes precedence.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.signal import lfilter, lfilter_zi

from dsp import phonetics
from dsp.anchors import Anchor, HeardWord, heard_words, rank
from dsp.syllables import Cadence, Grid, HeardSyllable, cadence, nuclei, smooth
from dsp.voicing import HOP, SR, WIN, frame_features

FRAME_S = HOP / SR
ASSUMED_BPM = 90.0  # bars of recognised words when the host gave no grid


@dataclass(frozen=True)
class ListenSettings:
    hangover_s: float = 0.08  # silence after the last voiced frame that ends a verse (a provisional end)
    resume_s: float = 1.5  # voice again within this after an end: the same verse goes on
    min_voiced_s: float = 0.05  # voice this long starts a verse
    periodicity: float = 0.6  # a voiced frame is at least this periodic ...
    min_level_db: float = -50.0  # ... at least this loud in the voice band ...
    above_floor_db: float = 10.0  # ... and this far above the background (a beat, hiss)
    floor_window_s: float = 3.0  # the background level: a low percentile over this long
    settle_s: float = 0.15  # a syllable is committed once this much audio follows its peak
    max_verse_s: float = 300.0  # longer verses are cut here (bounded memory), with a warning
    recognize: bool = True  # run pocketsphinx on the verse
    min_confidence: float = 0.6  # words below this are not trusted as anchors


@dataclass(frozen=True)
class EndRhyme:
    bar: int
    word: str
    rhyme_key: str  # ARPAbet from the last stressed vowel, e.g. "IY1 L"


@dataclass(frozen=True)
class Heard:
    """The listener's analysis at one moment."""

    state: str  # "idle", "verse" or "ended"
    now_s: float  # how much audio has been heard
    verse_start_s: float | None
    verse_end_s: float | None  # last voice + hangover, once ended
    syllables: tuple[HeardSyllable, ...]
    cadence: Cadence | None
    words: tuple[HeardWord, ...]
    text_source: str | None  # "given", "recognized" or None
    anchors: tuple[Anchor, ...]
    end_rhymes: tuple[EndRhyme, ...]
    warnings: tuple[str, ...] = field(default=())

    @property
    def text(self) -> str:
        bars: dict[int, list[str]] = {}
        for w in self.words:
            bars.setdefault(w.bar, []).append(w.text)
        return "\n".join(" ".join(bars[b]) for b in sorted(bars))


class Listener:
    def __init__(self, sr: int, grid: Grid | None = None, settings: ListenSettings = ListenSettings()) -> None:
        if sr < 8000:
            raise ValueError(f"sample rate {sr} Hz is too low to hear a voice; use 16 kHz or more")
        self.sr, self.grid, self.s = int(sr), grid, settings
        self._resampler = None
        if self.sr != SR:
            import soxr

            self._resampler = soxr.ResampleStream(self.sr, SR, 1, dtype="float32")
        b, a = [1.0, -1.0], [1.0, -0.995]  # DC blocker: a zero at 0 Hz, corner near 13 Hz
        self._dc = (b, a, lfilter_zi(b, a) * 0.0)
        self._pending = np.zeros(0, np.float32)  # 16 kHz samples not yet in a whole frame
        cap = int(settings.max_verse_s / FRAME_S) + int(4 * settings.floor_window_s / FRAME_S)
        self._db = np.zeros(cap, np.float32)
        self._per = np.zeros(cap, np.float32)
        self._voiced = np.zeros(cap, bool)
        self._n = 0  # frames held
        self._frame0 = 0  # stream frame index of self._db[0]
        self._preroll = np.zeros(0, np.float32)  # recent 16 kHz audio, for the recognizer's start
        self._state = "idle"
        self._start_f = self._last_voiced_f = self._end_f = self._run_start_f = None
        self._min_voiced = max(1, round(settings.min_voiced_s / FRAME_S))
        self._window_mask = (1 << round(1.6 * self._min_voiced)) - 1  # voiced frames counted over this many
        self._recent = 0
        self._cut = False
        self._syllables: list[HeardSyllable] = []
        self._last_peak_f = -1
        self._recognizer = None
        self._recognized: list = []
        self._given: list[HeardWord] | None = None
        self._warnings: list[str] = []
        self._clipped = self._samples = 0

    # -- input -------------------------------------------------------------------------
    def push(self, block: np.ndarray) -> None:
        """Audio as it arrives: (n,) or (n, channels), float, at the rate given at construction."""
        x = np.asarray(block, dtype=np.float32)
        if x.ndim == 2:
            x = x.mean(axis=1)
        elif x.ndim != 1:
            raise ValueError(f"audio blocks are (n,) or (n, channels); got shape {x.shape}")
        if not np.all(np.isfinite(x)):
            self._warn("the input holds NaN or infinite samples; they were heard as silence")
            x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
        self._samples += len(x)
        self._clipped += int(np.count_nonzero(np.abs(x) >= 0.999))
        b, a, zi = self._dc
        x, zi = lfilter(b, a, x, zi=zi)
        self._dc = (b, a, zi)
        x = x.astype(np.float32)
        if self._resampler is not None:
            x = self._resampler.resample_chunk(x)
        self._consume(x)

    def set_text(self, text: str) -> None:
        """The opponent's words, known from elsewhere (bars split on newlines or ' / ')."""
        self._given = heard_words(text)

    def finish(self) -> Heard:
        """The stream is over: whatever is still open ends now."""
        if self._resampler is not None:
            self._consume(self._resampler.resample_chunk(np.zeros(0, np.float32), last=True))
        self._consume(np.zeros(WIN, np.float32))  # flush the last partial frame
        if self._state == "verse":
            self._end(self._stream_frames())
        return self.heard()

    # -- frames ------------------------------------------------------------------------
    def _stream_frames(self) -> int:
        return self._frame0 + self._n

    def _consume(self, x16: np.ndarray) -> None:
        if self._recognizer is not None and self._recognizer.open:
            self._recognizer.feed(x16)
        self._preroll = np.concatenate([self._preroll, x16])[-SR // 2 :]
        buf = np.concatenate([self._pending, x16])
        db, per = frame_features(buf)
        self._pending = buf[len(db) * HOP :]
        if len(db):
            self._add_frames(db, per)

    def _add_frames(self, db: np.ndarray, per: np.ndarray) -> None:
        if self._n + len(db) > len(self._db):
            self._make_room(len(db))
        i = self._n
        self._db[i : i + len(db)], self._per[i : i + len(db)] = db, per
        floor_n = int(self.s.floor_window_s / FRAME_S)
        floor = float(np.percentile(self._db[max(0, i + len(db) - floor_n) : i + len(db)], 10))
        gate = max(self.s.min_level_db, floor + self.s.above_floor_db)
        self._voiced[i : i + len(db)] = (per >= self.s.periodicity) & (db >= gate)
        self._n += len(db)
        for k in range(i, self._n):
            self._step(k)
        if self._state == "verse":
            self._commit_syllables(final=False)

    def _make_room(self, incoming: int) -> None:
        if self._state == "verse":  # cannot happen while the cap is shorter than the arrays; kept safe
            self._cut_verse(self._stream_frames())
        keep = int(self.s.floor_window_s / FRAME_S)
        if self._state == "ended":  # the last verse stays readable; drop what came before it
            keep = max(keep, self._n - (self._start_f - self._frame0))
        keep = min(keep, self._n, len(self._db) - incoming)
        drop = self._n - keep
        for arr in (self._db, self._per, self._voiced):
            arr[:keep] = arr[drop : self._n]
        self._n, self._frame0 = keep, self._frame0 + drop

    def _step(self, k: int) -> None:
        """The verse state machine, one frame (index k in the held arrays) at a time."""
        f = self._frame0 + k
        voiced = bool(self._voiced[k])
        self._recent = ((self._recent << 1) | voiced) & self._window_mask
        if self._cut:  # past the length cap: wait for a real pause before hearing a new verse
            if voiced:
                self._last_voiced_f = f
            elif (f - self._last_voiced_f) * FRAME_S > self.s.resume_s:
                self._cut = False
            return
        if voiced:
            if self._last_voiced_f is None or f - self._last_voiced_f > 3:
                self._run_start_f = f  # a new stretch of voice
            self._last_voiced_f = f
            # Voice in most of the last frames (periodicity flickers inside a vowel over a beat)
            if self._state != "verse" and bin(self._recent).count("1") >= self._min_voiced:
                if self._state == "ended" and (f - self._end_f) * FRAME_S <= self.s.resume_s:
                    self._state, self._end_f = "verse", None  # a pause, not the end
                    self._reopen_recognizer(self._run_start_f)
                else:
                    self._begin(self._run_start_f)
        elif self._state == "verse" and (f - self._last_voiced_f) * FRAME_S >= self.s.hangover_s:
            self._end(f + 1)
        if self._state == "verse" and (f + 1 - self._start_f) * FRAME_S >= self.s.max_verse_s:
            self._cut_verse(f + 1)

    def _cut_verse(self, end_f: int) -> None:
        self._warn(f"verse longer than {self.s.max_verse_s:g} s: analysed up to there")
        self._end(end_f)
        self._cut = True

    def _begin(self, start_f: int) -> None:
        self._state, self._start_f, self._end_f = "verse", start_f, None
        self._syllables, self._recognized, self._last_peak_f = [], [], start_f - 1
        self._reopen_recognizer(start_f)

    def _reopen_recognizer(self, start_f: int) -> None:
        if not self.s.recognize:
            return
        if self._recognizer is None:
            from dsp.recognizer import StreamingRecognizer

            self._recognizer = StreamingRecognizer()
        heard_n = self._stream_frames() * HOP + len(self._pending)  # 16 kHz samples consumed so far
        lead = min(len(self._preroll), heard_n - start_f * HOP + SR // 10)  # from 100 ms before the voice
        self._recognizer.start((heard_n - lead) / SR)
        self._recognizer.feed(self._preroll[len(self._preroll) - lead :])

    def _end(self, end_f: int) -> None:
        self._state, self._end_f = "ended", end_f
        self._commit_syllables(final=True)
        if self._recognizer is not None and self._recognizer.open:
            self._recognized += self._recognizer.finish()
        if self._samples and self._clipped / self._samples > 1e-3:
            self._warn(f"{100 * self._clipped / self._samples:.1f} % of samples are clipped: lower the input gain")

    def _commit_syllables(self, final: bool) -> None:
        lo_f = max(self._start_f, self._last_peak_f - int(0.4 / FRAME_S))
        hi_f = self._stream_frames() if self._end_f is None else min(self._end_f, self._stream_frames())
        lo, hi = lo_f - self._frame0, hi_f - self._frame0
        if hi - lo < 3 or lo < 0:
            return
        env = smooth(self._db[lo:hi])
        peaks, onsets = nuclei(env, self._voiced[lo:hi], FRAME_S, self._grid().min_syllable_gap_s)
        settled = hi_f if final else hi_f - int(self.s.settle_s / FRAME_S)
        for p, o in zip(peaks + lo_f, onsets + lo_f):
            if self._last_peak_f < p < settled:
                self._syllables.append(HeardSyllable(round(o * FRAME_S, 4), round(p * FRAME_S, 4),
                                                     round(float(env[p - lo_f]), 2)))
                self._last_peak_f = p

    def _warn(self, message: str) -> None:
        if message not in self._warnings:
            self._warnings.append(message)

    # -- output ------------------------------------------------------------------------
    @property
    def state(self) -> str:
        """idle, verse or ended: cheaper than heard().state."""
        return self._state

    @property
    def silence_s(self) -> float | None:
        """How long since the last voiced frame, while a verse is on or just ended (else None)."""
        if self._state == "idle" or self._last_voiced_f is None:
            return None
        return (self._stream_frames() - 1 - self._last_voiced_f) * FRAME_S

    def _voiced_runs(self) -> list[tuple[float, float]]:
        if self._start_f is None:
            return []
        lo = max(0, self._start_f - self._frame0)
        hi = self._n if self._end_f is None else max(lo, min(self._n, self._end_f - self._frame0))
        v = self._voiced[lo:hi].astype(np.int8)
        edges = np.diff(np.concatenate([[0], v, [0]]))
        starts, ends = np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0]
        f0 = self._frame0 + lo
        return [((f0 + a) * FRAME_S, (f0 + b) * FRAME_S) for a, b in zip(starts, ends)]

    def _grid(self) -> Grid:
        if self.grid is not None:
            return self.grid
        start = self._syllables[0].onset_s if self._syllables else (self._start_f or 0) * FRAME_S
        return Grid(ASSUMED_BPM, start)

    def _words(self, syllables: list[HeardSyllable]) -> tuple[list[HeardWord], str | None]:
        if self._given is not None:
            return align_words(self._given, syllables), "given"
        if not self._recognized:
            return [], None
        grid = self._grid()
        first_bar = grid.bar_of(syllables[0].onset_s) if syllables else grid.bar_of(self._recognized[0].start_s)
        peaks = np.array([s.peak_s for s in syllables])
        out = []
        for w in self._recognized:
            # Trust a word as far as the syllables heard inside it agree with its spelling.
            n_heard = int(np.sum((peaks >= w.start_s) & (peaks < w.end_s)))
            n_said = phonetics.syllable_count(w.text) or 1
            conf = 1.0 / (1.0 + abs(n_heard - n_said))
            out.append(HeardWord(w.text, max(0, grid.bar_of(w.start_s) - first_bar), round(w.start_s, 3), conf))
        return out, "recognized"

    def heard(self) -> Heard:
        syllables = list(self._syllables)
        if syllables:  # the louder nuclei carry the stress
            level = np.median([s.peak_db for s in syllables])
            syllables = [HeardSyllable(s.onset_s, s.peak_s, s.peak_db, s.peak_db >= level + 1.5) for s in syllables]
        words, source = self._words(syllables) if self._state != "idle" or self._given else ([], None)
        warnings = list(self._warnings)
        if self._state == "ended" and not syllables:
            warnings.append("voice was heard but no syllables stood out: the analysis is unreliable")
        if self.grid is None and self._state != "idle" and self._given is None:
            warnings.append(f"no grid from the host: bars assumed at {ASSUMED_BPM:g} BPM from the first syllable")
        return Heard(
            state=self._state,
            now_s=round(self._stream_frames() * FRAME_S, 4),
            verse_start_s=None if self._start_f is None else round(self._start_f * FRAME_S, 4),
            verse_end_s=None if self._end_f is None else round(self._end_f * FRAME_S, 4),
            syllables=tuple(syllables),
            cadence=cadence(syllables, self._grid(), self._voiced_runs()) if self._state != "idle" else None,
            words=tuple(words),
            text_source=source,
            anchors=tuple(rank(words, min_confidence=self.s.min_confidence, top=8)),
            end_rhymes=tuple(end_rhymes(words)),
            warnings=tuple(warnings),
        )


def align_words(words: list[HeardWord], syllables: list[HeardSyllable]) -> list[HeardWord]:
    """Given words timed by the heard syllables, in order: the i-th of N said syllables
    takes the onset of heard syllable round(i * (M-1) / (N-1)) of M."""
    counts = [phonetics.syllable_count(w.text) or 1 for w in words]
    n, m = sum(counts), len(syllables)
    out, i = [], 0
    for w, c in zip(words, counts):
        start = None
        if m:
            j = round(i * (m - 1) / max(1, n - 1))
            start = syllables[min(j, m - 1)].onset_s
        out.append(HeardWord(w.text, w.bar, start, w.confidence))
        i += c
    return out


def end_rhymes(words: list[HeardWord]) -> list[EndRhyme]:
    """The last pronounceable word of each bar and its rhyme sound."""
    last: dict[int, HeardWord] = {}
    for w in words:
        if phonetics.syllable_count(w.text):
            last[w.bar] = w
    out = []
    for bar in sorted(last):
        word = last[bar].text
        out.append(EndRhyme(bar, word.lower(), " ".join(phonetics.rhyme_key(word))))
    return out
