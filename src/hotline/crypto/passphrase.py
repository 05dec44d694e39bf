"""Keystore at rest: passphrase sealing (scrypt + ChaCha20-Poly1305) and subkeys. Hazmat layer.

Part of the labelled *hazmat* layer (STYLE.md §2); primitives come from ``cryptography``:
scrypt (RFC 7914), ChaCha20-Poly1305 (RFC 8439) and HKDF-SHA256 (RFC 5869).

Blob format, version 1 (all integers unsigned bytes)::

    offset size  field
    0      4     magic b"HLKS"
    4      1     format version = 1
    5      1     KDF id = 1 (scrypt)
    6      1     log2(N)      scrypt cost
    7      1     r            scrypt block size
    8      1     p            scrypt parallelism
    9      16    salt
    25     12    nonce
    37     ...   ChaCha20-Poly1305 ciphertext || 16-byte tag

The 37-byte header is authenticated: the AEAD's associated data is ``header || aad``, so any
flipped byte anywhere fails. The scrypt parameters are read back from the header, so sealing
may choose them; opening refuses parameters above :data:`MAX_SCRYPT_MEMORY` /
:data:`MAX_SCRYPT_P` before deriving anything, so a malicious file cannot ask for 64 GiB.
A wrong passphrase and a damaged blob raise the same :class:`WrongPassphrase`.

Passphrases are NFC-normalised then UTF-8 encoded, so the same words typed on two keyboards
give the same key.
"""

from __future__ import annotations

import os
import struct
import unicodedata
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from hotline.wire.errors import WrongPassphrase

__all__ = [
    "DEFAULT_SCRYPT",
    "HEADER_SIZE",
    "KEY_SIZE",
    "MAGIC",
    "MAX_SCRYPT_MEMORY",
    "MAX_SCRYPT_P",
    "OVERHEAD",
    "KeystoreKey",
    "ScryptParams",
    "derive_subkey",
    "open_with_passphrase",
    "seal_with_passphrase",
]

MAGIC = b"HLKS"
FORMAT_VERSION = 1
KDF_SCRYPT = 1
KEY_SIZE = 32
SALT_SIZE = 16
NONCE_SIZE = 12
TAG_SIZE = 16
_HEADER = struct.Struct(f">4sBBBBB{SALT_SIZE}s{NONCE_SIZE}s")
HEADER_SIZE = _HEADER.size
OVERHEAD = HEADER_SIZE + TAG_SIZE
MAX_SCRYPT_MEMORY = 256 * 1024 * 1024
MAX_SCRYPT_P = 16
_SUBKEY_INFO_PREFIX = b"hotline/v1/keystore-subkey\x00"


@dataclass(frozen=True, slots=True)
class ScryptParams:
    """scrypt cost parameters (RFC 7914 §2); memory used is ``128 * r * 2**log2_n`` bytes.

    Raises:
        ValueError: on construction, parameters out of bounds (see :meth:`within_bounds`).
    """

    log2_n: int = 15
    r: int = 8
    p: int = 1

    def __post_init__(self) -> None:
        if not self.within_bounds():
            raise ValueError("scrypt parameters out of bounds")

    def within_bounds(self) -> bool:
        """True if cheap enough to run and strong enough to be scrypt at all."""
        if not (1 <= self.log2_n <= 63 and 1 <= self.r <= 255 and 1 <= self.p <= MAX_SCRYPT_P):
            return False
        return 128 * self.r * (1 << self.log2_n) <= MAX_SCRYPT_MEMORY

    @property
    def n(self) -> int:
        """The scrypt cost ``N``."""
        return 1 << self.log2_n


#: n = 2**15, r = 8, p = 1: 32 MiB, about 0.1 s on the reference machine.
DEFAULT_SCRYPT = ScryptParams()


def _derive_key(passphrase: str, salt: bytes, params: ScryptParams) -> bytes:
    secret = unicodedata.normalize("NFC", passphrase).encode("utf-8")
    kdf = Scrypt(salt=salt, length=KEY_SIZE, n=params.n, r=params.r, p=params.p)
    return kdf.derive(secret)


def seal_with_passphrase(
    passphrase: str, plaintext: bytes, *, aad: bytes = b"", scrypt: ScryptParams = DEFAULT_SCRYPT
) -> bytes:
    """Encrypt ``plaintext`` under a key derived from ``passphrase``; returns the blob.

    ``aad`` is authenticated but not stored: the same bytes must be given to open.
    """
    salt, nonce = os.urandom(SALT_SIZE), os.urandom(NONCE_SIZE)
    header = _HEADER.pack(
        MAGIC, FORMAT_VERSION, KDF_SCRYPT, scrypt.log2_n, scrypt.r, scrypt.p, salt, nonce
    )
    key = _derive_key(passphrase, salt, scrypt)
    return header + ChaCha20Poly1305(key).encrypt(nonce, plaintext, header + aad)


def _parse_header(blob: bytes) -> tuple[bytes, ScryptParams, bytes, bytes]:
    if len(blob) < OVERHEAD:
        raise WrongPassphrase()
    magic, version, kdf, log2_n, r, p, salt, nonce = _HEADER.unpack_from(blob)
    if magic != MAGIC or version != FORMAT_VERSION or kdf != KDF_SCRYPT:
        raise WrongPassphrase()
    try:
        params = ScryptParams(log2_n, r, p)
    except ValueError as exc:
        raise WrongPassphrase() from exc
    return blob[:HEADER_SIZE], params, salt, nonce


def open_with_passphrase(passphrase: str, blob: bytes, *, aad: bytes = b"") -> bytes:
    """Decrypt a blob made by :func:`seal_with_passphrase`.

    Raises:
        WrongPassphrase: wrong passphrase, wrong ``aad``, or any damage to the blob.
    """
    header, params, salt, nonce = _parse_header(blob)
    key = _derive_key(passphrase, salt, params)
    try:
        return ChaCha20Poly1305(key).decrypt(nonce, blob[HEADER_SIZE:], header + aad)
    except InvalidTag as exc:
        raise WrongPassphrase() from exc


def derive_subkey(master: bytes, label: str) -> bytes:
    """Derive a 32-byte subkey for ``label`` from a 32-byte master key (HKDF-SHA256).

    Used e.g. for the vodozemac pickle key: ``derive_subkey(master, "olm-pickle")``.

    Raises:
        ValueError: ``master`` is not 32 bytes or ``label`` is empty.
    """
    if len(master) != KEY_SIZE or not label:
        raise ValueError("master key must be 32 bytes and label non-empty")
    info = _SUBKEY_INFO_PREFIX + label.encode("utf-8")
    return HKDF(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=None, info=info).derive(master)


class KeystoreKey:
    """The keystore master key: random, sealed at rest under the passphrase."""

    __slots__ = ("_raw",)

    def __init__(self, raw: bytes) -> None:
        if len(raw) != KEY_SIZE:
            raise ValueError("keystore key must be 32 bytes")
        self._raw = raw

    @classmethod
    def generate(cls) -> KeystoreKey:
        """A fresh random master key."""
        return cls(os.urandom(KEY_SIZE))

    @classmethod
    def from_bytes(cls, raw: bytes) -> KeystoreKey:
        """Load a 32-byte master key.

        Raises:
            ValueError: not 32 bytes.
        """
        return cls(raw)

    def to_bytes(self) -> bytes:
        """The raw 32 bytes. Secret."""
        return self._raw

    def subkey(self, label: str) -> bytes:
        """A 32-byte subkey for ``label`` (see :func:`derive_subkey`)."""
        return derive_subkey(self._raw, label)

    def seal(
        self, passphrase: str, *, aad: bytes = b"", scrypt: ScryptParams = DEFAULT_SCRYPT
    ) -> bytes:
        """Seal this key under ``passphrase`` for storage."""
        return seal_with_passphrase(passphrase, self._raw, aad=aad, scrypt=scrypt)

    @classmethod
    def open(cls, passphrase: str, blob: bytes, *, aad: bytes = b"") -> KeystoreKey:
        """Open a key sealed with :meth:`seal`.

        Raises:
            WrongPassphrase: wrong passphrase or damaged blob.
        """
        raw = open_with_passphrase(passphrase, blob, aad=aad)
        if len(raw) != KEY_SIZE:
            raise WrongPassphrase()
        return cls(raw)

    def __repr__(self) -> str:
        return "KeystoreKey(<secret>)"
