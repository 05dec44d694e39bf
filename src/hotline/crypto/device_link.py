"""Device-link sealing: HPKE (RFC 9180) base mode to a new device's ephemeral key. Hazmat layer.

Part of the labelled *hazmat* layer (STYLE.md §2): typed wrappers over ``cryptography``
(``hazmat.primitives.hpke``, HKDF, HMAC) for :mod:`hotline.client.enrolment`, nothing
hand-rolled.

* Sealing: suite ``DHKEM(X25519, HKDF-SHA256)``, ``HKDF-SHA256``, ``ChaCha20-Poly1305``,
  single-shot (RFC 9180 §6.1). Output ``enc`` (32 bytes) ``||`` ciphertext ``||`` tag (16).
  The key is ephemeral (one link), so a classical KEM is enough here, unlike records.
* Link secrets: the enrolment code's random secret is never used directly; HKDF-SHA256
  derives one 32-byte key per purpose (``auth`` for the server, ``binding`` for the MAC over
  the new device's keys, ``bundle`` bound into the HPKE ``info``).
* Binding tags: HMAC-SHA256, checked in constant time.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, hmac, hpke
from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from hotline.wire.errors import BadSignature, DecryptionFailed, MalformedInput

__all__ = [
    "KEY_SIZE",
    "OVERHEAD",
    "LinkPrivateKey",
    "derive_link_key",
    "link_open",
    "link_seal",
    "link_tag",
    "verify_link_tag",
]

_SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)
KEY_SIZE = 32
OVERHEAD = hpke.KEM.X25519.enc_length() + 16
_LABEL = b"hotline/v1/device-link/"


class LinkPrivateKey:
    """The new device's ephemeral X25519 key for one link. Never leaves the new device."""

    __slots__ = ("_key",)

    def __init__(self, key: x25519.X25519PrivateKey) -> None:
        self._key = key

    @classmethod
    def generate(cls) -> LinkPrivateKey:
        return cls(x25519.X25519PrivateKey.generate())

    @property
    def public_bytes(self) -> bytes:
        """The 32-byte raw public key (RFC 7748)."""
        return self._key.public_key().public_bytes_raw()

    def __repr__(self) -> str:
        return "LinkPrivateKey(<secret>)"


def derive_link_key(secret: bytes, purpose: str) -> bytes:
    """A 32-byte key for ``purpose`` (``auth``, ``binding``, ``bundle``) from the code's secret."""
    if len(secret) < 16:
        raise MalformedInput("a link secret has at least 16 bytes")
    return HKDF(
        algorithm=hashes.SHA256(),
        length=KEY_SIZE,
        salt=None,
        info=_LABEL + purpose.encode("ascii"),
    ).derive(secret)


def link_tag(key: bytes, data: bytes) -> bytes:
    """HMAC-SHA256 of ``data`` under ``key``."""
    mac = hmac.HMAC(key, hashes.SHA256())
    mac.update(data)
    return mac.finalize()


def verify_link_tag(key: bytes, data: bytes, tag: bytes) -> None:
    """Raises: BadSignature if ``tag`` is not the HMAC of ``data`` (constant time)."""
    mac = hmac.HMAC(key, hashes.SHA256())
    mac.update(data)
    try:
        mac.verify(tag)
    except InvalidSignature as exc:
        raise BadSignature("the device link's keys are not the ones its code vouches for") from exc


def link_seal(public: bytes, plaintext: bytes, info: bytes) -> bytes:
    """Seal ``plaintext`` to the raw X25519 ``public`` key, binding ``info``.

    Raises:
        MalformedInput: ``public`` is not an X25519 public key.
    """
    try:
        key = x25519.X25519PublicKey.from_public_bytes(public)
    except ValueError as exc:
        raise MalformedInput("not an X25519 public key") from exc
    return _SUITE.encrypt(plaintext, key, info=info)


def link_open(private: LinkPrivateKey, sealed: bytes, info: bytes) -> bytes:
    """Open what :func:`link_seal` produced with the same ``info``.

    Raises:
        DecryptionFailed: wrong key, wrong ``info``, truncated or tampered.
    """
    if len(sealed) < OVERHEAD:
        raise DecryptionFailed()
    try:
        return _SUITE.decrypt(sealed, private._key, info=info)
    except (InvalidTag, ValueError) as exc:
        raise DecryptionFailed() from exc
