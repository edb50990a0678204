"""A real JACK graph for tests and benchmarks: a dummy-backend server and a MIDI clock master.

`jackd -d dummy` runs the graph with no sound card; `jack_midi_clock` (package
jack-midi-clock) sends MIDI clock from the JACK transport. Both are real programs;
these helpers only start, wait for and stop them.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time


class RigError(RuntimeError):
    pass


def have_jack_tools() -> bool:
    return all(shutil.which(tool) for tool in ("jackd", "jack_midi_clock"))


class JackServer:
    """`jackd -n NAME -d dummy` for the lifetime of a `with` block; sets JACK_DEFAULT_SERVER
    so every client started meanwhile (ours and the tools) joins it."""

    def __init__(self, name: str = "cypher-rig", sr: int = 48000, period: int = 256, sync: bool = False,
                 realtime: bool = False) -> None:
        # sync: jackd -S, every client in one cycle. JACK2's default (async) hands a client's
        # output to clients in other processes a cycle or two late, which a rig that checks
        # samples against the transport would count as cypher's error.
        # realtime: jackd -R, the server's and clients' process threads on SCHED_FIFO, as on
        # a stage machine (where the system allows it; JACK falls back to normal scheduling).
        self.name, self.sr, self.period, self.sync, self.realtime = name, sr, period, sync, realtime
        self.proc: subprocess.Popen | None = None
        self._old_env: str | None = None

    def __enter__(self) -> "JackServer":
        if not shutil.which("jackd"):
            raise RigError("jackd is not installed (Debian: apt install jackd2)")
        self._old_env = os.environ.get("JACK_DEFAULT_SERVER")
        os.environ["JACK_DEFAULT_SERVER"] = self.name
        # its messages go to a file: a pipe nobody reads would fill and stall the server
        self.log = tempfile.TemporaryFile("w+")
        self.proc = subprocess.Popen(
            ["jackd", "-R" if self.realtime else "--no-realtime", *(["-S"] if self.sync else []), "-n", self.name, "-d", "dummy",
             "-r", str(self.sr), "-p", str(self.period)],
            stdout=subprocess.DEVNULL, stderr=self.log, text=True,
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
                    err = self.messages() if self.proc.poll() is not None else "timed out"
                    self.__exit__()
                    raise RigError(f"jackd did not start: {err.strip()[-300:]}") from None
                time.sleep(0.05)

    def messages(self) -> str:
        """What jackd has printed so far."""
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

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


class GridClockMaster:
    """A MIDI clock master of our own, in the JACK graph: tick k goes out at the transport's
    grid frame for k plus an independent random offset of up to `jitter_percent` of a tick
    period (jitter around a steady grid, as a hardware clock or a USB link would add),
    unlike jack_midi_clock -J, whose offsets accumulate. Sends Start when the transport
    starts rolling from frame 0 and Stop when it stops."""

    def __init__(self, port: str, bpm: float, jitter_percent: float = 0.0, seed: int = 0) -> None:
        import jack
        import numpy as np

        self._rng = np.random.default_rng(seed)
        self.client = jack.Client("cypher-grid-clock", no_start_server=True)
        self.out = self.client.midi_outports.register("mclk_out")
        self.sr = self.client.samplerate
        self.period = self.sr * 60.0 / bpm / 24  # frames per tick
        self.jitter = jitter_percent / 100.0
        self._rolling = False
        self._k = 0
        self._anchor = (0, 0.0)  # (tick index, transport frame) the grid counts from
        self._new_period: float | None = None
        self._next = None  # transport frame of the next (jittered) tick
        self.zero_frame: int | None = None  # JACK frame of transport frame 0, while rolling (the rig's truth)
        from plugin_host.audio_io import CycleLateness

        self.lateness = CycleLateness(self.client)
        self.client.set_process_callback(self._process)
        self.client.activate()
        self.client.connect(self.out, port)

    def set_bpm(self, bpm: float) -> None:
        """Change tempo at the next tick, with no gap: the grid bends there."""
        self._new_period = self.sr * 60.0 / bpm / 24

    def _ideal(self, k: int) -> float:
        k0, f0 = self._anchor
        return f0 + (k - k0) * self.period

    def _jittered(self, k: int) -> float:
        return self._ideal(k) + self._rng.uniform(-self.jitter, self.jitter) * self.period

    def _process(self, frames: int) -> None:
        self.lateness.begin()
        try:
            self._tick(frames)
        finally:
            self.lateness.end(frames)

    def _tick(self, frames: int) -> None:
        import jack

        self.out.clear_buffer()
        state, pos = self.client.transport_query()
        rolling = state == jack.ROLLING
        self.zero_frame = self.client.last_frame_time - pos["frame"] if rolling else None
        if rolling and not self._rolling:
            self._k = int(-(-pos["frame"] // self.period))  # first grid tick at or after here
            self._next = max(float(pos["frame"]), self._jittered(self._k))
            self.out.write_midi_event(0, b"\xfa" if pos["frame"] == 0 else b"\xfb")
        elif not rolling and self._rolling:
            self.out.write_midi_event(0, b"\xfc")
        self._rolling = rolling
        if not rolling:
            return
        start = pos["frame"]
        while self._next is not None and self._next < start + frames:
            offset = max(0, int(round(self._next)) - start)
            if offset < frames:
                self.out.write_midi_event(offset, b"\xf8")
            self._k += 1
            if self._new_period is not None:  # bend the grid: tick k follows k-1 at the new period
                self._anchor = (self._k - 1, self._ideal(self._k - 1))
                self.period, self._new_period = self._new_period, None
            self._next = max(self._next + 1, self._jittered(self._k))  # never out of order

    def close(self) -> None:
        self.client.deactivate()
        self.client.close()

    def __enter__(self) -> "GridClockMaster":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _watch_for_stalls(conn, stop, cpu: int | None, period_s: float, threshold_s: float) -> None:
    """A stall probe's process, on processor `cpu`: wake every `period_s` on absolute
    deadlines, at a realtime priority above JACK's threads where allowed; send back every
    wake-up later than `threshold_s` as (deadline on time.monotonic(), seconds late), and
    whether it ran realtime."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    realtime = True
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(STALL_PROBE_PRIORITY))
    except (OSError, AttributeError):
        realtime = False
    stalls = []
    due, k = time.monotonic(), 0
    while True:
        k += 1
        if k % 100 == 0 and stop.is_set():
            break
        due += period_s
        wait = due - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        late = time.monotonic() - due
        if late > threshold_s:
            stalls.append((due, late))
            due += late  # one stall, one record: count on from here
    conn.send((stalls, realtime))


STALL_PROBE_PRIORITY = 30  # jackd -R runs its thread at 10 and clients at 5 (JACK2's defaults)


class StallProbe:
    """A witness for xruns, for a `with` block: on each processor, a process of its own
    that does nothing but wake every millisecond at a realtime priority above every JACK
    thread, and notes each wake-up more than `threshold_ms` late. When one was late too,
    nothing could run on that processor: the machine stalled it (a virtual machine's host
    took it, the kernel stopped it), whatever the clients did. `stalls`:
    [(time.monotonic(), s late)], every processor's, in time order."""

    def __init__(self, threshold_ms: float = 5.0, period_ms: float = 1.0) -> None:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        self._stop = ctx.Event()
        cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [None]
        self._conns, self.procs = [], []
        for cpu in cpus:
            conn, child = ctx.Pipe(duplex=False)
            self._conns.append(conn)
            self.procs.append(ctx.Process(target=_watch_for_stalls,
                                          args=(child, self._stop, cpu, period_ms / 1e3, threshold_ms / 1e3),
                                          daemon=True))
        self.stalls: list[tuple[float, float]] = []
        self.realtime = False

    def __enter__(self) -> "StallProbe":
        for proc in self.procs:
            proc.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        realtime = []
        for conn in self._conns:
            if conn.poll(10.0):
                stalls, rt = conn.recv()
                self.stalls += stalls
                realtime.append(rt)
        self.stalls.sort()
        self.realtime = bool(realtime) and all(realtime)
        for proc in self.procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()

    def explains(self, when: float, before_s: float = 0.1, after_s: float = 0.25) -> bool:
        """Whether a stall overlaps an xrun told at `when` (time.monotonic()): the stall may
        end up to `after_s` before JACK's notification thread tells of it."""
        return any(t - before_s <= when <= t + late + after_s for t, late in self.stalls)
