"""`cypher bench listen`: the listener on opponent verses synthesised with known timing.

Each case raps a four-bar verse from the corpus with one of our voices at a tempo and
level, over the built-in beat or not, with or without noise; the syllable and word
times are known from the synthesis. The listener hears it block by block, as live.
"""
from __future__ import annotations

import time

import numpy as np

from dsp.anchors import heard_words, rank
from dsp.beat import render_beat
from dsp.listener import Listener
from dsp.syllables import Grid
from dsp.text import normalize_words
from plugin_host.bench import _progress, check_targets
from plugin_host.rap import load_flow, load_fx, load_voice, rap

SR = 44100
BLOCK = 512
LEAD_BEATS = 4  # a bar of beat before the voice comes in
WINDOW_S = 0.05
TARGETS = {
    "onset_f1": (">=", 0.85),
    "verse_end_delay_ms_p95": ("<=", 150.0),
    "anchor_recall_given": (">=", 0.8),
    "realtime_fraction": ("<=", 0.20),
    "final_update_ms_p95": ("<=", 30.0),
}
VOICES = ("clear", "mc", "rival")
BPMS = (80.0, 92.0, 100.0)
LEVELS_DB = (-3.0, -18.0)


def cases(n: int) -> list[dict]:
    """n deterministic cases spread over voice, tempo, level, beat and noise. Each verse is
    two held-out opponent couplets: text neither the recogniser's language model nor
    the writer has seen."""
    from models_onnx.corpus import load

    held = load().heldout()
    out = []
    for i in range(n):
        a, b = held[(2 * i) % len(held)], held[(2 * i + 1) % len(held)]
        out.append({
            "verse": "\n".join(a.opponent + b.opponent),
            "voice": VOICES[i % 3],
            "bpm": BPMS[(i // 3) % 3],
            "level_db": LEVELS_DB[(i // 2) % 2],
            "beat": i % 4 != 3,  # most over the beat, some a cappella
            "snr_db": 20.0 if i % 5 == 4 else None,
        })
    return out


def synthesize(case: dict, seed: int) -> tuple[np.ndarray, list, float]:
    """(mix, syllables with their true attacks, true end of voice in s)."""
    take = rap(case["verse"], case["bpm"], load_flow("boom-bap"), load_voice(case["voice"]), load_fx("dry"), sr=SR,
               start_beat=LEAD_BEATS, tail_s=0.0)
    voice = take.dry / (np.abs(take.dry).max() + 1e-9) * 10 ** (case["level_db"] / 20)
    n_bars = len(take.performance.bars) + 2
    mix = np.zeros(int((n_bars * 4 * 60 / case["bpm"]) * SR) + SR, np.float32)
    mix[: len(voice)] += voice
    if case["beat"]:
        beat = render_beat(case["bpm"], n_bars, SR, seed=seed)
        mix[: len(beat)] += 0.25 * beat[: len(mix)]
    if case["snr_db"] is not None:
        rms = np.sqrt(np.mean(voice[voice != 0] ** 2))
        mix += np.random.default_rng(seed).normal(0, rms * 10 ** (-case["snr_db"] / 20), len(mix)).astype(np.float32)
    syl = take.performance.syllables
    return mix, list(syl), max(s.end_sample for s in syl) / SR


def match_onsets(truth_s: np.ndarray, found_s: np.ndarray, window_s: float = WINDOW_S) -> int:
    """One-to-one matches within +-window_s, greedily by distance."""
    pairs = sorted((abs(f - t), i, j) for i, t in enumerate(truth_s) for j, f in enumerate(found_s)
                   if abs(f - t) <= window_s)
    used_t, used_f, n = set(), set(), 0
    for _, i, j in pairs:
        if i not in used_t and j not in used_f:
            used_t.add(i), used_f.add(j)
            n += 1
    return n


def word_error_rate(ref: list[str], hyp: list[str]) -> tuple[int, int]:
    """(edits, reference length): Levenshtein distance over words."""
    d = np.arange(len(hyp) + 1)
    for i, r in enumerate(ref, 1):
        prev, d[0] = d.copy(), i
        for j, h in enumerate(hyp, 1):
            d[j] = min(prev[j] + 1, d[j - 1] + 1, prev[j - 1] + (r != h))
    return int(d[-1]), len(ref)


def _words(text: str) -> list[str]:
    return [w for line in text.splitlines() for w in normalize_words(line)]


def listen(mix: np.ndarray, grid: Grid, text: str | None = None, recognize: bool = True):
    """Stream `mix` through a listener; (heard, cost_s, final-update ms, end detected at s, ends)."""
    from dsp.listener import ListenSettings

    listener = Listener(SR, grid, ListenSettings(recognize=recognize))
    if text is not None:
        listener.set_text(text)
    cost, ends, last_update_ms, state = 0.0, [], None, "idle"
    for i in range(0, len(mix), BLOCK):
        t0 = time.perf_counter()
        listener.push(mix[i : i + BLOCK])
        if listener.state != state:
            state = listener.state
            if state == "ended":
                listener.heard()  # what the engine reads at the verse end
                last_update_ms = (time.perf_counter() - t0) * 1000
                ends.append((i + BLOCK) / SR)
        cost += time.perf_counter() - t0
    t0 = time.perf_counter()
    heard = listener.finish()
    cost += time.perf_counter() - t0
    return heard, cost, last_update_ms, ends


def bench_listen(n_cases: int = 12, seed: int = 0) -> dict:
    rows = []
    tp = n_true = n_found = 0
    bar_errors, edits, ref_len = [], 0, 0
    recall_rec, recall_given, delays, finals, false_ends = [], [], [], [], []
    cost = cost_plain = audio_s = 0.0
    for k, case in enumerate(cases(n_cases)):
        mix, syllables, voice_end_s = synthesize(case, seed + k)
        grid = Grid(case["bpm"], 0.0)
        heard, c, final_ms, ends = listen(mix, grid)
        _, c_plain, _, _ = listen(mix, grid, recognize=False)
        given, _, _, _ = listen(mix, grid, text=case["verse"], recognize=False)
        cost, cost_plain, audio_s = cost + c, cost_plain + c_plain, audio_s + len(mix) / SR
        truth = np.array([s.attack_sample / SR for s in syllables])
        found = np.array([s.onset_s for s in heard.syllables])
        m = match_onsets(truth, found)
        tp, n_true, n_found = tp + m, n_true + len(truth), n_found + len(found)
        true_bars = np.bincount([grid.bar_of(t) for t in truth])
        found_bars = np.bincount([grid.bar_of(t) for t in found if grid.bar_of(t) >= 0], minlength=len(true_bars))
        voiced_bars = range(LEAD_BEATS // 4, len(true_bars))
        bar_errors += [abs(int(found_bars[b]) - int(true_bars[b])) for b in voiced_bars]
        e, n = word_error_rate(_words(case["verse"]), [w.text.lower() for w in heard.words])
        edits, ref_len = edits + e, ref_len + n
        true_anchors = {a.text for a in rank(heard_words(case["verse"]), top=5)}
        got = {a.text for a in heard.anchors}
        got_given = {a.text for a in given.anchors}
        recall_rec.append(len(true_anchors & got) / max(1, len(true_anchors)))
        recall_given.append(len(true_anchors & got_given) / max(1, len(true_anchors)))
        if ends:
            delays.append((ends[-1] - voice_end_s) * 1000)
            false_ends.append(sum(1 for t in ends[:-1] if t < voice_end_s))
        if final_ms is not None:
            finals.append(final_ms)
        rows.append({**{k2: v for k2, v in case.items() if k2 != "verse"}, "syllables": len(truth),
                     "found": len(found), "matched": m, "end_delay_ms": round(delays[-1], 1) if ends else None,
                     "words": heard.text.replace("\n", " / ")})
        _progress(k + 1, n_cases, "bench listen")
    precision, recall = tp / max(1, n_found), tp / max(1, n_true)
    metrics = {
        "onset_f1": round(2 * precision * recall / max(1e-9, precision + recall), 4),
        "onset_precision": round(precision, 4),
        "onset_recall": round(recall, 4),
        "syllable_count_error_per_bar": round(float(np.mean(bar_errors)), 3),
        "word_error_rate": round(edits / max(1, ref_len), 4),
        "anchor_recall_recognized": round(float(np.mean(recall_rec)), 4),
        "anchor_recall_given": round(float(np.mean(recall_given)), 4),
        "verse_end_delay_ms_p50": round(float(np.median(delays)), 1) if delays else None,
        "verse_end_delay_ms_p95": round(float(np.percentile(delays, 95)), 1) if delays else None,
        "early_verse_ends_per_verse": round(float(np.mean(false_ends)), 3) if false_ends else None,
        "realtime_fraction": round(cost / audio_s, 4),
        "realtime_fraction_without_recognizer": round(cost_plain / audio_s, 4),
        "final_update_ms_p50": round(float(np.median(finals)), 2) if finals else None,
        "final_update_ms_p95": round(float(np.percentile(finals, 95)), 2) if finals else None,
    }
    targets = check_targets(metrics, TARGETS)
    return {"bench": "listen",
            "setup": {"cases": n_cases, "audio_s": round(audio_s, 1), "block": BLOCK, "sr": SR,
                      "onset_window_ms": WINDOW_S * 1000, "voices": list(VOICES), "bpms": list(BPMS),
                      "recorded_speech": "none: no installed package ships recorded human speech"},
            "metrics": metrics, "targets": targets, "cases": rows}


def format_report(report: dict) -> str:
    lines = [f"cypher bench listen: {report['setup']['cases']} synthesised verses, {report['setup']['audio_s']} s"]
    for name, value in report["metrics"].items():
        t = report["targets"].get(name)
        mark = "" if t is None else f"   target {t['target']}: {'met' if t['met'] else 'NOT met'}"
        lines.append(f"  {name:40s} {value}{mark}")
    return "\n".join(lines)
