"""Keeping a received text message: the transcript chain check, then the message entry.

Shared by ordinary messages (``client.inbox``) and delegated ones (``client.delegation_view``):
each sender device has its own hash chain per conversation, so a dropped, reordered or
replayed message is noticed whoever wrote it (a principal or an aide).
"""

from __future__ import annotations

from hotline.client import channel
from hotline.client.events import ClientEvent
from hotline.client.state import ClientState, MessageEntry
from hotline.client.transcript import Transcript
from hotline.wire.envelope import Envelope
from hotline.wire.errors import TranscriptForked, TranscriptGap, TranscriptReplay


def keep_text(
    state: ClientState,
    envelope: Envelope,
    plaintext: bytes,
    *,
    conversation: str,
    peer: str,
    outgoing: bool,
) -> list[ClientEvent]:
    """Chain-check ``envelope`` in ``conversation`` and keep it; a replay is dropped (warning),
    a gap or fork is kept with the warning attached."""
    if envelope.conversation != conversation:
        return [ClientEvent("warning", peer, "message for another conversation; dropped")]
    transcript = state.transcripts.setdefault(conversation, Transcript(conversation))
    sender_key = channel.session_key(envelope.sender, envelope.sender_device)
    warnings: list[str] = []
    try:
        transcript.check_incoming(sender_key, envelope.seq, envelope.prev)
    except TranscriptReplay as exc:
        return [ClientEvent("warning", peer, f"{exc.code}: {exc.detail}")]
    except (TranscriptGap, TranscriptForked) as exc:
        warnings.append(f"{exc.code}: {exc.detail}")
    transcript.record(sender_key, envelope.seq, plaintext)
    on_behalf_of = envelope.on_behalf_of or ""
    state.messages.append(
        MessageEntry(
            message_id=envelope.message_id,
            conversation=conversation,
            sender=envelope.sender,
            sender_device=envelope.sender_device,
            text=envelope.text,
            sent_at_ms=envelope.sent_at_ms,
            seq=envelope.seq,
            status="sent" if outgoing else "received",
            outgoing=outgoing,
            warnings=warnings,
            on_behalf_of=on_behalf_of,
        )
    )
    return [
        ClientEvent(
            "message",
            peer,
            envelope.text,
            envelope.message_id,
            envelope.seq,
            outgoing=outgoing,
            warnings=warnings,
            label=f"sent by {envelope.sender} for {on_behalf_of}" if on_behalf_of else "",
        )
    ]


__all__ = ["keep_text"]
