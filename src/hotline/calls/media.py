"""The media side of a call: one aiortc ``RTCPeerConnection`` (ICE, DTLS-SRTP, Opus).

This is the I/O glue the client layer drives; the call's logic lives in
:mod:`hotline.calls.state`. aiortc gathers every ICE candidate before
``setLocalDescription`` returns, so the SDP sent over the end-to-end channel is complete and no
``candidate`` trickling is needed. The configuration is always explicit: aiortc's default adds
a public STUN server, which would leak the call to a third party and hangs where it is
unreachable.

Audio in: ``--play FILE`` (aiortc ``MediaPlayer``, paced in real time). Audio out:
``--record FILE`` (``MediaRecorder``; WAV, Ogg/Opus, ... by extension), else discarded.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.contrib.media import MediaBlackhole, MediaPlayer, MediaRecorder
from aiortc.mediastreams import MediaStreamError
from av.audio.frame import AudioFrame
from av.frame import Frame
from av.packet import Packet
from cryptography import x509

from hotline.calls.config import IceServer, MediaOptions
from hotline.calls.errors import CallFailed
from hotline.calls.fingerprint import check_certificate

Tap = Callable[[AudioFrame], None]


class TimedTrack(MediaStreamTrack):
    """Passes frames through and notes when the first one went by (for latency figures);
    ``tap`` (the call recorder) sees every audio frame on the way."""

    kind = "audio"

    def __init__(self, source: MediaStreamTrack) -> None:
        super().__init__()
        self.source = source
        self.first_at: float | None = None
        self.frames = 0
        self.tap: Tap | None = None

    async def recv(self) -> Frame | Packet[Any]:
        frame = await self.source.recv()
        if self.first_at is None:
            self.first_at = time.monotonic()
        self.frames += 1
        if self.tap is not None and isinstance(frame, AudioFrame):
            self.tap(frame)
        return frame

    def stop(self) -> None:
        super().stop()
        self.source.stop()


#: FFmpeg device formats tried for the sound card, in order
SOUND_BACKENDS = ("pulse", "alsa")
StateCallback = Callable[[str], None]


class CallMedia:
    """One peer connection with one bidirectional audio transceiver.

    Raises (from the coroutines): CallFailed when aiortc refuses an SDP or a media file.
    """

    def __init__(
        self,
        options: MediaOptions | None = None,
        ice_servers: list[IceServer] | None = None,
    ) -> None:
        options = options or MediaOptions()
        servers = [
            RTCIceServer(urls=list(s.urls), username=s.username, credential=s.credential)
            for s in ice_servers or []
        ]
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=servers))
        self.on_state: StateCallback | None = None
        self.sent: TimedTrack | None = None
        self.received: TimedTrack | None = None
        self._player: MediaPlayer | None = None
        self._sink: MediaRecorder | MediaBlackhole = MediaBlackhole()
        self._closed = False
        self._received_tap: Tap | None = None
        self.warnings: list[str] = []
        try:
            if options.play is not None:
                self._player = MediaPlayer(str(options.play))
            if options.record is not None:
                self._sink = MediaRecorder(str(options.record))
        except Exception as exc:  # av raises its own OSError subclasses and ValueError
            raise CallFailed(f"cannot open the call's media file: {exc}") from exc
        if options.sound_card:
            self._open_sound_card(microphone=options.play is None, speaker=options.record is None)
        audio = self._player.audio if self._player is not None else None
        if audio is not None:
            self.sent = TimedTrack(audio)
            self.pc.addTransceiver(self.sent, direction="sendrecv")
        else:
            self.pc.addTransceiver("audio", direction="sendrecv")
        self.pc.on("track", self._on_track)
        self.pc.on("connectionstatechange", self._on_connection_state)

    def _open_sound_card(self, *, microphone: bool, speaker: bool) -> None:
        """The system's default microphone and speaker through FFmpeg (PulseAudio, else ALSA).

        Where none exists (a server, CI), the call goes on without: nothing is sent or heard,
        and ``warnings`` says so.
        """
        for backend in SOUND_BACKENDS:
            try:
                if microphone and self._player is None:
                    self._player = MediaPlayer("default", format=backend)
                if speaker and isinstance(self._sink, MediaBlackhole):
                    self._sink = MediaRecorder("default", format=backend)
            except Exception:  # noqa: S112 - av: no such device or backend; try the next
                continue
        if microphone and self._player is None:
            self.warnings.append("no microphone found: nothing is sent")
        if speaker and isinstance(self._sink, MediaBlackhole):
            self.warnings.append("no speaker found: what the other side says is not played")

    # -- SDP offer/answer (RFC 3264) -------------------------------------------------------
    async def create_offer(self) -> str:
        """Caller: our SDP offer, with every ICE candidate and the DTLS fingerprints."""
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.pc.localDescription.sdp

    async def create_answer(self, offer_sdp: str) -> str:
        """Callee: take the caller's offer (from the end-to-end channel) and answer it."""
        await self._set_remote(offer_sdp, "offer")
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        return self.pc.localDescription.sdp

    async def accept_answer(self, answer_sdp: str) -> None:
        """Caller: take the winning callee device's answer; ICE and DTLS start."""
        await self._set_remote(answer_sdp, "answer")

    async def _set_remote(self, sdp: str, kind: str) -> None:
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type=kind))
        except (ValueError, AssertionError, KeyError) as exc:  # aiortc's SDP parser
            raise CallFailed(f"the peer's SDP {kind} is not usable: {exc}") from exc
        await self._sink.start()

    # -- state -------------------------------------------------------------------------------
    @property
    def state(self) -> str:
        """aiortc's ``connectionState``: new, connecting, connected, failed or closed."""
        return self.pc.connectionState

    def peer_certificate(self) -> x509.Certificate | None:
        """The certificate the peer presented in the DTLS handshake (None before one)."""
        for transceiver in self.pc.getTransceivers():
            dtls = transceiver.receiver.transport
            # aiortc keeps the pyOpenSSL connection private; it has no public accessor.
            ssl = getattr(dtls, "_ssl", None)
            if ssl is not None:
                cert = ssl.get_peer_certificate(as_cryptography=True)
                return cert if isinstance(cert, x509.Certificate) else None
        return None

    def check_fingerprint(self, e2e_sdp: str) -> None:
        """The peer's DTLS certificate must match the SDP received over the E2E channel.

        Raises: DtlsFingerprintMismatch.
        """
        check_certificate(self.peer_certificate(), e2e_sdp)

    def set_taps(self, *, received: Tap | None, sent: Tap | None) -> None:
        """Let the recorder see every frame received (now or once the track arrives) and sent."""
        self._received_tap = received
        if self.received is not None:
            self.received.tap = received
        if self.sent is not None:
            self.sent.tap = sent

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio" and self.received is None:
            self.received = TimedTrack(track)
            self.received.tap = self._received_tap
            self._sink.addTrack(self.received)

    def _on_connection_state(self) -> None:
        if self.on_state is not None and not self._closed:
            self.on_state(self.pc.connectionState)

    async def close(self) -> None:
        """Stop sending and recording (the recording file is complete afterwards)."""
        if self._closed:
            return
        self._closed = True
        self.set_taps(received=None, sent=None)
        if self.sent is not None:
            self.sent.stop()
        # a recording cut short is still a valid file up to its last frame
        with contextlib.suppress(MediaStreamError, OSError, ValueError):
            await self._sink.stop()
        await self.pc.close()
        await asyncio.sleep(0)


__all__ = ["CallMedia", "IceServer", "MediaOptions", "Tap", "TimedTrack"]
