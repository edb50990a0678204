"""MIDI control: controller maps from presets/controllers/*.toml, and MIDI learn.

A map binds notes to actions (the argument-less OSC commands: turn/respond, ...) and
CC numbers to parameters (the numeric OSC parameters, with their ranges), each CC
with its own range and curve:

    description = "pads and knobs"
    channel = 0                  # 0-15; leave out to listen on every channel
    [notes]
    36 = "turn/respond"
    [cc.21]
    param = "aggression"
    lo = 0.0                     # optional: the parameter's full range by default
    hi = 1.0
    curve = "linear"             # linear | exp (fine control low) | log (fine control high)

MIDI learn: `learn(param)` arms a parameter; the next CC moved binds to it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import presets
from plugin_host.files import write_text
from plugin_host.midi_parse import Message
from plugin_host.osc import ADDRESSES, PREFIX, Controls

CURVES = {"linear": lambda x: x, "exp": lambda x: x * x, "log": math.sqrt}
# Numeric parameters a CC can drive, with their full ranges, from the OSC table.
PARAMS = {spec.param: (spec.lo, spec.hi, spec.types) for spec in ADDRESSES.values()
          if spec.param and spec.types in ("f", "b")}
ACTIONS = sorted(a.removeprefix(PREFIX + "/") for a, spec in ADDRESSES.items()
                 if not spec.types and not spec.param and a.removeprefix(PREFIX + "/").split("/")[0] in ("turn", "transport"))


@dataclass(frozen=True)
class CcBinding:
    param: str
    lo: float
    hi: float
    curve: str = "linear"

    def value(self, cc_value: int) -> float:
        x = CURVES[self.curve](max(0, min(127, cc_value)) / 127.0)
        return self.lo + x * (self.hi - self.lo)


@dataclass
class ControllerMap:
    name: str
    description: str = ""
    channel: int | None = None
    notes: dict[int, str] = field(default_factory=dict)
    cc: dict[int, CcBinding] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, name: str, data: dict) -> "ControllerMap":
        where = f"controller map {name!r}"
        valid = ("description", "channel", "notes", "cc")
        for key in data:
            if key not in valid:
                raise ValueError(f"{where}: unknown key {key!r}; valid keys: {', '.join(valid)}")
        channel = data.get("channel")
        if channel is not None and (not isinstance(channel, int) or not 0 <= channel <= 15):
            raise ValueError(f"{where}: channel must be 0-15 (or left out for every channel), got {channel!r}")
        notes = {}
        for note, action in data.get("notes", {}).items():
            n = _midi_number(where, "note", note)
            if action not in ACTIONS:
                raise ValueError(f"{where}: note {n} -> {action!r} is not an action; valid: {', '.join(ACTIONS)}")
            notes[n] = action
        cc = {}
        for number, table in data.get("cc", {}).items():
            n = _midi_number(where, "cc", number)
            if not isinstance(table, dict) or table.get("param") not in PARAMS:
                raise ValueError(f"{where}: cc {n} needs param = one of {', '.join(PARAMS)}")
            extra = set(table) - {"param", "lo", "hi", "curve"}
            if extra:
                raise ValueError(f"{where}: cc {n}: unknown key {sorted(extra)[0]!r}; valid keys: param, lo, hi, curve")
            p_lo, p_hi, _ = PARAMS[table["param"]]
            lo, hi = table.get("lo", p_lo), table.get("hi", p_hi)
            for label, v in (("lo", lo), ("hi", hi)):
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not p_lo <= v <= p_hi:
                    raise ValueError(f"{where}: cc {n}: {label} = {v!r} is outside {table['param']}'s {p_lo:g}..{p_hi:g}")
            curve = table.get("curve", "linear")
            if curve not in CURVES:
                raise ValueError(f"{where}: cc {n}: curve {curve!r}; valid: {', '.join(CURVES)}")
            cc[n] = CcBinding(table["param"], float(lo), float(hi), curve)
        return cls(name, str(data.get("description", "")), channel, notes, cc)

    def to_toml(self) -> str:
        lines = [f"description = {_quote(self.description)}"]
        if self.channel is not None:
            lines.append(f"channel = {self.channel}")
        if self.notes:
            lines += ["", "[notes]"] + [f"{n} = {_quote(a)}" for n, a in sorted(self.notes.items())]
        for n, b in sorted(self.cc.items()):
            lines += ["", f"[cc.{n}]", f"param = {_quote(b.param)}", f"lo = {b.lo!r}", f"hi = {b.hi!r}",
                      f"curve = {_quote(b.curve)}"]
        return "\n".join(lines) + "\n"


def _midi_number(where: str, kind: str, key) -> int:
    try:
        n = int(key)
    except ValueError:
        raise ValueError(f"{where}: {kind} {key!r} is not a number 0-127") from None
    if not 0 <= n <= 127:
        raise ValueError(f"{where}: {kind} {n} is outside 0-127")
    return n


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


class MidiControl:
    """Applies MIDI messages to `Controls` through a map; runs wherever messages arrive
    (cheap: a dict lookup and an assignment)."""

    def __init__(self, controls: Controls, cmap: ControllerMap) -> None:
        self.controls = controls
        self.map = cmap
        self.learning: str | None = None

    def learn(self, param: str) -> None:
        """Arm MIDI learn: the next CC moved binds to `param` over its full range."""
        if param not in PARAMS:
            raise ValueError(f"cannot learn {param!r}; learnable parameters: {', '.join(PARAMS)}")
        self.learning = param

    def handle(self, msg: Message) -> None:
        if self.map.channel is not None and msg.channel not in (-1, self.map.channel):
            return
        if msg.kind == "note_on":
            action = self.map.notes.get(msg.data[0])
            if action:
                self.controls.commands.append(action)
        elif msg.kind == "control_change":
            number, value = msg.data
            if self.learning:
                lo, hi, _ = PARAMS[self.learning]
                self.map.cc[number] = CcBinding(self.learning, lo, hi)
                self.learning = None
            binding = self.map.cc.get(number)
            if binding:
                v = binding.value(value)
                is_switch = PARAMS[binding.param][2] == "b"
                setattr(self.controls, binding.param, v >= 0.5 if is_switch else v)

    def save(self, path: str | Path) -> Path:
        """Write the map, with what was learned, as a TOML preset (atomically)."""
        return write_text(path, self.map.to_toml())

    def save_preset(self, name: str) -> Path:
        """Save as the user's controller preset `name` (see presets.user_dir)."""
        if not name or "/" in name or name.startswith("."):
            raise ValueError(f"preset name {name!r}: use letters, digits, '-' or '_'")
        folder = presets.user_dir() / "controllers"
        folder.mkdir(parents=True, exist_ok=True)
        return self.save(folder / f"{name}.toml")

    def osc_handlers(self) -> dict:
        """/cypher/midi/learn and /cypher/midi/save, for OscServer(handlers=...)."""
        return {"/cypher/midi/learn": lambda v: self.learn(v[0]),
                "/cypher/midi/save": lambda v: self.save_preset(v[0])}
