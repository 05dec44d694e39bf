"""Request and response bodies of the client-server HTTP API (``/v1``).

Bytes travel as unpadded base64url strings; every struct forbids unknown fields, so a typo or
an injected field is refused rather than ignored.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from hotline.wire.codec import B64, Counter, Handle, Ident, Key32, Name, Sig64, Signed
from hotline.wire.lists import MAX_DEVICES, DeviceKeys
from hotline.wire.policy import ContentClass
from hotline.wire.records import RecordReceipt

MAX_KEYS_PER_UPLOAD = 100
MAX_CIPHERTEXT = 64 * 1024


class Frozen(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Base for API structs."""


class RegisterRequest(Frozen, frozen=True):
    enrolment_token: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    handle: Handle
    display_name: Name
    identity_key: Key32
    device: DeviceKeys
    device_list: Signed


class ChallengeRequest(Frozen, frozen=True):
    device_id: Ident


class ChallengeResponse(Frozen, frozen=True):
    challenge: B64
    expires_at: float


class TokenRequest(Frozen, frozen=True):
    device_id: Ident
    challenge: B64
    signature: Sig64


class TokenResponse(Frozen, frozen=True):
    token: str
    expires_at: float
    handle: Handle


class OneTimeKey(Frozen, frozen=True):
    key_id: Ident
    key: Key32
    signature: Sig64


class KeysUpload(Frozen, frozen=True):
    one_time_keys: Annotated[list[OneTimeKey], msgspec.Meta(max_length=MAX_KEYS_PER_UPLOAD)]
    fallback_key: OneTimeKey | None = None


class KeysUploadResponse(Frozen, frozen=True):
    one_time_key_count: int


class ClaimRequest(Frozen, frozen=True):
    handle: Handle
    #: claim only for these devices (default: every device of ``handle`` but the caller)
    device_ids: Annotated[list[Ident], msgspec.Meta(max_length=MAX_DEVICES)] | None = None


class ClaimedDeviceKey(Frozen, frozen=True):
    device_id: Ident
    key_id: Ident
    key: Key32
    signature: Sig64
    fallback: bool


class ClaimResponse(Frozen, frozen=True):
    handle: Handle
    identity_key: Key32
    device_list: Signed
    keys: list[ClaimedDeviceKey]


class DevicesResponse(Frozen, frozen=True):
    handle: Handle
    display_name: Name
    identity_key: Key32
    device_list: Signed
    #: devices the server's administrator removed (lost): nobody encrypts for them although
    #: the signed list may still name them until the principal re-signs it
    blocked: Annotated[list[Ident], msgspec.Meta(max_length=64)] = msgspec.field(
        default_factory=list
    )


class SignedListUpload(Frozen, frozen=True):
    signed: Signed


class InviteCreate(Frozen, frozen=True):
    invite_id: Ident
    verifier: Key32
    expires_at: Counter


class ContactRequest(Frozen, frozen=True):
    """A non-contact asks to be added; allowed only with a valid invite of ``to``."""

    to: Handle
    invite_id: Ident
    invite_secret: Key32
    card: Annotated[str, msgspec.Meta(max_length=4096)]


class DeviceCiphertext(Frozen, frozen=True):
    device_id: Ident
    type: Annotated[int, msgspec.Meta(ge=0, le=1)]
    body: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]*$", max_length=MAX_CIPHERTEXT)]


class SendRequest(Frozen, frozen=True):
    message_id: Ident
    to: Handle
    ciphertexts: Annotated[
        list[DeviceCiphertext], msgspec.Meta(min_length=1, max_length=2 * MAX_DEVICES)
    ]
    #: the sender's sealed record (exact SealedRecord JSON, base64url): capture at creation
    record: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]*$", max_length=140_000)] | None = (
        None
    )
    #: declared content class, so the server can enforce policy on ciphertext (the recipient's
    #: device checks it against the decrypted envelope)
    content_class: ContentClass = "message"
    #: the largest records-log size this device has verified: the receipt then carries the
    #: consistency proof from it
    known_tree_size: Counter = 0
    #: an aide sending for this principal (checked against an active grant: wire.delegation)
    on_behalf_of: Handle | None = None


class SendResponse(Frozen, frozen=True):
    message_id: Ident
    stored: bool
    #: proof that the sender's record is in the log (when the server keeps an archive)
    receipt: RecordReceipt | None = None


InboxKind = Literal["olm", "contact_request"]


class InboxItem(Frozen, frozen=True):
    seq: int
    message_id: Ident
    kind: str
    sender_handle: str
    sender_device: str
    body: B64
    created_at: float


class InboxResponse(Frozen, frozen=True):
    items: list[InboxItem]


class AckRequest(Frozen, frozen=True):
    seqs: Annotated[list[Counter], msgspec.Meta(max_length=1000)]


class AckResponse(Frozen, frozen=True):
    deleted: int


class ServerInfo(Frozen, frozen=True):
    domain: str
    version: str
    api: str = "v1"


class Health(Frozen, frozen=True):
    status: str


__all__ = [
    "AckRequest",
    "AckResponse",
    "ChallengeRequest",
    "ChallengeResponse",
    "ClaimRequest",
    "ClaimResponse",
    "ClaimedDeviceKey",
    "ContactRequest",
    "Counter",
    "DeviceCiphertext",
    "DevicesResponse",
    "Health",
    "InboxItem",
    "InboxKind",
    "InboxResponse",
    "InviteCreate",
    "KeysUpload",
    "KeysUploadResponse",
    "OneTimeKey",
    "RegisterRequest",
    "SendRequest",
    "SendResponse",
    "ServerInfo",
    "SignedListUpload",
    "TokenRequest",
    "TokenResponse",
]
