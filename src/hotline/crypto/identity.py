"""Principal identity keys: Ed25519 with domain-separated signatures. Hazmat layer.

This module is part of the labelled *hazmat* layer (STYLE.md §2): it wraps
``cryptography``'s Ed25519 (RFC 8032 §5.1, PureEdDSA) and nothing else. Application code should
go through the signed-object helpers of the layers above.

Every Hotline signature covers ``domain || 0x00 || payload`` (DESIGN.md "Signed objects"): the
domain names what is being signed (``hotline/v1/card``), so a signature made for one kind of
object can never be replayed as another. Domains must be non-empty and contain no NUL byte, which
makes the encoding injective.

Key sizes: private key 32 bytes (the RFC 8032 seed), public key 32 bytes, signature 64 bytes.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from hotline.wire.errors import BadSignature, MalformedInput

__all__ = [
    "DOMAIN_ALLOWLIST",
    "DOMAIN_AUTH",
    "DOMAIN_CARD",
    "DOMAIN_DEVICE_LIST",
    "DOMAIN_ONE_TIME_KEY",
    "PRIVATE_KEY_SIZE",
    "PUBLIC_KEY_SIZE",
    "SIGNATURE_SIZE",
    "IdentityKey",
    "IdentityPublicKey",
    "domain_separated",
]

PRIVATE_KEY_SIZE = 32
PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64

DOMAIN_CARD = b"hotline/v1/card"
DOMAIN_DEVICE_LIST = b"hotline/v1/device-list"
DOMAIN_ALLOWLIST = b"hotline/v1/allowlist"
DOMAIN_AUTH = b"hotline/v1/auth"
DOMAIN_ONE_TIME_KEY = b"hotline/v1/one-time-key"


def domain_separated(domain: bytes, payload: bytes) -> bytes:
    """Return the exact bytes that get signed: ``domain || 0x00 || payload``.

    Raises:
        ValueError: ``domain`` is empty or contains a NUL byte (a programming error: domains are
            constants of this codebase, never peer input).
    """
    if not domain or b"\x00" in domain:
        raise ValueError("signature domain must be non-empty and contain no NUL byte")
    return domain + b"\x00" + payload


class IdentityPublicKey:
    """An Ed25519 public key that verifies domain-separated signatures (RFC 8032 §5.1.7)."""

    __slots__ = ("_key", "_raw")

    def __init__(self, key: Ed25519PublicKey) -> None:
        self._key = key
        self._raw = key.public_bytes_raw()

    @classmethod
    def from_bytes(cls, raw: bytes) -> IdentityPublicKey:
        """Load a 32-byte raw public key.

        Raises:
            MalformedInput: not 32 bytes or not a valid encoding.
        """
        if len(raw) != PUBLIC_KEY_SIZE:
            raise MalformedInput("Ed25519 public key must be 32 bytes")
        try:
            return cls(Ed25519PublicKey.from_public_bytes(raw))
        except ValueError as exc:
            raise MalformedInput("not an Ed25519 public key") from exc

    def to_bytes(self) -> bytes:
        """The 32-byte raw public key."""
        return self._raw

    def verify(self, domain: bytes, payload: bytes, signature: bytes) -> None:
        """Check ``signature`` over ``domain || 0x00 || payload``, the exact bytes received.

        Raises:
            BadSignature: the signature is malformed or does not verify.
        """
        message = domain_separated(domain, payload)
        if len(signature) != SIGNATURE_SIZE:
            raise BadSignature()
        try:
            self._key.verify(signature, message)
        except InvalidSignature as exc:
            raise BadSignature() from exc

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, IdentityPublicKey):
            return NotImplemented
        return self._raw == other._raw

    def __hash__(self) -> int:
        return hash(self._raw)

    def __repr__(self) -> str:
        return f"IdentityPublicKey({self._raw.hex()[:16]}…)"


class IdentityKey:
    """A principal's Ed25519 private identity key (RFC 8032 §5.1.5).

    It signs the device list, the contact card and the allowlist (DESIGN.md "Principal
    identity"). ``repr`` never shows key material.
    """

    __slots__ = ("_key", "_public")

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self._public = IdentityPublicKey(key.public_key())

    @classmethod
    def generate(cls) -> IdentityKey:
        """Create a fresh random identity key."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_bytes(cls, raw: bytes) -> IdentityKey:
        """Load a 32-byte raw private key (the RFC 8032 seed).

        Raises:
            MalformedInput: not 32 bytes.
        """
        if len(raw) != PRIVATE_KEY_SIZE:
            raise MalformedInput("Ed25519 private key must be 32 bytes")
        try:
            return cls(Ed25519PrivateKey.from_private_bytes(raw))
        except ValueError as exc:
            raise MalformedInput("not an Ed25519 private key") from exc

    def to_bytes(self) -> bytes:
        """The 32-byte raw private key. Secret: only the keystore should call this."""
        return self._key.private_bytes_raw()

    @property
    def public(self) -> IdentityPublicKey:
        """The matching public key."""
        return self._public

    def sign(self, domain: bytes, payload: bytes) -> bytes:
        """Sign ``domain || 0x00 || payload``; returns the 64-byte signature."""
        return self._key.sign(domain_separated(domain, payload))

    def __repr__(self) -> str:
        return f"IdentityKey(public={self._public!r})"
