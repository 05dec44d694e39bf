"""Without files, a call uses the sound card; where there is none it goes on, and says so."""

from __future__ import annotations

import pytest

from hotline.calls import media as media_module
from hotline.calls.config import MediaOptions
from hotline.calls.media import CallMedia


async def test_no_sound_card_warns_and_the_call_can_still_be_set_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(media_module, "SOUND_BACKENDS", ("no-such-backend",))
    media = CallMedia(MediaOptions(sound_card=True), [])
    try:
        assert media.warnings == [
            "no microphone found: nothing is sent",
            "no speaker found: what the other side says is not played",
        ]
        assert "m=audio" in await media.create_offer()
    finally:
        await media.close()


async def test_files_take_precedence_over_the_sound_card(tmp_path) -> None:
    import wave

    path = tmp_path / "a.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(48_000)
        out.writeframes(b"\x00\x00" * 4800)
    media = CallMedia(MediaOptions(play=path, record=tmp_path / "b.wav", sound_card=True), [])
    try:
        assert media.warnings == []
    finally:
        await media.close()
