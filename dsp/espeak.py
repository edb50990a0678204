"""espeak-ng through the library bundled by espeakng-loader (ctypes, no system install).

The library keeps global state and is not thread-safe, so every call runs on one
dedicated worker thread (`_worker`); callers from any thread block on its result.
The worker also owns the synthesis callback, so audio chunks and their events
never interleave between two requests.
"""
from __future__ import annotations

import ctypes
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

# espeak_AUDIO_OUTPUT, options, flags and parameters from speak_lib.h.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_INITIALIZE_DONT_EXIT = 0x8000
_CHARS_UTF8 = 1
_PHONEMES_INPUT = 0x100  # honour [[phoneme]] input
_POS_CHARACTER = 1
_PARAM = {"rate": 1, "volume": 2, "pitch": 3, "range": 4, "wordgap": 7}
_DEFAULTS = {"rate": 175, "volume": 100, "pitch": 50, "range": 50, "wordgap": 0}

EVENT_PHONEME = 7


class _Event(ctypes.Structure):
    class _Id(ctypes.Union):
        _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]

    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),  # ms, rounded: not used
        ("sample", ctypes.c_int),  # absolute sample index since the start of the request
        ("user_data", ctypes.c_void_p),
        ("id", _Id),
    ]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


@dataclass(frozen=True)
class PhonemeEvent:
    """One phoneme as espeak-ng produced it: its mnemonic and the sample where it starts."""

    name: str
    sample: int


@dataclass(frozen=True)
class RawSynthesis:
    """int16 samples at `sr` and the phoneme events inside them."""

    audio: np.ndarray  # (n_samples,) int16
    sr: int
    phonemes: tuple[PhonemeEvent, ...]


class EspeakError(RuntimeError):
    pass


class _Espeak:
    """Owns the library handle. Use only from the worker thread."""

    def __init__(self) -> None:
        import espeakng_loader

        self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        self.lib.espeak_Initialize.restype = ctypes.c_int
        self.lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self.lib.espeak_ng_SetVoiceByFile.argtypes = [ctypes.c_char_p]
        self.lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        self.lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
            ctypes.c_uint, ctypes.c_uint, ctypes.POINTER(ctypes.c_uint), ctypes.c_void_p,
        ]
        self.lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        self.lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, ctypes.c_int]
        data = espeakng_loader.get_data_path().encode()
        sr = self.lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, data, _INITIALIZE_PHONEME_EVENTS | _INITIALIZE_DONT_EXIT
        )
        if sr <= 0:
            raise EspeakError(f"espeak-ng failed to initialise with data at {data.decode()}")
        self.sr = sr
        self._chunks: list[np.ndarray] = []
        self._events: list[PhonemeEvent] = []
        self._callback = _CALLBACK(self._on_audio)  # kept alive: the library holds the pointer
        self.lib.espeak_SetSynthCallback(self._callback)
        self._voice: str | None = None
        self._srand = ctypes.CDLL(None).srand
        self._srand.argtypes = [ctypes.c_uint]
        self.lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]

    def _on_audio(self, wav, n_samples, events) -> int:
        if n_samples > 0:
            # string_at copies the bytes; np.ctypeslib.as_array would make (and ctypes keep
            # forever) a new array type for every chunk length: a slow leak over a night.
            self._chunks.append(np.frombuffer(ctypes.string_at(wav, 2 * n_samples), dtype=np.int16))
        i = 0
        while events[i].type != 0:  # espeakEVENT_LIST_TERMINATED
            ev = events[i]
            if ev.type == EVENT_PHONEME:
                self._events.append(PhonemeEvent(ev.id.string.decode("ascii", "replace"), int(ev.sample)))
            i += 1
        return 0

    def configure(self, voice: str, params: dict[str, int]) -> None:
        """Select `voice` and set every parameter (absent ones to their defaults), so no
        setting leaks from one request into the next."""
        if voice != self._voice:
            by_file = "/" in voice  # a voice file of our own (see dsp.voice)
            load = self.lib.espeak_ng_SetVoiceByFile if by_file else self.lib.espeak_SetVoiceByName
            if load(voice.encode()) != 0:
                raise EspeakError(f"espeak-ng could not load voice {voice!r}")
            self._voice = voice
        for key, default in _DEFAULTS.items():
            self.lib.espeak_SetParameter(_PARAM[key], int(params.get(key, default)), 0)
        # Breath and voicing noise come from espeak's own generator and libc's rand():
        # seeding both per request makes a synthesis depend on its input alone.
        self.lib.espeak_ng_SetRandSeed(1)
        self._srand(1)

    def synth(self, text: str) -> RawSynthesis:
        self._chunks, self._events = [], []
        data = text.encode("utf-8") + b"\0"  # handed over as is: a string buffer would add a ctypes type per length
        err = self.lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8 | _PHONEMES_INPUT, None, None)
        if err != 0:
            raise EspeakError(f"espeak-ng could not synthesize {text!r} (error {err})")
        audio = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        return RawSynthesis(audio, self.sr, tuple(self._events))

    def text_to_phonemes(self, text: str) -> str:
        buf = ctypes.create_string_buffer(text.encode("utf-8") + b"\0")
        ptr = ctypes.c_void_p(ctypes.addressof(buf))
        out = []
        while ptr.value:
            res = self.lib.espeak_TextToPhonemes(ctypes.byref(ptr), _CHARS_UTF8, 0)
            if res:
                out.append(res.decode("utf-8", "replace"))
        return " ".join(out)


_worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="espeak")
_engine: _Espeak | None = None
_engine_lock = threading.Lock()


def _get() -> _Espeak:
    global _engine
    if _engine is None:
        _engine = _Espeak()
    return _engine


def _run(fn, *args):
    return _worker.submit(fn, *args).result()


def synth(text: str, voice: str = "en-us", **params: int) -> RawSynthesis:
    """Synthesize `text` (may contain [[phoneme]] runs) with `voice` (a name such as
    "en-us+m3", or the path of a voice file, under 60 characters) and espeak parameters
    (rate in words per minute, pitch 0-100, range 0-100, volume 0-200, wordgap in 10 ms)."""

    def job():
        eng = _get()
        eng.configure(voice, params)
        return eng.synth(text)

    return _run(job)


def text_to_phonemes(text: str, voice: str = "en-us") -> str:
    """espeak-ng's phoneme mnemonics for `text`, with ' and , before stressed syllables."""

    def job():
        eng = _get()
        eng.configure(voice, {})
        return eng.text_to_phonemes(text)

    return _run(job)


def sample_rate() -> int:
    return _run(lambda: _get().sr)
