"""An opponent's verse from an audio file, heard as on stage (`--opponent VERSE.wav`).

The file goes through the live listener block by block. Words written beside it
(`VERSE.txt`) are taken as given and timed by the heard syllables; otherwise the
recognizer's words are used.
"""
from __future__ import annotations

import sys
from pathlib import Path

from dsp.listener import Heard, ListenSettings, Listener
from dsp.syllables import Grid
from plugin_host.errors import UsageError

BLOCK = 4096
FILE_SETTINGS = ListenSettings(resume_s=30.0)  # a file holds one verse: its pauses do not split it


def hear_file(path: str | Path, bpm: float | None = None) -> Heard:
    """The listener's analysis of the verse in `path`; its bars run on `bpm` from the first syllable."""
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: no such file; pass a recorded verse or the opponent's words as text")
    try:
        audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError) as e:
        raise UsageError(f"{path}: cannot read it as audio ({e}); export it as WAV or FLAC") from None
    if len(audio) == 0:
        raise UsageError(f"{path}: the file holds no audio")
    if sr < 8000:
        raise UsageError(f"{path}: {sr} Hz is too low a sample rate to hear words; record at 16 kHz or more")
    listener = Listener(sr, None, FILE_SETTINGS)
    sidecar = path.with_suffix(".txt")
    if sidecar.is_file():
        listener.set_text(sidecar.read_text(encoding="utf-8"))
    for i in range(0, len(audio), BLOCK):
        listener.push(audio[i : i + BLOCK])
    heard = listener.finish()
    if bpm is not None and heard.syllables:
        listener.grid = Grid(bpm, heard.syllables[0].onset_s)
        heard = listener.heard()
    if heard.state == "idle":
        raise UsageError(f"{path}: no voice was heard in it; is it the right file, and not silent?")
    for warning in heard.warnings:
        print(f"cypher: {path.name}: {warning}", file=sys.stderr)
    if not heard.words:
        raise UsageError(f"{path}: a voice was heard but no words were recognised; write them into "
                         f"{sidecar.name} beside it, or pass them as text")
    return heard


def heard_bars(heard: Heard) -> list[str]:
    return [line for line in heard.text.splitlines() if line.strip()]

