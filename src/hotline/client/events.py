"""What the client reports to its user as things happen (for ``hotline listen`` and the demo)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

EventKind = Literal[
    "message",
    "receipt",
    "contact_request",
    "contact_added",
    "contact_removed",
    "warning",
    "sas",
    "call",
    "group",
]


@dataclass(frozen=True)
class ClientEvent:
    kind: EventKind
    contact: str
    text: str = ""
    message_id: str = ""
    seq: int = 0
    outgoing: bool = False
    warnings: list[str] = field(default_factory=list)
    #: "sent by <aide> for <principal>" for a message an aide wrote (client.delegation_view)
    label: str = ""
