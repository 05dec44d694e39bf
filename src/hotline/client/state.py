"""What one device keeps about itself and its contacts (persisted in the keystore).

All of it lives inside the passphrase-encrypted keystore file; the vodozemac pickles inside are
additionally encrypted with the keystore's pickle key.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from hotline.client.delegation_state import AidesOf, HeldDelegation, IssuedGrant
from hotline.client.transcript import Transcript
from hotline.wire.lists import DeviceKeys

#: ``delegated``: a principal's counterpart pinned on an aide's device (client.delegation)
ContactStatus = Literal["requested", "active", "removed", "delegated"]
MessageStatus = Literal["sending", "sent", "delivered", "read", "received", "failed"]


class ContactState(msgspec.Struct):
    handle: str
    display_name: str
    identity_key: str  # base64url, pinned from the card
    server_url: str
    status: ContactStatus
    added_at_ms: int
    verified: bool = False
    #: set when the server presented a different identity key; sending is blocked
    changed_identity_key: str = ""
    devices: list[DeviceKeys] = msgspec.field(default_factory=list)
    device_list_version: int = 0
    #: the records banner of the contact's home server (signed by its log key)
    archive_banner: str = ""


class InviteState(msgspec.Struct):
    invite_id: str
    secret: str  # base64url
    expires_at: int
    card: str
    revoked: bool = False


class SessionState(msgspec.Struct):
    """Olm sessions with one peer device, most recently used first."""

    peer_curve25519: str
    pickles: list[str] = msgspec.field(default_factory=list)


class MessageEntry(msgspec.Struct):
    message_id: str
    conversation: str
    sender: str
    sender_device: str
    text: str
    sent_at_ms: int
    seq: int
    status: MessageStatus
    outgoing: bool
    #: problems the receiver detected for this message (e.g. "transcript_gap")
    warnings: list[str] = msgspec.field(default_factory=list)
    #: index of this device's record of the message in the records log; -1: not on the record
    record_index: int = -1
    #: the principal an aide (``sender``) wrote this for: "sent by <sender> for <principal>"
    on_behalf_of: str = ""


class PendingRequest(msgspec.Struct):
    sender: str
    card: str
    invite_id: str
    received_at_ms: int


class ArchivePin(msgspec.Struct):
    """The home server's records policy as pinned at registration (signed by its log key)."""

    log_id: str
    log_key: str
    custodian_key: str
    custodian_fingerprint: str
    law: str
    banner: str
    domain: str


class HeadState(msgspec.Struct):
    """The largest tree head of the records log seen so far (verified)."""

    size: int
    root: str
    head: str
    signature: str


class PendingRecord(msgspec.Struct):
    """A sealed record not yet acknowledged by the log: retried on every sync."""

    record_id: str
    leaf: str
    message_id: str = ""


class OutboxItem(msgspec.Struct):
    """A message encrypted and saved but not yet accepted by the server (see client.outbox)."""

    message_id: str
    to: str
    request: str  # base64url of the exact SendRequest JSON
    plaintext: str  # base64url of the envelope, to re-encrypt if the device list changed
    leaf: str = ""  # base64url of the sealed record, to check the receipt


class PolicyPin(msgspec.Struct):
    """The organisation policy in force on this device and the key it was verified with."""

    org_key: str
    payload: str
    signature: str
    version: int


class Settings(msgspec.Struct):
    auto_accept: bool = True


class ClientState(msgspec.Struct):
    v: int
    handle: str
    display_name: str
    server_url: str
    device_id: str
    identity_key: str  # base64url Ed25519 private key
    account_pickle: str
    device_list_version: int = 1
    own_devices: list[DeviceKeys] = msgspec.field(default_factory=list)
    allowlist_version: int = 0
    contacts: dict[str, ContactState] = msgspec.field(default_factory=dict)
    invites: dict[str, InviteState] = msgspec.field(default_factory=dict)
    sessions: dict[str, SessionState] = msgspec.field(default_factory=dict)
    transcripts: dict[str, Transcript] = msgspec.field(default_factory=dict)
    #: the message history: in the keystore's history log (``keystore.history``), loaded into
    #: this list for a transaction; stored here only by keystores older than the log
    messages: list[MessageEntry] = msgspec.field(default_factory=list)
    #: entries of the history log that are committed (the log's commit point)
    history_entries: int = 0
    pending_requests: list[PendingRequest] = msgspec.field(default_factory=list)
    settings: Settings = msgspec.field(default_factory=Settings)
    seen_message_ids: list[str] = msgspec.field(default_factory=list)
    #: ``sender device/message id`` of mailbox items already processed (re-push dedup)
    seen_deliveries: list[str] = msgspec.field(default_factory=list)
    archive: ArchivePin | None = None
    last_head: HeadState | None = None
    pending_records: list[PendingRecord] = msgspec.field(default_factory=list)
    #: delivery receipts owed, message ids by contact handle: saved with the messages they
    #: acknowledge, sent by ``HotlineClient.settle`` once those messages have been handed over
    owed_receipts: dict[str, list[str]] = msgspec.field(default_factory=dict)
    outbox: list[OutboxItem] = msgspec.field(default_factory=list)
    policy: PolicyPin | None = None
    #: small groups by group id (``client.groups``)
    groups: dict[str, GroupState] = msgspec.field(default_factory=dict)
    #: co-members of my groups who are not contacts: pinned from the signed roster, reachable
    #: only for group traffic
    group_peers: dict[str, ContactState] = msgspec.field(default_factory=dict)
    #: delegation (client.delegation): grants given (by aide), held (by principal), and the
    #: verified aides of contacts and of this principal (by principal handle)
    issued_grants: dict[str, IssuedGrant] = msgspec.field(default_factory=dict)
    delegations: dict[str, HeldDelegation] = msgspec.field(default_factory=dict)
    aides_of: dict[str, AidesOf] = msgspec.field(default_factory=dict)


from hotline.client.group_state import GroupState  # noqa: E402  (it needs ContactState)
