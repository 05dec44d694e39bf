"""The media side of a call: an aiortc ``RTCPeerConnection`` (ICE, DTLS-SRTP, Opus).

This is the I/O glue the client layer drives; the call's logic lives in
:mod:`hotline.calls.state`. aiortc gathers every ICE candidate before
``setLocalDescription`` returns, so the SDP sent over the end-to-end channel is complete and no
``candidate`` trickling is needed. The configuration is always explicit: aiortc's default adds
a public STUN server, which would leak the call to a third party and hangs where it is
unreachable.

Audio in: ``--play FILE`` (aiortc ``MediaPlayer``, paced in real time). Audio out:
``--record FILE`` (``MediaRecorder``; WAV, Ogg/Opus, ... by extension), else discarded.

A reconnect (:meth:`CallMedia.renew`) replaces the peer connection — new ICE credentials, a new
DTLS certificate and so a new fingerprint for the new offer/answer — while the audio streams
(:mod:`hotline.calls.tracks`), the recording file and the recorder's taps carry on.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.contrib.media import MediaBlackhole, MediaPlayer, MediaRecorder
from aiortc.mediastreams import MediaStreamError
from cryptography import x509

from hotline.calls.config import IceServer, MediaOptions
from hotline.calls.errors import CallFailed
from hotline.calls.fingerprint import check_certificate
from hotline.calls.jitter import AUDIO_PREFETCH, audio_prefetch, shorten_jitter_buffers
from hotline.calls.tracks import IncomingAudio, OutgoingAudio, Tap

#: FFmpeg device formats tried for the sound card, in order
SOUND_BACKENDS = ("pulse", "alsa")
StateCallback = Callable[[str], None]


class CallMedia:
    """The call's audio both ways over one peer connection at a time (one audio transceiver).

    Raises (from the coroutines): CallFailed when aiortc refuses an SDP or a media file.
    """

    def __init__(
        self,
        options: MediaOptions | None = None,
        ice_servers: list[IceServer] | None = None,
        *,
        jitter_prefetch: int = AUDIO_PREFETCH,
    ) -> None:
        options = options or MediaOptions()
        self._servers = [
            RTCIceServer(urls=list(s.urls), username=s.username, credential=s.credential)
            for s in ice_servers or []
        ]
        self.jitter_prefetch = jitter_prefetch
        self.on_state: StateCallback | None = None
        self._player: MediaPlayer | None = None
        self._sink: MediaRecorder | MediaBlackhole = MediaBlackhole()
        self._closed = False
        self._sink_started = False
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
        self.outgoing = OutgoingAudio(audio)
        self.incoming = IncomingAudio()
        self._sink.addTrack(self.incoming)
        #: how many peer connections this call has had (1 + reconnects)
        self.connections = 0
        self.pc = self._new_connection()

    def _new_connection(self) -> RTCPeerConnection:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=self._servers))
        pc.addTransceiver(self.outgoing.feed(), direction="sendrecv")
        pc.on("track", self._on_track)
        pc.on("connectionstatechange", lambda: self._on_connection_state(pc))
        self.connections += 1
        return pc

    async def renew(self) -> None:
        """Replace the peer connection (a reconnect): the next :meth:`create_offer` or
        :meth:`create_answer` negotiates a new one, with a new DTLS certificate; the audio
        streams, the recording and the taps carry on. The old connection's news is ignored."""
        if self._closed:
            raise CallFailed("the call's media is closed")
        old, self.pc = self.pc, self._new_connection()
        self.incoming.detach()
        await old.close()

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
        pc = self.pc
        await pc.setLocalDescription(await pc.createOffer())
        shorten_jitter_buffers(pc, self.jitter_prefetch)
        return pc.localDescription.sdp

    async def create_answer(self, offer_sdp: str) -> str:
        """Callee: take the caller's offer (from the end-to-end channel) and answer it."""
        pc = self.pc
        await self._set_remote(offer_sdp, "offer")
        await pc.setLocalDescription(await pc.createAnswer())
        shorten_jitter_buffers(pc, self.jitter_prefetch)
        return pc.localDescription.sdp

    async def accept_answer(self, answer_sdp: str) -> None:
        """Caller: take the winning callee device's answer; ICE and DTLS start."""
        await self._set_remote(answer_sdp, "answer")

    async def _set_remote(self, sdp: str, kind: str) -> None:
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type=kind))
        except (ValueError, AssertionError, KeyError) as exc:  # aiortc's SDP parser
            raise CallFailed(f"the peer's SDP {kind} is not usable: {exc}") from exc
        shorten_jitter_buffers(self.pc, self.jitter_prefetch)
        if not self._sink_started:
            self._sink_started = True
            await self._sink.start()

    # -- state -------------------------------------------------------------------------------
    @property
    def state(self) -> str:
        """aiortc's ``connectionState``: new, connecting, connected, failed or closed."""
        return self.pc.connectionState

    @property
    def sent(self) -> OutgoingAudio | None:
        """What this side says, when it has something to say (a file or a microphone)."""
        return self.outgoing if self.outgoing.has_source else None

    @property
    def received(self) -> IncomingAudio | None:
        """What the other side says, once its track has arrived."""
        return self.incoming if self.incoming.first_at is not None else None

    def quiet_for(self, since: float) -> float:
        """Seconds without a received audio frame, counted from ``since`` at the earliest
        (monotonic; the peer sends silence when it has nothing to say, so quiet = lost)."""
        last = max(self.incoming.last_at or since, since)
        return max(0.0, time.monotonic() - last)

    def jitter_prefetch_in_effect(self) -> list[int]:
        """The prefetch (frames) of each audio receiver of the current connection."""
        return audio_prefetch(self.pc)

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
        """Let the recorder see every frame received and sent."""
        self.incoming.tap = received
        self.outgoing.tap = sent if self.outgoing.has_source else None

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio":
            self.incoming.attach(track)

    def _on_connection_state(self, pc: RTCPeerConnection) -> None:
        if self.on_state is not None and not self._closed and pc is self.pc:
            self.on_state(pc.connectionState)

    async def close(self) -> None:
        """Stop sending and recording (the recording file is complete afterwards)."""
        if self._closed:
            return
        self._closed = True
        self.set_taps(received=None, sent=None)
        self.outgoing.stop()
        self.incoming.stop()
        # a recording cut short is still a valid file up to its last frame
        with contextlib.suppress(MediaStreamError, OSError, ValueError):
            await self._sink.stop()
        await self.pc.close()
        await asyncio.sleep(0)


__all__ = ["CallMedia", "IceServer", "MediaOptions", "Tap"]
