"""Signed lists a principal's identity key vouches for: its device list and its allowlist.

Both are signed as exact bytes (``hotline/v1/device-list`` and ``hotline/v1/allowlist``
domains) and carry a ``version`` that only goes up, so a server cannot roll them back.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from hotline.wire.codec import Counter, Handle, Ident, Key32, Version

MAX_DEVICES = 16
MAX_CONTACTS = 1000


class DeviceKeys(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A device's long-term Olm keys (Curve25519 for Olm, Ed25519 for signatures)."""

    device_id: Ident
    curve25519: Key32
    ed25519: Key32


class DeviceList(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    v: Version
    handle: Handle
    version: Annotated[int, msgspec.Meta(ge=1, le=2**53)]
    issued_at: Counter
    devices: Annotated[list[DeviceKeys], msgspec.Meta(min_length=1, max_length=MAX_DEVICES)]


class Allowlist(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    v: Version
    handle: Handle
    version: Annotated[int, msgspec.Meta(ge=1, le=2**53)]
    issued_at: Counter
    members: Annotated[list[Handle], msgspec.Meta(max_length=MAX_CONTACTS)]
