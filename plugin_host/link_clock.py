"""Ableton Link as a clock source (optional extra `link`: pip install -e '.[link]').

Link keeps a shared beat timeline among peers on the network (Live, Bitwig, apps).
`LinkClock.update()` reads the session (tempo, beat at now, playing) into the clock's
linear map; call it once per block or bar, not in the audio callback. Host time is
Link's own clock in seconds (`now()`), so `beat_at(now())` is the session's beat —
unless `host_now` is given (the live engine passes JACK's frame time over its rate):
then each update reads Link's clock and the host's side by side and anchors the map
on the host's time, so beats are asked and answered in frames.
"""
from __future__ import annotations

from typing import Callable

from plugin_host.clock import Clock, Meter


class LinkClock(Clock):
    def __init__(self, bpm: float = 120.0, meter: Meter = Meter(), start_stop_sync: bool = True,
                 host_now: Callable[[], float] | None = None) -> None:
        super().__init__(meter)
        self.host_now = host_now
        try:
            import link
        except ImportError:
            raise RuntimeError("Ableton Link needs the link extra: pip install -e '.[link]'") from None
        self.link = link.Link(float(bpm))
        self.link.startStopSyncEnabled = start_stop_sync
        self.link.enabled = True
        self.start_stop_sync = start_stop_sync
        self.bpm = float(bpm)
        self.update()

    @property
    def quantum(self) -> float:
        return float(self.meter.beats_per_bar)

    def now(self) -> float:
        """Host time in seconds: `host_now()`, else Link's clock (monotonic, but not time.monotonic())."""
        return self.host_now() if self.host_now is not None else self.link.clock().micros() / 1e6

    @property
    def peers(self) -> int:
        return self.link.numPeers()

    def update(self) -> None:
        """Take the session's tempo, phase and play state."""
        now_us = self.link.clock().micros()
        host = None
        if self.host_now is not None:  # read both clocks together: Link's, the host's, Link's again
            host = self.host_now()
            now_us = (now_us + self.link.clock().micros()) // 2
        state = self.link.captureAppSessionState()
        self.t0 = now_us / 1e6 if host is None else host
        self.beat0 = state.beatAtTime(now_us, self.quantum)
        self.bpm = state.tempo()
        playing = state.isPlaying() if self.start_stop_sync else True
        if self.running and not playing:
            self.stopped_beat = self.beat0
        self.running = playing

    poll = update

    def set_bpm(self, bpm: float) -> None:
        """Propose a tempo to the whole session."""
        state = self.link.captureAppSessionState()
        state.setTempo(float(bpm), self.link.clock().micros())
        self.link.commitAppSessionState(state)
        self.update()

    def close(self) -> None:
        self.link.enabled = False
