"""The call's audio, one stream each way, that outlives the peer connections carrying it.

A reconnect (issue 4: "network loss → reconnect attempt, then end") replaces the
``RTCPeerConnection``; what the user says and hears must not restart with it. So:

* :class:`OutgoingAudio` reads the microphone / ``--play`` file in real time, from the moment
  media first flows to the end of the call, and hands each 20 ms frame to the current peer
  connection's sender (:meth:`OutgoingAudio.feed`). What is said while the path is down is
  lost, as on a phone, instead of piling up and arriving late. When there is nothing to send
  (no microphone, or the file ended) it sends silence, so the other side can tell "quiet" from
  "the network is gone" by whether frames arrive at all.
* :class:`IncomingAudio` is the one track the speaker / ``--record`` file and the recorder see;
  each new connection's remote track is :meth:`~IncomingAudio.attach`-ed to it. Timestamps are
  renumbered, so the file stays valid across reconnects (the outage is simply not in it), and
  :attr:`~IncomingAudio.last_at` tells when audio last arrived (the loss detector).
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import time
from collections.abc import Callable

from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
from av.audio.frame import AudioFrame
from av.frame import Frame

Tap = Callable[[AudioFrame], None]
#: Opus in WebRTC: 48 kHz, 20 ms frames (aiortc's MediaPlayer resamples to this too)
RATE = 48_000
FRAME_SAMPLES = 960
FRAME_S = FRAME_SAMPLES / RATE
#: frames waiting for a sender / for the sink before the oldest is dropped: enough to ride
#: out a busy event loop (sealing a record) without a gap, little enough to bound the delay
SEND_QUEUE = 25
RECEIVE_QUEUE = 50


def _put_latest(queue: asyncio.Queue[AudioFrame], frame: AudioFrame) -> None:
    """Queue ``frame``, dropping the oldest one when full (late audio is worth nothing)."""
    if queue.full():
        queue.get_nowait()
    queue.put_nowait(frame)


def silence() -> AudioFrame:
    """20 ms of 48 kHz stereo silence, in the format MediaPlayer produces."""
    frame = AudioFrame(format="s16", layout="stereo", samples=FRAME_SAMPLES)
    for plane in frame.planes:
        plane.update(bytes(plane.buffer_size))
    frame.sample_rate = RATE
    return frame


class _QueueTrack(MediaStreamTrack):
    """An audio track that plays what is put into its queue."""

    kind = "audio"

    def __init__(self, size: int, on_first_recv: Callable[[], None] | None = None) -> None:
        super().__init__()
        self.queue: asyncio.Queue[AudioFrame] = asyncio.Queue(size)
        self._on_first_recv = on_first_recv

    async def recv(self) -> Frame:
        if self._on_first_recv is not None:
            self._on_first_recv()
            self._on_first_recv = None
        if self.readyState != "live":
            raise MediaStreamError
        return await self.queue.get()


class OutgoingAudio:
    """What this side says: ``source`` (a file or the microphone; None: silence) in real time.

    ``first_at`` is when the first frame was taken from the source (source sample 0 left then:
    the delay measurement's reference), ``tap`` (the call recorder) sees every frame.
    """

    def __init__(self, source: MediaStreamTrack | None) -> None:
        self.source = source
        self.has_source = source is not None
        self.first_at: float | None = None
        self.frames = 0
        self.tap: Tap | None = None
        self._feed: _QueueTrack | None = None
        self._task: asyncio.Task[None] | None = None
        self._samples = 0
        self._silence_next = 0.0

    def feed(self) -> MediaStreamTrack:
        """A fresh track for a new peer connection's sender; the previous one gets nothing more
        (its sender stops it when its connection closes)."""
        self._feed = _QueueTrack(SEND_QUEUE, on_first_recv=self._start)
        return self._feed

    def _start(self) -> None:
        """A sender's first frame request: media flows on a (new) connection."""
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())
        feed = self._feed
        while feed is not None and not feed.queue.empty():  # said while reconnecting: stale
            feed.queue.get_nowait()

    async def _run(self) -> None:
        while True:
            frame = await self._next()
            if self.first_at is None:
                self.first_at = time.monotonic()
            self.frames += 1
            if self.tap is not None:
                self.tap(frame)
            # one continuous timeline whatever the source, so the encoder never goes back
            frame.pts = self._samples
            frame.time_base = fractions.Fraction(1, frame.sample_rate)
            self._samples += frame.samples
            if self._feed is not None and self._feed.readyState == "live":
                _put_latest(self._feed.queue, frame)

    async def _next(self) -> AudioFrame:
        if self.source is not None:
            try:
                frame = await self.source.recv()
            except MediaStreamError:  # the file ended, the microphone went away
                self.source = None
                self._silence_next = time.monotonic()
            else:
                if isinstance(frame, AudioFrame):
                    return frame
        # silence, paced in real time like the player
        self._silence_next = max(self._silence_next, time.monotonic() - FRAME_S) + FRAME_S
        await asyncio.sleep(max(0.0, self._silence_next - time.monotonic()))
        return silence()

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._feed is not None:
            self._feed.stop()
        if self.source is not None:
            self.source.stop()


class IncomingAudio(_QueueTrack):
    """What the other side says, across every connection of the call (see the module doc)."""

    def __init__(self) -> None:
        super().__init__(RECEIVE_QUEUE)
        self.first_at: float | None = None
        #: when the last frame arrived (monotonic seconds; None: none yet)
        self.last_at: float | None = None
        self.frames = 0
        self.tap: Tap | None = None
        self._pump: asyncio.Task[None] | None = None
        self._samples = 0

    def attach(self, remote: MediaStreamTrack) -> None:
        """Play ``remote`` (a new connection's track) from now on instead of the previous one."""
        self.detach()
        self._pump = asyncio.ensure_future(self._run(remote))

    def detach(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
            self._pump = None

    async def _run(self, remote: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await remote.recv()
                if not isinstance(frame, AudioFrame):
                    continue
                now = time.monotonic()
                if self.first_at is None:
                    self.first_at = now
                self.last_at = now
                self.frames += 1
                frame.pts = self._samples
                frame.time_base = fractions.Fraction(1, frame.sample_rate)
                self._samples += frame.samples
                if self.tap is not None:
                    self.tap(frame)
                _put_latest(self.queue, frame)

    def stop(self) -> None:
        self.detach()
        super().stop()


__all__ = ["FRAME_S", "RATE", "IncomingAudio", "OutgoingAudio", "Tap", "silence"]
