"""Streaming word recognition with pocketsphinx (its wheel ships a US English model).

Audio goes in as it arrives (16 kHz float32); the words, with their times, come out
when the utterance is closed, a few milliseconds later. Confidence is filled in by
the listener (pocketsphinx's posteriors are not computed in this fast mode).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

FRAME_S = 0.01  # pocketsphinx reports times in 10 ms frames
_NOT_WORDS = re.compile(r"^(<.*>|\[.*\]|\+\+.*\+\+)$")  # <s>, <sil>, [NOISE], ++GARBAGE++


@dataclass(frozen=True)
class RecognizedWord:
    text: str
    start_s: float  # from the start of the stream
    end_s: float


class StreamingRecognizer:
    """One pocketsphinx decoder; `start(t_s)`, `feed(samples)`..., `finish()` -> words."""

    def __init__(self) -> None:
        from pocketsphinx import Decoder

        # Only the first search pass, which streams as the audio arrives: the second
        # (fwdflat) and the lattice pass (bestpath) cost 20-400 ms at the verse end and
        # gave no better words on rapped audio.
        from models_onnx.battle_lm import LM_PATH

        # Fewer active models and words per frame: half the cost, the same words here.
        options = dict(fwdflat=False, bestpath=False, maxhmmpf=3000, maxwpf=5, loglevel="ERROR")
        if LM_PATH.exists():  # battle bars, not news: the words an opponent uses
            options["lm"] = str(LM_PATH)
        self._decoder = Decoder(**options)
        self._t0 = 0.0
        self._open = False

    @property
    def open(self) -> bool:
        return self._open

    def start(self, t_s: float) -> None:
        """Begin an utterance whose first sample is at t_s in the stream."""
        if self._open:
            self._decoder.end_utt()
        self._decoder.start_utt()
        self._t0, self._open = t_s, True

    def feed(self, samples: np.ndarray) -> None:
        if self._open and len(samples):
            pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype(np.int16)
            self._decoder.process_raw(pcm.tobytes(), False, False)

    def finish(self) -> list[RecognizedWord]:
        """Close the utterance and return its words (none if nothing was open)."""
        if not self._open:
            return []
        self._decoder.end_utt()
        self._open = False
        words = []
        for seg in self._decoder.seg():
            text = re.sub(r"\(\d+\)$", "", seg.word)
            if _NOT_WORDS.match(text):
                continue
            words.append(RecognizedWord(text, self._t0 + seg.start_frame * FRAME_S,
                                        self._t0 + (seg.end_frame + 1) * FRAME_S))
        return words
