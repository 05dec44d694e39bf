"""What travels inside the Olm encryption between devices (the server never sees it).

Each conversation message carries its sender device's sequence number in that conversation and
the hash chain head before it (``prev``), so the receiver detects a message that the server
dropped, reordered or replayed (see ``client.transcript``).
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from hotline.wire.codec import B64, Counter, Handle, Ident, Version
from hotline.wire.delegation import DelegationNotice
from hotline.wire.groups import GroupPayload

MAX_TEXT = 16 * 1024

EnvelopeKind = Literal[
    "text",
    "receipt",
    "contact_accepted",
    "contact_removed",
    "sas",
    "call",
    "group_roster",
    "group_key",
    "delegation",
]

CallEvent = Literal[
    "offer",
    "answer",
    "candidate",
    "ringing",
    "accept",
    "decline",
    "busy",
    "hangup",
    "answered_elsewhere",
    "recording_notice",
    # reconnect after a network loss (issue 4): callee asks, caller re-offers, callee answers
    "reconnect",
    "reoffer",
    "reanswer",
]


class CallSignal(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One call signalling event; the SDP (with its DTLS fingerprint) rides end to end."""

    call_id: Ident
    event: CallEvent
    sdp: Annotated[str, msgspec.Meta(max_length=32 * 1024)] = ""
    candidate: Annotated[str, msgspec.Meta(max_length=2048)] = ""
    reason: Annotated[str, msgspec.Meta(max_length=512)] = ""
    #: the callee device an accept/answer comes from (first to accept wins)
    device: Annotated[str, msgspec.Meta(max_length=64)] = ""


class Receipt(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    kind: Literal["delivered", "read"]
    message_ids: Annotated[list[Ident], msgspec.Meta(max_length=500)]


SasStepName = Literal["start", "key", "mac", "cancel"]


class SasStep(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One step of an interactive SAS verification (vodozemac ``Sas``)."""

    flow_id: Ident
    step: SasStepName
    data: B64 = ""
    mac: Annotated[str, msgspec.Meta(max_length=256)] = ""


class Envelope(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """The plaintext of one Olm message."""

    v: Version
    kind: EnvelopeKind
    message_id: Ident
    sender: Handle
    sender_device: Ident
    recipient: Handle
    sent_at_ms: Counter
    conversation: Annotated[str, msgspec.Meta(max_length=256)] = ""
    seq: Counter = 0
    prev: B64 = ""
    text: Annotated[str, msgspec.Meta(max_length=MAX_TEXT)] = ""
    receipt: Receipt | None = None
    sas: SasStep | None = None
    call: CallSignal | None = None
    #: ``group_roster`` and ``group_key`` (see ``wire.groups``)
    group: GroupPayload | None = None
    #: an aide writing for a principal: the principal's handle and the grant (wire.delegation)
    on_behalf_of: Handle | None = None
    grant_id: Ident | None = None
    delegation: DelegationNotice | None = None
