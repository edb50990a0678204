"""The `cypher` command line. Exit codes: 0 ok, 2 bad input (one line naming the fix), 1 internal error."""
from __future__ import annotations

import os

# One BLAS thread, set before numpy loads: idle BLAS workers spin on the cores that the
# synth worker, the fx pipeline and (live) the audio callback need. Users may override.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import traceback  # noqa: E402
from pathlib import Path  # noqa: E402

import presets
from plugin_host.errors import UsageError

DESCRIPTION = """\
cypher: a battle-rap partner that raps back on the beat.

commands:
  say TEXT --out F.wav   rap TEXT on the 16th-note grid into a WAV file
  write --opponent T     write a comeback to the opponent's verse and print it
  render --opponent T --out DIR
                         a studio take: mix, stems, timed lyrics, MIDI flow, rhyme picture
  demo                   a full exchange over the built-in beat, written under takes/
  serve                  live: hear the opponent in a JACK graph, answer on the next downbeat
  devices                MIDI ports and audio ports, as the engine sees them
  bench NAME             measure: voice (render time, onset alignment), clock, lyrics, listen, live, pathstar
  train lyrics|pathstar  train the lyric model, or reproduce the path-star failure of
                         next-token prediction (needs the training extra: pip install -e '.[train]')
  export lyrics          install a trained lyric model as the shipped ONNX file

Bars are separated by " / " or newlines. Presets (flows, voices, fx, styles) are the
TOML files under presets/; pass a name or a path to a .toml file.
"""


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line and exit code 2."""

    def error(self, message: str) -> None:  # noqa: D401 - argparse API
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def _number(kind, name: str):
    def parse(text: str):
        try:
            return kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {text!r}") from None

    return parse


def _add_sound_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bpm", type=_number(float, "--bpm"), default=90.0, help="tempo in beats per minute, 40-240 (default 90)")
    p.add_argument("--flow", default="boom-bap", help=f"flow template: {', '.join(presets.names('flows'))} (default boom-bap)")
    p.add_argument("--voice", default="mc", help=f"voice preset: {', '.join(presets.names('voices'))} (default mc)")
    p.add_argument("--fx", default="battle", help=f"effects chain: {', '.join(presets.names('fx'))} (default battle)")


def _add_writing_options(p: argparse.ArgumentParser) -> None:
    """What `write` and `render` share: the opponent's verse and how to answer it."""
    p.add_argument("--opponent", required=True, metavar="TEXT|FILE",
                   help='the opponent\'s verse: text with bars separated by " / " or newlines, a .txt file, or a '
                        'recording (.wav, .flac, .ogg, .aiff) heard by the listener (words recognised, or taken from '
                        'a .txt of the same name beside it)')
    p.add_argument("--bars", type=_number(int, "--bars"), default=4, help="bars to write, 1-16 (default 4)")
    p.add_argument("--style", default="battle", help=f"style preset: {', '.join(presets.names('styles'))} (default battle)")
    p.add_argument("--seed", type=_number(int, "--seed"), default=0, help="same seed, same bars and files (default 0)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="cypher", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true", help="show tracebacks for internal errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    say = sub.add_parser("say", help="rap TEXT on the grid into a WAV file",
                         description="Rap TEXT on the 16th-note grid of a flow and write a WAV (24-bit). "
                                     "Sample 0 of the file is beat 1 of bar 1 and the rap starts after --count-in "
                                     "bars, so the file drops into a DAW on a bar line.")
    say.add_argument("text", metavar="TEXT", help='the lyrics; bars separated by " / " or newlines')
    say.add_argument("--out", required=True, help="WAV file to write (written atomically)")
    _add_sound_options(say)
    say.add_argument("--sr", type=_number(int, "--sr"), default=44100, help="output sample rate in Hz (default 44100)")
    say.add_argument("--count-in", type=_number(int, "--count-in"), default=1, metavar="BARS",
                     help="bars of silence (or beat) before the first bar, so its pickup consonants are "
                          "not cut (default 1; with 0 the first syllable's lead-in is trimmed)")
    say.add_argument("--beat", action="store_true", help="mix the built-in beat under the vocal")
    say.add_argument("--dry", action="store_true", help="write the vocal before the effects chain")
    say.add_argument("--json", action="store_true", help="print every syllable's start in samples, seconds and beats as JSON")

    demo = sub.add_parser("demo", help="perform a battle exchange over the built-in beat into takes/",
                          description="Perform a battle exchange over the built-in beat and write the mix, stems, "
                                      "lyrics with timings and a picture of the flow into takes/demo-*/.")
    demo.add_argument("--out", default="takes", help="folder that receives the demo-* take folder (default takes)")
    demo.add_argument("--verses", default="demo", help="exchange preset under presets/verses (default demo)")
    demo.add_argument("--bpm", type=_number(float, "--bpm"), help="tempo (default: the preset's)")
    demo.add_argument("--seed", type=_number(int, "--seed"), default=0, help="seed for cypher's writing (default 0)")
    demo.add_argument("--json", action="store_true", help="print what was written as JSON")

    bench = sub.add_parser("bench", help="measure speed and timing",
                           description="Measure one part of cypher and report medians and ratios. "
                                       "Exits 0 whether or not targets are met.")
    bench.add_argument("name", choices=["voice", "clock", "lyrics", "listen", "live", "pathstar"],
                       help="voice: 4-bar render time and onset alignment; clock: following jack_midi_clock in a "
                            "JACK dummy graph (needs jackd2, jack-midi-clock); lyrics: the writer on the corpus's held-out "
                            "exchanges, with the human comebacks as a reference row; listen: the listener on synthesised opponent "
                            "verses (syllable onsets, words, anchors, verse end, cost); live: battle turns in a JACK graph against "
                            "the host's grid (needs jackd2); pathstar: path accuracy per objective")
    bench.add_argument("--runs", type=_number(int, "--runs"), default=60, help="voice: timed renders (default 60)")
    bench.add_argument("--size", choices=["tiny", "small", "cpu", "paper"],
                       help="pathstar: size to train and measure (tiny, cpu, paper; default tiny); "
                            "lyrics --ablation: model size (tiny or small; default small)")
    bench.add_argument("--from", dest="from_dir", metavar="DIR",
                       help="pathstar: measure the checkpoints a `cypher train pathstar --out DIR` left, without training")
    bench.add_argument("--out", metavar="DIR", help="pathstar, lyrics --ablation: where the runs go "
                                                     "(default runs/pathstar-SIZE, runs/ablation)")
    bench.add_argument("--device", default="auto", help="pathstar, lyrics --ablation: auto, cpu or cuda (default auto)")
    bench.add_argument("--exchanges", type=_number(int, "--exchanges"), metavar="N",
                       help="lyrics: score only the first N held-out exchanges (default all)")
    bench.add_argument("--turns", type=_number(int, "--turns"), default=50, help="live: turns to play (default 50)")
    bench.add_argument("--osc-flood", type=_number(float, "--osc-flood"), default=0.0, metavar="PER_S",
                       help="live: flood cypher's OSC port with this many messages a second throughout (default 0)")
    bench.add_argument("--recognize", action="store_true",
                       help="live: the opponent's words come from cypher's recogniser, not handed over as over OSC")
    bench.add_argument("--soak-minutes", type=_number(float, "--soak-minutes"), metavar="N",
                       help="live: play turns for N minutes instead of --turns; reports drift and memory growth")
    bench.add_argument("--cases", type=_number(int, "--cases"), default=12,
                       help="listen: synthesised verses to hear (default 12)")
    bench.add_argument("--seed", type=_number(int, "--seed"), default=0, help="lyrics: plan seed; listen: beat and noise seed (default 0)")
    bench.add_argument("--ablation", action="store_true",
                       help="lyrics: train next-token, teacherless and multi-token models, each left-to-right and "
                            "right-to-left, on the same data and budget, and compare them decoded without constraints")
    bench.add_argument("--steps", type=_number(int, "--steps"),
                       help="lyrics --ablation: training steps per variant (default: the small size's)")
    bench.add_argument("--json", action="store_true", help="print one JSON object on stdout")

    write = sub.add_parser("write", help="write a comeback to an opponent's verse and print it",
                           description="Plan and write a comeback: the opponent's anchors and end rhymes are found, "
                                       "each bar is planned (syllables, rhyme, anchor, tactic) and written by the lyric "
                                       "model under those constraints, candidates ranked by the critic.")
    _add_writing_options(write)
    write.add_argument("--flow", default="boom-bap", help="flow the bars are planned for (syllable budgets; default boom-bap)")
    write.add_argument("--json", action="store_true", help="print one JSON object: bars, anchors, latency")

    render = sub.add_parser("render", help="a studio take into a folder: mix, stems, timed lyrics, MIDI flow, picture",
                            description="Write a comeback to the opponent's verse and rap it on the beat into --out: "
                                        "take.wav (mix), vocal_dry.wav, vocal_fx.wav (24-bit at the beat's rate), "
                                        "lyrics.json, lyrics.lrc, flow.mid and flow.png. With --beat, tempo and first "
                                        "downbeat come from the file unless --bpm is given (then the file starts on a "
                                        "downbeat). The same --seed gives identical files.")
    _add_writing_options(render)
    render.add_argument("--out", required=True, metavar="DIR", help="folder to create (refused if it holds files, unless --force)")
    render.add_argument("--beat", metavar="FILE", help="beat to rap over (WAV, FLAC, OGG); default: the built-in beat")
    render.add_argument("--bpm", type=_number(float, "--bpm"), help="tempo, 40-240 (default: detected from --beat, else 90)")
    render.add_argument("--voice", default="mc", help=f"voice preset: {', '.join(presets.names('voices'))} (default mc)")
    render.add_argument("--flow", default="boom-bap", help=f"flow: {', '.join(presets.names('flows'))} (default boom-bap)")
    render.add_argument("--fx", default="battle", help=f"effects chain: {', '.join(presets.names('fx'))} (default battle)")
    render.add_argument("--force", action="store_true", help="replace --out if it already holds files")
    render.add_argument("--json", action="store_true", help="print what was written as JSON")

    serve = sub.add_parser("serve", help="live beside the host: hear the opponent, answer on the next downbeat",
                           description="Run the live engine as a JACK client (ports in, out, midi_in) or on a "
                                       "PortAudio device. It listens to its input; when the opponent's verse ends past "
                                       "the turn's last beat (or, in battle mode, when the bar grid says it is its "
                                       "turn; or on OSC /cypher/turn/respond, or any MIDI note: a foot switch) it writes "
                                       "an answer and plays it from the next downbeat. A fallback bar covers any bar "
                                       "not ready in time. OSC feedback: /cypher/state, /cypher/line (a teleprompter), "
                                       "/cypher/miss, /cypher/latency. Ctrl-C stops it cleanly.")
    serve.add_argument("--clock", choices=["internal", "midi", "link"], default="internal",
                       help="internal (cypher's own tempo, --bpm), midi (follow a MIDI clock on midi_in) or link "
                            "(join the Ableton Link session; --bpm until a peer sets it); default internal")
    serve.add_argument("--bpm", type=_number(float, "--bpm"), default=90.0, help="internal clock tempo (default 90)")
    serve.add_argument("--backend", choices=["jack", "portaudio"], default="jack",
                       help="jack (a JACK client; ports by name) or portaudio (the system's device: CoreAudio, "
                            "WASAPI, ALSA, ...); default jack")
    serve.add_argument("--device", metavar="NAME", help="portaudio: device name, part of it, or index "
                       "(cypher devices lists them; default: the system's)")
    serve.add_argument("--sample-rate", type=_number(int, "--sample-rate"), metavar="HZ",
                       help="portaudio: 44100 or 48000 (default: the device's)")
    serve.add_argument("--block-size", type=_number(int, "--block-size"), default=512, metavar="FRAMES",
                       help="portaudio: frames per callback (default 512)")
    serve.add_argument("--midi-in", metavar="PORT", help="MIDI port to take the clock and triggers from: a JACK port; "
                       "with --backend portaudio, a MIDI input whose name contains PORT (default there: a virtual "
                       "port 'cypher clock')")
    serve.add_argument("--midi-api", choices=["alsa", "jack", "coremidi", "winmm"],
                       help="portaudio: the MIDI system for --midi-in (default: the platform's)")
    serve.add_argument("--audio-in", metavar="PORT", help="JACK audio port the opponent comes in on (e.g. system:capture_1)")
    serve.add_argument("--audio-out", metavar="PORT", action="append",
                       help="JACK audio port to play into (repeat for more, e.g. system:playback_1)")
    serve.add_argument("--osc-port", type=int, default=9000, help="OSC control port on 127.0.0.1 (0: no OSC; default 9000)")
    serve.add_argument("--preset", default="default", metavar="NAME",
                       help=f"live preset (presets/live): {', '.join(presets.names('live'))}, or a .toml path; "
                            "the flags below win over it (default: default)")
    serve.add_argument("--mode", choices=["auto", "battle", "manual"],
                       help="auto: answer when their verse ends; battle: alternate every --turn-bars on the bar grid, "
                            "words or not; manual: only on a trigger (preset: auto)")
    serve.add_argument("--style", help="style preset (preset: battle)")
    serve.add_argument("--flow", help="flow preset (preset: boom-bap)")
    serve.add_argument("--voice", help="voice preset (preset: mc)")
    serve.add_argument("--fx", help="fx preset (preset: battle)")
    serve.add_argument("--turn-bars", type=int, help="bars in a turn, theirs and ours (preset: 4)")
    serve.add_argument("--manual", action="store_true", help="the same as --mode manual")
    serve.add_argument("--gap-bars", type=int, metavar="N",
                       help="answer on the downbeat that ends their turn (0) or leave N bars of breath first, 1-4 "
                            "(auto and manual modes; preset: 0)")
    serve.add_argument("--on-clock-stop", choices=["stop", "finish-bar"],
                       help="the host stops mid-answer: stop at once, or finish the bar under way (preset: stop)")
    serve.add_argument("--no-recognize", action="store_true",
                       help="take the opponent's words only over OSC (/cypher/opponent/text); the recogniser holds "
                            "Python's lock while it decodes, which can make the audio callback late on a busy machine")
    serve.add_argument("--input-latency-ms", type=float, help="input latency the audio does not report (ms; preset: 0)")
    serve.add_argument("--output-latency-ms", type=float, help="output latency the audio does not report (ms; preset: 0)")
    serve.add_argument("--seed", type=int, default=0, help="writing seed (default 0)")
    serve.add_argument("--seconds", type=float, help="stop after this long (default: until Ctrl-C)")
    serve.add_argument("--client-name", default="cypher", help="JACK client name (default cypher)")

    devices = sub.add_parser("devices", help="list MIDI ports and audio ports as the engine sees them",
                             description="List the JACK graph's audio and MIDI ports and the MIDI ports of "
                                         "each rtmidi backend (ALSA, JACK), or why a backend is unavailable.")
    devices.add_argument("--json", action="store_true", help="print one JSON object")

    train = sub.add_parser("train", help="train a model (needs the train extra)",
                           description="Train a model. lyrics: the lyric model on the corpus's training split "
                                       "(the shipped recipe by default: small, multi-token heads, right-to-left); "
                                       "writes a checkpoint, its learning curve and an ONNX file into --out; "
                                       "`cypher export lyrics` installs it. pathstar: the planning task of Bachmann & "
                                       "Nagarajan (2024) with teacher-forced next-token, teacherless and reversed-target "
                                       "objectives on one transformer; writes checkpoints, learning curves (JSON) and curves.png.")
    train.add_argument("name", choices=["lyrics", "pathstar"], help="what to train")
    train.add_argument("--size", choices=["tiny", "small", "cpu", "paper"],
                       help="lyrics: tiny (seconds, checks the harness) or small (the shipped model; default); "
                            "pathstar: tiny (default), cpu (a laptop: G(2,3,50), 3x96 GPT, new graphs each epoch, "
                            "each with both goals; ~10 min an objective) or paper (G(2,5,50), 6x384 GPT, "
                            "200k graphs, for a GPU)")
    train.add_argument("--objective", choices=["next", "teacherless", "multi", "reverse", "all"],
                       help="lyrics: next, teacherless or multi (default multi); pathstar: next, teacherless, reverse "
                            "or all (default all)")
    train.add_argument("--direction", choices=["r2l", "l2r"], default="r2l",
                       help="lyrics: write each bar from its rhyme word back (r2l, default) or left to right")
    train.add_argument("--steps", type=_number(int, "--steps"), help="lyrics: optimiser steps (default: the size's)")
    for flag, kind, what in (("--deg", int, "arms d"), ("--path-len", int, "nodes on the path, source included"),
                             ("--nodes", int, "node label range n"),
                             ("--n-train", int, "training samples an epoch (with --every-goal: n/d graphs, each once per goal)"),
                             ("--n-test", int, "fresh test graphs"), ("--epochs", int, "epochs"),
                             ("--batch", int, "batch size"), ("--lr", float, "AdamW learning rate"),
                             ("--layers", int, "transformer layers"), ("--width", int, "embedding width"),
                             ("--heads", int, "attention heads")):
        train.add_argument(flag, type=_number(kind, flag), help=f"{what} (default: the size's)")
    train.add_argument("--commas", action=argparse.BooleanOptionalAction, default=None,
                       help="pathstar: spell graphs with commas (u , v | ... / s , g = s , a , ... , g)")
    train.add_argument("--fresh", action=argparse.BooleanOptionalAction, default=None,
                       help="pathstar: draw new training graphs every epoch (nothing to memorise)")
    train.add_argument("--every-goal", action=argparse.BooleanOptionalAction, default=None,
                       help="pathstar: each training graph once per goal, side by side in a batch "
                            "(structured samples, Frydenlund 2024)")
    train.add_argument("--constant-lr", action=argparse.BooleanOptionalAction, default=None,
                       help="pathstar: hold the learning rate after warm-up instead of a cosine decay; "
                            "such a run goes on from its checkpoint with more --epochs or a new --lr "
                            "(--no-X turns off what a size turns on: the cpu size has --fresh, --every-goal "
                            "and --constant-lr)")
    train.add_argument("--precision", choices=["bf16", "fp16", "fp32"],
                       help="pathstar on a GPU: bf16 or fp16 autocast, or fp32 (default bf16; CPU runs fp32)")
    train.add_argument("--seed", type=_number(int, "--seed"), default=0, help="data and init seed (default 0)")
    train.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    train.add_argument("--out", metavar="DIR",
                       help="output folder (default runs/lyrics or runs/pathstar-SIZE); an unfinished run there resumes")

    export = sub.add_parser("export", help="export a trained model to ONNX (needs the train extra)",
                            description="Export the lyric model trained into --from to ONNX (with a key/value cache "
                                        "and the tokenizer in its metadata), check torch against onnxruntime, and "
                                        "write it where cypher loads it from.")
    export.add_argument("name", choices=["lyrics"], help="what to export")
    export.add_argument("--from", dest="from_dir", default="runs/lyrics", metavar="DIR",
                        help="folder a `cypher train lyrics` run wrote (default runs/lyrics)")
    export.add_argument("--out", metavar="FILE", help="ONNX file to write (default: the shipped model, models_onnx/lyrics.onnx)")
    export.add_argument("--fp32", action="store_true",
                        help="keep float weights (default: 8-bit weight matrices, checked against the float export; "
                             "faster to decode, the same held-out perplexity)")
    return parser


def _cmd_say(args) -> int:
    from dsp.beat import render_beat
    from plugin_host.files import check_writable, write_wav
    from plugin_host.rap import bar_records, check_bpm, load_flow, load_fx, load_voice, rap, syllable_records

    bpm = check_bpm(args.bpm)
    if not 8000 <= args.sr <= 192000:
        raise UsageError(f"--sr {args.sr} is outside 8000-192000 Hz; 44100 or 48000 suit most hosts")
    if not args.text.strip():
        raise UsageError("nothing to rap: TEXT is empty; give some words")
    if not 0 <= args.count_in <= 16:
        raise UsageError(f"--count-in {args.count_in} is outside 0-16 bars")
    out = check_writable(args.out)
    flow, voice, fx = load_flow(args.flow), load_voice(args.voice), load_fx(args.fx)
    take = rap(args.text, bpm, flow, voice, fx, sr=args.sr, start_beat=args.count_in * flow.beats_per_bar)
    audio = take.dry if args.dry else take.wet
    if args.beat:
        n_bars = args.count_in + len(take.performance.bars)
        beat = render_beat(bpm, n_bars, args.sr, beats_per_bar=flow.beats_per_bar)
        audio = audio.copy()
        audio[: len(beat)] += beat
    try:
        write_wav(out, audio, args.sr)
    except OSError as e:
        raise UsageError(f"cannot write {out}: {e.strerror}; choose another --out") from None
    perf = take.performance
    if args.json:
        print(json.dumps({
            "out": str(out), "sr": args.sr, "bpm": bpm, "flow": flow.name, "voice": args.voice, "fx": fx.name,
            "dry": args.dry, "beat": args.beat, "count_in_bars": args.count_in, "n_samples": int(len(audio)),
            "bars": bar_records(perf), "syllables": syllable_records(perf),
            "latency_ms": {k: round(v, 2) for k, v in take.latency_ms.items()},
        }))
    else:
        print(f"wrote {out}: {len(perf.bars)} bars, {len(perf.syllables)} syllables at {bpm:g} BPM "
              f"({flow.name} flow, {args.voice} voice, {fx.name} fx)", file=sys.stderr)
    return 0


def _cmd_demo(args) -> int:
    from plugin_host.demo import run_demo

    result = run_demo(Path(args.out), args.verses, args.bpm, seed=args.seed)
    if args.json:
        print(json.dumps(result))
    return 0


def _cmd_bench(args) -> int:
    if args.name == "clock":
        from plugin_host.bench_clock import bench_clock
        from plugin_host.jack_rig import RigError

        try:
            report = bench_clock()
        except RigError as e:
            raise UsageError(str(e)) from None
    elif args.name == "lyrics":
        from plugin_host.bench_lyrics import bench_lyrics, format_table

        if args.exchanges is not None and args.exchanges < 1:
            raise UsageError("--exchanges must be at least 1")
        from models_onnx.corpus import CorpusError
        from models_onnx.lyric_model import ModelError
        from plugin_host.bench_lyrics import bench_ablation, format_ablation

        try:
            if args.ablation:
                if args.size not in (None, "tiny", "small"):
                    raise UsageError("lyrics --ablation sizes are tiny and small")
                report = bench_ablation(out=args.out, size=args.size or "small", steps=args.steps,
                                        device=args.device, n_exchanges=args.exchanges)
            else:
                report = bench_lyrics(n_exchanges=args.exchanges, seed=args.seed)
        except (CorpusError, ModelError) as e:
            raise UsageError(str(e)) from None
        if not args.json:
            print(format_ablation(report) if args.ablation else format_table(report))
            return 0
    elif args.name == "listen":
        from plugin_host.bench_listen import bench_listen, format_report

        if args.cases < 1:
            raise UsageError("--cases must be at least 1")
        report = bench_listen(n_cases=args.cases, seed=args.seed)
        if not args.json:
            print(format_report(report))
            return 0
    elif args.name == "live":
        from plugin_host.bench import _progress
        from plugin_host.bench_live import bench_live
        from plugin_host.jack_rig import RigError

        if args.turns < 1:
            raise UsageError("--turns must be at least 1")
        if not 0 <= args.osc_flood <= 100_000:
            raise UsageError(f"--osc-flood must be 0-100000 messages a second, got {args.osc_flood:g}")
        if args.soak_minutes is not None and not 1 <= args.soak_minutes <= 24 * 60:
            raise UsageError(f"--soak-minutes must be 1-1440, got {args.soak_minutes:g}")
        try:
            report = bench_live(turns=args.turns, seed=args.seed, osc_flood=args.osc_flood,
                                soak_minutes=args.soak_minutes, recognize=args.recognize,
                                progress=lambda k, n: _progress(k, n, "bench live soak (s)" if args.soak_minutes
                                                                else "bench live"))
        except RigError as e:
            raise UsageError(str(e)) from None
    elif args.name == "pathstar":
        from plugin_host.training import bench_pathstar

        if args.size not in (None, "tiny", "cpu", "paper"):
            raise UsageError("pathstar sizes are tiny, cpu and paper")
        report = bench_pathstar(size=args.size or "tiny", from_dir=args.from_dir, out=args.out, device=args.device)
    else:
        from plugin_host.bench import bench_voice

        if args.runs < 1:
            raise UsageError("--runs must be at least 1")
        report = bench_voice(runs=args.runs)
    if args.json:
        print(json.dumps(report))
    else:
        for key, value in report["metrics"].items():
            target = report["targets"].get(key)
            note = f"  (target {target['target']}: {'met' if target['met'] else 'NOT met'})" if target else ""
            print(f"{key:32s} {value}{note}")
    return 0


def _cmd_write(args) -> int:
    from plugin_host.rap import load_flow
    from plugin_host.write import Comeback, load_style, read_opponent

    if not 1 <= args.bars <= 16:
        raise UsageError(f"--bars must be 1-16, got {args.bars}")
    opponent = read_opponent(args.opponent)
    style = load_style(args.style)
    result = Comeback(load_flow(args.flow)).write(opponent, args.bars, style, seed=args.seed)
    if args.json:
        print(json.dumps(result))
    else:
        for bar in result["bars"]:
            print(bar["text"])
        print(f"(anchors: {', '.join(result['anchors'][:4])}; {result['latency_ms']['total']:.0f} ms)", file=sys.stderr)
    return 0


def _cmd_render(args) -> int:
    from plugin_host.render import render

    result = render(args.opponent, args.out, beat=args.beat, bpm=args.bpm, bars=args.bars, voice=args.voice,
                    flow_name=args.flow, fx=args.fx, style_name=args.style, seed=args.seed, force=args.force)
    print(json.dumps(result) if args.json else result["out"])
    return 0


def _cmd_train(args) -> int:
    from plugin_host.training import train_lyrics, train_pathstar

    if args.name == "lyrics":
        train_lyrics(args)
    else:
        train_pathstar(args)
    return 0


def _cmd_export(args) -> int:
    from plugin_host.training import export_lyrics

    export_lyrics(args)
    return 0


def _cmd_serve(args) -> int:
    from plugin_host.serve import serve

    return serve(args)


def _cmd_devices(args) -> int:
    from plugin_host.devices import format_devices, list_devices

    found = list_devices()
    print(json.dumps(found) if args.json else format_devices(found))
    return 0


COMMANDS = {"say": _cmd_say, "demo": _cmd_demo, "write": _cmd_write, "render": _cmd_render, "bench": _cmd_bench, "train": _cmd_train, "export": _cmd_export,
            "devices": _cmd_devices, "serve": _cmd_serve}


def main(argv: list[str] | None = None) -> int:
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        args = build_parser().parse_args(argv)
        if args.command is None:
            build_parser().print_help(sys.stderr)
            return 2
        return COMMANDS[args.command](args)
    except UsageError as e:
        print(f"cypher: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cypher: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # an internal error: say so plainly; the traceback only with --debug
        if debug or os.environ.get("CYPHER_DEBUG"):
            traceback.print_exc()
        print(f"cypher: internal error: {type(e).__name__}: {e} (run with --debug for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
