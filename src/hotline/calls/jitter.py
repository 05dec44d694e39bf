"""A shorter audio jitter buffer than aiortc's default (issue 4: added one-way delay ≤ 60 ms).

aiortc's ``RTCRtpReceiver`` builds ``JitterBuffer(capacity=16, prefetch=4)`` for audio: a frame
is released only once four later frames have arrived, i.e. a fixed ~80 ms at Opus' 20 ms
packets — most of the 89 ms one-way delay measured in ``bench/calls.py`` before this module.
Prefetch is not what reorders packets (the buffer waits for a missing sequence number either
way, up to its capacity); it only holds complete frames back. We keep the capacity and use
:data:`AUDIO_PREFETCH` = 1: a frame is released as soon as the next packet shows it complete
(one 20 ms packet of hold-back instead of four), ~60 ms less delay. Measured on loopback with
prefetch 2 the added delay was ~55 ms, too close to the 60 ms budget on a loaded machine; with
1 it is ~35 ms. The cost is less smoothing of network jitter before the sink; the sound card's
own buffer (FFmpeg's pulse/alsa output) still evens out playback.

aiortc has no public setting for this, so :func:`shorten_jitter_buffers` replaces the private
buffer of each audio receiver before any packet arrives. That relies on aiortc internals
(``RTCRtpReceiver.__jitter_buffer``, checked with aiortc 1.16); pyproject pins aiortc to 1.16.x
and ``tests/calls/test_call_jitter.py`` fails if the attribute moves, rather than the delay
silently coming back.
"""

from __future__ import annotations

from aiortc import RTCPeerConnection
from aiortc.jitterbuffer import JitterBuffer

#: complete audio frames held back before the oldest is released (aiortc's default: 4)
AUDIO_PREFETCH = 1
#: packets the buffer holds (aiortc's default for audio; a power of two)
AUDIO_CAPACITY = 16
_ATTRIBUTE = "_RTCRtpReceiver__jitter_buffer"


def shorten_jitter_buffers(pc: RTCPeerConnection, prefetch: int = AUDIO_PREFETCH) -> int:
    """Give every audio receiver of ``pc`` that has not received a packet yet a buffer with
    ``prefetch`` frames; returns how many were replaced.

    Raises:
        ValueError: ``prefetch`` outside 1..8.
        RuntimeError: this aiortc keeps its jitter buffer elsewhere (an unsupported version).
    """
    if not 1 <= prefetch <= 8:
        raise ValueError(f"prefetch must be 1..8 frames, not {prefetch}")
    replaced = 0
    for transceiver in pc.getTransceivers():
        if transceiver.kind != "audio":
            continue
        current = getattr(transceiver.receiver, _ATTRIBUTE, None)
        if not isinstance(current, JitterBuffer):
            raise RuntimeError("aiortc's RTCRtpReceiver has no jitter buffer where 1.16 has it")
        if current._origin is None and current._prefetch != prefetch:  # nothing received yet
            setattr(transceiver.receiver, _ATTRIBUTE, JitterBuffer(AUDIO_CAPACITY, prefetch))
            replaced += 1
    return replaced


def audio_prefetch(pc: RTCPeerConnection) -> list[int]:
    """The prefetch in effect for each audio receiver of ``pc`` (for tests and diagnostics)."""
    return [
        getattr(t.receiver, _ATTRIBUTE)._prefetch for t in pc.getTransceivers() if t.kind == "audio"
    ]


__all__ = ["AUDIO_CAPACITY", "AUDIO_PREFETCH", "audio_prefetch", "shorten_jitter_buffers"]
