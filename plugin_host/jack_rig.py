"""A real JACK graph for tests and benchmarks: a dummy-backend server and a MIDI clock master.

`jackd -d dummy` runs the graph with no sound card; `jack_midi_clock` (package
jack-midi-clock) sends MIDI clock from the JACK transport. Both are real programs;
these helpers only start, wait for and stop them.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time


class RigError(RuntimeError):
    pass


def have_jack_tools() -> bool:
    return all(shutil.which(tool) for tool in ("jackd", "jack_midi_clock"))


class JackServer:
    """`jackd -n NAME -d dummy` for the lifetime of a `with` block; sets JACK_DEFAULT_SERVER
    so every client started meanwhile (ours and the tools) joins it."""

    def __init__(self, name: str = "cypher-rig", sr: int = 48000, period: int = 256) -> None:
        self.name, self.sr, self.period = name, sr, period
        self.proc: subprocess.Popen | None = None
        self._old_env: str | None = None

    def __enter__(self) -> "JackServer":
        if not shutil.which("jackd"):
            raise RigError("jackd is not installed (Debian: apt install jackd2)")
        self._old_env = os.environ.get("JACK_DEFAULT_SERVER")
        os.environ["JACK_DEFAULT_SERVER"] = self.name
        self.proc = subprocess.Popen(
            ["jackd", "--no-realtime", "-n", self.name, "-d", "dummy", "-r", str(self.sr), "-p", str(self.period)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        import jack

        deadline = time.monotonic() + 10.0
        while True:
            try:
                probe = jack.Client("cypher-probe", no_start_server=True, servername=self.name)
                probe.close()
                return self
            except jack.JackError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    err = self.proc.stderr.read() if self.proc.poll() is not None else "timed out"
                    self.__exit__()
                    raise RigError(f"jackd did not start: {err.strip()[-300:]}") from None
                time.sleep(0.05)

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        if self._old_env is None:
            os.environ.pop("JACK_DEFAULT_SERVER", None)
        else:
            os.environ["JACK_DEFAULT_SERVER"] = self._old_env


class MidiClockMaster:
    """`jack_midi_clock` at a fixed tempo (ignoring any timecode master), optional jitter in
    percent of a tick period, connected to `port`. It ticks while the transport rolls."""

    def __init__(self, port: str, bpm: float, jitter_percent: float = 0.0) -> None:
        if not shutil.which("jack_midi_clock"):
            raise RigError("jack_midi_clock is not installed (Debian: apt install jack-midi-clock)")
        self.proc = subprocess.Popen(
            ["jack_midi_clock", "-b", f"{bpm:g}", "-B", "-J", f"{jitter_percent:g}", port],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=5)

    def __enter__(self) -> "MidiClockMaster":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
