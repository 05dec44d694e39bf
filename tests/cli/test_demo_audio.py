"""The demo's speech source works with and without espeak-ng, and the loudness meter agrees."""

from __future__ import annotations

import shutil
import wave
from pathlib import Path

import pytest

from hotline.cli import demo_call


def test_tone_fallback_without_espeak(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo_call.shutil, "which", lambda _name: None)
    path = demo_call.speech(tmp_path / "tone.wav", "ignored", 200)
    with wave.open(str(path), "rb") as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (48_000, 1, 2)
        assert wav.getnframes() == 3 * 48_000
    assert 2.0 < demo_call.seconds_heard(path) <= 3.0


def test_silence_is_not_heard(tmp_path: Path) -> None:
    path = tmp_path / "silence.wav"
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(48_000)
        wav.writeframes(b"\x00\x00" * 48_000)
    assert demo_call.seconds_heard(path) == 0.0


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_espeak_speech_is_heard(tmp_path: Path) -> None:
    path = demo_call.speech(tmp_path / "s.wav", "Washington calling Ottawa.", 200)
    assert demo_call.seconds_heard(path) > 0.5
