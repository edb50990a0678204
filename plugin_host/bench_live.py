"""`cypher bench live`: battle turns in a real JACK graph, measured against the host's grid.

The rig: `jackd -d dummy`; a MIDI clock master of our own ticking on the JACK
transport's grid (with jitter), into cypher's midi_in; an opponent client that raps a
verse into cypher's input from a downbeat; a recorder on cypher's output. The truth
is the transport: beat k falls at transport frame k * 60/bpm * rate.
"""
from __future__ import annotations

import itertools
import os
import threading
import time
from dataclasses import dataclass

import numpy as np

from dsp.listener import ListenSettings
from plugin_host.audio_io import JackAudio
from plugin_host.bench import check_targets
from plugin_host.engine import PREROLL_BEATS, Engine, EngineSettings
from plugin_host.jack_rig import GridClockMaster, JackServer, RigError, StallProbe, have_jack_tools
from plugin_host.rap import load_flow, load_fx, load_voice, rap

# xruns the stall probe saw the whole machine stop for are reported, not held against cypher
TARGETS = {"queued_ms_p95": ("<=", 100.0), "onset_error_ms_median": ("<=", 2.0), "onset_error_ms_max": ("<=", 10.0),
           "misses": ("<=", 0), "xruns_not_machine": ("<=", 0)}
SOAK_TARGETS = {"drift_ms": ("<=", 1.0), "memory_growth_percent": ("<=", 5.0)}


_RIGS = itertools.count()


@dataclass
class TurnResult:
    queued_ms: float | None  # the opponent's last syllable ends -> the first written bar is in place
    onset_errors_ms: list[float]  # each syllable of the answer: attack - the host grid's slot
    played_exactly: bool  # the recording holds the first bar's clip from its start frame, sample for sample
    misses: int
    written_ahead_kept: bool  # the words changed at the end; the rewrite was late; the early bar played
    text: str
    heard: str


def _peer(conn, server: str, bpm: float, jitter: float, seed: int) -> None:
    """The rest of the graph, in a process of its own (as a DAW would be): the clock master,
    the opponent's output and a recorder, driven over `conn`."""
    import os

    os.environ["JACK_DEFAULT_SERVER"] = server
    opponent = JackAudio("opponent", midi=False, ring_s=1.0)
    recorder = JackAudio("recorder", midi=False, ring_s=120.0)
    master = None
    while True:
        cmd, *args = conn.recv()
        try:
            if cmd == "connect":
                master = GridClockMaster(args[0], bpm, jitter, seed=seed)
                opponent.connect(opponent.outport.name, args[1])
                recorder.connect(args[2], recorder.inport.name)
                client = master.client
                client.transport_stop()
                client.transport_frame = 0
                time.sleep(0.2)
                client.transport_start()
                reply = None
            elif cmd == "transport_stop":  # the host stops: the clock master sends Stop
                master.client.transport_stop()
                reply = recorder.now_frame()
            elif cmd == "zero":
                reply = master.zero_frame if master is not None else None
            elif cmd == "now":
                reply = recorder.now_frame()
            elif cmd == "lateness":
                reply = {"clock master": master.lateness.counts() if master is not None else (0, 0),
                         "opponent": opponent.lateness(), "recorder": recorder.lateness()}
            elif cmd == "play":
                reply = opponent.schedule.add(args[0], args[1])
            elif cmd == "recording":  # frames [args[0], args[0] + args[1]) as recorded, or None
                ring, (start, n) = recorder.ring, args
                i = start - ring.first_frame
                if i < 0 or i + n > ring.written or ring.written - i > len(ring.buf):
                    reply = None
                else:
                    j = i % len(ring.buf)
                    reply = np.take(ring.buf, np.arange(j, j + n), mode="wrap")
            elif cmd == "stop":
                for part in (master, opponent, recorder):
                    if part is not None:
                        part.close()
                conn.send(None)
                return
            else:
                reply = RuntimeError(f"unknown command {cmd}")
        except Exception as e:  # the rig reports, the test decides
            reply = e
        conn.send(reply)


def _flood(port: int, rate: float, stop) -> None:
    """Send `rate` OSC messages a second to 127.0.0.1:`port` until `stop` is set: a
    controller's knob, moved without pause (a parameter message, valid, each one applied)."""
    import socket

    from pythonosc.osc_message_builder import OscMessageBuilder

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dgrams = []
    for i in range(100):
        b = OscMessageBuilder(address="/cypher/style/aggression")
        b.add_arg(i / 100)
        dgrams.append(b.build().dgram)
    t0, sent = time.monotonic(), 0
    while not stop.is_set():
        due = int((time.monotonic() - t0) * rate)
        while sent < due:
            sock.sendto(dgrams[sent % 100], ("127.0.0.1", port))
            sent += 1
        time.sleep(0.002)
    sock.close()


class OscFlood:
    """A process that floods cypher's OSC port at `rate` messages a second, for a `with` block."""

    def __init__(self, port: int, rate: float = 10_000.0) -> None:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        self._stop = ctx.Event()
        self.proc = ctx.Process(target=_flood, args=(port, rate, self._stop), daemon=True)

    def __enter__(self) -> "OscFlood":
        self.proc.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self.proc.join(timeout=5)
        if self.proc.is_alive():
            self.proc.kill()


class LiveRig:
    """The graph and its peers (another process), and cypher's engine here, for a `with` block."""

    def __init__(self, bpm: float = 120.0, turn_bars: int = 1, jitter_percent: float = 5.0, sr: int = 48000,
                 period: int = 512, seed: int = 0, given_text: bool = True, speculate: bool = True,
                 on_clock_stop: str = "stop", realtime: bool = True, osc: bool = False, mode: str = "auto",
                 gap_bars: int = 0) -> None:
        if not have_jack_tools():
            raise RigError("the live rig needs jackd (Debian: apt install jackd2)")
        self.bpm, self.turn_bars, self.sr, self.period = bpm, turn_bars, sr, period
        self.jitter, self.seed, self.given_text, self.speculate = jitter_percent, seed, given_text, speculate
        self.on_clock_stop, self.realtime, self.use_osc, self.mode = on_clock_stop, realtime, osc, mode
        self.gap_bars = gap_bars
        self.osc = None
        self.osc_applied = 0  # OSC messages cypher's server has applied

    def _ask(self, *cmd):
        self.conn.send(cmd)
        if not self.conn.poll(20.0):
            raise RigError(f"the rig's peer process did not answer {cmd[0]}")
        reply = self.conn.recv()
        if isinstance(reply, Exception):
            raise RigError(f"the rig's peer process failed at {cmd[0]}: {reply}")
        return reply

    def __enter__(self) -> "LiveRig":
        import multiprocessing as mp
        import sys

        from plugin_host.clock import MidiClockFollower
        from plugin_host.write import Comeback, load_style

        sys.setswitchinterval(0.001)  # cypher's audio callback waits less for the GIL
        import os

        name = f"cypher-live-{os.getpid()}-{next(_RIGS)}"  # rigs side by side never share a server
        self.server = JackServer(name, sr=self.sr, period=self.period, sync=True, realtime=self.realtime).__enter__()
        try:
            self.flow = load_flow("boom-bap")
            self.clock = MidiClockFollower()
            settings = EngineSettings(turn_bars=self.turn_bars, answer_bars=self.turn_bars, seed=self.seed,
                                      speculate=self.speculate, on_clock_stop=self.on_clock_stop, mode=self.mode,
                                      gap_bars=self.gap_bars)
            comeback = Comeback(self.flow)
            self.audio = JackAudio("cypher", midi=True, on_midi=lambda m: self.engine.on_midi(m))
            # With the words given (as over OSC), the recogniser stays off: pocketsphinx holds
            # the GIL while it decodes, which can make the audio callback late.
            listen = ListenSettings(recognize=not self.given_text)
            if self.use_osc:  # cypher's OSC server; the opponent's words then come over it
                from plugin_host.osc import Controls, OscServer

                self.osc = OscServer(Controls(), port=0, on_apply=self._applied).start()
            self.engine = Engine(self.audio, self.clock, comeback, self.flow, load_voice("mc"),
                                 load_fx("battle"), load_style("battle"), settings, self.osc, listen=listen)
            ctx = mp.get_context("spawn")
            self.conn, child = ctx.Pipe()
            self.peer = ctx.Process(target=_peer, args=(child, self.server.name, self.bpm, self.jitter, self.seed),
                                    daemon=True)
            self.peer.start()
            self._ask("connect", self.audio.midiport.name, self.audio.inport.name, self.audio.outport.name)
            self._wait(lambda: self.clock.running, 10.0, "the MIDI clock did not start")
            self.zero = None
            self._wait(lambda: self._zero() is not None, 5.0, "the JACK transport did not roll")
            self.stop = threading.Event()
            self.worker = threading.Thread(target=self.engine.run, args=(self.stop,), daemon=True)
            self.worker.start()
            self._wait(lambda: bool(self.engine._fallbacks), 30.0, "the engine did not get ready")
        except BaseException:
            self.__exit__()
            raise
        return self

    def lateness(self) -> dict[str, tuple[int, int]]:
        """Each client's (late starts, slow cycles) so far: who the xruns came from."""
        return {"cypher": self.audio.lateness(), **self._ask("lateness")}

    def _applied(self, address, values) -> None:
        self.osc_applied += 1

    def _zero(self):
        self.zero = self._ask("zero")
        return self.zero

    def __exit__(self, *exc) -> None:
        if getattr(self, "stop", None):
            self.stop.set()
            self.worker.join(timeout=2)
        if getattr(self, "peer", None) is not None and self.peer.is_alive():
            try:
                self._ask("stop")
            except RigError:
                pass
            self.peer.join(timeout=5)
            if self.peer.is_alive():
                self.peer.kill()
        if getattr(self, "audio", None) is not None:
            self.audio.close()
        if self.osc is not None:
            self.osc.close()
        self.server.__exit__()

    @staticmethod
    def _wait(done, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not done():
            if time.monotonic() > deadline:
                raise RigError(what)
            time.sleep(0.01)

    def true_frame(self, beat: float) -> float:
        """The transport's frame for `beat`: the host's grid."""
        return self.zero + beat * 60.0 / self.bpm * self.sr

    def _send_osc(self, address: str, *args) -> None:
        import socket

        from pythonosc.osc_message_builder import OscMessageBuilder

        b = OscMessageBuilder(address=address)
        for a in args:
            b.add_arg(a)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(b.build().dgram, ("127.0.0.1", self.osc.port))

    def recording(self, start_frame: int, n: int) -> np.ndarray | None:
        """cypher's output as recorded, frames [start_frame, start_frame + n) (waits for them)."""
        self._wait(lambda: self.audio.now_frame() > start_frame + n + 2 * self.period, 60.0, "the recording stalled")
        return self._ask("recording", start_frame, n)

    def _play_verse(self, verse: str, voice: str) -> tuple[float, int]:
        """The opponent raps `verse` from the next downbeat but one (in battle mode, the next
        of their bars after it); returns (the beat the answer is due on, the frame its voice ends)."""
        bpb = 4
        take = rap(verse, self.bpm, self.flow, load_voice(voice), load_fx("dry"), sr=self.sr,
                   start_beat=PREROLL_BEATS, tail_s=0.0)
        clip = take.dry / (np.abs(take.dry).max() + 1e-9) * 0.5
        now_beat = (self.audio.now_frame() - self.zero) / self.sr * self.bpm / 60
        first = (int(now_beat // bpb) + 2) * bpb
        while self.mode == "battle" and (first // bpb) % (2 * self.turn_bars) >= self.turn_bars:
            first += bpb  # their turns start at bars 0, 2n, 4n, ...
        start = int(round(self.true_frame(first - PREROLL_BEATS)))
        if self.given_text and self.osc is not None:  # as an external recogniser sends them
            self._send_osc("/cypher/opponent/text", verse)
            self._wait(lambda: self.engine.controls.opponent_text == verse, 5.0, "the words sent over OSC did not arrive")
        elif self.given_text:
            self.engine.controls.opponent_text = verse  # as an external recogniser would send it over OSC
        self._ask("play", start, clip)
        due = first + (self.turn_bars + self.gap_bars) * bpb
        return due, start + max(s.end_sample for s in take.performance.syllables)

    def _answer(self, downbeat: float):
        """The turn answered on `downbeat`, or after it if the verse ran on past it (waits for it)."""
        def found():
            return next((t for t in self.engine.turns if t.downbeat_beat >= downbeat), None)

        self._wait(lambda: found() is not None, 60.0, "cypher did not answer the verse")
        return found()

    def stop_mid_answer(self, verse: str, after_beats: float) -> tuple[object, int]:
        """Play `verse`, then stop the host's transport `after_beats` into the answer;
        returns (the turn, once it is over; the frame at which Stop was asked)."""
        turn = self._answer(self._play_verse(verse, "rival")[0])
        stop_at = self.true_frame(turn.downbeat_beat + after_beats)
        self._wait(lambda: self.audio.now_frame() >= stop_at, 30.0, "the answer did not get that far")
        stop_frame = self._ask("transport_stop")
        self._wait(lambda: self.engine.state == "idle", 30.0, "the engine did not return to idle")
        self._wait(lambda: self.audio.now_frame() > turn.end_frame + self.period * 2, 10.0, "the answer did not end")
        return turn, stop_frame

    def turn(self, verse: str, voice: str = "rival") -> TurnResult:
        """The opponent raps `verse` from the next downbeat but one; wait for the answer to play out."""
        misses = self.engine.misses
        due, voice_end = self._play_verse(verse, voice)
        turn = self._answer(due)
        self._wait(lambda: self.audio.now_frame() > turn.end_frame + self.period * 2, 60.0, "the answer did not play out")
        # done answering (in battle mode "idle" lasts one step: their turn begins at once)
        self._wait(lambda: self.engine.state != "responding", 10.0, "the engine did not finish answering")
        queued = None if turn.queued_frame is None else (turn.queued_frame - voice_end) / self.sr * 1000
        errors, exact = [], False
        if turn.first_bar is not None:  # the written first bar, as it was queued
            perf = turn.first_bar.performance
            errors = [(turn.start_frame + s.attack_sample
                       - self.true_frame(turn.downbeat_beat - PREROLL_BEATS + float(s.beat))) / self.sr * 1000
                      for s in perf.syllables]
            want = turn.first_bar.wet[: 3 * int(60 / self.bpm * self.sr)]
            got = self.recording(turn.start_frame, len(want))
            if got is not None:
                exact = bool(np.max(np.abs(got - want)) < 1e-6) and bool(np.max(np.abs(want)) > 0.01)
        return TurnResult(queued, errors, exact, self.engine.misses - misses, turn.written_ahead_kept,
                          " / ".join(b for b, _ in turn.bars), turn.heard_text.replace("\n", " / "))


def _rss_bytes() -> int:
    """This process's resident memory (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def bench_live(turns: int = 50, bpm: float = 120.0, seed: int = 0, osc_flood: float = 0.0,
               soak_minutes: float | None = None, recognize: bool = False, progress=None) -> dict:
    """`turns` battle turns in the rig, or as many as fit in `soak_minutes`.

    `osc_flood`: messages a second sent to cypher's OSC port throughout (0: none, and
    the words are handed over directly rather than over OSC). `recognize`: the words
    come from cypher's own recogniser instead (none are given). A soak also reports drift
    (how far the signed onset error's median moved from the first minute to the last) and the growth
    of cypher's resident memory from the end of the first minute to the end."""
    import contextlib

    from models_onnx.corpus import load

    held = load().heldout()
    results, times_s, rss = [], [], []
    with LiveRig(bpm=bpm, turn_bars=1, seed=seed, osc=osc_flood > 0, given_text=not recognize) as rig:
        with OscFlood(rig.osc.port, osc_flood) if osc_flood > 0 else contextlib.nullcontext(), StallProbe() as probe:
            xruns0, gaps0, applied0, t0 = rig.audio.xruns, rig.audio.ring.gaps, rig.osc_applied, time.monotonic()
            late0 = rig.lateness()
            k = 0
            while (k < turns) if soak_minutes is None else (time.monotonic() - t0 < soak_minutes * 60):
                verse = held[k % len(held)].opponent[0]
                results.append(rig.turn(verse, voice=("rival", "clear")[k % 2]))
                times_s.append(time.monotonic() - t0)
                rss.append(_rss_bytes())
                k += 1
                if progress:
                    if soak_minutes is None:
                        progress(k, turns)
                    else:
                        progress(min(round(times_s[-1]), round(soak_minutes * 60)), round(soak_minutes * 60))
            xruns, gaps = rig.audio.xruns - xruns0, rig.audio.ring.gaps - gaps0
            late = {name: [a - b for a, b in zip(counts, late0[name])] for name, counts in rig.lateness().items()}
            xrun_times = list(rig.audio.xrun_times)[len(rig.audio.xrun_times) - xruns:] if xruns else []
            kept = sum(r.written_ahead_kept for r in results)
            applied_per_s = (rig.osc_applied - applied0) / (time.monotonic() - t0)
        callback = "C" if rig.audio.rt is not None else "Python"
    queued = [r.queued_ms for r in results if r.queued_ms is not None]
    errors = np.abs([e for r in results for e in r.onset_errors_ms])
    metrics = {
        "turns": len(results),
        "queued_ms_p50": round(float(np.median(queued)), 1) if queued else None,
        "queued_ms_p95": round(float(np.percentile(queued, 95)), 1) if queued else None,
        "onset_error_ms_median": round(float(np.median(errors)), 3),
        "onset_error_ms_max": round(float(errors.max()), 3),
        "played_exactly": sum(r.played_exactly for r in results),
        "misses": sum(r.misses for r in results),
        "xruns": xruns,
        "xruns_not_machine": sum(not probe.explains(t) for t in xrun_times),
        # wake-ups of the stall probe (realtime, above JACK) more than 5 ms late: the machine stopped
        "machine_stalls": len(probe.stalls),
        "machine_stall_ms_max": round(max((late for _, late in probe.stalls), default=0.0) * 1e3, 1),
        # per client: [cycles it began after half the period, cycles its own work took more than half]
        "xrun_suspects": {name: v for name, v in late.items() if any(v)},
        "input_gaps": gaps,
        "written_ahead_kept": kept,
    }
    targets_table = dict(TARGETS)
    if osc_flood > 0:
        metrics["osc_applied_per_s"] = round(applied_per_s)
    if soak_minutes is not None:
        t = np.array(times_s)
        first = [e for r, ti in zip(results, t) if ti <= 60 for e in r.onset_errors_ms]
        last = [e for r, ti in zip(results, t) if ti > t[-1] - 60 for e in r.onset_errors_ms]
        warm = rss[int(np.searchsorted(t, 60.0))] if t[-1] > 60 else rss[0]
        metrics.update({
            "minutes": round(float(t[-1]) / 60, 1),
            "drift_ms": round(abs(float(np.median(last) - np.median(first))), 3) if first and last else None,
            "memory_mb_start": round(warm / 2**20, 1),
            "memory_mb_end": round(rss[-1] / 2**20, 1),
            "memory_growth_percent": round(100 * (rss[-1] - warm) / warm, 2),
        })
        targets_table.update(SOAK_TARGETS)
    targets = check_targets(metrics, targets_table)
    return {"bench": "live", "setup": {"bpm": bpm, "turn_bars": 1, "sr": 48000, "period": 512, "clock_jitter_percent": 5.0,
                                       "graph": "jackd -R -S -d dummy; our MIDI clock master on the transport grid",
                                       "process_callback": callback, "osc_flood_per_s": osc_flood,
                                       "soak_minutes": soak_minutes,
                                       "stall_probe": "realtime" if probe.realtime else "not realtime (no permission)",
                                       "words": "recognised" if recognize else "given (as over OSC)"},
            "metrics": metrics, "targets": targets,
            "turns": [{"heard": r.heard, "answer": r.text, "queued_ms": r.queued_ms} for r in results]}
