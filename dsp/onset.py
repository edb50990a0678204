"""Onset strength: the rise of log-mel energy from one short frame to the next (spectral flux).

The same measure as librosa's default onset detector, written for batches of short
snippets so the flow can find every syllable's attack in one pass.
"""
from __future__ import annotations

import functools

import numpy as np
import scipy.fft

WINDOW_MS = 23.0  # analysis frame: long enough for pitch, short enough to localise a burst
HOP_MS = 1.45
N_MELS = 64
TOP_DB = 80.0


@functools.lru_cache(maxsize=8)
def _mel_basis(sr: int, n_fft: int) -> np.ndarray:
    import librosa

    return librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=N_MELS).astype(np.float32)  # (N_MELS, n_fft//2+1)


def frame_params(sr: int) -> tuple[int, int]:
    """(n_fft, hop_length) in samples for `sr`: n_fft a power of two near WINDOW_MS."""
    n_fft = 1 << int(round(np.log2(WINDOW_MS * sr / 1000)))
    return n_fft, max(1, int(round(HOP_MS * sr / 1000)))


def spectral_flux(x: np.ndarray, sr: int) -> tuple[np.ndarray, int]:
    """Onset strength of each row of `x`.

    x: (B, n_samples) float32 snippets (rows zero-padded to one length) at `sr`.
    Returns (flux, hop): flux is (B, T), flux[b, t] the mean positive rise in dB over
    mel bands from frame t-1 to frame t; frame t is centred on sample t*hop of `x`.
    Rates above 32 kHz are analysed at half rate (pairs averaged): onsets live below 11 kHz.
    """
    x = np.atleast_2d(np.asarray(x, dtype=np.float32))
    factor = 2 if sr > 32000 else 1
    if factor > 1:
        x = x[:, : x.shape[1] // 2 * 2].reshape(x.shape[0], -1, 2).mean(axis=-1)  # (B, n/2)
    sr_a = sr // factor
    n_fft, hop = frame_params(sr_a)
    padded = np.pad(x, ((0, 0), (n_fft // 2, n_fft // 2)))
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft, axis=-1)[:, ::hop]  # (B, T, n_fft)
    window = np.hanning(n_fft).astype(np.float32)
    power = np.abs(scipy.fft.rfft(frames * window, axis=-1)) ** 2  # (B, T, F), float32
    mel = power @ _mel_basis(sr_a, n_fft).T  # (B, T, N_MELS)
    db = 10.0 * np.log10(np.maximum(mel, 1e-10))
    db = np.maximum(db, db.max(axis=(1, 2), keepdims=True) - TOP_DB)
    rise = np.maximum(np.diff(db, axis=1), 0.0).mean(axis=-1)  # (B, T-1)
    return np.pad(rise, ((0, 0), (1, 0))), hop * factor
