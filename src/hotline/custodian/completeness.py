"""Completeness of the archive from the per-conversation hash chains (no record missing).

Every text message carries its sender device's sequence number in the conversation and the
chain head before it (``prev``), and every record of it (sender's and receivers') carries the
exact envelope bytes. So the custodian can rebuild each stream (``sender/sender_device``) of
each conversation exactly as the devices did (:class:`~hotline.client.transcript.Transcript`)
and find:

* **missing** sequence numbers (a message with no record on either side);
* **chain breaks**: a message whose ``prev`` is not ``advance(head, previous envelope)``;
* **conflicts**: two different envelopes under one sequence number (a fork);
* **one-sided** captures: a message sent to, or received from, a principal of this same home
  server with only one side's record in the log.

The digest of each conversation is :meth:`Transcript.digest` over the rebuilt streams, so it
equals what the participants' devices show (``HotlineClient.transcript_digest``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hotline.client.transcript import Stream, Transcript
from hotline.crypto.hpke import CustodianPrivateKey
from hotline.custodian.source import BATCH, iter_records
from hotline.store.base import LogStore
from hotline.wire.codec import decode
from hotline.wire.encoding import b64d
from hotline.wire.envelope import Envelope
from hotline.wire.errors import HotlineError
from hotline.wire.records import MAX_LEAF, Record


@dataclass(frozen=True)
class Gap:
    """One completeness problem: ``kind`` is missing, chain_break, conflict or one_sided."""

    kind: str
    conversation: str
    stream: str
    detail: str


@dataclass
class _Message:
    envelope: bytes
    parsed: Envelope
    index: int


@dataclass
class _Sides:
    sender: str
    recipient: str
    conversation: str
    stream: str
    seq: int
    sent: bool = False
    received: bool = False


@dataclass
class ConversationChains:
    """One conversation rebuilt from the archive: its streams and the clients' digest."""

    conversation: str
    transcript: Transcript
    messages: int = 0

    @property
    def digest(self) -> str:
        """Equal to ``Transcript.digest()`` on a device that saw the same messages."""
        return self.transcript.digest()

    def streams(self) -> list[tuple[str, int, str]]:
        """``(stream key, last seq, head base64url)`` sorted by key."""
        return [(k, s.seq, s.head) for k, s in sorted(self.transcript.streams.items())]


@dataclass
class CompletenessReport:
    """Every conversation found, and every gap."""

    conversations: dict[str, ConversationChains] = field(default_factory=dict)
    gaps: list[Gap] = field(default_factory=list)
    undecodable: int = 0

    @property
    def ok(self) -> bool:
        return not self.gaps


def _domain(handle: str) -> str:
    return handle.rsplit("@", 1)[-1]


class ChainCollector:
    """Feed it records (any order); :meth:`finish` rebuilds the chains."""

    def __init__(self) -> None:
        self._streams: dict[tuple[str, str], dict[int, list[_Message]]] = {}
        self._sides: dict[str, _Sides] = {}
        self._domain = ""
        self.undecodable = 0

    def add(self, index: int, record: Record) -> None:
        """Take note of one record (only text messages with an envelope matter)."""
        if record.kind != "message" or not record.envelope:
            return
        self._domain = self._domain or record.log_id.split("/", 1)[0]
        try:
            raw = b64d(record.envelope, field="envelope", max_len=MAX_LEAF)
            envelope = decode(raw, Envelope, max_size=MAX_LEAF, what="envelope")
        except HotlineError:
            self.undecodable += 1
            return
        if envelope.kind != "text":
            return
        stream = f"{envelope.sender}/{envelope.sender_device}"
        by_seq = self._streams.setdefault((envelope.conversation, stream), {})
        copies = by_seq.setdefault(envelope.seq, [])
        if all(copy.envelope != raw for copy in copies):
            copies.append(_Message(raw, envelope, index))
        self._note_side(record, envelope, stream)

    def _note_side(self, record: Record, envelope: Envelope, stream: str) -> None:
        sides = self._sides.setdefault(
            f"{stream}/{envelope.message_id}",
            _Sides(
                envelope.sender, envelope.recipient, envelope.conversation, stream, envelope.seq
            ),
        )
        if record.side == "sent" and record.principal == envelope.sender:
            sides.sent = True
        elif record.side == "received" and record.principal == envelope.recipient:
            sides.received = True

    def finish(self) -> CompletenessReport:
        """Rebuild every stream in sequence order and report what is missing or broken."""
        report = CompletenessReport(undecodable=self.undecodable)
        for (conversation, stream), by_seq in sorted(self._streams.items()):
            chains = report.conversations.setdefault(
                conversation, ConversationChains(conversation, Transcript(conversation))
            )
            report.gaps += _rebuild(chains, stream, by_seq)
        report.gaps += self._one_sided()
        return report

    def _one_sided(self) -> list[Gap]:
        gaps = []
        for sides in self._sides.values():
            if sides.sent and not sides.received and _domain(sides.recipient) == self._domain:
                missing = f"no received record by {sides.recipient}"
            elif sides.received and not sides.sent and _domain(sides.sender) == self._domain:
                missing = f"no sent record by {sides.sender}"
            else:
                continue
            gaps.append(
                Gap(
                    "one_sided", sides.conversation, sides.stream, f"message {sides.seq}: {missing}"
                )
            )
        return gaps


def _rebuild(
    chains: ConversationChains, stream: str, by_seq: dict[int, list[_Message]]
) -> list[Gap]:
    gaps: list[Gap] = []
    conversation, transcript = chains.conversation, chains.transcript
    last = max(by_seq)
    for seq in range(1, last + 1):
        copies = by_seq.get(seq)
        if not copies:
            gaps.append(_missing(conversation, stream, seq, by_seq))
            continue
        if len(copies) > 1:
            entries = ", ".join(str(c.index) for c in copies)
            gaps.append(
                Gap(
                    "conflict",
                    conversation,
                    stream,
                    f"message {seq}: different envelopes in log entries {entries} (a fork)",
                )
            )
        message = copies[0]
        _, head = transcript.next_outgoing(stream)
        if seq > 1 and seq - 1 in by_seq and message.parsed.prev != head:
            gaps.append(
                Gap(
                    "chain_break",
                    conversation,
                    stream,
                    f"message {seq} (log entry "
                    f"{message.index}) does not continue message {seq - 1}: prev differs",
                )
            )
        elif seq == 1 and message.parsed.prev != head:
            gaps.append(
                Gap(
                    "chain_break",
                    conversation,
                    stream,
                    f"message 1 (log entry "
                    f"{message.index}) does not start from the conversation's genesis",
                )
            )
        if seq > 1 and seq - 1 not in by_seq:
            # The chain cannot be recomputed across a missing message: resume from the
            # head this message claims, so later links are still checked.
            transcript.streams[stream] = Stream(seq=seq - 1, head=message.parsed.prev)
        transcript.record(stream, seq, message.envelope)
        chains.messages += 1
    return gaps


def _missing(conversation: str, stream: str, seq: int, by_seq: dict[int, list[_Message]]) -> Gap:
    after = max((s for s in by_seq if s < seq), default=0)
    return Gap(
        "missing",
        conversation,
        stream,
        f"message {seq} has no record (last recorded before it: {after or 'none'})",
    )


def stream_heads(report: CompletenessReport, conversation: str) -> dict[str, tuple[int, str]]:
    """``{stream: (seq, head)}`` of one conversation (empty if unknown)."""
    chains = report.conversations.get(conversation)
    return {} if chains is None else {k: (s, h) for k, s, h in chains.streams()}


__all__ = [
    "ChainCollector",
    "CompletenessReport",
    "ConversationChains",
    "Gap",
    "collect_chains",
    "stream_heads",
]


async def collect_chains(
    store: LogStore, custodian: CustodianPrivateKey, batch: int = BATCH
) -> CompletenessReport:
    """Open every record of the log (streaming) and rebuild the chains."""
    collector = ChainCollector()
    async for opened in iter_records(store, custodian, batch=batch):
        if opened.record is not None:
            collector.add(opened.entry.index, opened.record)
    return collector.finish()
