"""Voice: ARPAbet words to audio with sample positions for every phone and syllable.

espeak-ng speaks our own pronunciations (given as [[phoneme]] input), so the
syllables the flow places are exactly the syllables the audio contains. The
pitch range is 0 by default: a constant F0, which makes every vowel periodic
and lets `dsp.flow` stretch it by whole pitch periods.
"""
from __future__ import annotations

import functools
import hashlib
import os
import tempfile
from pathlib import Path
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from dsp import espeak
from dsp.phonetics import Word, syllabify

VOICE_SR = 22050  # espeak-ng's native rate, Hz

# ARPAbet to espeak-ng en-us mnemonics (stress marks are added per syllable).
_ARPA_TO_ESPEAK = {
    "AA": "A:", "AE": "a", "AH": "V", "AO": "O:", "AW": "aU", "AY": "aI", "EH": "E", "ER": "3:",
    "EY": "eI", "IH": "I", "IY": "i:", "OW": "oU", "OY": "OI", "UH": "U", "UW": "u:",
    "B": "b", "CH": "tS", "D": "d", "DH": "D", "F": "f", "G": "g", "HH": "h", "JH": "dZ",
    "K": "k", "L": "l", "M": "m", "N": "n", "NG": "N", "P": "p", "R": "r", "S": "s", "SH": "S",
    "T": "t", "TH": "T", "V": "v", "W": "w", "Y": "j", "Z": "z", "ZH": "Z",
}
_UNSTRESSED = {"AH": "@", "ER": "3"}  # reduced vowels sound right only in their own symbols


@dataclass(frozen=True)
class Voice:
    """How cypher sounds. `name` is an espeak-ng language voice, `variant` one of its
    voice variants (m1..m8, f1..f5, ...); `rate_wpm` is words per minute; `pitch` and
    `pitch_range` are espeak's 0-100 scales (range 0 = constant F0)."""

    name: str = "en-us"
    variant: str = "m3"
    rate_wpm: int = 175
    pitch: int = 40
    pitch_range: int = 0
    gain_db: float = 0.0

    @classmethod
    def from_dict(cls, name: str, data: dict) -> "Voice":
        """Build from a voice preset table; errors name the preset, the key and what is valid."""
        ranges = {"rate_wpm": (80, 450), "pitch": (0, 100), "pitch_range": (0, 100), "gain_db": (-24, 24)}
        kwargs = {}
        for key, value in data.items():
            if key == "description":
                continue
            if key in ("name", "variant"):
                if not isinstance(value, str):
                    raise ValueError(f"voice {name!r}: {key} must be a string, got {value!r}")
            elif key in ranges:
                lo, hi = ranges[key]
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
                    raise ValueError(f"voice {name!r}: {key} must be a number in {lo}..{hi}, got {value!r}")
                value = float(value) if key == "gain_db" else int(value)
            else:
                valid = ", ".join(["name", "variant", *ranges, "description"])
                raise ValueError(f"voice {name!r}: unknown key {key!r}; valid keys: {valid}")
            kwargs[key] = value
        voice = cls(**kwargs)
        if voice.variant and voice.variant not in variants():
            raise ValueError(f"voice {name!r}: espeak-ng has no variant {voice.variant!r}; valid: {', '.join(variants())}")
        if voice.name.lower() not in {lang.lower() for lang in languages()}:
            raise ValueError(f"voice {name!r}: espeak-ng has no language voice {voice.name!r}; English ones: "
                             + ", ".join(v for v in languages() if v.lower().startswith("en")))
        return voice


def _data_dir() -> Path:
    import espeakng_loader

    return Path(espeakng_loader.get_data_path())


@functools.lru_cache(maxsize=1)
def variants() -> list[str]:
    """espeak-ng voice variants shipped with the bundled data (m1..m8, f1..f5, ...)."""
    return sorted(p.name for p in (_data_dir() / "voices" / "!v").iterdir() if p.is_file())


@functools.lru_cache(maxsize=64)
def voice_file(voice: "Voice") -> str:
    """An espeak-ng voice file for `voice`: its language file, then its variant, with
    flutter and roughness off when the pitch range is 0.

    espeak's flutter (a slow pitch wobble) and roughness (a cycle-by-cycle modulation)
    keep their phase from one request to the next; without them (and with the random
    seeds reset per request, see dsp.espeak) the same words always give the same
    samples, and F0 is truly constant. The file
    lives in a short temporary path, as espeak-ng limits voice file names to 60 bytes.
    """
    lang = next((p for p in (_data_dir() / "lang").rglob("*") if p.is_file() and p.name.lower() == voice.name.lower()), None)
    if lang is None:
        raise ValueError(f"espeak-ng has no language voice {voice.name!r}")
    lines = lang.read_text().splitlines()
    if voice.variant:
        variant = _data_dir() / "voices" / "!v" / voice.variant
        lines += [ln for ln in variant.read_text().splitlines() if not ln.startswith(("name", "language"))]
    if voice.pitch_range == 0:
        lines += ["flutter 0", "roughness 0"]
    text = "\n".join(lines) + "\n"
    folder = Path("/tmp") if Path("/tmp").is_dir() else Path(tempfile.gettempdir())
    folder = folder / f"cypher-{os.getuid() if hasattr(os, 'getuid') else 0}"
    folder.mkdir(exist_ok=True)
    path = folder / hashlib.sha1(text.encode()).hexdigest()[:12]
    if not path.exists():
        tmp = path.with_suffix(f".{os.getpid()}")
        tmp.write_text(text)
        os.replace(tmp, path)
    return str(path)


@functools.lru_cache(maxsize=1)
def languages() -> list[str]:
    """espeak-ng language voice names shipped with the bundled data (en-us, en, fr, ...)."""
    return sorted({p.name for p in (_data_dir() / "lang").rglob("*") if p.is_file()})


@dataclass(frozen=True)
class SyllableAudio:
    """Sample positions (in the synthesis) of one syllable: where its first phone starts,
    where its vowel starts, where its coda starts (== vowel end) and where it ends."""

    start: int
    vowel_onset: int
    coda_onset: int
    end: int


@dataclass(frozen=True)
class Synthesis:
    """A spoken line: mono float32 audio at `sr`, and for each word its syllables' positions."""

    audio: np.ndarray  # (n_samples,) float32 in [-1, 1]
    sr: int
    words: tuple[tuple[SyllableAudio, ...], ...]
    period: int = 0  # pitch period in samples (constant F0), 0 if unknown


def pitch_period(voiced: np.ndarray, sr: int, f0_min_hz: float = 50.0, f0_max_hz: float = 400.0,
                 threshold: float = 0.15) -> int:
    """Pitch period in samples of a steady voiced segment (YIN); 0 if it is not periodic.

    YIN's cumulative-mean-normalised difference takes the first lag that dips below
    `threshold`, so neither a formant ripple nor a multiple of the period wins.
    """
    lo, hi = int(sr / f0_max_hz), int(sr / f0_min_hz)
    if len(voiced) < 2 * hi:
        return 0
    x = voiced[: 2 * hi].astype(np.float64)
    w = hi  # integration window
    energy = np.cumsum(np.concatenate([[0.0], x**2]))
    e0 = energy[w] - energy[0]
    ac = np.correlate(x, x[:w], mode="valid")[: hi + 1]  # (hi+1,) sum x[j] x[j+tau]
    taus = np.arange(hi + 1)
    d = e0 + (energy[taus + w] - energy[taus]) - 2 * ac  # (hi+1,) difference function
    cmnd = np.ones_like(d)
    cmnd[1:] = d[1:] * taus[1:] / np.maximum(np.cumsum(d[1:]), 1e-12)
    below = np.flatnonzero(cmnd[lo:] < threshold)
    if below.size == 0:
        best = lo + int(np.argmin(cmnd[lo:]))
        return best if cmnd[best] < 2 * threshold else 0
    tau = lo + int(below[0])
    while tau + 1 <= hi and cmnd[tau + 1] < cmnd[tau]:  # walk down to the dip's bottom
        tau += 1
    return tau


def _syllable_mnemonics(phones: Sequence[str]) -> list[tuple[int, list[str]]]:
    """(stress, espeak mnemonics) per syllable of one word."""
    out = []
    for syl in syllabify(phones):
        body = []
        for i, ph in enumerate(syl.phones):
            reduced = i == syl.nucleus and syl.stress == 0 and ph in _UNSTRESSED
            body.append(_UNSTRESSED[ph] if reduced else _ARPA_TO_ESPEAK[ph])
        out.append((syl.stress, body))
    return out


def to_espeak(phones: Sequence[str]) -> str:
    """ARPAbet with stress digits -> espeak-ng phoneme input for one word."""
    return "".join({1: "'", 2: ","}.get(stress, "") + "".join(body) for stress, body in _syllable_mnemonics(phones))


def _base(name: str) -> str:
    # espeak marks allophones it chose itself (t# is a flap): compare without marks.
    return name.lstrip("',").rstrip("#")


def _match_events(events: Sequence[espeak.PhonemeEvent], expected: Sequence[str], end: int) -> list[int]:
    """Start sample of each expected phone, walking espeak's phone events in order.

    espeak reports one event per phone we gave it, but may swap in an allophone (t -> t#)
    or add a phone; so each expected phone takes the next event, unless the same phone
    appears within the next two events (then the ones skipped were insertions).
    """
    evs = [(ev.sample, _base(ev.name)) for ev in events if not ev.name.startswith("_")]
    starts, k, last = [], 0, 0
    for ph in expected:
        want = _base(ph)
        j = next((j for j in range(k, min(k + 3, len(evs))) if evs[j][1] == want), k)
        if j < len(evs):
            last, k = evs[j][0], j + 1
        starts.append(min(last, end))
    return starts


def _expected_mnemonics(phones: Sequence[str]) -> list[str]:
    return [m for _, body in _syllable_mnemonics(phones) for m in body]


# A line at 48 kHz is about half a megabyte: 32 keep the fallback bars and a verse or two
# warm (a tempo change renders them again from here) in ~16 MB. 1024 grew a live engine by
# 0.8 MB a turn for an hour (every answer is new text, so a big cache only holds memory).
@functools.lru_cache(maxsize=32)
def _synth_line(line: tuple[tuple[str, ...], ...], voice: Voice, sr: int) -> Synthesis:
    raw = espeak.synth(
        "[[" + " ".join(to_espeak(phones) for phones in line) + "]]",
        voice=voice_file(voice),
        rate=voice.rate_wpm,
        pitch=voice.pitch,
        range=voice.pitch_range,
    )
    audio = raw.audio.astype(np.float32) / 32768.0
    expected = [m for phones in line for m in _expected_mnemonics(phones)]
    # The last phone ends where espeak's trailing pause begins.
    pauses = [ev.sample for ev in raw.phonemes if ev.name.startswith("_") and ev.sample > 0]
    end = pauses[-2] if len(pauses) >= 2 else len(audio)
    starts = _match_events(raw.phonemes, expected, end)
    first = starts[0] if starts else 0
    audio = audio[first:end]
    scale = sr / VOICE_SR
    if sr != VOICE_SR:
        import soxr

        audio = soxr.resample(audio, VOICE_SR, sr).astype(np.float32)

    def at(n: int) -> int:
        return min(len(audio), int(round((n - first) * scale)))

    words, i = [], 0
    for phones in line:
        sylls = []
        for s in syllabify(phones):
            n = len(s.phones)
            nxt = starts[i + n] if i + n < len(starts) else end
            coda = starts[i + s.nucleus + 1] if s.nucleus + 1 < n else nxt
            sylls.append(SyllableAudio(at(starts[i]), at(starts[i + s.nucleus]), at(coda), at(nxt)))
            i += n
        words.append(tuple(sylls))
    if voice.gain_db:
        audio = audio * np.float32(10 ** (voice.gain_db / 20))
    audio.setflags(write=False)
    # Constant F0: one period serves every vowel; measure it on the longest one.
    longest = max((s for w in words for s in w), key=lambda s: s.coda_onset - s.vowel_onset, default=None)
    period = 0 if longest is None or voice.pitch_range else pitch_period(audio[longest.vowel_onset : longest.coda_onset], sr)
    return Synthesis(audio, sr, tuple(words), period)


def synthesize(words: Sequence[Word], voice: Voice = Voice(), sr: int = VOICE_SR) -> Synthesis:
    """Speak `words` as one phrase: mono float32 audio at `sr` (espeak renders at
    22050 Hz; other rates are resampled with soxr) and every syllable's sample
    positions in it. Leading and trailing silence is cut. Cached per line and voice.
    """
    return _synth_line(tuple(w.phones for w in words if w.syllables), voice, sr)


def clear_cache() -> None:
    """Forget synthesized lines (benchmarks measure cold renders)."""
    _synth_line.cache_clear()
