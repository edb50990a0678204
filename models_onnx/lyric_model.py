"""The shipped lyric model, run with onnxruntime alone.

One ONNX file holds the network and, in its metadata, the tokenizer and settings.
At load we also compute what the decoder's constraints need per vocabulary word:
its syllable count and its rhyme classes.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dsp import phonetics
from models_onnx import rhyme
from models_onnx.tokenizer import Tokenizer

MODEL_PATH = Path(__file__).parent / "lyrics.onnx"
REBUILD = ("rebuild it with `cypher train lyrics` then `cypher export lyrics` "
           "(needs the train extra: pip install -e '.[train]')")


class ModelError(RuntimeError):
    """The model file is missing or unreadable; the message names the file and the fix."""


@dataclass(frozen=True)
class WordInfo:
    """Per-token arrays over the vocabulary (0 / empty for non-words)."""

    syllables: np.ndarray  # int (V,)
    is_word: np.ndarray  # bool (V,)
    tails: list  # merged rhyme tail per token, () for non-words
    by_tail: dict
    by_slant: dict
    by_vowels: dict


def word_info(tok: Tokenizer) -> WordInfo:
    V = len(tok)
    syll = np.zeros(V, dtype=np.int64)
    is_word = np.zeros(V, dtype=bool)
    tails: list = [()] * V
    by_tail: dict = {}
    by_slant: dict = {}
    by_vowels: dict = {}
    for t in range(tok.first_word, V):
        w = phonetics.word(tok.itos[t])
        if not w.syllables:
            continue
        syll[t] = len(w.syllables)
        is_word[t] = True
        tail = rhyme.tail(w)
        tails[t] = tail
        by_tail.setdefault(tail, []).append(t)
        by_slant.setdefault(phonetics.slant_key(tail), []).append(t)
        by_vowels.setdefault(rhyme.tail_vowels(tail), []).append(t)
    return WordInfo(syll, is_word, tails, by_tail, by_slant, by_vowels)


def _load_english(tok: Tokenizer):
    """The English word-pair table for `tok`, or None (the model writes alone) with a warning."""
    import logging
    import zipfile

    from models_onnx.english_prior import PRIOR_PATH, EnglishPrior

    fix = "rebuild it with `python -m models_onnx.english_prior`"
    if not PRIOR_PATH.exists():
        logging.getLogger("cypher").warning("%s is missing: the lyric model writes without general English; %s",
                                            PRIOR_PATH, fix)
        return None
    try:
        return EnglishPrior(tok, PRIOR_PATH)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        raise ModelError(f"English word pairs {PRIOR_PATH} cannot be read ({type(e).__name__}); {fix}") from None


class LyricModel:
    def __init__(self, path: Path | str = MODEL_PATH, threads: int = 1, english: bool = True):
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.exists():
            raise ModelError(f"lyric model {self.path} is missing; {REBUILD}")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(self.path), opts, providers=["CPUExecutionProvider"])
            meta = self.session.get_modelmeta().custom_metadata_map
            self.tok = Tokenizer.from_json(meta["tokenizer"])
            self.config = json.loads(meta["config"])
            self.run = json.loads(meta["run"])
        except Exception as e:  # onnxruntime raises its own types for a damaged file
            raise ModelError(f"lyric model {self.path} cannot be read ({type(e).__name__}); {REBUILD}") from None
        self.direction = self.run.get("direction", "r2l")
        self.n_layer, self.n_head = self.config["n_layer"], self.config["n_head"]
        self.head_dim = self.config["n_embd"] // self.n_head
        self.n_future = self.config.get("n_future", 1)
        self.block_size = self.config["block_size"]
        self.info = word_info(self.tok)
        self.english = None  # general English's word pairs (models_onnx/english_prior.py)
        if english:
            self.english = _load_english(self.tok)
        self._next_outputs = ["logits", "present_keys", "present_values"]
        self._all_outputs = self._next_outputs + ["draft_logits"]
        # whether the extra heads run (exports before they were gated ran them on every call)
        gated = any(i.name == "drafts" for i in self.session.get_inputs())
        self._drafts_on = {"drafts": np.array(True)} if gated else {}
        self._drafts_off = {"drafts": np.array(False)} if gated else {}

    def empty_cache(self, batch: int = 1) -> tuple[np.ndarray, np.ndarray]:
        z = np.zeros((self.n_layer, batch, self.n_head, 0, self.head_dim), dtype=np.float32)
        return z, z.copy()

    def step(self, ids: np.ndarray, keys: np.ndarray, values: np.ndarray, drafts: bool = False):
        """ids (B, T) after the cached positions -> logits, keys, values. logits is
        (B, T, n_future, V) with `drafts` (every head), else (B, T, 1, V) (next token only,
        and the extra heads are not computed)."""
        feeds = {"input_ids": ids, "past_keys": keys, "past_values": values}
        if drafts and self.n_future > 1:
            logits, keys, values, draft = self.session.run(self._all_outputs, {**feeds, **self._drafts_on})
            return np.concatenate([logits, draft], axis=2), keys, values
        return self.session.run(self._next_outputs, {**feeds, **self._drafts_off})

    def step_bound(self, ids: np.ndarray, keys, values):
        """Like `step` (next-token head only), but the cache stays inside onnxruntime:
        keys/values in and out are OrtValues, so the cache is not copied every call
        (the decoder's hot loop; ~30 % faster per call on our model)."""
        import onnxruntime as ort

        if isinstance(keys, np.ndarray):
            keys, values = ort.OrtValue.ortvalue_from_numpy(keys), ort.OrtValue.ortvalue_from_numpy(values)
        io = self.session.io_binding()
        io.bind_cpu_input("input_ids", ids)
        io.bind_ortvalue_input("past_keys", keys)
        io.bind_ortvalue_input("past_values", values)
        for name, value in self._drafts_off.items():
            io.bind_cpu_input(name, value)
        for name in self._next_outputs:
            io.bind_output(name)
        self.session.run_with_iobinding(io)
        logits, keys, values = io.get_outputs()
        return logits.numpy(), keys, values

    def rhyme_grades(self, word: str) -> np.ndarray:
        """(V,) int: how each vocabulary word rhymes with `word` (rhyme.PERFECT .. rhyme.NONE);
        the word itself is NONE."""
        grades = np.zeros(len(self.tok), dtype=np.int64)
        w = phonetics.word(word)
        if not w.syllables:
            return grades
        tail = rhyme.tail(w)
        grades[self.info.by_vowels.get(rhyme.tail_vowels(tail), [])] = rhyme.ASSONANCE
        grades[self.info.by_slant.get(phonetics.slant_key(tail), [])] = rhyme.SLANT
        grades[self.info.by_tail.get(tail, [])] = rhyme.PERFECT
        if word in self.tok.stoi:
            grades[self.tok.stoi[word]] = rhyme.NONE
        return grades
