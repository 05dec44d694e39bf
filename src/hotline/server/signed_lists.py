"""Server-side checks of what principals sign: device lists, allowlists, one-time keys.

The server verifies every signature over the exact bytes it received, against the identity key
registered for the principal, so it can enforce the allowlist without reading any content.
"""

from __future__ import annotations

from hotline.crypto.identity import (
    DOMAIN_ALLOWLIST,
    DOMAIN_DEVICE_LIST,
    DOMAIN_ONE_TIME_KEY,
    IdentityPublicKey,
)
from hotline.crypto.olm import verify_device_signature
from hotline.store import DeviceRow, SignedBlob
from hotline.wire.api import OneTimeKey
from hotline.wire.codec import Signed, decode
from hotline.wire.encoding import b64d
from hotline.wire.errors import MalformedInput
from hotline.wire.lists import Allowlist, DeviceList


def _open(signed: Signed, identity_key: bytes, domain: bytes) -> tuple[bytes, bytes]:
    payload = b64d(signed.payload, field="payload", max_len=64 * 1024)
    signature = b64d(signed.signature, field="signature")
    IdentityPublicKey.from_bytes(identity_key).verify(domain, payload, signature)
    return payload, signature


def verify_device_list(
    signed: Signed, identity_key: bytes, handle: str, now: float
) -> tuple[SignedBlob, list[DeviceRow]]:
    """Raises: BadSignature, MalformedInput (wrong handle, duplicate device ids)."""
    payload, signature = _open(signed, identity_key, DOMAIN_DEVICE_LIST)
    parsed = decode(payload, DeviceList, what="device list")
    if parsed.handle != handle:
        raise MalformedInput(f"device list is for {parsed.handle}, not {handle}")
    ids = [d.device_id for d in parsed.devices]
    if len(set(ids)) != len(ids):
        raise MalformedInput("device list names a device twice")
    rows = [
        DeviceRow(
            device_id=d.device_id,
            handle=handle,
            curve25519=b64d(d.curve25519, field="curve25519"),
            ed25519=b64d(d.ed25519, field="ed25519"),
            created_at=now,
        )
        for d in parsed.devices
    ]
    return SignedBlob(parsed.version, payload, signature), rows


def verify_allowlist(
    signed: Signed, identity_key: bytes, handle: str
) -> tuple[SignedBlob, list[str]]:
    """Raises: BadSignature, MalformedInput (wrong handle)."""
    payload, signature = _open(signed, identity_key, DOMAIN_ALLOWLIST)
    parsed = decode(payload, Allowlist, what="allowlist")
    if parsed.handle != handle:
        raise MalformedInput(f"allowlist is for {parsed.handle}, not {handle}")
    return SignedBlob(parsed.version, payload, signature), sorted(set(parsed.members))


def verify_one_time_key(device: DeviceRow, key: OneTimeKey) -> tuple[str, bytes, bytes]:
    """Check the device signed this key; returns ``(key_id, key, signature)``.

    Raises: BadSignature.
    """
    raw = b64d(key.key, field="key")
    signature = b64d(key.signature, field="signature")
    verify_device_signature(device.ed25519, DOMAIN_ONE_TIME_KEY, raw, signature)
    return key.key_id, raw, signature
