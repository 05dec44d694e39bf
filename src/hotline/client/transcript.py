"""The per-conversation hash chain that makes silent loss visible (sans I/O).

Every conversation message is encrypted with its sender device's sequence number in that
conversation and the chain head before it (``prev``). The head advances as
``head' = SHA-256("hotline/v1/chain" 0x00 || head || SHA-256(envelope bytes))``.
A receiver that tracks each sender device's stream detects a dropped message (sequence jumps:
:class:`TranscriptGap`), a replay (sequence already seen: :class:`TranscriptReplay`) and a
message from a different history (``prev`` is not the head it holds: :class:`TranscriptForked`).
Both sides compute the same :func:`Transcript.digest` once they have seen the same messages.
"""

from __future__ import annotations

import hashlib
import hmac

import msgspec

from hotline.wire.encoding import b64d, b64e
from hotline.wire.errors import TranscriptForked, TranscriptGap, TranscriptReplay

_CHAIN = b"hotline/v1/chain\x00"
_GENESIS = b"hotline/v1/transcript\x00"
_DIGEST = b"hotline/v1/transcript-digest\x00"


def conversation_id(a: str, b: str) -> str:
    """The id of the direct conversation between two principals (same on both sides)."""
    first, second = sorted((a, b))
    return f"{first}|{second}"


def genesis(conversation: str) -> bytes:
    return hashlib.sha256(_GENESIS + conversation.encode("utf-8")).digest()


def advance(head: bytes, envelope_bytes: bytes) -> bytes:
    return hashlib.sha256(_CHAIN + head + hashlib.sha256(envelope_bytes).digest()).digest()


class Stream(msgspec.Struct):
    """One sender device's stream in one conversation: last sequence number and chain head."""

    seq: int
    head: str  # base64url


class Transcript(msgspec.Struct):
    """All sender streams of one conversation, as one device has seen them."""

    conversation: str
    streams: dict[str, Stream] = msgspec.field(default_factory=dict)

    def _stream(self, sender_key: str) -> Stream:
        stream = self.streams.get(sender_key)
        if stream is None:
            stream = Stream(seq=0, head=b64e(genesis(self.conversation)))
        return stream

    def next_outgoing(self, sender_key: str) -> tuple[int, str]:
        """``(seq, prev)`` for the next message this device sends."""
        stream = self._stream(sender_key)
        return stream.seq + 1, stream.head

    def record(self, sender_key: str, seq: int, envelope_bytes: bytes) -> None:
        """Advance ``sender_key``'s stream past a message (sent, or accepted on receipt)."""
        stream = self._stream(sender_key)
        self.streams[sender_key] = Stream(
            seq=seq, head=b64e(advance(b64d(stream.head), envelope_bytes))
        )

    def check_incoming(self, sender_key: str, seq: int, prev: str) -> None:
        """Check an incoming message continues the sender's stream. Changes nothing.

        Raises:
            TranscriptReplay: ``seq`` already seen.
            TranscriptGap: messages between the last seen and ``seq`` are missing.
            TranscriptForked: ``seq`` is next but ``prev`` is not the head held here.
        """
        stream = self._stream(sender_key)
        if seq <= stream.seq:
            raise TranscriptReplay(
                f"message {seq} from {sender_key} was already received", got=seq, last=stream.seq
            )
        if seq > stream.seq + 1:
            raise TranscriptGap(
                f"{seq - stream.seq - 1} message(s) from {sender_key} never arrived",
                expected=stream.seq + 1,
                got=seq,
            )
        if not hmac.compare_digest(prev.encode(), stream.head.encode()):
            raise TranscriptForked(
                f"message {seq} from {sender_key} does not continue the transcript held here",
                seq=seq,
            )

    def digest(self) -> str:
        """A digest both sides share once they saw the same messages (hex, 64 chars)."""
        h = hashlib.sha256(_DIGEST + self.conversation.encode("utf-8"))
        for key in sorted(self.streams):
            stream = self.streams[key]
            h.update(f"\x00{key}\x00{stream.seq}\x00{stream.head}".encode())
        return h.hexdigest()
