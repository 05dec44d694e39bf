"""Call recording with consent, without a real call: the Ogg/Opus chunking, the record size
limit, the policy as served and configured, and the notices in the state machine."""

from __future__ import annotations

import math
import time
from fractions import Fraction
from pathlib import Path

import httpx
import msgspec
import numpy as np
import pytest
from audio_match import compare
from harness import CUSTODIAN, FAST_SCRYPT, LAW, PASSPHRASE, start_server
from recording_kit import decode_tracks, wav_seconds

from hotline.calls.recording import MAX_CHUNK_BYTES, CallRecorder, Track, ogg_crc
from hotline.calls.state import Call, CallState
from hotline.cli.server_cmds import call_recording_policy
from hotline.client.device import HotlineClient
from hotline.records.sealing import seal_record
from hotline.server.admin import issue_enrolment
from hotline.server.config import ServerConfig
from hotline.wire.calls import CallsConfig
from hotline.wire.codec import decode
from hotline.wire.encoding import b64e
from hotline.wire.envelope import CallSignal
from hotline.wire.errors import MalformedInput
from hotline.wire.records import MAX_LEAF, Record

S = CallState


def tone_frames(seconds: float, rate: int = 16_000, frame: int = 320) -> tuple[list, np.ndarray]:
    """20 ms mono frames of a voice-like sound (a gliding 120-180 Hz pitch with ten harmonics,
    in four-per-second syllables), and the samples."""
    import av

    n = int(seconds * rate)
    t = np.arange(n) / rate
    phase = 2 * math.pi * np.cumsum(150 + 30 * np.sin(2 * math.pi * 3 * t)) / rate
    voice = sum(np.sin(k * phase) / k for k in range(1, 11))
    syllables = 0.6 + 0.4 * np.sin(2 * math.pi * 4 * t)
    samples = (5000 * voice * syllables).astype(np.int16)
    frames = []
    for start in range(0, n, frame):
        f = av.AudioFrame.from_ndarray(samples[None, start : start + frame], "s16", "mono")
        f.sample_rate, f.pts, f.time_base = rate, start, Fraction(1, rate)
        frames.append(f)
    return frames, samples


def write_wav(path: Path, samples: np.ndarray, rate: int) -> Path:
    import wave

    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return path


def test_ogg_crc_is_the_ogg_one() -> None:
    # the bitwise definition gives 0x5FB0A94F for "OggS"; FFmpeg's Ogg demuxer also drops
    # pages whose CRC is wrong, so the decoding tests below check every page's CRC too
    assert ogg_crc(b"") == 0
    assert ogg_crc(b"OggS") == 0x5FB0A94F


def test_chunks_are_whole_pages_and_every_prefix_decodes(tmp_path) -> None:
    frames, samples = tone_frames(3.0)
    recorder = CallRecorder("call-1", [Track("received", "pm@x"), Track("sent", "potus@x")])
    chunks = []
    for i, frame in enumerate(frames):
        recorder.feed("received", frame)
        if i % 2 == 0:
            recorder.feed("sent", frame)  # half of the frames: the tracks differ in length
        if i % 50 == 49:  # a cut each second, as the client does every few seconds
            chunks.append(recorder.cut())
    recorder.finish()
    while recorder.pending:
        chunks.append(recorder.cut())
    assert len(chunks) >= 3 and all(c.startswith(b"OggS") for c in chunks)
    assert recorder.cut() == b"" and not recorder.errors
    # a device that died after chunk k leaves a file that still decodes, up to that point
    seconds = []
    for k in range(1, len(chunks) + 1):
        tracks = decode_tracks(b"".join(chunks[:k]), tmp_path, f"prefix{k}")
        assert set(tracks) == {"received", "sent"}
        seconds.append(wav_seconds(tracks["received"]))
    assert seconds == sorted(seconds) and seconds[0] < seconds[-1]
    # the whole file: exact lengths (pre-skip and end trimming right) and the same waveform
    assert seconds[-1] == pytest.approx(3.0, abs=1e-3)
    assert wav_seconds(tracks["sent"]) == pytest.approx(1.5, abs=0.03)
    source = write_wav(tmp_path / "tone.wav", samples, 16_000)
    assert compare(tracks["received"], source).correlation > 0.9


def test_the_largest_chunk_fits_one_log_entry() -> None:
    audio = np.random.default_rng(1).bytes(MAX_CHUNK_BYTES)
    record = Record(
        record_id="r" * 22, log_id="washington.test/records", kind="call", side="local",
        principal="potus@washington.test", device="d" * 12, sender="potus@washington.test",
        recipients=["pm@ottawa.test"], created_at_ms=1, captured_at_ms=1,
        body="call x" * 10 + ": recording chunk 999 (last)",
        detail={"call_id": "c" * 16, "chunk": "999", "codec": "opus/ogg", "sha256": "0" * 64,
                "media_type": "audio/ogg; codecs=opus", "offset": "9" * 10, "size": "40960",
                "tracks": "received=" + "p" * 100 + ",sent=" + "q" * 100, "final": "1",
                "recorded_under": "L" * 512, "audio": b64e(audio)},
    )  # fmt: skip
    leaf = seal_record(CUSTODIAN.public, record)
    assert len(leaf) <= MAX_LEAF, f"{len(leaf)} > {MAX_LEAF}"


def test_policy_format_and_server_settings(tmp_path) -> None:
    config = decode(b'{"v":1,"recording":"required","law":"Archives Act"}', CallsConfig)
    assert (config.recording, config.law) == ("required", "Archives Act")
    assert decode(b'{"v":1}', CallsConfig).recording == "off"
    with pytest.raises(MalformedInput):
        decode(b'{"v":1,"recording":"sometimes"}', CallsConfig)
    with pytest.raises(ValueError, match="needs a records archive"):
        ServerConfig(domain="x.test", database_url="sqlite://", call_recording="required")
    with pytest.raises(ValueError, match="'required' or 'off'"):
        ServerConfig(domain="x.test", database_url="sqlite://", call_recording="yes")
    # hotline server --call-recording: kept in the data dir like the records law
    assert call_recording_policy(tmp_path, None) == "off"
    assert call_recording_policy(tmp_path, "required") == "required"
    assert call_recording_policy(tmp_path, None) == "required"
    assert (tmp_path / "call-recording.txt").read_text().strip() == "required"
    with pytest.raises(MalformedInput):
        call_recording_policy(tmp_path, "maybe")


@pytest.mark.parametrize("policy", ["required", "off"])
async def test_server_serves_its_policy_with_the_archive_law(tmp_path, policy) -> None:
    server, stop = await start_server(tmp_path / "s.db", call_recording=policy)
    try:
        handle = f"alice@{server.config.domain}"
        alice = await HotlineClient.register(
            tmp_path / "a", PASSPHRASE, server_url=server.url,
            enrolment_token=await issue_enrolment(server.store, handle, time.time()),
            handle=handle, display_name="A", scrypt=FAST_SCRYPT,
        )  # fmt: skip
        try:
            await alice.login()
            async with httpx.AsyncClient(base_url=server.url) as http:
                reply = await http.get(
                    "/v1/calls/config", headers={"authorization": f"Bearer {alice.server.token}"}
                )
            config = msgspec.json.decode(reply.content, type=CallsConfig)
            assert config.recording == policy
            assert config.law == (LAW if policy == "required" else "")
        finally:
            await alice.close()
    finally:
        await stop()


def test_notices_precede_offer_and_answer_and_reach_the_records() -> None:
    caller = Call.outgoing("call-1", "potus@w.test", "pm@o.test", "dev-w", None)
    out = caller.start(1000, "v=0 offer", recorded_under="Presidential Records Act")
    assert [s.event for s in out.signals] == ["recording_notice", "offer"]
    assert out.signals[0].reason == "Presidential Records Act"
    assert out.records[0].detail()["recorded_under"] == "Presidential Records Act"

    callee = Call.incoming("call-1", "potus@w.test", "pm@o.test", "dev-o", None)
    out = callee.receive_offer(1010, "dev-w", peer_recorded_under="Presidential Records Act")
    assert callee.state is S.RINGING_IN
    assert out.records[0].detail()["peer_recorded_under"] == "Presidential Records Act"
    out = callee.accept(1020, "v=0 answer", recorded_under="Library and Archives of Canada Act")
    assert [s.event for s in out.signals] == ["recording_notice", "answer"]

    # the caller hears notices from the callee's devices; the answering device's one counts
    other = CallSignal(call_id="call-1", event="recording_notice", reason="another law")
    assert caller.receive(1015, other, "dev-o2").notice == "another law"
    for signal in out.signals:
        result = caller.receive(1030, signal, "dev-o")
    assert caller.state is S.CONNECTING
    assert caller.peer_recorded_under == "Library and Archives of Canada Act"
    assert result.records[-1].detail()["peer_recorded_under"] == caller.peer_recorded_under

    # without a policy there is no notice at all
    quiet = Call.outgoing("call-2", "potus@w.test", "pm@o.test", "dev-w", None)
    assert [s.event for s in quiet.start(1, "sdp").signals] == ["offer"]
    assert quiet.snapshot().detail()["recorded_under"] == ""
