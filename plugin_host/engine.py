"""The live turn engine: listen to the opponent, answer on the next downbeat, never miss it.

States: idle -> opponent (their verse is heard) -> responding (our bars are queued)
-> idle. A turn is answered when the verse ends past the turn's last beat (auto), when
the bar grid says it is ours (battle: turns alternate every turn_bars, words or not),
on OSC `/cypher/turn/respond`, or on a MIDI note (a foot switch). Everything runs in the
engine's own thread; the audio callback only plays the clips it is handed.

Timing: the clock maps host time (JACK frame time / rate) to beats. The first bar of
the answer is aimed at the first downbeat at least `lead_s` away. A fallback bar
(pre-rendered from the corpus, rhyming with the opponent's last bar where one does)
is queued for that downbeat at once; the written bar replaces it only if it is
ready `guard_s` before the downbeat. A late writer therefore costs words, never the
beat, and the miss is reported.
"""
from __future__ import annotations

import gc
import logging
import math
import random
import threading
from collections import deque
from dataclasses import dataclass, field, replace

import numpy as np

from dsp import phonetics
from dsp.listener import ListenSettings, Listener
from dsp.syllables import Grid
from plugin_host.clock import Clock, InternalClock
from plugin_host.live_preset import MODES, ON_CLOCK_STOP
from plugin_host.midi_parse import Message, drive_clock
from plugin_host.errors import UsageError
from plugin_host.memory import release_free_memory
from plugin_host.rap import load_flow, load_fx, load_voice, rap

log = logging.getLogger("cypher.engine")
PREROLL_BEATS = 1  # each clip starts a beat early: a syllable's consonants come before its attack
N_FALLBACKS = 12
SPECULATE_BEATS = 2.0  # write the answer this long before the turn ends
RESPECULATE_BEATS = 1.5  # and again this long before, if the words changed meanwhile (the recogniser caught up)
RESPECULATE_MIN_S = 0.15  # the second look writes only if its bar's clip starts at least this far ahead
END_SILENCE_S = 0.03  # near the turn's end, this much silence ends the verse
BATTLE_DECIDE_S = 0.1  # battle mode: the answer is decided this long before `lead_s` ahead of the turn's end
MAX_DRIFT_MS = 1.0  # a bar written ahead is kept if its tempo puts its last syllable this close to the grid
CUT_FADE_S = 0.005  # a clip cut short fades out over this long (no click)
TURNS_KEPT = 4  # a night of turns must not grow memory (each holds a bar of audio)


@dataclass(frozen=True)
class EngineSettings:
    turn_bars: int = 4  # the opponent's turn
    answer_bars: int = 4
    lead_s: float = 0.05  # aim for a downbeat at least this far ahead, else the bar after
    guard_s: float = 0.03  # a written bar replaces the fallback no later than this before it plays
    mode: str = "auto"  # auto: answer when the verse ends; battle: alternate every turn_bars; manual: on a trigger
    input_latency_ms: float = 0.0  # latency the engine cannot see, on the way in
    output_latency_ms: float = 0.0  # and on the way out
    speculate: bool = True  # write the answer during the turn's last beats
    on_clock_stop: str = "stop"  # the host stops mid-answer: "stop" now, or "finish-bar" in progress
    gap_bars: int = 0  # answer on the next downbeat (0) or leave this many bars' breath first (auto, manual)
    seed: int = 0

    @property
    def auto(self) -> bool:
        return self.mode != "manual"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if not 0 <= self.gap_bars <= 4 or (self.gap_bars and self.mode == "battle"):
            raise ValueError(f"gap_bars must be 0-4 (0 in battle mode, whose grid sets the turns), got {self.gap_bars}")
        if self.on_clock_stop not in ON_CLOCK_STOP:
            raise ValueError(f"on_clock_stop must be one of {', '.join(ON_CLOCK_STOP)}, got {self.on_clock_stop!r}")


@dataclass(frozen=True)
class _Spec:
    """An answer written ahead, during the opponent's last beats."""

    opponent: list
    texts: list = field(default_factory=list)
    take: object = None
    slot: int | None = None  # its first bar, queued for `downbeat`
    downbeat: float | None = None
    queued_frame: int | None = None
    start_frame: int | None = None
    again: bool = False  # the second look, a beat before the end, has been taken


@dataclass
class Turn:
    """One answered turn, for the log, the bench and OSC."""

    trigger: str  # auto, battle, osc, midi
    verse_end_frame: int | None
    decided_frame: int
    downbeat_beat: float
    start_frame: int  # where the first bar's clip starts (a beat before the downbeat)
    queued_frame: int | None = None  # when the written first bar was in place
    fallback_bars: int = 0
    late_ms: list[float] = field(default_factory=list)
    bars: list[tuple[str, float]] = field(default_factory=list)  # (text, start beat)
    heard_text: str = ""
    end_frame: int = 0
    first_bar: object = None  # the written first bar's Take, as queued (for checks)
    slots: list[tuple[int, int]] = field(default_factory=list)  # (schedule slot, start frame) per bar
    cut_frame: int | None = None  # the clock stopped: nothing of the answer sounds from here
    written_ahead_kept: bool = False  # the words changed at the end, the rewrite was late: the early bar played


class Engine:
    def __init__(self, audio, clock: Clock, comeback, flow, voice, fx, style, settings: EngineSettings = EngineSettings(),
                 osc=None, listen: ListenSettings = ListenSettings(), controls=None) -> None:
        self.audio, self.clock, self.comeback = audio, clock, comeback
        self.flow, self.voice, self.fx, self.style = flow, voice, fx, style
        self.s, self.osc, self.listen_settings = settings, osc, listen
        from plugin_host.osc import Controls

        # what OSC and MIDI set (their values name the voice, flow and fx presets to use)
        self.controls = controls or (osc.controls if osc is not None else Controls())
        self.sr = audio.sr
        self.state = "idle"
        self.turns: deque[Turn] = deque(maxlen=TURNS_KEPT)  # the latest (each holds its first bar's audio)
        self.turn_count = 0
        self.misses = 0
        self._pending: list[str] = []  # triggers from MIDI, handled in the engine thread
        self._listener = self._new_listener()
        self._turn_end_beat: float | None = None
        self._spec = None  # (opponent bars, answer texts, first bar's take) written ahead
        self._current: Turn | None = None
        self._fallbacks: list[tuple[str, str, np.ndarray]] = []
        self._fallback_bpm: float | None = None
        self._rendering: threading.Thread | None = None  # fallback bars rendered again, off the engine's loop
        self._rng = random.Random(settings.seed)
        self._bars_seen_beat = -1.0
        self._clock_was_running = clock.running
        self._battle_zero_bar = 0  # battle mode: their turns start at this bar, and every 2 * turn_bars after
        # the preset names in use; None: take the controls' on the first idle step (after a
        # reconnection they may have moved on from the presets this engine was built with)
        self._names: dict[str, str | None] = {"voice": None, "flow": None, "fx": None}

    # -- time --------------------------------------------------------------------------
    def now_s(self) -> float:
        return self.audio.now_frame() / self.sr

    def frame_of_beat(self, beat: float) -> int:
        return int(round(self.clock.time_of(beat) * self.sr - self.s.output_latency_ms * self.sr / 1000))

    def _stream_to_host_s(self, t_stream: float) -> float:
        first = (self.audio.ring.first_frame or 0) + self._listener_start
        return first / self.sr + t_stream - self.s.input_latency_ms / 1000

    def _grid(self) -> Grid | None:
        if not self.clock.running:
            return None
        first = (self.audio.ring.first_frame or 0) + self._listener_start
        beat0_stream = self.clock.time_of(0.0) - first / self.sr + self.s.input_latency_ms / 1000
        return Grid(self.clock.bpm, beat0_stream, int(self.clock.meter.beats_per_bar))

    def _new_listener(self) -> Listener:
        """A fresh listener that hears the ring from now on (not our own turn before it)."""
        self._read_pos = self._listener_start = self.audio.ring.written
        return Listener(self.sr, None, self.listen_settings)

    # -- inputs --------------------------------------------------------------------------
    def on_midi(self, msg: Message) -> None:
        """From the audio thread: clock messages drive the clock; a note is a trigger."""
        if msg.kind in ("clock", "start", "continue", "stop", "songpos"):
            if hasattr(self.clock, "tick"):
                drive_clock(self.clock, msg)
        elif msg.kind == "note_on":
            self._pending.append("midi")

    def _commands(self) -> list[str]:
        out = []
        while self._pending:
            out.append(self._pending.pop(0))
        cmds = self.controls.commands
        while cmds:
            out.append(cmds.pop(0))
        return out

    # -- the loop ------------------------------------------------------------------------
    def run(self, stop: threading.Event, period_s: float = 0.005) -> None:
        # A full garbage collection walks every object (the model, the corpus index) while
        # holding Python's lock, long enough to make the audio callback miss its cycle:
        # what is loaded now stays out of collections.
        gc.collect()
        gc.freeze()
        try:
            while not stop.is_set() and not self.audio.server_gone:
                self.step()
                stop.wait(period_s)  # the engine thread may wait; timing lives in frame numbers
        finally:
            gc.unfreeze()  # collectable again once stopped (what the engine held can be freed)

    def step(self) -> None:
        self.clock.poll()  # Link: the session's tempo and phase, on JACK's frame time
        for cmd in self._commands():
            self._command(cmd)
        # The clock's state, read once: the MIDI thread may change it while this step runs
        # (a Stop during a long write is then seen on the next step, not lost).
        running = self.clock.running
        stopped, self._clock_was_running = self._clock_was_running and not running, running
        if stopped and self.state == "responding" and self._current is not None:
            self._clock_stopped(self._current)
        elif stopped and self.state == "opponent":  # no downbeat is coming to answer on
            self._drop_spec()
            self._turn_end_beat = None
            self._listener = self._new_listener()
            self._set_state("idle")
        if self.state == "idle":
            self._take_controls()
        block, self._read_pos = self.audio.ring.read(self._read_pos)
        self._listener.grid = self._grid()
        if len(block) and self.state != "responding":
            self._listener.push(block)
        heard_state = self._listener.state
        battle = self.s.mode == "battle"
        if battle and self.state == "idle" and running:
            self._battle_turn()
        elif not battle and self.state == "idle" and heard_state == "verse":
            self._set_state("opponent")
            start = self._stream_to_host_s(self._listener.heard().verse_start_s)
            bpb = float(self.clock.meter.beats_per_bar)
            first_bar = round(self.clock.beat_at(start) / bpb) * bpb  # a pickup belongs to the bar after it
            self._turn_end_beat = first_bar + self.s.turn_bars * bpb
            log.info("verse from beat %.2f: the turn ends at beat %g", self.clock.beat_at(start), self._turn_end_beat)
        elif self.state == "opponent" and self._turn_end_beat is not None and running:
            now_beat = self.clock.beat_at(self.now_s())
            if self.s.speculate and self._spec is None and now_beat >= self._turn_end_beat - SPECULATE_BEATS:
                self._speculate()
            elif (self.s.speculate and self._spec is not None and not self._spec.again
                  and now_beat >= self._turn_end_beat - RESPECULATE_BEATS):
                self._speculate(again=True)
            silence_s = self._listener.silence_s
            # The verse is over when the voice stops near the turn's end (a short silence is
            # enough there), or has stopped by the time the turn gets there; a rest inside
            # the turn is not the end.
            if self.s.auto and silence_s is not None and (
                    (now_beat >= self._turn_end_beat - 0.5 and silence_s >= END_SILENCE_S)
                    or heard_state == "ended" and self._heard_end_beat() >= self._turn_end_beat - 0.5):
                end_host = self.now_s() - silence_s
                self._respond("auto", int(round(end_host * self.sr)))
            elif battle and self.clock.time_of(self._turn_end_beat) - self.now_s() <= self.s.lead_s + BATTLE_DECIDE_S:
                self._respond("battle", None)  # our turn comes, words or not
        elif self.state == "responding" and self._current is not None:
            if self.audio.now_frame() >= self._current.end_frame:
                self._listener = self._new_listener()  # our own turn is not the opponent's
                self._set_state("idle")
                release_free_memory()  # the turn's buffers are freed; keep the night's memory flat
        self._refresh_fallbacks()

    def _drop_spec(self) -> None:
        """Forget the answer written ahead, and take its bar out of the schedule."""
        if self._spec is not None and self._spec.slot is not None:
            self.audio.schedule.remove(self._spec.slot)
        self._spec = None

    def _take_controls(self) -> None:
        """Between turns: what OSC and MIDI set since (voice, flow, fx, latency offsets, the
        internal clock's tempo) steers the next turn. A preset name that does not load is
        logged and the current one kept."""
        c = self.controls
        for kind, loader in (("voice", load_voice), ("flow", load_flow), ("fx", load_fx)):
            name = getattr(c, kind)
            if name == self._names[kind]:
                continue
            self._names[kind] = name
            try:
                preset = loader(name)
            except UsageError as e:
                log.warning("%s: keeping the current %s", e, kind)
                continue
            setattr(self, kind, preset)
            if kind == "flow":
                self.comeback.flow = preset
            self._fallback_bpm = None  # the fallback bars are rendered again with it
            log.info("%s is now %s", kind, name)
        if (c.input_latency_ms, c.output_latency_ms) != (self.s.input_latency_ms, self.s.output_latency_ms):
            self.s = replace(self.s, input_latency_ms=c.input_latency_ms, output_latency_ms=c.output_latency_ms)
        if isinstance(self.clock, InternalClock) and self.clock.running and c.bpm != self.clock.bpm:
            self.clock.set_bpm(c.bpm, self.now_s())

    def _battle_turn(self) -> None:
        """Battle mode, idle: if the grid says it is their turn, listen until it ends. Their
        turns start at bars zero, 2n, 4n, ... (n = turn_bars) counted from
        `_battle_zero_bar`; ours fill the bars between."""
        bpb = float(self.clock.meter.beats_per_bar)
        n = self.s.turn_bars
        bar = math.floor(self.clock.beat_at(self.now_s()) / bpb + 1e-9)
        phase = (bar - self._battle_zero_bar) % (2 * n)
        if phase < n:
            self._turn_end_beat = (bar - phase + n) * bpb
            self._set_state("opponent")
            log.info("battle: their turn until beat %g", self._turn_end_beat)

    def _clock_stopped(self, turn: Turn) -> None:
        """The host stopped in the middle of our answer: silence it a period from now (the
        earliest frame not yet mixed), or let the bar under way finish and drop the rest."""
        cut = self.audio.now_frame() + self.audio.blocksize
        fade = int(CUT_FADE_S * self.sr)
        end = cut + fade
        if self.s.on_clock_stop == "finish-bar":
            preroll = int(round(PREROLL_BEATS * 60 / self.clock.bpm * self.sr))
            started = [k for k, (_, start) in enumerate(turn.slots) if start + preroll <= cut]
            if started:  # the bar whose downbeat has passed plays out; later ones stop here
                slot, start = turn.slots[started[-1]]
                entry = self.audio.schedule.slots[slot]
                if entry is not None and entry[0] == start:
                    end = max(end, start + len(entry[1]))
                turn.slots = [s for k, s in enumerate(turn.slots) if k != started[-1]]
        for slot, start in turn.slots:
            entry = self.audio.schedule.slots[slot]
            if entry is None or entry[0] != start:
                continue  # played out already
            if start >= cut:
                self.audio.schedule.remove(slot)
            else:
                clip = entry[1][: cut - start + fade].copy()
                clip[-fade:] *= np.linspace(1.0, 0.0, len(clip[-fade:]), dtype=np.float32)
                self.audio.schedule.replace(slot, start, clip)
        turn.cut_frame, turn.end_frame = cut, end
        log.info("the clock stopped mid-answer: %s", "the bar under way finishes" if self.s.on_clock_stop == "finish-bar"
                 else "silent from now")

    def _heard_end_beat(self) -> float:
        return self.clock.beat_at(self._stream_to_host_s(self._listener.heard().verse_end_s))

    def _speculate(self, again: bool = False) -> None:
        """In the turn's last beats: write the answer from the words known now, render its
        first bar and queue it for the downbeat that ends the turn. The verse end then only
        confirms it (or, if the words changed, it is rewritten). `again`: a beat later, if
        the words changed since (the recogniser caught up); the new bar takes the queued
        one's place only if it is ready in time."""
        opponent = self._opponent_bars(self._listener.heard())
        old = self._spec
        downbeat = self._turn_end_beat + self.s.gap_bars * float(self.clock.meter.beats_per_bar)
        start = self.frame_of_beat(downbeat - PREROLL_BEATS)
        too_late = again and start - self.audio.now_frame() < RESPECULATE_MIN_S * self.sr  # no time to write
        if not opponent or too_late or (again and old is not None and old.opponent == opponent):
            self._spec = replace(old, again=True) if old is not None else _Spec(opponent, again=again)
            return
        written = self.comeback.write(opponent, self.s.answer_bars, self.style, seed=self._rng.randrange(1 << 30))
        texts = [b["text"] for b in written["bars"]]
        take = self._take(texts[0])
        if self.audio.now_frame() + self.s.guard_s * self.sr > start:  # too late to queue: keep what is there
            self._spec = replace(old, again=True) if old is not None else _Spec([], again=again)
            return
        slot = None
        if old is not None and old.slot is not None:
            self.audio.schedule.replace(old.slot, start, take.wet)
            slot = old.slot
        elif self.s.auto:
            slot = self.audio.schedule.add(start, take.wet)
        self._spec = _Spec(opponent, texts, take, slot, downbeat, self.audio.now_frame(), start, again)

    def _command(self, cmd: str) -> None:
        if cmd in ("turn/respond", "midi") and self.state != "responding":
            self._respond("osc" if cmd == "turn/respond" else "midi", None)
        elif cmd == "turn/opponent":
            self._drop_spec()
            self.audio.schedule.clear(self.audio.now_frame())
            self._listener = self._new_listener()
            self._set_state("opponent")
            bpb = float(self.clock.meter.beats_per_bar)
            self._turn_end_beat = self.clock.next_downbeat(self.now_s()) + self.s.turn_bars * bpb - bpb
            # battle mode counts its turns from here on
            self._battle_zero_bar = int(round(self._turn_end_beat / bpb)) - self.s.turn_bars
        elif cmd == "turn/stop":
            self._drop_spec()
            self.audio.schedule.clear(self.audio.now_frame())
            self._listener = self._new_listener()
            self._set_state("idle")
        elif cmd == "transport/start" and isinstance(self.clock, InternalClock):
            self.clock.start(self.now_s(), self.clock.next_downbeat(self.now_s()) if self.clock.running else 0.0)
        elif cmd == "transport/stop" and isinstance(self.clock, InternalClock):
            self.clock.stop(self.now_s())

    def _set_state(self, state: str) -> None:
        self.state = state
        if self.osc is not None:
            self.osc.set_state(state)
        log.info("state %s", state)

    # -- answering -----------------------------------------------------------------------
    def _respond(self, trigger: str, verse_end_frame: int | None) -> None:
        decided = self.audio.now_frame()
        if not self.clock.running:
            log.warning("the clock is not running: no downbeat to answer on")
            return
        self._refresh_fallbacks(force=not self._fallbacks)
        bpb = float(self.clock.meter.beats_per_bar)
        heard = self._listener.finish() if self._listener.state == "verse" else self._listener.heard()
        target = self.clock.next_downbeat(decided / self.sr + self.s.lead_s) + self.s.gap_bars * bpb
        turn = Turn(trigger, verse_end_frame, decided, target, self.frame_of_beat(target - PREROLL_BEATS),
                    heard_text=heard.text)
        self._current = turn
        self._set_state("responding")
        opponent = self._opponent_bars(heard)
        if not opponent:
            log.warning("no words were heard: the answer is fallback bars")
        spec, self._spec = self._spec, None
        if (spec is not None and spec.slot is not None and spec.downbeat is not None and spec.downbeat < target
                and self.clock.time_of(spec.downbeat) > decided / self.sr):
            # The bar written ahead is in place already (its clip started a beat early): the
            # lead a new clip needs does not apply, and its downbeat is still to come.
            target = spec.downbeat
            turn.downbeat_beat, turn.start_frame = target, spec.start_frame
        aimed = bool(spec is not None and spec.slot is not None and spec.texts and spec.downbeat == target
                     and self._drift_ms(spec.take) <= MAX_DRIFT_MS)
        ready = aimed and spec.opponent == opponent
        if spec is not None and spec.slot is not None and not aimed:
            self.audio.schedule.remove(spec.slot)  # aimed at another downbeat, or the tempo moved
        # 1. a fallback for every bar not already in place: the beat is covered whatever happens next
        last_rhyme = heard.end_rhymes[-1].rhyme_key if heard.end_rhymes else None
        slots = []
        for b in range(self.s.answer_bars):
            start = self.frame_of_beat(target + b * bpb - PREROLL_BEATS)
            if b == 0 and aimed:
                # Where it was queued, on the clock of that moment. If the words changed at the
                # end, the bar written ahead (from all but the last words) is bar 1's stand-in:
                # a better answer than a corpus bar if the rewrite is late.
                turn.start_frame = start = spec.start_frame
                slots.append((spec.slot, start, None if ready else spec.texts[0]))
                continue
            text, clip = self._fallback(last_rhyme)
            slots.append((self.audio.schedule.add(start, clip), start, text))
        turn.end_frame = slots[-1][1] + int(round((bpb + PREROLL_BEATS) * 60 / self.clock.bpm * self.sr))
        turn.slots = [(slot, start) for slot, start, _ in slots]
        # 2. write (unless written while they rapped) and render; each bar replaces its fallback if in time
        texts: list[str] = []
        if spec is not None and spec.texts and spec.opponent == opponent:
            texts = spec.texts
        elif opponent:
            written = self.comeback.write(opponent, self.s.answer_bars, self.style, seed=self._rng.randrange(1 << 30))
            texts = [b["text"] for b in written["bars"]]
        for b, (slot, start, fallback_text) in enumerate(slots):
            text, placed = fallback_text, False
            if fallback_text is None:  # queued ahead, during the turn
                text, turn.queued_frame, turn.first_bar = texts[0], spec.queued_frame, spec.take
                placed = True
            elif b < len(texts):
                take = self._take(texts[b])
                late_s = (self.audio.now_frame() + self.s.guard_s * self.sr - start) / self.sr
                if late_s <= 0:
                    self.audio.schedule.replace(slot, start, take.wet)
                    text, placed = texts[b], True
                    if b == 0:
                        turn.queued_frame, turn.first_bar = self.audio.now_frame(), take
                else:
                    turn.late_ms.append(late_s * 1000)
            if not placed and b == 0 and aimed:
                turn.queued_frame, turn.first_bar, turn.written_ahead_kept = spec.queued_frame, spec.take, True
                log.info("the words changed at the verse end and the rewrite was late: the bar written ahead plays")
            elif not placed:
                turn.fallback_bars += 1
                if b < len(texts):  # written, but too late
                    self._miss(b, turn)
            beat = target + b * bpb
            turn.bars.append((text, beat))
            if self.osc is not None:
                self.osc.broadcast("/cypher/line", text, float(beat))
        self.turns.append(turn)
        self.turn_count += 1
        if self.osc is not None:
            ms = (turn.queued_frame - (verse_end_frame or decided)) / self.sr * 1000 if turn.queued_frame else -1.0
            self.osc.broadcast("/cypher/latency", "verse_end_to_queued", float(ms))

    def _miss(self, bar: int, turn: Turn) -> None:
        self.misses += 1
        log.warning("bar %d of the answer was not ready in time: a fallback bar plays", bar + 1)
        if self.osc is not None:
            self.osc.broadcast("/cypher/miss", bar + 1, float(turn.late_ms[-1] if turn.late_ms else 0.0))

    def _opponent_bars(self, heard) -> list[str]:
        given = self.controls.opponent_text  # from an external recogniser: it takes precedence
        if given.strip():
            return [line for line in given.replace(" / ", "\n").splitlines() if line.strip()]
        return [line for line in heard.text.splitlines() if line.strip()]

    def _drift_ms(self, take) -> float:
        """How far a bar rendered at the take's tempo ends up from the clock's grid by its end."""
        bar_s = float(self.clock.meter.beats_per_bar) * 60 / self.clock.bpm
        return abs(take.performance.bpm - self.clock.bpm) / self.clock.bpm * bar_s * 1000

    def _take(self, text: str):
        return rap(text, self.clock.bpm, self.flow, self.voice, self.fx, sr=self.sr,
                   start_beat=PREROLL_BEATS, tail_s=0.3)

    # -- fallbacks ---------------------------------------------------------------------------
    def _refresh_fallbacks(self, force: bool = False) -> None:
        """Bars from the corpus, rendered at the current tempo with the current voice (again
        when either changes). The first set is rendered here (`force`, nothing to play
        otherwise); later ones in a thread of their own, so a new voice or tempo never holds
        up the turn under way: the old set stands until the new one is whole."""
        if not force and (self.state == "responding" or not self.clock.running):
            return
        if self._fallback_bpm is not None and abs(self._fallback_bpm - self.clock.bpm) < 0.5:
            return
        if self._rendering is not None and self._rendering.is_alive():
            return
        self._fallback_bpm = bpm = self.clock.bpm
        job = (bpm, self.flow, self.voice, self.fx)
        if force or not self._fallbacks:
            self._render_fallbacks(*job)
        else:
            self._rendering = threading.Thread(target=self._render_fallbacks, args=job, name="fallbacks", daemon=True)
            self._rendering.start()

    def finish_renders(self, timeout_s: float) -> None:
        """Wait up to `timeout_s` for fallback bars being rendered (before the process exits)."""
        if self._rendering is not None:
            self._rendering.join(timeout=timeout_s)

    def _render_fallbacks(self, bpm: float, flow, voice, fx) -> None:
        self._fallbacks = [(key, bar, rap(bar, bpm, flow, voice, fx, sr=self.sr, start_beat=PREROLL_BEATS,
                                          tail_s=0.3).wet)
                           for key, bar in fallback_bars(flow.capacity, self.s.seed)]  # swapped whole

    def _fallback(self, rhyme_key: str | None) -> tuple[str, np.ndarray]:
        for key, bar, clip in self._fallbacks:
            if key == rhyme_key:
                return bar, clip
        key, bar, clip = self._fallbacks[self._rng.randrange(len(self._fallbacks))]
        return bar, clip

    def status_line(self) -> str:
        pos = self.clock.position(self.now_s()) if self.clock.running else None
        where = f"{pos.bar + 1}.{pos.beat + 1}" if pos else "stopped"
        last = self.turns[-1] if self.turns else None
        lat = ""
        if last and last.queued_frame and last.verse_end_frame:
            lat = f" | last answer queued {1000 * (last.queued_frame - last.verse_end_frame) / self.sr:.0f} ms after the verse"
        return (f"{self.state:10s} | bar {where} | {self.clock.bpm:.1f} BPM | turns {self.turn_count} | "
                f"misses {self.misses} | xruns {self.audio.xruns}{lat}")


def fallback_bars(capacity: int, seed: int = 0, n: int = N_FALLBACKS) -> list[tuple[str, str]]:
    """(rhyme key, bar): n training comebacks that fit a bar of the flow, each ending on another sound."""
    from models_onnx.corpus import load

    bars = [b for e in load().train().exchanges for b in e.comeback]
    picked, keys = [], set()
    for bar in random.Random(seed).sample(bars, min(len(bars), 400)):
        words = [w for w in phonetics.words(bar) if w.syllables]
        if not words or sum(len(w.syllables) for w in words) > capacity:
            continue
        key = " ".join(phonetics.rhyme_key(words[-1]))
        if key not in keys:
            keys.add(key)
            picked.append((key, bar))
        if len(picked) == n:
            break
    return picked
