"""`cypher demo`: a battle exchange over the built-in beat, written as a take folder."""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

import presets
from dsp.beat import render_beat
from plugin_host.errors import UsageError
from plugin_host.files import umask, write_text, write_wav
from plugin_host.flow_plot import plot_flow
from plugin_host.rap import bar_records, check_bpm, load_flow, load_fx, load_voice, rap, syllable_records
from plugin_host.write import Comeback, load_style

SR = 44100
PEAK_DBFS = -1.0
_TOP_KEYS = {"description", "bpm", "flow", "intro_bars", "outro_bars", "turn"}
_TURN_KEYS = {"who", "voice", "fx"}  # and one of: bars (performed as written) or write (bars cypher writes)


def _check_exchange(name: str, data: dict) -> None:
    for key in data:
        if key not in _TOP_KEYS:
            raise UsageError(f"verses {name!r}: unknown key {key!r}; valid keys: {', '.join(sorted(_TOP_KEYS))}")
    turns = data.get("turn")
    if not isinstance(turns, list) or not turns:
        raise UsageError(f"verses {name!r}: needs at least one [[turn]] with who, voice, fx and bars")
    for i, turn in enumerate(turns):
        missing = _TURN_KEYS - set(turn)
        extra = set(turn) - _TURN_KEYS - {"bars", "write"}
        if missing or extra or ("bars" in turn) == ("write" in turn):
            raise UsageError(f"verses {name!r}, turn {i + 1}: keys must be who, voice, fx and either bars "
                             "(a list of strings) or write (how many bars cypher writes in answer)")
        if "bars" in turn and (not isinstance(turn["bars"], list) or not all(isinstance(b, str) for b in turn["bars"])):
            raise UsageError(f"verses {name!r}, turn {i + 1}: bars must be a list of strings")
        if "write" in turn and (not isinstance(turn["write"], int) or isinstance(turn["write"], bool)
                                or not 1 <= turn["write"] <= 16):
            raise UsageError(f"verses {name!r}, turn {i + 1}: write must be a number of bars, 1-16")
        if "write" in turn and i == 0:
            raise UsageError(f"verses {name!r}: the first turn must have bars; cypher answers a verse")


def _progress(i: int, n: int, what: str) -> None:
    print(f"  [{i}/{n}] {what}", file=sys.stderr)


def run_demo(out_root: Path, verses: str = "demo", bpm: float | None = None, seed: int = 0) -> dict:
    """Render the exchange `verses` into a new folder `out_root/demo-<time>/`; returns what was written."""
    try:
        data = presets.load("verses", verses)
    except presets.PresetError as e:
        raise UsageError(str(e)) from None
    _check_exchange(verses, data)
    bpm = check_bpm(bpm if bpm is not None else float(data.get("bpm", 90)))
    flow = load_flow(data.get("flow", "boom-bap"))
    try:
        out_root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"cannot create {out_root}: {e.strerror}; choose another --out") from None
    if not os.access(out_root, os.W_OK):
        raise UsageError(f"cannot write into {out_root}; choose another --out")

    turns = [dict(t) for t in data["turn"]]
    n_steps = len(turns) + 2
    bar = int(data.get("intro_bars", 1))
    takes = []
    writer = None
    for i, turn in enumerate(turns, 1):
        if "write" in turn:
            if writer is None:
                writer = Comeback(flow)
            written = writer.write(turns[i - 2]["bars"], turn["write"], load_style("battle"), seed=seed)
            turn["bars"] = [b["text"] for b in written["bars"]]
            turn["written_by"] = f"the lyric model (seed {seed}, {written['latency_ms']['write']:.0f} ms)"
        _progress(i, n_steps, f"{turn['who']}: {len(turn['bars'])} bars"
                  + (", written by the lyric model" if "write" in turn else ""))
        take = rap("\n".join(turn["bars"]), bpm, flow, load_voice(turn["voice"]), load_fx(turn["fx"]), sr=SR,
                   start_beat=Fraction(bar * flow.beats_per_bar), tail_s=2.0)
        takes.append((turn, take))
        bar += len(take.performance.bars)
    n_bars = bar + int(data.get("outro_bars", 1))
    _progress(n_steps - 1, n_steps, "beat and mix")
    beat = render_beat(bpm, n_bars, SR, beats_per_bar=flow.beats_per_bar)
    n = max([len(beat)] + [len(t.wet) for _, t in takes])
    stems = {"beat": np.pad(beat, (0, n - len(beat)))}
    for turn, take in takes:
        stem = stems.setdefault(turn["who"], np.zeros(n, np.float32))
        stem[: len(take.wet)] += take.wet
    mix = sum(stems.values())
    gain = 10 ** (PEAK_DBFS / 20) / max(float(np.max(np.abs(mix))), 1e-9)
    stems = {k: v * gain for k, v in stems.items()}
    mix = mix * gain

    _progress(n_steps, n_steps, "files")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    final = out_root / f"demo-{stamp}"
    k = 2
    while final.exists():
        final, k = out_root / f"demo-{stamp}-{k}", k + 1
    tmp = Path(tempfile.mkdtemp(prefix=".demo-", suffix=".part", dir=out_root))
    try:
        files = ["mix.wav"]
        write_wav(tmp / "mix.wav", mix, SR)
        for who, stem in stems.items():
            write_wav(tmp / f"{who}.wav", stem, SR)
            files.append(f"{who}.wav")
        lyrics = {
            "source": f"presets/verses/{verses}.toml",
            "bpm": bpm, "sr": SR, "flow": flow.name, "beats_per_bar": flow.beats_per_bar,
            "turns": [
                {"who": turn["who"], "voice": turn["voice"], "fx": turn["fx"],
                 "written_by": turn.get("written_by", "hand-written in the preset"),
                 "bars": bar_records(take.performance), "syllables": syllable_records(take.performance)}
                for turn, take in takes
            ],
        }
        write_text(tmp / "lyrics.json", json.dumps(lyrics, indent=1))
        write_text(tmp / "lyrics.txt", "\n\n".join(
            f"[{turn['who']}]\n" + "\n".join(b["text"] for b in bar_records(take.performance)) for turn, take in takes) + "\n")
        plot_flow(tmp / "flow.png", [(turn["who"], take.performance) for turn, take in takes],
                  title=f"{verses}: {bpm:g} BPM, {flow.name} flow")
        files += ["lyrics.json", "lyrics.txt", "flow.png"]
        os.chmod(tmp, 0o777 & ~umask())
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    print(f"cypher demo: wrote {final}/ ({', '.join(files)})", file=sys.stderr)
    print(final)
    return {"out": str(final), "files": files, "bpm": bpm, "bars": n_bars, "seconds": round(n / SR, 3)}
