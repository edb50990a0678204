"""Per-frame loudness and periodicity of a voice, at 16 kHz: what the listener hears with.

Voice is periodic (vocal folds), drums and hiss are not, so periodicity tells a voice
from the beat playing under it; loudness in the voice band gives each syllable's
energy peak. Frames are HOP samples apart and WIN long.
"""
from __future__ import annotations

import functools

import numpy as np

SR = 16000
HOP = 160  # 10 ms
WIN = 512  # 32 ms: two periods of a 62 Hz voice
N_FFT = 1024  # twice WIN: the autocorrelation does not wrap around
BAND_HZ = (250.0, 4000.0)  # where a voice's energy is; kick and cymbals mostly outside
PITCH_HZ = (75.0, 400.0)  # lags searched for a period
FULL_SCALE_DB = 10 * np.log10((WIN / 4) ** 2 * 2)  # a full-scale sine's band energy reads about 0 dB


@functools.lru_cache(maxsize=1)
def _tables():
    window = np.hanning(WIN).astype(np.float32)
    freqs = np.fft.rfftfreq(N_FFT, 1 / SR)
    band = (freqs >= BAND_HZ[0]) & (freqs <= BAND_HZ[1])
    pitch_band = ((freqs >= 250) & (freqs <= 3000)).astype(np.float32)  # above a kick drum's body
    w_ac = np.fft.irfft(np.abs(np.fft.rfft(window, N_FFT)) ** 2, N_FFT)
    lags = np.arange(int(SR / PITCH_HZ[1]), int(SR / PITCH_HZ[0]) + 1)
    w_norm = (w_ac[lags] / w_ac[0]).astype(np.float32)  # the window's own decay with lag
    return window, band, pitch_band, lags, w_norm


def frame_features(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(band_db, periodicity) of every whole frame of `x` (16 kHz mono float32).

    Frame t covers x[t*HOP : t*HOP + WIN]. band_db (T,) is the energy between
    BAND_HZ in dB (a full-scale sine near 0 dB); periodicity (T,) in 0..1 is the
    highest normalised autocorrelation at a pitch lag (Boersma's window correction).
    """
    n = (len(x) - WIN) // HOP + 1
    if n <= 0:
        return np.zeros(0, np.float32), np.zeros(0, np.float32)
    window, band, pitch_band, lags, w_norm = _tables()
    frames = np.lib.stride_tricks.sliding_window_view(x, WIN)[::HOP][:n] * window  # (T, WIN)
    power = np.abs(np.fft.rfft(frames, N_FFT, axis=1)) ** 2  # (T, N_FFT//2+1)
    band_db = 10 * np.log10(power[:, band].sum(axis=1) + 1e-10) - FULL_SCALE_DB
    ac = np.fft.irfft(power * pitch_band, N_FFT, axis=1)  # (T, N_FFT)
    r0 = ac[:, :1] + 1e-10
    periodicity = np.clip((ac[:, lags] / r0 / w_norm).max(axis=1), 0.0, 1.0)
    return band_db.astype(np.float32), periodicity.astype(np.float32)
