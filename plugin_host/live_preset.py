"""Live presets (presets/live/*.toml): how `cypher serve` battles, in one file.

    description = "Four bars each, strictly alternating on the host's bar grid"
    mode = "battle"           # auto: answer when their verse ends near the turn's end
                              # battle: alternate every turn_bars on the grid, words or not
                              # manual: answer only on a trigger (OSC, a MIDI note)
    turn_bars = 4             # 1-16, theirs and ours
    style = "battle"          # a style, flow, voice and fx preset by name
    flow = "boom-bap"
    voice = "mc"
    fx = "battle"
    on_clock_stop = "stop"    # or "finish-bar"
    gap_bars = 0              # 0: answer on the downbeat that ends their turn; 1-4: leave bars of breath first
                              # (auto and manual; battle mode's grid sets the turns)
    input_latency_ms = 0.0    # -500..500: latency the engine cannot see
    output_latency_ms = 0.0

Every key is optional (the defaults are the above, with mode "auto"); flags given on
the command line win over the preset.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import presets
from plugin_host.errors import UsageError

MODES = ("auto", "battle", "manual")
ON_CLOCK_STOP = ("stop", "finish-bar")


@dataclass(frozen=True)
class LivePreset:
    name: str
    description: str = ""
    mode: str = "auto"
    turn_bars: int = 4
    style: str = "battle"
    flow: str = "boom-bap"
    voice: str = "mc"
    fx: str = "battle"
    on_clock_stop: str = "stop"
    gap_bars: int = 0
    input_latency_ms: float = 0.0
    output_latency_ms: float = 0.0


_TYPES = {f.name: f.type for f in fields(LivePreset) if f.name != "name"}


def load_live_preset(name: str) -> LivePreset:
    """The preset `name` (shipped, the user's, or a path to a .toml), validated; a bad key
    or value raises UsageError naming it and what is valid."""
    try:
        data = presets.load("live", name)
    except presets.PresetError as e:
        raise UsageError(str(e)) from None
    where = f"live preset {name!r}"
    for key, value in data.items():
        kind = _TYPES.get(key)
        if kind is None:
            raise UsageError(f"{where}: unknown key {key!r}; valid keys: {', '.join(_TYPES)}")
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        ok = {"str": isinstance(value, str), "int": number and float(value).is_integer(), "float": number}[kind]
        if not ok:
            raise UsageError(f"{where}: {key} must be a {'whole number' if kind == 'int' else kind}, got {value!r}")
    p = LivePreset(name, **{k: (int(v) if _TYPES[k] == "int" else float(v) if _TYPES[k] == "float" else v)
                            for k, v in data.items()})
    if p.mode not in MODES:
        raise UsageError(f"{where}: mode {p.mode!r} is not one of {', '.join(MODES)}")
    if not 1 <= p.turn_bars <= 16:
        raise UsageError(f"{where}: turn_bars must be 1-16, got {p.turn_bars}")
    if p.on_clock_stop not in ON_CLOCK_STOP:
        raise UsageError(f"{where}: on_clock_stop {p.on_clock_stop!r} is not one of {', '.join(ON_CLOCK_STOP)}")
    if not 0 <= p.gap_bars <= 4 or (p.gap_bars and p.mode == "battle"):
        raise UsageError(f"{where}: gap_bars must be 0-4, and 0 in battle mode (its grid sets the turns); got {p.gap_bars}")
    for key in ("input_latency_ms", "output_latency_ms"):
        if not -500 <= getattr(p, key) <= 500:
            raise UsageError(f"{where}: {key} must be -500..500 ms, got {getattr(p, key):g}")
    return p
