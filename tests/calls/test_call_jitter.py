"""The shorter audio jitter buffer (issue 4: added one-way delay ≤ 60 ms) is really in effect.

``hotline.calls.jitter`` replaces a private attribute of aiortc's ``RTCRtpReceiver``; if a new
aiortc moves it, these tests fail instead of the delay silently coming back. That audio still
arrives intact through the shorter buffer is ``test_call_audio``'s correlation test.
"""

from __future__ import annotations

import pytest
from aiortc import RTCPeerConnection
from callkit import connect_media

from hotline.calls.jitter import AUDIO_PREFETCH, audio_prefetch, shorten_jitter_buffers
from hotline.calls.media import CallMedia


async def test_both_sides_of_a_call_use_the_short_buffer() -> None:
    a, b = CallMedia(), CallMedia()
    try:
        await connect_media(a, b)
        assert AUDIO_PREFETCH < 4  # aiortc's default is 4 frames (~80 ms)
        assert a.jitter_prefetch_in_effect() == [AUDIO_PREFETCH]
        assert b.jitter_prefetch_in_effect() == [AUDIO_PREFETCH]
        # and after a reconnect's new connection too
        await a.renew()
        await b.renew()
        await b.create_answer(await a.create_offer())
        assert a.jitter_prefetch_in_effect() == [AUDIO_PREFETCH]
        assert b.jitter_prefetch_in_effect() == [AUDIO_PREFETCH]
    finally:
        await a.close()
        await b.close()


async def test_prefetch_is_validated_and_plain_aiortc_keeps_its_default() -> None:
    pc = RTCPeerConnection()
    try:
        pc.addTransceiver("audio")
        assert audio_prefetch(pc) == [4]
        with pytest.raises(ValueError, match=r"1\.\.8"):
            shorten_jitter_buffers(pc, 0)
        assert shorten_jitter_buffers(pc, 2) == 1
        assert audio_prefetch(pc) == [2]
    finally:
        await pc.close()
