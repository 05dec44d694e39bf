"""Comparing a recording with its source: resample, then normalised cross-correlation (numpy)."""

from __future__ import annotations

import os
import shutil
import subprocess
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest


def load_wav(path: Path) -> tuple[np.ndarray, int]:
    """Mono float samples and the sample rate of a 16-bit PCM WAV file."""
    with wave.open(str(path)) as w:
        rate, channels, n = w.getframerate(), w.getnchannels(), w.getnframes()
        assert w.getsampwidth() == 2, "16-bit PCM expected"
        raw = w.readframes(n)
    # A recorder stopped mid-frame can leave a partial last frame: keep whole frames only.
    whole = len(raw) // (2 * channels) * (2 * channels)
    samples = np.frombuffer(raw[:whole], dtype=np.int16).astype(np.float64)
    return samples.reshape(-1, channels).mean(axis=1), rate


def resample(x: np.ndarray, rate: int, to: int) -> np.ndarray:
    """Linear-interpolation resampling (enough for speech-band correlation)."""
    if rate == to:
        return x
    t = np.arange(int(len(x) * to / rate)) / to
    return np.interp(t, np.arange(len(x)) / rate, x)


@dataclass(frozen=True)
class Match:
    correlation: float  # normalised cross-correlation at the best lag, over the overlap
    lag: int  # where the source's first sample lies in the recording (samples; may be < 0)
    rate: int

    @property
    def lag_ms(self) -> float:
        return 1000 * self.lag / self.rate


def match(recording: np.ndarray, source: np.ndarray, rate: int) -> Match:
    """Find ``source`` in ``recording`` (same rate) by FFT cross-correlation."""
    n = len(recording) + len(source)
    size = 1 << (n - 1).bit_length()
    c = np.fft.irfft(np.fft.rfft(recording, size) * np.conj(np.fft.rfft(source, size)), size)
    lags = np.concatenate([np.arange(len(recording)), np.arange(-len(source) + 1, 0)])
    values = np.concatenate([c[: len(recording)], c[size - len(source) + 1 :]])
    best = int(np.argmax(values))
    lag = int(lags[best])
    if lag >= 0:
        x = recording[lag : lag + len(source)]
        y = source[: len(x)]
    else:
        y = source[-lag:]
        x = recording[: len(y)]
        y = y[: len(x)]
    denominator = float(np.sqrt(np.dot(x, x) * np.dot(y, y))) or 1.0
    return Match(float(np.dot(x, y)) / denominator, lag, rate)


def compare(recorded: Path, source: Path) -> Match:
    rec, rec_rate = load_wav(recorded)
    src, src_rate = load_wav(source)
    return match(rec, resample(src, src_rate, rec_rate), rec_rate)


#: Why 0.8: Opus at 48 kHz keeps the speech waveform (measured here: 0.978 both ways on a
#: loopback call); the same recording against a *different* utterance gives about 0.11 (the
#: negative control in test_call_audio), so 0.8 separates "this is the source, through the
#: codec" from "something else", with room for a few frames lost while the path comes up.
THRESHOLD = 0.8
NEGATIVE_CONTROL_MAX = 0.5


def speak(path: Path, text: str) -> Path:
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        reason = "espeak-ng is not installed (apt-get install espeak-ng): no real speech to send"
        if os.environ.get("CI") == "true":
            pytest.fail(reason + "; CI must install it")
        pytest.skip(reason)
    subprocess.run([espeak, "-s", "170", "-w", str(path), text], check=True)
    return path


def with_pause(path: Path, first: Path, pause_s: float, second: Path) -> Path:
    """``first``, ``pause_s`` of silence, then ``second`` (16-bit WAV files of the same rate)."""
    with wave.open(str(first)) as a, wave.open(str(second)) as b:
        assert a.getparams()[:3] == b.getparams()[:3], "same channels, width and rate"
        params = a.getparams()
        frames = a.readframes(a.getnframes()), b.readframes(b.getnframes())
    gap = bytes(params.sampwidth * params.nchannels * round(params.framerate * pause_s))
    with wave.open(str(path), "wb") as out:
        out.setparams(params)
        out.writeframes(frames[0] + gap + frames[1])
    return path
