"""Server-to-server requests between federated home servers.

Every request is one signed envelope (:class:`FederationRequest`): the exact JSON bytes travel as
the HTTP body and the sending server's Ed25519 signature over
``b"hotline/v1/federation\\x00" + body`` travels in the ``Hotline-Signature`` header. The
receiver checks, in order: it is the destination, the origin is an operator-pinned peer, the
signature verifies under the pinned key (or the previous key during a rotation overlap), the
timestamp is inside the window, and the nonce was not seen before.

Why a signed envelope rather than HTTP Message Signatures (RFC 9421): it signs the exact bytes
that are acted on, with nothing to canonicalise (no header selection or ordering, no
``Content-Digest``), it survives being stored in the durable outbound queue and re-sent, and
it follows the project's one rule for signed objects (DESIGN.md). Responses are not signed:
what they carry that matters (device lists, one-time keys) is signed end to end by the
principal's identity key and device keys and verified by the clients.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from hotline.wire.api import ClaimResponse, DeviceCiphertext, DevicesResponse
from hotline.wire.codec import B64, Counter, Handle, Ident, Key32, Version
from hotline.wire.policy import ContentClass

FEDERATION_DOMAIN = b"hotline/v1/federation\x00"
SIGNATURE_HEADER = "hotline-signature"
MAX_FEDERATION_BODY = 2 * 1024 * 1024
#: accepted difference between the sender's timestamp and our clock
CLOCK_WINDOW_SECONDS = 300.0
MAX_BATCH = 100

Domain = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9.-]{0,252}$")]
FederationKind = Literal["deliver", "contact_request", "devices", "claim", "delegations", "ping"]


class FederationRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    v: Version
    origin: Domain
    destination: Domain
    nonce: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{16,64}$")]
    timestamp_ms: Counter
    kind: FederationKind
    payload: B64


class RemoteMessage(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    message_id: Ident
    sender: Handle
    sender_device: Ident
    to: Handle
    ciphertexts: Annotated[list[DeviceCiphertext], msgspec.Meta(min_length=1, max_length=32)]
    content_class: ContentClass = "message"
    #: set for a Megolm group message (``wire.groups``): the peer relays it only if ``to``
    #: holds ``sender`` on its roster of this group, as mailbox kind ``megolm``
    group: Annotated[str, msgspec.Meta(max_length=64)] = ""
    #: an aide writing for this principal of the origin server (its grant checked there)
    on_behalf_of: Handle | None = None


class DeliverBatch(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    messages: Annotated[list[RemoteMessage], msgspec.Meta(min_length=1, max_length=MAX_BATCH)]


DeliveryStatus = Literal["ok", "duplicate", "refused"]


class DeliveryResult(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    message_id: Ident
    status: DeliveryStatus
    code: str = ""
    detail: str = ""


class DeliverResponse(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    results: list[DeliveryResult]


class RemoteContactRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    sender: Handle
    to: Handle
    invite_id: Ident
    invite_secret: Key32
    card: Annotated[str, msgspec.Meta(max_length=4096)]


class RemoteLookup(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``requester`` (a user of the origin server) asks about ``handle`` (one of ours)."""

    requester: Handle
    handle: Handle
    device_ids: Annotated[list[Ident], msgspec.Meta(max_length=32)] | None = None
    #: principals of the origin server the requester holds an active grant of (an aide): the
    #: origin vouches for its own users' grants, as it vouches for their identity
    acting_for: Annotated[list[Handle], msgspec.Meta(max_length=8)] = msgspec.field(
        default_factory=list
    )


class Bounce(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Told to the sending device when a peer refused a queued message for good."""

    message_id: Ident
    to: Handle
    code: str
    detail: str


__all__ = [
    "ClaimResponse",
    "DevicesResponse",
    "FederationRequest",
    "Key32",
    "RemoteLookup",
]
