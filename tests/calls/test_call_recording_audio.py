"""Recording with consent on a real call: a home server whose policy requires call recording
(``call_recording="required"``), two clients, aiortc on loopback, espeak-ng speech both ways.

Each side must be told before the call connects (a ``recording_notice`` naming the law), must
seal its recording in chunks while the call runs, and the chunks, opened with the custodian's
key and concatenated, must be an Ogg/Opus file whose tracks decode to the speech. A device
killed mid-call (SIGKILL, no hang-up) must leave the chunks it sealed until then. Without the
policy nothing is recorded.

Threshold: ``audio_match.THRESHOLD`` (0.8), as for what the callee hears. The recorded
"received" track is that same heard audio, Opus-encoded once more at 24 kbit/s
(``application=audio``); re-encoding espeak-ng speech that way alone correlates at 0.99 with
its input (measured), so the heard-audio argument for 0.8 holds; the negative control (the
other utterance) stays below ``NEGATIVE_CONTROL_MAX``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from audio_match import NEGATIVE_CONTROL_MAX, THRESHOLD, compare, load_wav, speak
from callkit import call_records, cdrs, flows, state_of
from harness import FAST_SCRYPT, LAW, PASSPHRASE, LiveServer, connect, start_server
from recording_kit import audio_of, chunk_records, decode_tracks, wav_seconds

from hotline.calls.config import MediaOptions
from hotline.calls.state import CallState
from hotline.client.device import HotlineClient
from hotline.client.events import ClientEvent
from hotline.server.admin import issue_enrolment

S = CallState
pytestmark = pytest.mark.slow


def details(server: LiveServer, principal: str, call_id: str) -> list[dict[str, str]]:
    """The call detail records proper (``callkit.cdrs`` without the recording chunks)."""
    return [d for d in cdrs(server, principal, call_id) if "audio" not in d]


@pytest.fixture
async def live_server(tmp_path: Path) -> AsyncIterator[LiveServer]:
    """This module's server requires call recording (overrides conftest's ``live_server``)."""
    server, stop = await start_server(tmp_path / "server.db", call_recording="required")
    try:
        yield server
    finally:
        await stop()


async def pump_events(
    *clients: HotlineClient,
    until: Callable[[], bool],
    seen: dict[str, list[tuple[ClientEvent, CallState | None]]],
    call_id: str,
    timeout: float = 10.0,
) -> None:
    """Like ``callkit.pump``, keeping every event each client reported, with the call's state
    on that client right after the sync that reported it."""
    deadline = time.monotonic() + timeout
    while not until():
        assert time.monotonic() < deadline, "condition not reached"
        for client in clients:
            events = await client.sync()
            await flows(client).tick()
            seen.setdefault(client.handle, []).extend(
                (e, state_of(client, call_id)) for e in events
            )
        await asyncio.sleep(0.02)


async def test_recorded_call_with_notices_chunks_and_speech(
    connected_pair, live_server, tmp_path
) -> None:
    washington, ottawa = connected_pair
    w_says = speak(tmp_path / "w.wav", "Washington calling Ottawa. This call is on the record.")
    o_says = speak(tmp_path / "o.wav", "Ottawa here. We understand the call is being recorded.")
    for client in (washington, ottawa):
        flows(client).recording_interval_s = 1.5  # >= 2 chunks per side in a short test
    seen: dict[str, list[tuple[ClientEvent, CallState | None]]] = {}

    call_id = await flows(washington).start_call(ottawa.handle, MediaOptions(play=w_says))
    await pump_events(
        washington, ottawa, seen=seen, call_id=call_id,
        until=lambda: state_of(ottawa, call_id) is S.RINGING_IN,
    )  # fmt: skip
    await flows(ottawa).accept(call_id, MediaOptions(play=o_says))
    both_active = lambda: all(state_of(c, call_id) is S.ACTIVE for c in (washington, ottawa))  # noqa: E731
    await pump_events(washington, ottawa, until=both_active, seen=seen, call_id=call_id)
    longest = max(len(load_wav(p)[0]) / load_wav(p)[1] for p in (w_says, o_says))
    await asyncio.sleep(longest + 0.5)
    await flows(washington).hangup(call_id)
    await pump_events(
        washington, ottawa, seen=seen, call_id=call_id,
        until=lambda: state_of(ottawa, call_id) is S.ENDED,
    )  # fmt: skip

    # 1. both parties were told, by the other side, under which law, before connecting
    for me, peer in ((washington, ottawa), (ottawa, washington)):
        live = flows(me).get(call_id)
        told = [n for n in live.notices if n.by == peer.handle]
        assert [n.law for n in told] == [LAW], live.notices
        assert told[0].state in (S.RINGING_IN, S.RINGING_OUT)  # before CONNECTING/ACTIVE
        own = [n for n in live.notices if n.by == me.handle]
        assert [n.law for n in own] == [LAW]  # and its own device says it records too
        # and the user was shown it as a call event (ACTIVE comes later, from the media)
        texts = [e.text for e, _ in seen[me.handle] if e.kind == "call"]
        notice = next(i for i, t in enumerate(texts) if "recording notice" in t)
        assert LAW in texts[notice] and peer.handle in texts[notice]
        assert "connecting" not in texts or notice < texts.index("connecting")
        records = details(live_server, me.handle, call_id)
        from_accept = records[[r["state"] for r in records].index("connecting") :]
        assert {r["recorded_under"] for r in from_accept} == {LAW}  # the callee: from accept
        assert records[-1]["peer_recorded_under"] == LAW and records[-1]["outcome"] == "answered"

    # 2. each side sealed >= 2 chunks, only after acceptance; together they decode to speech
    for me, said, heard in ((washington, w_says, o_says), (ottawa, o_says, w_says)):
        chunks = chunk_records(live_server, me.handle, call_id)
        assert len(chunks) >= 2, f"{me.handle}: {len(chunks)} chunk(s)"
        assert chunks[-1].detail["final"] == "1"
        assert all(c.detail["recorded_under"] == LAW for c in chunks)
        log = [
            r for r in call_records(live_server, me.handle) if r.detail.get("call_id") == call_id
        ]
        connecting = next(i for i, r in enumerate(log) if r.detail.get("state") == "connecting")
        assert log.index(chunks[0]) > connecting, "nothing recorded before the call was accepted"
        tracks = decode_tracks(audio_of(chunks), tmp_path, me.handle.split("@")[0])
        assert set(tracks) == {"received", "sent"}
        for track, source, other in (("received", heard, said), ("sent", said, heard)):
            found = compare(tracks[track], source)
            control = compare(tracks[track], other)
            print(
                f"\n{me.handle} {track}: {len(chunks)} chunks, {wav_seconds(tracks[track]):.1f} s,"
                f" correlation {found.correlation:.3f} (other utterance {control.correlation:.3f})"
            )
            assert found.correlation > THRESHOLD
            assert abs(control.correlation) < NEGATIVE_CONTROL_MAX


async def test_without_the_policy_nothing_is_recorded(tmp_path) -> None:
    """The same call on a server without the policy: no notice, no chunk."""
    server, stop = await start_server(tmp_path / "plain.db")  # call_recording="off"
    try:

        async def register(name: str) -> HotlineClient:
            handle = f"{name}@{server.config.domain}"
            client = await HotlineClient.register(
                tmp_path / f"plain-{name}", PASSPHRASE, server_url=server.url,
                enrolment_token=await issue_enrolment(server.store, handle, time.time()),
                handle=handle, display_name=name, scrypt=FAST_SCRYPT,
            )  # fmt: skip
            flows(client).recording_interval_s = 0.3
            return client

        washington, ottawa = await register("potus"), await register("pm")
        try:
            await connect(washington, ottawa)
            says = speak(tmp_path / "w.wav", "Off the record.")
            call_id = await flows(washington).start_call(ottawa.handle, MediaOptions(play=says))
            seen: dict[str, list[tuple[ClientEvent, CallState | None]]] = {}
            ringing = lambda: state_of(ottawa, call_id) is S.RINGING_IN  # noqa: E731
            await pump_events(washington, ottawa, until=ringing, seen=seen, call_id=call_id)
            await flows(ottawa).accept(call_id)
            active = lambda: all(state_of(c, call_id) is S.ACTIVE for c in (washington, ottawa))  # noqa: E731
            await pump_events(washington, ottawa, until=active, seen=seen, call_id=call_id)
            await asyncio.sleep(1.5)  # five intervals of media flowing
            received = flows(ottawa).get(call_id).media
            assert received is not None and received.received is not None
            assert received.received.frames > 0, "media flowed"
            await flows(washington).hangup(call_id)
            ended = lambda: state_of(ottawa, call_id) is S.ENDED  # noqa: E731
            await pump_events(washington, ottawa, until=ended, seen=seen, call_id=call_id)
            for client in (washington, ottawa):
                live = flows(client).get(call_id)
                assert live.notices == [] and live.recording is None
                assert chunk_records(server, client.handle, call_id) == []
                records = details(server, client.handle, call_id)
                assert records and all(r["recorded_under"] == "" for r in records)
            assert not any("recording notice" in e.text for es in seen.values() for e, _ in es)
        finally:
            for client in (washington, ottawa):
                await flows(client).shutdown()
                await client.close()
    finally:
        await stop()


async def test_a_device_killed_mid_call_leaves_its_sealed_chunks(
    connected_pair, live_server, tmp_path
) -> None:
    """``hotline call`` as a real process, SIGKILLed mid-call (no hang-up, no final chunk):
    what it sealed every 5 s stays in the log and decodes; at most about one interval is lost."""
    from test_call_cli import hotline

    washington, ottawa = connected_pair
    text = "This is a long statement from Washington, recorded for the archive. " * 3
    says = speak(tmp_path / "long.wav", text)
    calling = await hotline(tmp_path / "home-potus", "call", "pm", "--play", str(says))
    try:
        seen: dict[str, list[tuple[ClientEvent, CallState | None]]] = {}
        ringing = lambda: bool(flows(ottawa).ringing())  # noqa: E731
        await pump_events(ottawa, until=ringing, seen=seen, call_id="", timeout=30)
        call_id = flows(ottawa).ringing()[0].call_id
        await flows(ottawa).accept(call_id)
        active = lambda: state_of(ottawa, call_id) is S.ACTIVE  # noqa: E731
        await pump_events(ottawa, until=active, seen=seen, call_id=call_id)
        active_at = time.monotonic()
        deadline = active_at + 15
        while not chunk_records(live_server, washington.handle, call_id):
            assert time.monotonic() < deadline, "the caller sealed no chunk within 15 s"
            await asyncio.sleep(0.2)
        await asyncio.sleep(2.0)
        os.kill(calling.pid, signal.SIGKILL)  # a crash: no hang-up, no last chunk
        killed_at = time.monotonic()
        await calling.wait()
    finally:
        if calling.returncode is None:
            calling.kill()
            await calling.wait()
    await flows(ottawa).hangup(call_id)

    chunks = chunk_records(live_server, washington.handle, call_id)
    assert chunks and all(c.detail["final"] == "0" for c in chunks)
    assert details(live_server, washington.handle, call_id)[-1]["state"] == "active"
    tracks = decode_tracks(audio_of(chunks), tmp_path, "killed")
    kept = wav_seconds(tracks["sent"])
    lost = (killed_at - active_at) - kept
    found = compare(tracks["sent"], says)
    print(
        f"\nkilled after {killed_at - active_at:.1f} s of call: {len(chunks)} chunk(s) sealed,"
        f" {kept:.1f} s of audio kept (~{lost:.1f} s lost), correlation {found.correlation:.3f}"
    )
    assert found.correlation > THRESHOLD
    assert lost < 5.0 + 1.5, "more than one sealing interval (5 s) and connection set-up lost"
    with sqlite3.connect(live_server.db_path) as db:  # the log itself is intact
        assert db.execute("SELECT count(*) FROM log_entries").fetchone()[0] > len(chunks)
