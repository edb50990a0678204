"""Duplex audio through PortAudio (sounddevice): the system's own devices, chosen by name.

The same contract as `JackAudio`, so the engine does not know which it has: an input
ring stamped with frames, clips scheduled by absolute frame and summed into the
output, `now_frame()`. Frames count the stream's samples from its start (input and
output move together in a duplex stream). The callback is Python here (sounddevice
calls it through cffi): it only copies, into preallocated arrays.

PortAudio reaches CoreAudio, WASAPI/ASIO, ALSA, and JACK too (Debian's libportaudio2
has the JACK host API, which is how the tests drive this class in a dummy graph).
"""
from __future__ import annotations

from time import monotonic

import numpy as np

from plugin_host.audio_io import ClipSchedule, InputRing


class DeviceError(RuntimeError):
    """No device matches; the message lists the ones there are."""


_open_streams = 0


def _sd():
    """sounddevice with PortAudio started afresh, unless a stream is open. PortAudio reads
    the device list when it starts (a JACK server or a USB interface may have come
    since), and is stopped again when the last stream closes: its JACK host API aborts
    the process if the server goes away while it is initialised."""
    try:
        import sounddevice
    except OSError as e:  # the package is there, the PortAudio library is not
        raise DeviceError(f"PortAudio is not installed ({e}); on Debian: apt install libportaudio2") from None
    if _open_streams == 0:
        _release(sounddevice)
        sounddevice._initialize()
    return sounddevice


def _release(sd) -> None:
    if _open_streams == 0:
        while sd._initialized:
            sd._terminate()


def device_names() -> list[str]:
    """'index name (host API, in/out channels)' for every device PortAudio sees."""
    sd = _sd()
    try:
        apis = sd.query_hostapis()
        return [f"{i} {d['name']} ({apis[d['hostapi']]['name']}, {d['max_input_channels']} in / "
                f"{d['max_output_channels']} out)" for i, d in enumerate(sd.query_devices())]
    finally:
        _release(sd)


def find_device(sd, name: str | None, kind: str) -> int | None:
    """The index of the device for `kind` ("input" or "output") whose name is `name`, or
    contains it (case-insensitive), or has that index; None: the system default."""
    if name is None:
        return None
    devices = sd.query_devices()
    channels = f"max_{kind}_channels"
    if name.isdigit() and int(name) < len(devices) and devices[int(name)][channels] > 0:
        return int(name)
    usable = [(i, d["name"]) for i, d in enumerate(devices) if d[channels] > 0]
    for match in (lambda n: n == name, lambda n: n.lower() == name.lower(), lambda n: name.lower() in n.lower()):
        hits = [i for i, n in usable if match(n)]
        if hits:
            return hits[0]
    listed = "; ".join(device_names()) or "(none)"
    raise DeviceError(f"no audio {kind} device matches {name!r}. Devices: {listed}")


class PortAudioDuplex:
    """A duplex stream: mono `in` (the device's first input channel), `out` mono on every
    output channel the device has (up to two).

    With `on_midi`, a MIDI input beside it (python-rtmidi: ALSA, JACK, CoreMIDI, WinMM by
    `midi_api`): the port whose name contains `midi_in`, or a virtual port "cypher clock"
    for the host to connect to. Its messages are stamped on this stream's frame time as
    they arrive (so a MIDI clock is followed with the delivery jitter of the MIDI
    system, a millisecond or a few, where JACK's own MIDI is exact)."""

    def __init__(self, device: str | None = None, sr: int | None = None, blocksize: int = 512,
                 ring_s: float = 30.0, on_midi=None, midi_in: str | None = None, midi_api: str | None = None) -> None:
        global _open_streams
        sd = _sd()
        try:
            dev_in, dev_out = find_device(sd, device, "input"), find_device(sd, device, "output")
            info = sd.query_devices(dev_out, "output")
        except (DeviceError, sd.PortAudioError) as e:
            _release(sd)
            raise DeviceError(str(e)) from None
        self.sr = int(sr or info["default_samplerate"])
        self.blocksize = blocksize
        self.n_out = max(1, min(2, int(info["max_output_channels"])))
        self.ring = InputRing(int(ring_s * self.sr))
        self.schedule = ClipSchedule()
        self.rt = None  # no C callback on this path
        self._sd = sd
        self.xruns = 0
        self.server_gone = False
        self._closing = False
        self._frames = 0
        self._stamp = (0, 0.0)  # (frame, stream time) at the last callback's start
        self._mix = np.zeros(blocksize, np.float32)
        try:
            self.stream = sd.Stream(device=(dev_in, dev_out), samplerate=self.sr, blocksize=blocksize,
                                    dtype="float32", channels=(1, self.n_out), callback=self._process,
                                    finished_callback=self._finished)
        except sd.PortAudioError as e:
            _release(sd)
            raise DeviceError(f"cannot open {device or 'the default device'} at {self.sr} Hz, {blocksize} frames: {e}") from None
        _open_streams += 1
        try:
            self.stream.start()
        except sd.PortAudioError as e:
            self.close()
            raise DeviceError(f"cannot start {device or 'the default device'}: {e}") from None
        self.midi = None
        if on_midi is not None:
            from plugin_host.midi_ports import open_input

            try:
                self.midi = open_input(midi_in or "cypher clock", on_midi, api=midi_api, virtual=midi_in is None,
                                       now=lambda: self.now_frame() / self.sr)
            except (RuntimeError, ValueError) as e:
                self.close()
                raise DeviceError(str(e)) from None

    def _process(self, indata, outdata, frames, times, status) -> None:
        base = self._frames
        if status.input_overflow or status.output_underflow:
            self.xruns += 1
        self._stamp = (base, monotonic())  # not every host API fills in the stream's times
        self.ring.write(indata[:, 0], base)
        mix = self._mix[:frames]
        mix.fill(0.0)
        self.schedule.mix_into(mix, base)
        outdata[:] = mix[:, None]
        self._frames = base + frames

    def _finished(self) -> None:
        if not self._closing:
            self.server_gone = True  # the device went away

    def now_frame(self) -> int:
        """The frame being played about now: the last callback's first frame, plus the time
        since it ran. Only decisions (is a bar still in time?) use it; clips are placed by
        their frame numbers exactly."""
        base, t = self._stamp
        return base + int((monotonic() - t) * self.sr) if t else base

    def close(self) -> None:
        global _open_streams
        if getattr(self, "midi", None) is not None:
            self.midi.close()
            self.midi = None
        if not self._closing:
            self._closing = True
            self.stream.close(ignore_errors=True)
            _open_streams -= 1
            _release(self._sd)
