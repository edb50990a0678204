"""The C process callback (plugin_host/rtjack.c), loaded with ctypes, on a JACK-Client client.

`RtCallback.attach(client, in, out, midi, ring, ...)` installs it before activation;
the Python objects then read what it wrote through the small accessors here. Absent
(no C compiler at install time), `load()` says why and the caller falls back to a
Python callback.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import glob
import os
import sysconfig

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
_I64, _P = ctypes.c_int64, ctypes.c_void_p
_SIGNATURES = {
    "rt_state_size": (ctypes.c_size_t, []),
    "rt_attach": (ctypes.c_int, [_P, _P, _P, _P, _P, _P, _I64, _P, _P, _I64]),
    "rt_slot_set": (None, [_P, ctypes.c_int, _I64, _I64, _P]),
    "rt_extend": (_I64, [_P, ctypes.c_uint32]),
    "rt_written": (_I64, [_P]),
    "rt_first_frame": (_I64, [_P]),
    "rt_gaps": (_I64, [_P]),
    "rt_cycles": (_I64, [_P]),
    "rt_late_starts": (_I64, [_P]),
    "rt_slow_cycles": (_I64, [_P]),
    "rt_midi_written": (_I64, [_P]),
    "rt_midi_dropped": (_I64, [_P]),
    "rt_midi_consumed": (None, [_P, _I64]),
}
_lib = None
_why = None


def load():
    """The compiled library, or None (then `why_not()` says why)."""
    global _lib, _why
    if _lib is not None or _why is not None:
        return _lib
    if os.environ.get("CYPHER_PYTHON_CALLBACK"):
        _why = "CYPHER_PYTHON_CALLBACK is set"
        return None
    paths = glob.glob(os.path.join(_HERE, "_rtjack" + sysconfig.get_config_var("EXT_SUFFIX"))) or \
        glob.glob(os.path.join(_HERE, "_rtjack*.so"))
    if not paths:
        _why = "the C callback was not built (install a C compiler, e.g. apt install gcc, and reinstall cypher)"
        return None
    jack_path = ctypes.util.find_library("jack")
    try:
        ctypes.CDLL(jack_path or "libjack.so.0", mode=ctypes.RTLD_GLOBAL)  # its JACK symbols come from here
        lib = ctypes.CDLL(paths[0])
    except OSError as e:
        _why = f"the C callback could not load ({e})"
        return None
    for name, (res, args) in _SIGNATURES.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = res, args
    _lib = lib
    return _lib


def why_not() -> str | None:
    load()
    return _why


def _ptr(jack_module, cdata) -> int:
    return int(jack_module._ffi.cast("uintptr_t", cdata))


class RtCallback:
    """The callback's state: the input ring and the MIDI ring live in numpy arrays owned here."""

    def __init__(self, lib, jack_module, client, inport, outport, midiport, ring_samples: int,
                 midi_events: int = 4096) -> None:
        self.lib = lib
        # np.zeros maps pages lazily: the callback's first write to each would fault (and
        # wait on the process's memory lock while another thread maps or frees). full()
        # writes every page now, here.
        self.ring = np.full(ring_samples, 0.0, np.float32)
        self.midi_frame = np.full(midi_events, 0, np.int64)
        self.midi_bytes = np.full(4 * midi_events, 0, np.uint8)
        self._state = ctypes.create_string_buffer(lib.rt_state_size())
        self.s = ctypes.addressof(self._state)
        midi = _ptr(jack_module, midiport._ptr) if midiport is not None else None
        rc = lib.rt_attach(self.s, _ptr(jack_module, client._ptr), _ptr(jack_module, inport._ptr),
                           _ptr(jack_module, outport._ptr), midi, self.ring.ctypes.data, len(self.ring),
                           self.midi_frame.ctypes.data, self.midi_bytes.ctypes.data, midi_events)
        if rc != 0:
            raise RuntimeError(f"JACK refused the process callback (error {rc})")
        self._midi_read = 0

    def extend(self, frame32: int) -> int:
        """A 32-bit JACK frame time on the callback's 64-bit count (no wrap after 25 hours)."""
        return self.lib.rt_extend(self.s, frame32)

    def written(self) -> int:
        return self.lib.rt_written(self.s)

    def first_frame(self) -> int | None:
        f = self.lib.rt_first_frame(self.s)
        return None if f < 0 else f

    def gaps(self) -> int:
        return self.lib.rt_gaps(self.s)

    def cycles(self) -> int:
        return self.lib.rt_cycles(self.s)

    def lateness(self) -> tuple[int, int]:
        """(cycles the callback began after half the period had gone, cycles whose own work
        took more than half the period): which client an xrun came from."""
        return self.lib.rt_late_starts(self.s), self.lib.rt_slow_cycles(self.s)

    def midi_dropped(self) -> int:
        return self.lib.rt_midi_dropped(self.s)

    def publish(self, slot: int, start_frame: int, clip: np.ndarray | None) -> None:
        """What slot `slot` plays from now on (None: nothing). The caller keeps `clip` alive."""
        if clip is None:
            self.lib.rt_slot_set(self.s, slot, 0, 0, None)
        else:
            self.lib.rt_slot_set(self.s, slot, int(start_frame), len(clip), clip.ctypes.data)

    def midi(self) -> list[tuple[int, bytes]]:
        """MIDI events received since the last call: (JACK frame, bytes)."""
        end = self.lib.rt_midi_written(self.s)
        out = []
        cap = len(self.midi_frame)
        for k in range(self._midi_read, end):
            i = k % cap
            n = int(self.midi_bytes[4 * i])
            out.append((int(self.midi_frame[i]), self.midi_bytes[4 * i + 1 : 4 * i + 1 + n].tobytes()))
        self._midi_read = end
        self.lib.rt_midi_consumed(self.s, end)
        return out
