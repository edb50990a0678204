"""`cypher serve`: the live engine in a JACK graph (or on a PortAudio device), controlled
over OSC and MIDI. If the server or device goes away, it says so and connects again
when it is back; what is loaded (presets, the writer, OSC) stays."""
from __future__ import annotations

import gc
import logging
import signal
import sys
import threading
import time
from dataclasses import dataclass

from plugin_host.errors import UsageError

STATUS_EVERY_S = 0.5


RETRY_S = 2.0  # how often to look for the server again once it went away


@dataclass
class Loaded:
    """What outlives a connection to the audio: presets, the writer, OSC, the settings."""

    flow: object
    voice: object
    fx: object
    style: object
    comeback: object
    osc: object
    settings: object
    listen: object
    controls: object  # what OSC and MIDI set; outlives a reconnection


def load(args) -> Loaded:
    """Check the flags and load everything but the audio; raises UsageError naming the fix."""
    from dsp.listener import ListenSettings
    from plugin_host.engine import EngineSettings
    from plugin_host.live_preset import load_live_preset
    from plugin_host.osc import Controls, OscServer
    from plugin_host.rap import check_bpm, load_flow, load_fx, load_voice
    from plugin_host.write import Comeback, load_style

    check_bpm(args.bpm)
    preset = load_live_preset(args.preset)
    if args.manual:
        if args.mode not in (None, "manual"):
            raise UsageError(f"--manual and --mode {args.mode} disagree: give one of them")
        args.mode = "manual"
    for key in ("mode", "style", "flow", "voice", "fx", "turn_bars", "on_clock_stop", "gap_bars", "input_latency_ms",
                "output_latency_ms"):
        if getattr(args, key) is None:  # not given: the preset's
            setattr(args, key, getattr(preset, key))
    flow, voice, fx, style = load_flow(args.flow), load_voice(args.voice), load_fx(args.fx), load_style(args.style)
    if not 1 <= args.turn_bars <= 16:
        raise UsageError(f"--turn-bars must be 1-16, got {args.turn_bars}")
    if not 0 <= args.gap_bars <= 4 or (args.gap_bars and args.mode == "battle"):
        raise UsageError(f"--gap-bars must be 0-4, and 0 in battle mode (its grid sets the turns); got {args.gap_bars}")
    if args.backend == "portaudio":
        jack_flags = [f for f, v in (("--audio-in", args.audio_in), ("--audio-out", args.audio_out)) if v]
        if jack_flags:
            raise UsageError(f"{', '.join(jack_flags)} name JACK ports; with --backend portaudio choose the device "
                             "with --device (cypher devices lists them)")
    elif args.device or args.sample_rate or args.midi_api:
        raise UsageError("--device, --sample-rate and --midi-api go with a PortAudio device: add --backend portaudio "
                         "(with JACK, the server's rate applies and ports are connected with --audio-in/--audio-out)")
    controls = Controls(bpm=args.bpm, voice=args.voice, flow=args.flow, fx=args.fx,
                        input_latency_ms=args.input_latency_ms, output_latency_ms=args.output_latency_ms)
    try:
        osc = OscServer(controls, port=args.osc_port).start() if args.osc_port else None
    except OSError as e:
        raise UsageError(f"OSC port {args.osc_port}: {e} (choose another with --osc-port, or 0 for none)") from None
    settings = EngineSettings(turn_bars=args.turn_bars, answer_bars=args.turn_bars, mode=args.mode,
                              input_latency_ms=args.input_latency_ms, output_latency_ms=args.output_latency_ms,
                              on_clock_stop=args.on_clock_stop, gap_bars=args.gap_bars, seed=args.seed)
    return Loaded(flow, voice, fx, style, Comeback(flow), osc, settings, ListenSettings(recognize=not args.no_recognize),
                  controls)


def connect(args, loaded: Loaded):
    """(audio, engine): the audio opened and wired as the flags say, a clock on its frame
    time, an engine over both. Raises UsageError naming the fix."""
    from plugin_host.audio_io import JackAudio
    from plugin_host.clock import ARRIVAL_LOST_AFTER_TICKS, InternalClock, Meter, MidiClockFollower
    from plugin_host.engine import Engine

    meter = Meter()
    holder = {}

    def on_midi(msg) -> None:  # MIDI may arrive before the engine exists: it has nobody to go to yet
        engine = holder.get("engine")
        if engine is not None:
            engine.on_midi(msg)
    if args.backend == "portaudio":
        from plugin_host.portaudio_io import DeviceError, PortAudioDuplex

        try:
            wants_midi = args.clock == "midi" or args.midi_in or args.midi_api
            audio = PortAudioDuplex(args.device, args.sample_rate, args.block_size,
                                    on_midi=on_midi if wants_midi else None,
                                    midi_in=args.midi_in, midi_api=args.midi_api)
        except DeviceError as e:
            raise UsageError(str(e)) from None
    else:
        try:
            audio = JackAudio(args.client_name, midi=True, on_midi=on_midi)
        except RuntimeError as e:
            raise UsageError(f"{e}. Or use the system's audio device: --backend portaudio --device NAME") from None
    try:
        if args.clock == "link":
            from plugin_host.link_clock import LinkClock

            # Link's timeline, read on the audio's frame time: beats become frames directly
            clock = LinkClock(args.bpm, meter, host_now=lambda: audio.now_frame() / audio.sr)
        else:
            # MIDI beside a PortAudio device is stamped on arrival (jitter); JACK's is exact
            lost_after = ARRIVAL_LOST_AFTER_TICKS if args.backend == "portaudio" else 2
            clock = (InternalClock(args.bpm, meter) if args.clock == "internal"
                     else MidiClockFollower(meter, lost_after_ticks=lost_after))
        for port in [args.audio_in] if args.audio_in else []:
            audio.connect(port, audio.inport.name)
        for port in args.audio_out or []:
            audio.connect(audio.outport.name, port)
        if args.midi_in and args.backend == "jack":
            audio.connect(args.midi_in, audio.midiport.name)
    except RuntimeError as e:  # a port that is not there; Link without its extra
        audio.close()
        raise UsageError(str(e)) from None
    engine = holder["engine"] = Engine(audio, clock, loaded.comeback, loaded.flow, loaded.voice, loaded.fx,
                                       loaded.style, loaded.settings, loaded.osc, listen=loaded.listen,
                                       controls=loaded.controls)
    if args.clock == "internal":
        clock.start(audio.now_frame() / audio.sr)
    return audio, engine


def _start(engine) -> tuple[threading.Event, threading.Thread]:
    stop = threading.Event()
    worker = threading.Thread(target=engine.run, args=(stop,), name="engine", daemon=True)
    worker.start()
    return stop, worker


def _disconnect(audio, engine, stop, worker) -> None:
    stop.set()
    # Let the engine's threads finish what they are in (a write, a render): a daemon
    # thread frozen inside onnxruntime or espeak at interpreter exit can hang the exit.
    worker.join(timeout=10.0)
    engine.finish_renders(10.0)
    audio.close()
    if hasattr(engine.clock, "close"):  # leave the Link session
        engine.clock.close()


def serve(args) -> int:
    logging.basicConfig(level=logging.WARNING, format="cypher: %(message)s")
    sys.setswitchinterval(0.001)  # a Python audio callback (PortAudio) waits less for the GIL
    loaded = load(args)
    try:
        audio, engine = connect(args, loaded)
    except UsageError:
        if loaded.osc is not None:
            loaded.osc.close()
        raise
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    stop, worker = _start(engine)
    t_end = time.monotonic() + args.seconds if args.seconds else None
    tty = sys.stderr.isatty()
    print("cypher serve: running (Ctrl-C stops)", file=sys.stderr, flush=True)
    gone = "the JACK server" if args.backend == "jack" else "the audio device"
    connected = True
    try:
        while not done.is_set():
            if t_end is not None and time.monotonic() >= t_end:
                break
            if connected and audio.server_gone:
                # the turn in flight is lost; the presets, the writer and OSC stay loaded
                last_status = engine.status_line()
                print(f"\ncypher: {gone} went away; trying again every {RETRY_S:g} s (Ctrl-C stops)",
                      file=sys.stderr, flush=True)
                _disconnect(audio, engine, stop, worker)
                connected = False
            if not connected:
                try:
                    audio, engine = connect(args, loaded)
                except UsageError:
                    done.wait(RETRY_S)
                    continue
                stop, worker = _start(engine)
                connected = True
                print(f"cypher: {gone} is back; connected again", file=sys.stderr, flush=True)
            if tty:
                print("\r" + engine.status_line()[:200], end="", file=sys.stderr, flush=True)
            done.wait(STATUS_EVERY_S)
    except KeyboardInterrupt:
        pass
    finally:
        if connected:
            last_status = engine.status_line()
            _disconnect(audio, engine, stop, worker)
        if loaded.osc is not None:
            loaded.osc.close()
    print(("\n" if tty else "") + "cypher serve: " + last_status, file=sys.stderr)
    # Free the engine (its resamplers) before the interpreter goes: extension types still
    # alive at exit print leak reports.
    audio = engine = loaded = None
    gc.collect()
    return 0 if connected else 1
