"""Flow: syllables onto the 16th-note grid, each attack placed sample-exactly.

The attack point of a syllable is its acoustic onset, where a listener (and a DAW's
transient detector) hears it begin: the centre of the first analysis frame
(`dsp.onset`, 23 ms frames every 1.45 ms) whose log-mel energy rise reaches half
of the strongest rise between the start of its kept onset consonants and 25 ms
into its vowel. For a plosive that is the burst, for a vowel the vowel onset, for
a fricative or nasal usually the consonant itself. A silent head falls back to the
vowel onset minus `ATTACK_LEAD_MS`. The piece of audio is then placed so that this
sample lands exactly on the syllable's grid sample.

Onset consonants sound before the attack (at most `MAX_PRE_MS`, and at most a share
of the time since the previous attack; longer runs are trimmed under a fade-in).
Each syllable lasts until `GAP_MS` before the next one begins: its vowel is shortened
or lengthened by whole pitch periods (the voice has a constant F0, so a one-period
crossfade splices without clicks) and whatever still does not fit is trimmed from
the end under a fade-out. The short gap keeps the delivery percussive and every
attack clean.

Grid positions are integers: `step` counts 16ths from the start of a bar, and a
sample index is computed exactly from (bar, step, bpm, sr) with rational arithmetic.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Sequence

import numpy as np

from dsp.onset import frame_params, spectral_flux
from dsp.phonetics import Word
from dsp.voice import Synthesis

ATTACK_SEARCH_AFTER_MS = 25.0  # the attack is searched from a piece's start to this far into its vowel
RISE_FRACTION = 0.5  # the attack frame's rise is at least this share of the strongest rise
ATTACK_LEAD_MS = 20.0  # fallback attack (silent head): vowel onset - this
MAX_PRE_MS = 50.0  # longest onset consonant run kept before the attack
MAX_PRE_FRACTION = 0.45  # ...and at most this share of the gap since the previous attack
MIN_VOWEL_MS = 35.0  # vowels are never shortened below this
MAX_STRETCH = 2.5  # nor lengthened beyond this factor
MAX_HOLD_BEATS = 1.5  # a bar's last syllable rings at most this long when nothing follows
FADE_IN_MS = 2.0
FADE_OUT_MS = 6.0
GAP_MS = 25.0  # each syllable ends this long before the next begins: a clean attack every time

STEPS_PER_BEAT = 4
_SLOT_VALUE = {"X": 3.0, "x": 2.0, "-": 0.0, ".": -4.0}
_STRESS_ON_ACCENT = 2.0  # bonus: stressed syllable on an X slot
_WEAK_ON_ACCENT = -2.0  # penalty: unstressed syllable on an X slot (worth less than an x)


@dataclass(frozen=True)
class Flow:
    """Which 16th-note steps of a bar syllables take.

    `pattern` has one character per 16th: `X` accented slot, `x` slot, `-` optional
    slot (taken only when a line has more syllables than X and x slots), `.` rest
    (taken only as a last resort). Its length fixes the bar: 16 for 4/4, 12 for 3/4.
    The last X or x is where the bar's final (rhyme) syllable lands.
    """

    name: str
    pattern: str
    description: str = ""
    accent_db: float = 2.0

    def __post_init__(self) -> None:
        bad = sorted(set(self.pattern) - set(_SLOT_VALUE))
        if bad:
            raise ValueError(f"flow {self.name!r}: pattern has {bad!r}; use only X (accent), x (slot), - (optional), . (rest)")
        if len(self.pattern) % STEPS_PER_BEAT or not self.pattern:
            raise ValueError(f"flow {self.name!r}: pattern has {len(self.pattern)} steps; it needs a whole number of beats (16 for 4/4, 12 for 3/4)")
        if not any(c in "Xx" for c in self.pattern):
            raise ValueError(f"flow {self.name!r}: pattern has no X or x slot")

    @classmethod
    def from_dict(cls, name: str, data: dict) -> "Flow":
        """Build from a TOML table; an unknown key is an error that names the valid ones."""
        fields = {"pattern": str, "description": str, "accent_db": (int, float)}
        for key, value in data.items():
            if key not in fields:
                raise ValueError(f"flow {name!r}: unknown key {key!r}; valid keys: {', '.join(fields)}")
            if not isinstance(value, fields[key]) or isinstance(value, bool):
                raise ValueError(f"flow {name!r}: {key} must be a {'number' if key == 'accent_db' else 'string'}, got {value!r}")
        if "pattern" not in data:
            raise ValueError(f"flow {name!r}: missing key 'pattern'")
        return cls(name=name, pattern=data["pattern"], description=data.get("description", ""),
                   accent_db=float(data.get("accent_db", 2.0)))

    @property
    def steps_per_bar(self) -> int:
        return len(self.pattern)

    @property
    def beats_per_bar(self) -> int:
        return len(self.pattern) // STEPS_PER_BEAT

    @property
    def capacity(self) -> int:
        """Most syllables a bar holds without using rests."""
        return sum(c != "." for c in self.pattern)

    @property
    def landing_step(self) -> int:
        return max(i for i, c in enumerate(self.pattern) if c in "Xx")


def assign_steps(stresses: Sequence[int], flow: Flow) -> list[int]:
    """Choose a strictly increasing 16th step for each syllable of one bar.

    Maximises the summed slot values (X > x > - > .), rewards stressed syllables on
    accents, and puts the last syllable on the flow's landing step when it fits.
    `stresses`: 0/1/2 per syllable. Raises ValueError if the bar cannot hold them.
    """
    n, S = len(stresses), flow.steps_per_bar
    if n == 0:
        return []
    if n > S:
        raise ValueError(f"{n} syllables do not fit one bar of {S} steps")
    land = flow.landing_step if n <= flow.landing_step + 1 else S - 1

    def value(i: int, j: int) -> float:
        c = flow.pattern[j]
        v = _SLOT_VALUE[c]
        if c == "X":
            v += _STRESS_ON_ACCENT if stresses[i] > 0 else _WEAK_ON_ACCENT
        return v

    NEG = -1e9
    # best[i][j]: best score with syllable i on step j; i syllables before fit in j steps.
    best = np.full((n, S), NEG)
    back = np.zeros((n, S), dtype=int)
    for j in range(S):
        best[0, j] = value(0, j)
    for i in range(1, n):
        run_max, run_arg = NEG, -1
        for j in range(i, S):
            if best[i - 1, j - 1] > run_max:
                run_max, run_arg = best[i - 1, j - 1], j - 1
            if run_max > NEG:
                best[i, j] = run_max + value(i, j)
                back[i, j] = run_arg
    steps = [land]
    for i in range(n - 1, 0, -1):
        steps.append(int(back[i, steps[-1]]))
    return steps[::-1]


def split_line(words: Sequence[Word], capacity: int) -> list[list[Word]]:
    """Split a line that has more syllables than a bar holds into balanced bars at word breaks."""
    total = sum(len(w.syllables) for w in words)
    if total <= capacity:
        return [list(words)]
    n_bars = -(-total // capacity)
    target = total / n_bars  # syllables per bar when balanced
    bars: list[list[Word]] = [[]]
    in_bar = done = 0
    for w in words:
        k = len(w.syllables)
        if k > capacity:
            raise ValueError(f"{w.text!r} has {k} syllables, more than a bar holds ({capacity})")
        past_balance = done + k / 2 > target * len(bars) and len(bars) < n_bars
        if bars[-1] and (in_bar + k > capacity or past_balance):
            bars.append([])
            in_bar = 0
        bars[-1].append(w)
        in_bar += k
        done += k
    return bars


def beat_to_sample(beat: Fraction | int, bpm: float, sr: int) -> int:
    """Sample index of `beat` (counted from 0 at sample 0), rounded to the nearest sample."""
    return round(Fraction(beat) * 60 * sr / Fraction(str(bpm)))


@dataclass(frozen=True)
class PlacedSyllable:
    """One performed syllable: where it is in the text and on the grid, and in samples."""

    bar: int
    step: int  # 16ths from the start of the bar
    word_index: int  # in its bar
    word: str
    syllable_index: int  # in its word
    phones: tuple[str, ...]
    stress: int
    beat: Fraction  # from the start of the performance
    attack_sample: int
    start_sample: int  # where its audio begins (onset consonants come before the attack)
    vowel_sample: int  # where its vowel begins
    end_sample: int  # where its audio ends


@dataclass(frozen=True)
class Performance:
    """A rendered verse: mono float32 audio, its syllables, and the grid it follows."""

    audio: np.ndarray  # (n_samples,) float32
    sr: int
    bpm: float
    flow: Flow
    bars: tuple[tuple[Word, ...], ...]
    syllables: tuple[PlacedSyllable, ...]
    start_beat: Fraction


def _ms(ms: float, sr: int) -> int:
    return int(round(ms * sr / 1000.0))


def _crossfade_join(a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
    """a then b, overlapping by n samples under a linear crossfade (the two sides are in
    phase, a pitch period apart, so equal gain keeps the level constant)."""
    n = min(n, len(a), len(b))
    if n <= 0:
        return np.concatenate([a, b])
    t = np.linspace(0.0, 1.0, n, dtype=np.float32)
    mid = a[-n:] * (1.0 - t) + b[:n] * t
    return np.concatenate([a[:-n], mid, b[n:]])


def fit_vowel(vowel: np.ndarray, target_len: int, period: int, keep: int = 0) -> np.ndarray:
    """Lengthen or shorten a steady vowel towards `target_len` samples by whole pitch periods.

    `period`: the voice's pitch period in samples (0 when unknown). Periods are cut or
    repeated around the middle, but never within the first `keep` samples (where the
    attack was measured), joined with a one-period crossfade. The result is within one
    period of the target (the caller trims the tail exactly); a vowel too short to
    splice, or with no known period, is returned unchanged.
    """
    n = len(vowel)
    if period == 0 or abs(target_len - n) < period:
        return vowel
    k = int(round((target_len - n) / period))
    if k < 0:
        cut = -k * period
        a = max(keep, period, n // 2 - cut // 2)  # the cut is [a + period, a + period + cut)
        cut = min(cut, (n - a - 2 * period) // period * period)
        if cut <= 0:
            return vowel
        return _crossfade_join(vowel[: a + period], vowel[a + cut :], period)
    mid = max(n // 2, keep + period)
    if mid + period > n:
        return vowel
    # Repeat the period before the splice point: each join overlaps one period, adding one.
    out = vowel[: mid + period]
    loop = vowel[mid - period : mid + period]
    for _ in range(k):
        out = _crossfade_join(out, loop, period)
    return _crossfade_join(out, vowel[mid:], period)


def _fade(piece: np.ndarray, n_in: int, n_out: int) -> np.ndarray:
    piece = piece.copy()
    n_in, n_out = min(n_in, len(piece)), min(n_out, len(piece))
    if n_in:
        piece[:n_in] *= np.linspace(0.0, 1.0, n_in, endpoint=False, dtype=np.float32)
    if n_out:
        piece[len(piece) - n_out :] *= np.linspace(1.0, 0.0, n_out, dtype=np.float32)
    return piece


def perform(
    bars: Sequence[Sequence[Word]],
    syntheses: Sequence[Synthesis],
    flow: Flow,
    bpm: float,
    start_beat: Fraction | int = 0,
    tail_s: float = 1.0,
) -> Performance:
    """Place every syllable of `bars` (one Synthesis per bar) on the flow's grid.

    Bar b starts at beat `start_beat + b * flow.beats_per_bar`; a syllable on step s
    of bar b has its attack at `beat_to_sample(bar_beat + s/4, bpm, sr)`, exactly.
    Returns the audio (sample 0 = beat 0) and every syllable's placement.
    """
    if not syntheses:
        raise ValueError("nothing to perform")
    sr = syntheses[0].sr
    start_beat = Fraction(start_beat)

    plan = []  # (bar, step, word_index, word, syllable_index, syllable, SyllableAudio, synthesis)
    for b, (words, syn) in enumerate(zip(bars, syntheses)):
        stresses = [s.stress for w in words for s in w.syllables]
        steps = iter(assign_steps(stresses, flow))
        spoken = [w for w in words if w.syllables]
        for wi, (w, positions) in enumerate(zip(spoken, syn.words)):
            for si, (syl, pos) in enumerate(zip(w.syllables, positions)):
                plan.append((b, next(steps), wi, w, si, syl, pos, syn))

    attacks, beats = [], []
    for b, step, *_ in plan:
        beat = start_beat + b * flow.beats_per_bar + Fraction(step, STEPS_PER_BEAT)
        beats.append(beat)
        attacks.append(beat_to_sample(beat, bpm, sr))

    # Pass 1: each piece's head (kept onset consonants, then the start of the vowel), as
    # it will sound after its fade-in, and where its attack is inside it.
    heads, pres = [], []
    search_after = _ms(ATTACK_SEARCH_AFTER_MS, sr)
    tail = frame_params(sr)[0]
    for k, (*_, pos, syn) in enumerate(plan):
        gap = attacks[k] - attacks[k - 1] if k else 10**9
        pre = min(pos.vowel_onset - pos.start, _ms(MAX_PRE_MS, sr), int(MAX_PRE_FRACTION * gap))
        pres.append(pre)
        # Analyse past the search window and taper the end, so the cut adds no transient.
        head = syn.audio[pos.vowel_onset - pre : min(pos.vowel_onset + search_after + tail, pos.end)]
        heads.append(_fade(head, _fade_in(pre, pos, sr), tail))
    offsets = attack_offsets(heads, pres, sr, search_after)

    end_beat = start_beat + len(bars) * flow.beats_per_bar
    n_total = beat_to_sample(end_beat, bpm, sr) + int(tail_s * sr)
    out = np.zeros(n_total, dtype=np.float32)
    starts = [attacks[k] - offsets[k] for k in range(len(plan))]  # where each piece begins
    placed = []
    hold = beat_to_sample(Fraction(MAX_HOLD_BEATS), bpm, sr)
    gap = _ms(GAP_MS, sr)
    # Pass 2: fit each body (vowel and coda) into the time until the next piece begins.
    for k, (b, step, wi, w, si, syl, pos, syn) in enumerate(plan):
        x = syn.audio
        v_out = starts[k] + pres[k]
        avail = starts[k + 1] - v_out - gap if k + 1 < len(plan) else hold
        if k + 1 < len(plan) and plan[k + 1][0] != b:
            avail = min(avail, hold)
        vowel = x[pos.vowel_onset : pos.coda_onset]
        coda = x[pos.coda_onset : pos.end]
        min_vowel = min(len(vowel), _ms(MIN_VOWEL_MS, sr))
        target = int(np.clip(avail - len(coda), min_vowel, max(len(vowel) * MAX_STRETCH, min_vowel)))
        body = np.concatenate([fit_vowel(vowel, target, syn.period, keep=search_after + tail), coda])[: max(avail, 1)]
        head = x[pos.vowel_onset - pres[k] : pos.vowel_onset]
        piece = _fade(np.concatenate([head, body]), _fade_in(pres[k], pos, sr), _ms(FADE_OUT_MS, sr))
        if flow.pattern[step] == "X" and flow.accent_db:
            piece *= np.float32(10 ** (flow.accent_db / 20))
        start = starts[k]
        if start < 0:  # a pickup before sample 0: keep what falls inside the take
            piece = _fade(piece[-start:], _ms(FADE_IN_MS, sr), 0)
            start = 0
        end = min(start + len(piece), n_total)
        out[start:end] += piece[: end - start]
        placed.append(PlacedSyllable(b, step, wi, w.text, si, syl.phones, syl.stress, beats[k],
                                     attacks[k], start, v_out, end))
    return Performance(out, sr, bpm, flow, tuple(tuple(w) for w in bars), tuple(placed), start_beat)


def _fade_in(pre: int, pos, sr: int) -> int:
    # A consonant run cut short gets a longer fade, so the cut does not click.
    return _ms(FADE_IN_MS * (4 if pre < pos.vowel_onset - pos.start else 1), sr)


def attack_offsets(heads: Sequence[np.ndarray], vowel_at: Sequence[int], sr: int, search_after: int) -> list[int]:
    """Attack of each piece head (its kept onset consonants, then its vowel), in samples from
    its start, searched up to `search_after` samples past its vowel onset (`vowel_at`).

    Falls back to vowel onset - ATTACK_LEAD_MS for a silent head.
    """
    if not heads:
        return []
    n = max(len(h) for h in heads)
    batch = np.zeros((len(heads), n), dtype=np.float32)
    for i, h in enumerate(heads):
        batch[i, : len(h)] = h
    flux, hop = spectral_flux(batch, sr)  # (B, T)
    out = []
    for i, (h, v) in enumerate(zip(heads, vowel_at)):
        seg = flux[i, : max(1, min(len(h), v + search_after) // hop)]
        if seg.size and seg.max() > 0:
            # The first frame whose rise reaches RISE_FRACTION of the strongest: where
            # the syllable's first strong transient begins.
            t = int(np.flatnonzero(seg >= RISE_FRACTION * seg.max())[0])
            out.append(min(t * hop, len(h)))
        else:
            out.append(max(0, v - _ms(ATTACK_LEAD_MS, sr)))
    return out
