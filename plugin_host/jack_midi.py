"""MIDI input from a JACK graph, stamped with JACK's own frame time.

Each event's host time is (cycle start frame + offset in the cycle) / sample rate:
the audio graph's sample clock, exact to the sample, with no wall-clock jitter.
The process callback parses and dispatches only; handlers must be quick.
"""
from __future__ import annotations

from typing import Callable

from plugin_host.midi_parse import Message, MidiParser


def open_client(client_name: str):
    """(the jack module, a client of the running server); RuntimeError naming the fix otherwise."""
    try:
        import jack
    except (ImportError, OSError) as e:  # OSError: the JACK library itself is missing
        raise RuntimeError(f"JACK is not available ({e}); install JACK (Debian: jackd2) and JACK-Client") from None
    try:
        return jack, jack.Client(client_name, no_start_server=True)
    except jack.JackError:
        raise RuntimeError("no JACK server is running; start one (e.g. jackd -d alsa, or jackd -d dummy)") from None


class JackMidiIn:
    """A JACK client with one MIDI input port; `on_message(msg)` runs in JACK's process thread."""

    def __init__(self, on_message: Callable[[Message], None], client_name: str = "cypher",
                 port_name: str = "midi_in", track_transport: bool = False) -> None:
        jack, self.client = open_client(client_name)
        self.sr = self.client.samplerate
        self.port = self.client.midi_inports.register(port_name)
        self.parser = MidiParser()
        self.on_message = on_message
        self.track_transport = track_transport
        self.transport_zero_s: float | None = None  # JACK time (s) of transport frame 0, while rolling
        self._rolling = jack.ROLLING
        self.client.set_process_callback(self._process)
        self.client.activate()

    @property
    def port_name(self) -> str:
        return self.port.name

    def now(self) -> float:
        """JACK's current frame time in seconds: the clock the events are stamped with."""
        return self.client.frame_time / self.sr

    def _process(self, frames: int) -> None:
        base = self.client.last_frame_time
        if self.track_transport:  # for measurements against the transport: one query a cycle
            state, pos = self.client.transport_query()
            self.transport_zero_s = (base - pos["frame"]) / self.sr if state == self._rolling else None
        for offset, data in self.port.incoming_midi_events():
            for msg in self.parser.feed(bytes(data), (base + offset) / self.sr):
                self.on_message(msg)

    def close(self) -> None:
        self.client.deactivate()
        self.client.close()
