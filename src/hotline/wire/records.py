"""Records formats: what a device seals for its custodian, what the log stores, what it returns.

* :class:`Record` is the plaintext a client builds for every message it sends or receives and
  every contact change. It carries the exact end-to-end envelope bytes, so the custodian can
  recompute each conversation's hash chain and prove no record is missing.
* :class:`SealedRecord` is one log entry (a Merkle leaf): the record sealed with HPKE to the
  custodian's key (:mod:`hotline.crypto.hpke`), with the suite id stored beside it. The server
  appends these exact bytes and can read none of the content.
* :class:`RecordReceipt` proves an entry is in the log: its index, a signed tree head and the
  inclusion proof (RFC 9162 §2.1.3).
* :class:`RecordsPolicy` is the banner participants see ("recorded under ..."), signed by the
  home server's log key.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from hotline.wire.codec import B64, Counter, Handle, Ident, Key32, Sig64, Version

MAX_LEAF = 96 * 1024
MAX_RECORDS_PER_UPLOAD = 100
RECORD_INFO_DOMAIN = b"hotline/v1/record"

RecordKind = Literal[
    "message",
    "receipt",
    "contact_added",
    "contact_removed",
    "card_issued",
    "card_revoked",
    "verification",
    "call",
    "policy",
    "group",
    "delegation",
    "device_admin",
]
RecordSide = Literal["sent", "received", "local"]
LogId = Annotated[str, msgspec.Meta(pattern=r"^[\x21-\x7e]{1,128}$")]


class AttachmentDigest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(max_length=256)]
    media_type: Annotated[str, msgspec.Meta(max_length=128)]
    size: Counter
    sha256: Key32


class Record(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One government record, as the custodian reads it after opening the seal."""

    v: Version = 1
    record_id: Ident
    log_id: LogId
    kind: RecordKind
    side: RecordSide
    #: the principal whose device captured this record, and that device
    principal: Handle
    device: Ident
    conversation: Annotated[str, msgspec.Meta(max_length=256)] = ""
    sender: Handle
    recipients: Annotated[list[Handle], msgspec.Meta(max_length=64)]
    message_id: Annotated[str, msgspec.Meta(max_length=64)] = ""
    created_at_ms: Counter
    captured_at_ms: Counter
    body: Annotated[str, msgspec.Meta(max_length=32 * 1024)] = ""
    attachments: list[AttachmentDigest] = msgspec.field(default_factory=list)
    #: exact end-to-end envelope bytes (base64url) for messages: seq, prev and chain evidence
    envelope: B64 = ""
    detail: dict[str, str] = msgspec.field(default_factory=dict)


class SealedRecord(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A log entry. Its exact JSON bytes are the Merkle leaf."""

    v: Version
    record_id: Ident
    log_id: LogId
    suite: Annotated[str, msgspec.Meta(max_length=64)]
    sealed: B64


class SignedHead(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Transport form of a signed tree head: exact head bytes and the log's signature."""

    head: B64
    signature: Sig64


class RecordReceipt(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    record_id: Ident
    leaf_index: Counter
    tree_head: SignedHead
    inclusion: Annotated[list[Key32], msgspec.Meta(max_length=64)]
    #: consistency proof from the tree size the client said it knows (saves it a round trip)
    consistency_from: Counter = 0
    consistency: Annotated[list[Key32], msgspec.Meta(max_length=128)] = msgspec.field(
        default_factory=list
    )


class RecordsUpload(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    leaves: Annotated[list[B64], msgspec.Meta(min_length=1, max_length=MAX_RECORDS_PER_UPLOAD)]
    #: the largest tree size this device has verified (0: none)
    known_size: Counter = 0


class RecordsResponse(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    receipts: list[RecordReceipt]


class ConsistencyResponse(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    first: Counter
    second: Counter
    proof: Annotated[list[Key32], msgspec.Meta(max_length=128)]


class RecordsPolicy(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What a home server's participants are told, signed with its log key (``log_key``)."""

    v: Version
    domain: Annotated[str, msgspec.Meta(max_length=253)]
    log_id: LogId
    law: Annotated[str, msgspec.Meta(max_length=512)]
    banner: Annotated[str, msgspec.Meta(max_length=1024)]
    custodian_key: B64
    custodian_fingerprint: Annotated[str, msgspec.Meta(max_length=128)]
    suite: Annotated[str, msgspec.Meta(max_length=64)]
    log_key: Key32
    issued_at: Counter


def record_info(log_id: str, record_id: str) -> bytes:
    """HPKE ``info`` binding a sealed record to its log and id (RFC 9180 §5.1)."""
    return RECORD_INFO_DOMAIN + b"\x00" + log_id.encode() + b"\x00" + record_id.encode()
