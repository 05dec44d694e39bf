"""Tables of delegation grants and of devices the administrator removed (migration 0007).

Part of the same metadata as :mod:`hotline.store.schema` (which the migrations must reproduce);
kept in its own module so branches adding other tables do not collide.
"""

from __future__ import annotations

from sqlalchemy import Column, Double, LargeBinary, String, Table

from hotline.store.schema import metadata

#: Grants a principal signed for an aide (``wire.delegation``): the exact signed bytes, the
#: fields the server filters on, and the signed revocation once there is one.
delegations = Table(
    "delegations",
    metadata,
    Column("grant_id", String, primary_key=True),
    Column("principal", String, nullable=False, index=True),
    Column("aide", String, nullable=False, index=True),
    Column("payload", LargeBinary, nullable=False),
    Column("signature", LargeBinary, nullable=False),
    Column("expires_at", Double, nullable=False),
    Column("created_at", Double, nullable=False),
    Column("revoked_at", Double, nullable=True),
    Column("revocation_payload", LargeBinary, nullable=True),
    Column("revocation_signature", LargeBinary, nullable=True),
)

#: Devices the administrator removed (lost or stolen): they may not log in or be listed again.
blocked_devices = Table(
    "blocked_devices",
    metadata,
    Column("device_id", String, primary_key=True),
    Column("handle", String, nullable=False, index=True),
    Column("blocked_at", Double, nullable=False),
)
