"""Records sealing: HPKE (RFC 9180) single-shot to the custodian key. Hazmat layer.

Part of the labelled *hazmat* layer (STYLE.md §2): a typed wrapper over
``cryptography.hazmat.primitives.hpke`` in base mode (RFC 9180 §5.1.1, single-shot §6.1).

Suite :data:`SUITE_ID`: KEM ``MLKEM768_X25519`` (hybrid post-quantum, because records must stay
secret for decades), KDF ``HKDF_SHA256``, AEAD ``CHACHA20_POLY1305``. The suite id is stored
with every record so it can change later.

Sealed layout: ``enc`` (:data:`ENC_SIZE` = 1120 bytes, the KEM encapsulation) followed by the
AEAD ciphertext and its 16-byte tag, so :data:`OVERHEAD` = 1136 bytes per record.

Key encodings (``cryptography`` offers no single encoding of the hybrid key, so Hotline defines
one from the components' standard raw forms):

* private key, 96 bytes: ML-KEM-768 seed ``d || z`` (64 bytes, FIPS 203) ``||`` X25519 private
  key (32 bytes, RFC 7748);
* public key, 1216 bytes: ML-KEM-768 encapsulation key (1184 bytes) ``||`` X25519 public key
  (32 bytes).
"""

from __future__ import annotations

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519

from hotline.wire.errors import DecryptionFailed, MalformedInput

__all__ = [
    "ENC_SIZE",
    "OVERHEAD",
    "PRIVATE_KEY_SIZE",
    "PUBLIC_KEY_SIZE",
    "SUITE_ID",
    "TAG_SIZE",
    "CustodianPrivateKey",
    "CustodianPublicKey",
    "hpke_open",
    "hpke_seal",
]

SUITE_ID = "MLKEM768X25519-HKDFSHA256-CHACHA20POLY1305"
_SUITE = hpke.Suite(hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)

MLKEM_SEED_SIZE = 64
MLKEM_PUBLIC_SIZE = 1184
X25519_SIZE = 32
PRIVATE_KEY_SIZE = MLKEM_SEED_SIZE + X25519_SIZE
PUBLIC_KEY_SIZE = MLKEM_PUBLIC_SIZE + X25519_SIZE
ENC_SIZE = hpke.KEM.MLKEM768_X25519.enc_length()
TAG_SIZE = 16
OVERHEAD = ENC_SIZE + TAG_SIZE


class CustodianPublicKey:
    """The records custodian's hybrid public key; anyone may seal to it."""

    __slots__ = ("_key", "_raw")

    def __init__(
        self, mlkem_key: mlkem.MLKEM768PublicKey, x25519_key: x25519.X25519PublicKey
    ) -> None:
        self._key = hpke.MLKEM768X25519PublicKey(mlkem_key, x25519_key)
        self._raw = mlkem_key.public_bytes_raw() + x25519_key.public_bytes_raw()

    @classmethod
    def from_bytes(cls, raw: bytes) -> CustodianPublicKey:
        """Load the 1216-byte encoding.

        Raises:
            MalformedInput: wrong length or invalid component key.
        """
        if len(raw) != PUBLIC_KEY_SIZE:
            raise MalformedInput("custodian public key must be 1216 bytes")
        try:
            return cls(
                mlkem.MLKEM768PublicKey.from_public_bytes(raw[:MLKEM_PUBLIC_SIZE]),
                x25519.X25519PublicKey.from_public_bytes(raw[MLKEM_PUBLIC_SIZE:]),
            )
        except ValueError as exc:
            raise MalformedInput("not a custodian public key") from exc

    def to_bytes(self) -> bytes:
        """The 1216-byte encoding."""
        return self._raw

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CustodianPublicKey):
            return NotImplemented
        return self._raw == other._raw

    def __hash__(self) -> int:
        return hash(self._raw)


class CustodianPrivateKey:
    """The custodian's offline hybrid private key; it opens sealed records."""

    __slots__ = ("_key", "_mlkem", "_public", "_x25519")

    def __init__(
        self, mlkem_key: mlkem.MLKEM768PrivateKey, x25519_key: x25519.X25519PrivateKey
    ) -> None:
        self._mlkem = mlkem_key
        self._x25519 = x25519_key
        self._key = hpke.MLKEM768X25519PrivateKey(mlkem_key, x25519_key)
        self._public = CustodianPublicKey(mlkem_key.public_key(), x25519_key.public_key())

    @classmethod
    def generate(cls) -> CustodianPrivateKey:
        """A fresh random custodian key."""
        return cls(mlkem.MLKEM768PrivateKey.generate(), x25519.X25519PrivateKey.generate())

    @classmethod
    def from_bytes(cls, raw: bytes) -> CustodianPrivateKey:
        """Load the 96-byte encoding (ML-KEM seed || X25519 private key).

        Raises:
            MalformedInput: wrong length or invalid component key.
        """
        if len(raw) != PRIVATE_KEY_SIZE:
            raise MalformedInput("custodian private key must be 96 bytes")
        try:
            return cls(
                mlkem.MLKEM768PrivateKey.from_seed_bytes(raw[:MLKEM_SEED_SIZE]),
                x25519.X25519PrivateKey.from_private_bytes(raw[MLKEM_SEED_SIZE:]),
            )
        except ValueError as exc:
            raise MalformedInput("not a custodian private key") from exc

    def to_bytes(self) -> bytes:
        """The 96-byte encoding. Secret."""
        return self._mlkem.private_bytes_raw() + self._x25519.private_bytes_raw()

    @property
    def public(self) -> CustodianPublicKey:
        """The matching public key."""
        return self._public

    def __repr__(self) -> str:
        return "CustodianPrivateKey(<secret>)"


def hpke_seal(public: CustodianPublicKey, plaintext: bytes, info: bytes) -> bytes:
    """Seal ``plaintext`` to the custodian, binding ``info`` (log id, record id).

    Returns ``enc || ciphertext || tag``, :data:`OVERHEAD` bytes longer than ``plaintext``.
    """
    return _SUITE.encrypt(plaintext, public._key, info=info)


def hpke_open(private: CustodianPrivateKey, sealed: bytes, info: bytes) -> bytes:
    """Open a record sealed by :func:`hpke_seal` with the same ``info``.

    Raises:
        DecryptionFailed: wrong key, wrong ``info``, truncated or tampered record.
    """
    if len(sealed) < OVERHEAD:
        raise DecryptionFailed()
    try:
        return _SUITE.decrypt(sealed, private._key, info=info)
    except (InvalidTag, ValueError) as exc:
        raise DecryptionFailed() from exc
