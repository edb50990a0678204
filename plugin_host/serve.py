"""`cypher serve`: the live engine in a JACK graph, controlled over OSC and MIDI."""
from __future__ import annotations

import logging
import signal
import sys
import threading
import time

from plugin_host.errors import UsageError

STATUS_EVERY_S = 0.5


def build(args):
    """(audio, engine, osc) wired as the flags say; raises UsageError naming the fix."""
    from dsp.listener import ListenSettings
    from plugin_host.audio_io import JackAudio
    from plugin_host.clock import InternalClock, Meter, MidiClockFollower
    from plugin_host.engine import Engine, EngineSettings
    from plugin_host.osc import Controls, OscServer
    from plugin_host.rap import check_bpm, load_flow, load_fx, load_voice
    from plugin_host.write import Comeback, load_style

    check_bpm(args.bpm)
    flow, voice, fx, style = load_flow(args.flow), load_voice(args.voice), load_fx(args.fx), load_style(args.style)
    if not 1 <= args.turn_bars <= 16:
        raise UsageError(f"--turn-bars must be 1-16, got {args.turn_bars}")
    if args.backend == "portaudio":
        jack_flags = [f for f, v in (("--audio-in", args.audio_in), ("--audio-out", args.audio_out),
                                     ("--midi-in", args.midi_in)) if v]
        if jack_flags:
            raise UsageError(f"{', '.join(jack_flags)} name JACK ports; with --backend portaudio choose the device "
                             "with --device (cypher devices lists them)")
        if args.clock == "midi":
            raise UsageError("--clock midi needs --backend jack (MIDI clock beside a PortAudio device is not built); "
                             "use --clock link or --clock internal")
    elif args.device or args.sample_rate:
        raise UsageError("--device and --sample-rate choose a PortAudio device: add --backend portaudio "
                         "(with JACK, the server's rate applies and ports are connected with --audio-in/--audio-out)")
    comeback = Comeback(flow)
    meter = Meter()
    holder = {}
    if args.backend == "portaudio":
        from plugin_host.portaudio_io import DeviceError, PortAudioDuplex

        try:
            audio = PortAudioDuplex(args.device, args.sample_rate, args.block_size)
        except DeviceError as e:
            raise UsageError(str(e)) from None
    else:
        try:
            audio = JackAudio(args.client_name, midi=True, on_midi=lambda m: holder["engine"].on_midi(m))
        except RuntimeError as e:
            raise UsageError(f"{e}. Or use the system's audio device: --backend portaudio --device NAME") from None
    try:
        if args.clock == "link":
            from plugin_host.link_clock import LinkClock

            # Link's timeline, read on the audio's frame time: beats become frames directly
            clock = LinkClock(args.bpm, meter, host_now=lambda: audio.now_frame() / audio.sr)
        else:
            clock = InternalClock(args.bpm, meter) if args.clock == "internal" else MidiClockFollower(meter)
    except RuntimeError as e:  # Link without its extra
        audio.close()
        raise UsageError(str(e)) from None
    try:
        for port in [args.audio_in] if args.audio_in else []:
            audio.connect(port, audio.inport.name)
        for port in args.audio_out or []:
            audio.connect(audio.outport.name, port)
        if args.midi_in:
            audio.connect(args.midi_in, audio.midiport.name)
        controls = Controls(bpm=args.bpm, voice=args.voice, flow=args.flow, fx=args.fx,
                            input_latency_ms=args.input_latency_ms, output_latency_ms=args.output_latency_ms)
        osc = OscServer(controls, port=args.osc_port).start() if args.osc_port else None
    except (RuntimeError, OSError) as e:
        audio.close()
        raise UsageError(str(e)) from None
    settings = EngineSettings(turn_bars=args.turn_bars, answer_bars=args.turn_bars, auto=not args.manual,
                              input_latency_ms=args.input_latency_ms, output_latency_ms=args.output_latency_ms,
                              on_clock_stop=args.on_clock_stop, seed=args.seed)
    engine = holder["engine"] = Engine(audio, clock, comeback, flow, voice, fx, style, settings, osc,
                                       listen=ListenSettings(recognize=not args.no_recognize))
    if args.clock == "internal":
        clock.start(audio.now_frame() / audio.sr)
    return audio, engine, osc


def serve(args) -> int:
    logging.basicConfig(level=logging.WARNING, format="cypher: %(message)s")
    sys.setswitchinterval(0.001)  # the audio callback waits less for the GIL
    audio, engine, osc = build(args)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    worker = threading.Thread(target=engine.run, args=(stop,), name="engine", daemon=True)
    worker.start()
    t_end = time.monotonic() + args.seconds if args.seconds else None
    tty = sys.stderr.isatty()
    try:
        while not stop.is_set():
            if t_end is not None and time.monotonic() >= t_end:
                break
            if audio.server_gone:
                gone = "the JACK server" if args.backend == "jack" else "the audio device"
                print(f"\ncypher: {gone} went away; stopping (bring it back and rerun cypher serve)", file=sys.stderr)
                break
            if tty:
                print("\r" + engine.status_line()[:200], end="", file=sys.stderr, flush=True)
            stop.wait(STATUS_EVERY_S)
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        worker.join(timeout=2.0)
        audio.close()
        if osc is not None:
            osc.close()
        if hasattr(engine.clock, "close"):  # leave the Link session
            engine.clock.close()
    print(("\n" if tty else "") + "cypher serve: " + engine.status_line(), file=sys.stderr)
    return 1 if audio.server_gone else 0
