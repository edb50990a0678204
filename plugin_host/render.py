"""`cypher render`: a studio take from files — the comeback written, rapped on the beat's
grid, and every file a DAW session wants, written atomically into one folder.

Timing: sample 0 of every audio file is sample 0 of the beat. The rap starts one bar
after the beat's first downbeat; `lyrics.json`, `lyrics.lrc` and `flow.mid` all
count from that same sample 0.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

import mido
import numpy as np
import soundfile as sf

from dsp.beat import render_beat
from dsp.tempo import beat_grid
from plugin_host.errors import UsageError
from plugin_host.files import umask, write_text, write_wav
from plugin_host.flow_plot import plot_flow
from plugin_host.rap import bar_records, check_bpm, load_flow, load_fx, load_voice, rap
from plugin_host.write import Comeback, load_style, read_opponent

DEFAULT_SR = 44100
TICKS_PER_BEAT = 480
COUNT_IN_BARS = 1
PEAK_DBFS = -1.0
MIDI_NOTE = 60  # C4; stressed syllables an octave-fifth apart would be noise: velocity carries stress
VELOCITY = {1: 112, 2: 92, 0: 64}


def _progress(i: int, n: int, what: str) -> None:
    print(f"  [{i}/{n}] {what}", file=sys.stderr, flush=True)


def read_beat(path: str) -> tuple[np.ndarray, int]:
    """(audio (n, channels) float32, sr) or a UsageError naming the file and the problem."""
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"--beat {path}: no such file")
    try:
        audio, sr = sf.read(str(p), dtype="float32", always_2d=True)
    except Exception as e:  # libsndfile's errors for unreadable formats
        raise UsageError(f"--beat {path}: cannot read it as audio ({e}); give a WAV, FLAC or OGG file") from None
    if len(audio) == 0:
        raise UsageError(f"--beat {path}: the file has no samples")
    if not np.isfinite(audio).all():
        raise UsageError(f"--beat {path}: the audio holds NaN or infinite samples")
    return audio, sr


def lrc(bars: list[dict], syllables: list[dict]) -> str:
    lines = []
    for b in bars:
        first = next(s for s in syllables if s["bar"] == b["bar"])
        m, s = divmod(first["start_s"], 60)
        lines.append(f"[{int(m):02d}:{s:05.2f}]{b['text']}")
    return "\n".join(lines) + "\n"


def flow_midi(syllables: list[dict], bpm: float, beats_per_bar: int) -> mido.MidiFile:
    """One note per syllable at its start beat (counted from sample 0), lasting until the
    next syllable or a 16th, velocity from stress."""
    mid = mido.MidiFile(ticks_per_beat=TICKS_PER_BEAT)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.MetaMessage("track_name", name="cypher flow", time=0))
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=0))
    track.append(mido.MetaMessage("time_signature", numerator=beats_per_bar, denominator=4, time=0))
    starts = [round(s["file_beat"] * TICKS_PER_BEAT) for s in syllables]
    events = []
    for k, (s, t) in enumerate(zip(syllables, starts)):
        end = min(starts[k + 1] if k + 1 < len(starts) else t + TICKS_PER_BEAT // 4, t + TICKS_PER_BEAT // 4)
        events.append((t, 1, mido.Message("note_on", note=MIDI_NOTE, velocity=VELOCITY.get(s["stress"], 64))))
        events.append((max(end, t + 1), 0, mido.Message("note_off", note=MIDI_NOTE, velocity=0)))
    now = 0
    for t, _, msg in sorted(events, key=lambda e: (e[0], e[1])):
        track.append(msg.copy(time=t - now))
        now = t
    track.append(mido.MetaMessage("end_of_track", time=0))
    return mid


def render(opponent: str, out: str, beat: str | None = None, bpm: float | None = None, bars: int = 4,
           voice: str = "mc", flow_name: str = "boom-bap", fx: str = "battle", style_name: str = "battle",
           seed: int = 0, force: bool = False) -> dict:
    out_dir = Path(out)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())) and not force:
        raise UsageError(f"{out_dir} exists and is not empty; choose another --out or pass --force to replace it")
    if not 1 <= bars <= 16:
        raise UsageError(f"--bars must be 1-16, got {bars}")
    if bpm is not None:
        check_bpm(bpm)
    opp = read_opponent(opponent, bpm)
    flow, voice_p, fx_p, style = load_flow(flow_name), load_voice(voice), load_fx(fx), load_style(style_name)
    steps = 6
    _progress(1, steps, "beat")
    if beat:
        audio, sr = read_beat(beat)
        if bpm is None:
            try:
                grid = beat_grid(audio.mean(axis=1), sr, flow.beats_per_bar)
            except ValueError as e:
                raise UsageError(f"--beat {beat}: no detectable tempo ({e}); pass --bpm") from None
            bpm, first_downbeat_s, detected = float(grid.bpm), grid.first_downbeat_s, True
        else:
            first_downbeat_s, detected = 0.0, False
        beat_audio = audio
    else:
        sr, bpm = DEFAULT_SR, float(bpm if bpm is not None else 90.0)
        first_downbeat_s, detected = 0.0, False
        beat_audio = None
    _progress(2, steps, f"writing {bars} bars (lyric model, seed {seed})")
    written = Comeback(flow).write(opp, bars, style, seed=seed)
    text = "\n".join(b["text"] for b in written["bars"])
    _progress(3, steps, f"rapping at {bpm:g} BPM, {sr} Hz")
    take = rap(text, bpm, flow, voice_p, fx_p, sr=sr,
               start_beat=Fraction(COUNT_IN_BARS * flow.beats_per_bar), tail_s=2.0)
    offset = int(round(first_downbeat_s * sr))
    dry = np.concatenate([np.zeros(offset, np.float32), take.dry])
    wet = np.concatenate([np.zeros(offset, np.float32), take.wet])
    perf = take.performance
    if beat_audio is None:
        n_bars = COUNT_IN_BARS + len(perf.bars) + 1
        beat_audio = render_beat(bpm, n_bars, sr, beats_per_bar=flow.beats_per_bar)[:, None]
    n = max(len(beat_audio), len(wet))
    channels = beat_audio.shape[1]
    mix = np.zeros((n, channels), np.float32)
    mix[: len(beat_audio)] += beat_audio
    mix[: len(wet)] += wet[:, None]
    peak = float(np.max(np.abs(mix)))
    gain = min(1.0, 10 ** (PEAK_DBFS / 20) / peak) if peak > 0 else 1.0
    mix *= gain
    _progress(4, steps, "timing")
    offset_beats = first_downbeat_s * bpm / 60.0
    syllables = [{
        "bar": s.bar, "step": s.step, "word": s.word, "syllable": s.syllable_index,
        "phones": " ".join(s.phones), "stress": s.stress,
        "start_sample": s.attack_sample + offset,
        "start_s": round((s.attack_sample + offset) / sr, 6),
        "start_beat": float(s.beat),  # beats from the beat's first downbeat
        "file_beat": round(float(s.beat) + offset_beats, 6),  # beats from sample 0, as flow.mid counts
    } for s in perf.syllables]
    bar_list = bar_records(perf)
    if len(bar_list) == len(written["bars"]):  # keep the writer's spelling (capitals, apostrophes)
        for b, w in zip(bar_list, written["bars"]):
            b["text"] = w["text"]
    lyrics = {
        "opponent": opp, "bpm": bpm, "bpm_detected": detected, "sr": sr,
        "beat": str(beat) if beat else "built-in",
        "first_downbeat_s": round(first_downbeat_s, 6), "first_downbeat_sample": offset,
        "count_in_bars": COUNT_IN_BARS, "flow": flow.name, "beats_per_bar": flow.beats_per_bar,
        "voice": voice_p.name, "fx": fx_p.name, "style": style.name, "seed": seed, "mix_gain": round(gain, 6),
        "bars": [{**b, "planned": w["planned"], "anchor": w["anchor"], "critic": w["critic"]}
                 for b, w in zip(bar_list, written["bars"])],
        "anchors": written["anchors"], "syllables": syllables,
    }
    _progress(5, steps, "files")
    parent = out_dir.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".part", dir=parent))
    except OSError as e:
        raise UsageError(f"cannot write into {parent}: {e.strerror}; choose another --out") from None
    files = ["take.wav", "vocal_dry.wav", "vocal_fx.wav", "lyrics.json", "lyrics.lrc", "flow.mid", "flow.png"]
    try:
        write_wav(tmp / "take.wav", mix, sr)
        write_wav(tmp / "vocal_dry.wav", dry, sr)
        write_wav(tmp / "vocal_fx.wav", wet, sr)
        write_text(tmp / "lyrics.json", json.dumps(lyrics, indent=1))
        write_text(tmp / "lyrics.lrc", lrc(bar_list, syllables))
        flow_midi(syllables, bpm, flow.beats_per_bar).save(str(tmp / "flow.mid"))
        plot_flow(tmp / "flow.png", [("cypher", perf)], title=f"cypher answers: {bpm:g} BPM, {flow.name} flow")
        os.chmod(tmp, 0o777 & ~umask())
        if out_dir.exists():
            old = parent / f".{out_dir.name}.old-{os.getpid()}"
            os.rename(out_dir, old)
            os.rename(tmp, out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _progress(6, steps, f"wrote {out_dir}/")
    return {"out": str(out_dir), "files": files, "bpm": bpm, "bpm_detected": detected, "sr": sr,
            "bars": [b["text"] for b in bar_list]}
