"""Persistence for the home server behind one small interface (:class:`Store`).

Backends: SQLite (default, embedded) and PostgreSQL, both through SQLAlchemy Core 2 async.
One conformance suite (``tests/store``) runs against every backend.
"""

from __future__ import annotations

from hotline.store.base import (
    AideGrant,
    Appended,
    ClaimedKey,
    DeliveryItem,
    DeliveryRow,
    DeviceLinkRow,
    DeviceRow,
    Enqueued,
    GroupSendContext,
    HeadSigner,
    InviteRow,
    LogEntryRow,
    LogLeaf,
    LogTail,
    OutboundItem,
    OutboundRow,
    PeerRow,
    PrincipalRow,
    SendContext,
    SignedBlob,
    Store,
    TreeHeadRow,
)
from hotline.store.engine import DEFAULT_URL, open_store
from hotline.store.sql import SqlStore

__all__ = [
    "DEFAULT_URL",
    "AideGrant",
    "Appended",
    "ClaimedKey",
    "DeliveryItem",
    "DeliveryRow",
    "DeviceLinkRow",
    "DeviceRow",
    "Enqueued",
    "GroupSendContext",
    "HeadSigner",
    "InviteRow",
    "LogEntryRow",
    "LogLeaf",
    "LogTail",
    "OutboundItem",
    "OutboundRow",
    "PeerRow",
    "PrincipalRow",
    "SendContext",
    "SignedBlob",
    "SqlStore",
    "Store",
    "TreeHeadRow",
    "open_store",
]
