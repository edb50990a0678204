"""MIDI ports through mido and python-rtmidi: virtual ports where the backend allows,
named hardware or software ports otherwise (ALSA or JACK on Linux, CoreMIDI, WinMM).

For control messages (notes, CCs) and controller feedback; the clock of record reads
MIDI clock through `JackMidiIn`, which stamps events with JACK frame time.
"""
from __future__ import annotations

import time
from typing import Callable

import mido

from plugin_host.midi_parse import Message, MidiParser

APIS = {"jack": "UNIX_JACK", "alsa": "LINUX_ALSA", "coremidi": "MACOSX_CORE", "winmm": "WINDOWS_MM"}


def _backend(api: str | None):
    if api is None:
        return mido.Backend("mido.backends.rtmidi")
    if api not in APIS:
        raise ValueError(f"unknown MIDI API {api!r}; valid: {', '.join(APIS)}")
    return mido.Backend(f"mido.backends.rtmidi/{APIS[api]}")


def open_input(name: str, on_message: Callable[[Message], None], api: str | None = None,
               virtual: bool = True, now: Callable[[], float] = time.monotonic):
    """A MIDI input that calls `on_message` with parsed messages stamped with `now()` as
    they arrive (time.monotonic(), or e.g. an audio stream's frame time in seconds).
    `virtual`: create a port named `name` for others to connect to; otherwise open the
    existing port whose name contains `name`."""
    backend = _backend(api)
    parser = MidiParser()

    def callback(msg: mido.Message) -> None:
        for m in parser.feed(bytes(msg.bytes()), now()):
            on_message(m)

    try:
        if virtual:
            return backend.open_input(name, virtual=True, callback=callback)
        return backend.open_input(_find(backend.get_input_names(), name, "input"), callback=callback)
    except OSError as e:  # rtmidi reports a backend that cannot open as SystemError (an OSError)
        raise RuntimeError(f"cannot open MIDI input {name!r}: {e}") from None


def open_output(name: str, api: str | None = None, virtual: bool = True):
    """A mido output port (virtual, or the existing port whose name contains `name`)."""
    backend = _backend(api)
    try:
        if virtual:
            return backend.open_output(name, virtual=True)
        return backend.open_output(_find(backend.get_output_names(), name, "output"))
    except OSError as e:
        raise RuntimeError(f"cannot open MIDI output {name!r}: {e}") from None


def _find(names: list[str], wanted: str, kind: str) -> str:
    for n in names:
        if wanted in n:
            return n
    raise RuntimeError(f"no MIDI {kind} named like {wanted!r}; available: {', '.join(names) or '(none)'}")
