"""Bodies of the device-link API (``/v1/device-links``): enrolling a new device of a principal
from an existing one. See :mod:`hotline.client.enrolment` for the protocol.

The server only ever holds public keys, hashes and the sealed bundle; the code's secret and
the bundle's plaintext (with the identity private key) never reach it.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from hotline.wire.codec import Handle, Ident, Key32, Signed, Version
from hotline.wire.lists import DeviceKeys

#: how long a pending link lives on the server (seconds)
LINK_TTL = 600.0
#: once approved, how long the new device has to collect its bundle (seconds)
COLLECT_WINDOW = 120.0
#: a sealed bundle is at most this many bytes (it carries contacts, not message history)
MAX_BUNDLE = 192 * 1024

LinkStatus = Literal["pending", "approved"]
#: base64url of a sealed bundle, capped at :data:`MAX_BUNDLE` bytes decoded
SealedBundle = Annotated[
    str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]*$", max_length=(MAX_BUNDLE * 4) // 3 + 4)
]


class _Frozen(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Base for device-link structs."""


class LinkCreate(_Frozen, frozen=True):
    """The new device registers a pending link (unauthenticated, rate-limited)."""

    v: Version
    device: DeviceKeys
    #: the new device's ephemeral X25519 key the bundle is sealed to
    link_key: Key32
    #: SHA-256 of the link's auth value (derived from the code's secret)
    verifier: Key32
    #: HMAC under a key derived from the secret over the device keys and ``link_key``, so the
    #: approving device knows the server did not substitute them
    binding: Key32


class LinkCreated(_Frozen, frozen=True):
    link_id: Ident
    expires_at: float


class LinkProof(_Frozen, frozen=True):
    """Proves knowledge of the code's secret (its ``auth`` derivation, never the secret)."""

    auth: Key32


class LinkOffer(_Frozen, frozen=True):
    """What the existing device reads of a pending link before approving it."""

    link_id: Ident
    device: DeviceKeys
    link_key: Key32
    binding: Key32
    expires_at: float


class LinkApprove(_Frozen, frozen=True):
    auth: Key32
    #: the provisioning bundle sealed to ``link_key`` (HPKE); opaque to the server
    bundle: SealedBundle
    #: the principal's new device list, signed by the identity key, naming the new device
    device_list: Signed


class LinkCollected(_Frozen, frozen=True):
    """The answer to the new device's poll: still pending, or its bundle (once)."""

    status: LinkStatus
    handle: Handle | None = None
    bundle: SealedBundle | None = None
    device_list: Signed | None = None


__all__ = [
    "COLLECT_WINDOW",
    "LINK_TTL",
    "MAX_BUNDLE",
    "LinkApprove",
    "LinkCollected",
    "LinkCreate",
    "LinkCreated",
    "LinkOffer",
    "LinkProof",
    "LinkStatus",
]
