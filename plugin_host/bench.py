"""`cypher bench`: measurements reported as medians and ratios; targets are reported, never enforced."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

import presets
from dsp import voice as voice_mod
from plugin_host.rap import load_flow, load_fx, load_voice, rap

BENCH_SR = 44100
# Onset detection for alignment: a short FFT and hop so the detector resolves milliseconds.
ONSET_SR = 22050
ONSET_N_FFT = 512
ONSET_HOP = 32


def check_targets(metrics: dict, targets: dict[str, tuple[str, float]]) -> dict:
    """{name: {"target": ">= 0.85", "met": bool}} for each (op, value) target; a missing value is not met."""
    out = {}
    for name, (op, value) in targets.items():
        got = metrics[name]
        met = got is not None and (got >= value if op == ">=" else got <= value)
        out[name] = {"target": f"{op} {value:g}", "met": met}
    return out


def bench_lines() -> list[str]:
    path = Path(presets.ROOT) / "verses" / "bench_lines.txt"
    return [ln.strip() for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")]


def _progress(done: int, total: int, what: str) -> None:
    if sys.stderr.isatty():
        filled = int(30 * done / total)
        end = "\n" if done == total else ""
        print(f"\r{what} [{'#' * filled}{'.' * (30 - filled)}] {done}/{total}", end=end, file=sys.stderr, flush=True)
    elif done == total:
        print(f"{what}: {total} done", file=sys.stderr)


def detect_onsets_s(audio: np.ndarray, sr: int) -> np.ndarray:
    """Onset times in seconds found by librosa's spectral-flux detector (no backtracking)."""
    import librosa
    import soxr

    y = soxr.resample(audio, sr, ONSET_SR) if sr != ONSET_SR else audio
    env = librosa.onset.onset_strength(y=y, sr=ONSET_SR, n_fft=ONSET_N_FFT, hop_length=ONSET_HOP)
    frames = librosa.onset.onset_detect(onset_envelope=env, sr=ONSET_SR, hop_length=ONSET_HOP, units="frames")
    return librosa.frames_to_time(frames, sr=ONSET_SR, hop_length=ONSET_HOP, n_fft=None)


def onset_errors_ms(intended_s: np.ndarray, detected_s: np.ndarray, window_s: float) -> np.ndarray:
    """For each intended attack, detected minus intended (ms) of the nearest onset within
    +-window_s; NaN where none is that close."""
    out = np.full(len(intended_s), np.nan)
    if len(detected_s) == 0:
        return out
    idx = np.clip(np.searchsorted(detected_s, intended_s), 1, len(detected_s) - 1) if len(detected_s) > 1 else np.zeros(len(intended_s), int)
    for k, t in enumerate(intended_s):
        cands = detected_s[max(idx[k] - 1, 0) : idx[k] + 1]
        best = cands[np.argmin(np.abs(cands - t))]
        if abs(best - t) <= window_s:
            out[k] = (best - t) * 1000
    return out


def detector_bias_ms() -> float:
    """Median error of the same detector on tone bursts with known onsets: its own bias."""
    sr = ONSET_SR
    onsets = np.arange(0.25, 5.0, 0.3)
    y = np.zeros(int(5.5 * sr), np.float32)
    t = np.arange(int(0.15 * sr)) / sr
    burst = (np.sin(2 * np.pi * 220 * t) * np.exp(-t / 0.08)).astype(np.float32)
    for o in onsets:
        i = int(round(o * sr))
        y[i : i + len(burst)] += burst
    err = onset_errors_ms(onsets, detect_onsets_s(y, sr), 0.05)
    return float(np.nanmedian(err))


def bench_voice(runs: int = 60) -> dict:
    flow, voice, fx, dry_fx = load_flow("boom-bap"), load_voice("mc"), load_fx("battle"), load_fx("dry")
    lines = bench_lines()
    verses = ["\n".join(lines[i : i + 4]) for i in range(0, len(lines) - 3, 4)]
    rap(verses[0], 90, flow, voice, fx, sr=BENCH_SR)  # warm up: dictionaries, espeak init

    totals, stages = [], {"voice": [], "flow": [], "fx": []}
    for i in range(runs):
        voice_mod.clear_cache()  # every response is new text in a battle: no warm cache
        bpm = 84 + (i * 5) % 17
        t0 = time.perf_counter()
        take = rap(verses[i % len(verses)], bpm, flow, voice, fx, sr=BENCH_SR)
        totals.append((time.perf_counter() - t0) * 1000)
        for k in stages:
            stages[k].append(take.latency_ms[k])
        _progress(i + 1, runs, "bench voice: render")

    errors, n_sylls = [], 0
    for i, verse in enumerate(verses):
        bpm = 86 + 4 * (i % 4)
        take = rap(verse, bpm, flow, voice, dry_fx, sr=BENCH_SR)
        perf = take.performance
        intended = np.array([s.attack_sample for s in perf.syllables]) / perf.sr
        window = 60.0 / bpm / 8  # half a 16th
        errors.append(onset_errors_ms(intended, detect_onsets_s(perf.audio, perf.sr), window))
        n_sylls += len(intended)
        _progress(i + 1, len(verses), "bench voice: onsets")
    err = np.concatenate(errors)
    found = err[~np.isnan(err)]
    abs_all = np.where(np.isnan(err), np.inf, np.abs(err))

    metrics = {
        "render_4bars_p50_ms": round(float(np.percentile(totals, 50)), 2),
        "render_4bars_p95_ms": round(float(np.percentile(totals, 95)), 2),
        "render_voice_p50_ms": round(float(np.median(stages["voice"])), 2),
        "render_flow_p50_ms": round(float(np.median(stages["flow"])), 2),
        "render_fx_p50_ms": round(float(np.median(stages["fx"])), 2),
        "render_runs": runs,
        "onset_syllables": n_sylls,
        "onset_detected_ratio": round(len(found) / n_sylls, 4),
        "onset_abs_error_median_ms": round(float(np.median(abs_all)), 2),
        "onset_signed_error_median_ms": round(float(np.median(found)), 2) if len(found) else None,
        "onset_within_15ms_ratio": round(float(np.mean(abs_all <= 15.0)), 4),
        "onset_detector_bias_ms": round(detector_bias_ms(), 2),
    }
    targets = {
        "render_4bars_p95_ms": {"target": 60.0, "met": metrics["render_4bars_p95_ms"] <= 60.0},
        "onset_abs_error_median_ms": {"target": 5.0, "met": metrics["onset_abs_error_median_ms"] <= 5.0},
        "onset_within_15ms_ratio": {"target": 0.95, "met": metrics["onset_within_15ms_ratio"] >= 0.95},
    }
    return {
        "bench": "voice",
        "setup": {"sr": BENCH_SR, "flow": flow.name, "voice": "mc", "fx": "battle (render), dry (onsets)",
                  "verses": len(verses), "onset_detector": f"librosa onset_detect at {ONSET_SR} Hz, n_fft {ONSET_N_FFT}, hop {ONSET_HOP}"},
        "metrics": metrics,
        "targets": targets,
    }
