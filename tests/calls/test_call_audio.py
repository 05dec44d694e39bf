"""Speech through a real call, both ways: two clients, a real server, aiortc on loopback.

Each side plays a known utterance (espeak-ng, generated here) with ``--play`` and records the
other with ``--record``; the recording must match the source, and the lag found by the
cross-correlation gives the added one-way delay (printed, not asserted: timing on a loaded CI
machine proves nothing).
"""

from __future__ import annotations

import asyncio

import pytest
from audio_match import NEGATIVE_CONTROL_MAX, THRESHOLD, compare, load_wav, speak
from callkit import cdrs, flows, pump, state_of

from hotline.calls.config import MediaOptions
from hotline.calls.state import CallState

S = CallState
pytestmark = pytest.mark.slow


async def test_speech_both_ways_matches_the_source(connected_pair, live_server, tmp_path) -> None:
    washington, ottawa = connected_pair
    w_says = speak(tmp_path / "washington.wav", "Washington calling Ottawa on the hotline.")
    o_says = speak(tmp_path / "ottawa.wav", "Ottawa here. We hear you loud and clear.")
    w_hears, o_hears = tmp_path / "w-hears.wav", tmp_path / "o-hears.wav"

    call_id = await flows(washington).start_call(
        ottawa.handle, MediaOptions(play=w_says, record=w_hears)
    )
    await pump(washington, ottawa, until=lambda: state_of(ottawa, call_id) is S.RINGING_IN)
    await flows(ottawa).accept(call_id, MediaOptions(play=o_says, record=o_hears))
    both_active = lambda: all(state_of(c, call_id) is S.ACTIVE for c in (washington, ottawa))  # noqa: E731
    await pump(washington, ottawa, until=both_active)
    longest = max(len(load_wav(p)[0]) / load_wav(p)[1] for p in (w_says, o_says))
    await asyncio.sleep(longest + 0.4)
    await flows(washington).hangup(call_id)
    await pump(washington, ottawa, until=lambda: state_of(ottawa, call_id) is S.ENDED)

    for speaker, source, listener, recording in (
        (washington, w_says, ottawa, o_hears),
        (ottawa, o_says, washington, w_hears),
    ):
        found = compare(recording, source)
        other = compare(recording, o_says if source == w_says else w_says)
        sent = flows(speaker).get(call_id).media
        heard = flows(listener).get(call_id).media
        assert sent is not None and heard is not None
        assert sent.sent is not None and heard.received is not None
        assert sent.sent.first_at is not None and heard.received.first_at is not None
        # source sample 0 left at sent.first_at (the player is paced in real time); it was
        # heard `lag` samples after the first received frame arrived
        delay_ms = 1000 * (heard.received.first_at - sent.sent.first_at) + found.lag_ms
        print(
            f"\n{speaker.handle} -> {listener.handle}: correlation {found.correlation:.3f} "
            f"(other utterance {other.correlation:.3f}), lag in recording {found.lag_ms:.1f} ms, "
            f"added one-way delay ~{delay_ms:.1f} ms"
        )
        assert found.correlation > THRESHOLD
        assert abs(other.correlation) < NEGATIVE_CONTROL_MAX
    assert cdrs(live_server, washington.handle, call_id)[-1]["outcome"] == "answered"
