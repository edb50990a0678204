"""Duplex audio in a JACK graph: input into a ring, pre-rendered clips out on their frames.

The process callback only copies. Input goes into a fixed ring buffer (the engine
reads it from its own thread); output is the sum of the clips scheduled against
JACK's frame time, each starting on the exact frame it was given. The same client
reads MIDI (the host's clock), stamped with the same frame time, so audio and
clock share one time base. Nothing in the callback takes a lock or does I/O.

The callback is C (plugin_host/rtjack.c) when it was built: it never waits for
Python's lock, so a busy engine cannot make it miss a cycle. MIDI it received is
handed to `on_midi` from a Python thread, every `MIDI_POLL_S`, with its exact frame
times. Without the compiled part the same work runs in a Python callback.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Callable

import numpy as np

from plugin_host.jack_midi import open_client
from plugin_host.midi_parse import Message, MidiParser

N_SLOTS = 32  # as in rtjack.c
MIDI_POLL_S = 0.002
log = logging.getLogger("cypher.audio")


def extend_frame(ref: int, frame32: int) -> int:
    """The 64-bit frame nearest `ref` whose low 32 bits are `frame32` (as rtjack.c does)."""
    delta = (frame32 - ref) & 0xFFFFFFFF
    return ref + (delta - (1 << 32) if delta >= 1 << 31 else delta)


class InputRing:
    """A single-writer, single-reader ring of mono float32 samples stamped with frame times."""

    def __init__(self, capacity: int) -> None:
        self.buf = np.full(capacity, 0.0, np.float32)  # every page written now, not in the callback
        self.written = 0  # samples ever written
        self.first_frame: int | None = None  # JACK frame of sample 0
        self.overruns = 0
        self.gaps = 0
        self._zeros = np.full(capacity, 0.0, np.float32)

    def write(self, x: np.ndarray, frame: int) -> None:
        if self.first_frame is None:
            self.first_frame = frame - self.written
        missed = frame - (self.first_frame + self.written)
        if missed > 0:  # cycles this client did not run: silence, so sample i stays frame first + i
            self.gaps += 1
            self._put(self._zeros[: min(missed, len(self._zeros))], missed)
        self._put(x, len(x))

    def _put(self, x: np.ndarray, advance: int) -> None:
        n, cap = len(x), len(self.buf)
        i = self.written % cap
        k = min(n, cap - i)
        self.buf[i : i + k] = x[:k]
        if k < n:
            self.buf[: n - k] = x[k:]
        self.written += advance

    def read(self, pos: int) -> tuple[np.ndarray, int]:
        """(samples from sample index `pos` up to now, the index after them). A reader that
        fell more than a ring behind loses the oldest audio (counted in `overruns`)."""
        end, cap = self.written, len(self.buf)
        if end - pos > cap:
            self.overruns += 1
            pos = end - cap
        i, n = pos % cap, end - pos
        if i + n <= cap:
            return self.buf[i : i + n].copy(), end
        return np.concatenate([self.buf[i:], self.buf[: n - (cap - i)]]), end


class RtInputRing(InputRing):
    """The input ring the C callback writes: the same reads, its counters from the callback."""

    def __init__(self, rt) -> None:
        self.rt, self.buf, self.overruns = rt, rt.ring, 0

    @property
    def written(self) -> int:
        return self.rt.written()

    @property
    def first_frame(self) -> int | None:
        return self.rt.first_frame()

    @property
    def gaps(self) -> int:
        return self.rt.gaps()


class ClipSchedule:
    """Clips to play, each from an absolute JACK frame. Fixed slots; the callback sums them.

    With the C callback (`rt`), each change is also published to it; a clip taken out
    while the callback may be reading it is kept alive until that cycle has ended."""

    def __init__(self, n_slots: int = N_SLOTS, rt=None) -> None:
        if rt is not None and n_slots > N_SLOTS:
            raise ValueError(f"the C callback has {N_SLOTS} clip slots, not {n_slots}")
        self.slots: list[tuple[int, np.ndarray] | None] = [None] * n_slots
        self._rt = rt
        self._retired: list[tuple[int, np.ndarray]] = []  # (callback cycle when taken out, clip)

    def _set(self, i: int, entry: tuple[int, np.ndarray] | None) -> None:
        old, self.slots[i] = self.slots[i], entry
        if self._rt is None:
            return
        self._rt.publish(i, *(entry if entry is not None else (0, None)))
        cycle = self._rt.cycles()
        if old is not None:
            self._retired.append((cycle, old[1]))
        self._retired = [(c, clip) for c, clip in self._retired if cycle < c + 2]

    def _free(self, i: int) -> bool:
        s = self.slots[i]
        if s is not None and self._rt is not None:
            first = self._rt.first_frame()
            if first is not None and s[0] + len(s[1]) <= first + self._rt.written():  # played out
                self._set(i, None)
        return self.slots[i] is None

    def add(self, start_frame: int, clip: np.ndarray) -> int:
        """Queue `clip` (mono float32) to start at `start_frame`; returns its slot."""
        for i in range(len(self.slots)):
            if self._free(i):
                self._set(i, (int(start_frame), np.ascontiguousarray(clip, dtype=np.float32)))
                return i
        raise RuntimeError("all clip slots are busy")

    def replace(self, slot: int, start_frame: int, clip: np.ndarray) -> None:
        """Swap what a slot plays (a fallback for the real bar) in one assignment."""
        self._set(slot, (int(start_frame), np.ascontiguousarray(clip, dtype=np.float32)))

    def remove(self, slot: int) -> None:
        self._set(slot, None)

    def clear(self, from_frame: int = 0) -> None:
        """Drop every clip that has not started by `from_frame`."""
        for i, s in enumerate(self.slots):
            if s is not None and s[0] >= from_frame:
                self._set(i, None)

    def busy_until(self) -> int:
        return max((s[0] + len(s[1]) for s in self.slots if s is not None), default=0)

    def mix_into(self, out: np.ndarray, base: int) -> None:
        """Add every clip's part that falls in frames [base, base + len(out)) to `out`."""
        n = len(out)
        for i, s in enumerate(self.slots):
            if s is None:
                continue
            start, clip = s
            if start + len(clip) <= base:
                self.slots[i] = None  # played out
                continue
            if start >= base + n:
                continue
            a, c = max(0, start - base), max(0, base - start)
            k = min(n - a, len(clip) - c)
            out[a : a + k] += clip[c : c + k]


class CycleLateness:
    """A Python process callback's share of the xruns: `begin()` at its start, `end()` at
    its end. Counts cycles it began after half the period had gone (it waited: for the
    GIL, for the processor, for clients before it) and cycles whose own work took more
    than half the period. The C callback counts the same (`RtCallback.lateness`)."""

    def __init__(self, client) -> None:
        self.client = client
        self.late_starts = self.slow_cycles = 0
        self._began = 0

    def begin(self) -> None:
        self._began = self.client.frames_since_cycle_start

    def end(self, frames: int) -> None:
        ended = self.client.frames_since_cycle_start
        self.late_starts += 2 * self._began > frames
        self.slow_cycles += 2 * (ended - self._began) > frames

    def counts(self) -> tuple[int, int]:
        return self.late_starts, self.slow_cycles


class JackAudio:
    """A JACK client: audio `in`, audio `out`, and optionally MIDI `midi_in` for the clock.
    The process callback is C when it was built (`self.rt` is then not None)."""

    def __init__(self, client_name: str = "cypher", ring_s: float = 30.0, midi: bool = True,
                 on_midi: Callable[[Message], None] | None = None) -> None:
        from plugin_host import rt_callback

        jack, self.client = open_client(client_name)
        self._jack = jack
        try:
            self._setup(jack, ring_s, midi, on_midi, rt_callback)
        except Exception as e:  # a server going away while we join it (a reconnection) says JackError
            self.client.close()
            raise RuntimeError(f"cannot set up the JACK client ({e})") from None

    def _setup(self, jack, ring_s: float, midi: bool, on_midi, rt_callback) -> None:
        self.sr = self.client.samplerate
        self._base = self.client.last_frame_time  # the Python callback's 64-bit frame count
        self.inport = self.client.inports.register("in")
        self.outport = self.client.outports.register("out")
        self.midiport = self.client.midi_inports.register("midi_in") if midi else None
        self.parser = MidiParser()
        self.on_midi = on_midi
        self.xruns = 0
        self.xrun_times: deque[float] = deque(maxlen=256)  # the latest xruns, on time.monotonic()
        self.server_gone = False
        self.client.set_xrun_callback(self._xrun)
        self.client.set_shutdown_callback(self._shutdown)
        self._lateness = CycleLateness(self.client)
        lib = rt_callback.load()
        self.rt = None
        if lib is not None:
            self.rt = rt_callback.RtCallback(lib, jack, self.client, self.inport, self.outport, self.midiport,
                                             int(ring_s * self.sr))
            self.ring = RtInputRing(self.rt)
        else:
            log.warning("audio runs in a Python callback (%s): expect xruns under load", rt_callback.why_not())
            self.ring = InputRing(int(ring_s * self.sr))
            self.client.set_process_callback(self._process)
        self.schedule = ClipSchedule(rt=self.rt)
        self._closing = threading.Event()
        self.client.activate()
        if self.rt is not None and self.midiport is not None and on_midi is not None:
            threading.Thread(target=self._poll_midi, name="midi-in", daemon=True).start()

    def _xrun(self, delay_usecs: float) -> None:
        self.xruns += 1
        self.xrun_times.append(time.monotonic())  # told on JACK's notification thread, soon after

    def _shutdown(self, status, reason) -> None:
        self.server_gone = True

    def lateness(self) -> tuple[int, int]:
        """(cycles the process callback began after half the period, cycles its own work
        took more than half): when the graph has an xrun, the client that was late."""
        return self.rt.lateness() if self.rt is not None else self._lateness.counts()

    def _process(self, frames: int) -> None:
        self._lateness.begin()
        base = self._base = extend_frame(self._base, self.client.last_frame_time)
        if self.midiport is not None and self.on_midi is not None:
            for offset, data in self.midiport.incoming_midi_events():
                for msg in self.parser.feed(bytes(data), (base + offset) / self.sr):
                    self.on_midi(msg)
        self.ring.write(self.inport.get_array(), base)
        out = self.outport.get_array()
        out.fill(0.0)
        self.schedule.mix_into(out, base)
        self._lateness.end(frames)

    def _poll_midi(self) -> None:
        """MIDI the C callback received, parsed here with its frame times (never late by
        more than MIDI_POLL_S, and its timestamps are exact whenever it is handled)."""
        while not self._closing.wait(MIDI_POLL_S):
            for frame, data in self.rt.midi():
                for msg in self.parser.feed(data, frame / self.sr):
                    try:
                        self.on_midi(msg)
                    except Exception:  # one bad message must not end MIDI input for the night
                        log.exception("MIDI message %s not handled", msg)

    def now_frame(self) -> int:
        """JACK's frame time now, on a 64-bit count (JACK's own wraps after 2**32 frames)."""
        if self.rt is not None:
            return self.rt.extend(self.client.frame_time)
        return extend_frame(self._base, self.client.frame_time)

    @property
    def blocksize(self) -> int:
        return self.client.blocksize

    def connect(self, source: str, dest: str) -> None:
        """Connect two ports by name; a port that does not exist is named in the error with the ones that do."""
        try:
            self.client.connect(source, dest)
        except self._jack.JackError as e:
            names = [p.name for p in self.client.get_ports()]
            raise RuntimeError(f"cannot connect {source} -> {dest} ({e}); ports: {', '.join(names)}") from None

    def close(self) -> None:
        self._closing.set()
        if not self.server_gone:
            try:
                self.client.deactivate()
            except self._jack.JackError:
                pass
        self.client.close()
