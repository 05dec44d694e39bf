"""What one device keeps about its groups (persisted in the keystore, like ``client.state``)."""

from __future__ import annotations

import msgspec

from hotline.client.state import ContactState

#: how many ``session id/index`` pairs of received group messages are remembered (replay guard)
MAX_SEEN = 10_000


class InboundSessionState(msgspec.Struct):
    """A Megolm session received over Olm from one member device (pickled under the pickle key)."""

    sender: str
    sender_device: str
    pickle: str


class GroupState(msgspec.Struct):
    group_id: str
    name: str
    #: the signed roster in force, exact bytes (base64url) and signature
    roster: str
    signature: str
    version: int
    #: False once this principal left or was removed (history stays readable)
    active: bool = True
    #: this device's outbound Megolm session (pickle); "" until the first message
    outbound: str = ""
    outbound_created_ms: int = 0
    #: ``handle/device`` of every device that received the current outbound session's key
    shared_with: list[str] = msgspec.field(default_factory=list)
    inbound: dict[str, InboundSessionState] = msgspec.field(default_factory=dict)
    #: ``session id/message index`` of group messages already taken (Megolm accepts replays)
    seen: list[str] = msgspec.field(default_factory=list)


def conversation_of(group_id: str) -> str:
    """The conversation id of a group (in message entries and records)."""
    return f"group:{group_id}"


def peer_state(
    contacts: dict[str, ContactState], group_peers: dict[str, ContactState], handle: str
) -> ContactState | None:
    """A contact (unless removed), else a co-member of a group known only from its roster."""
    contact = contacts.get(handle)
    if contact is not None and contact.status != "removed":
        return contact
    return group_peers.get(handle) or contact
