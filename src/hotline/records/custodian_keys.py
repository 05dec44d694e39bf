"""The records custodian's keys and their files.

The custodian holds two private keys, kept offline: the HPKE key records are sealed to
(ML-KEM-768 + X25519 hybrid, :mod:`hotline.crypto.hpke`) and an Ed25519 key that signs what the
custodian publishes (transcript attestations, custodian actions). ``custodian.key`` holds both,
sealed under a passphrase (scrypt + ChaCha20-Poly1305); ``custodian.pub`` holds the public
halves and a fingerprint, and is what a home server is configured with. The server never sees
the private file.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from hotline.crypto.hpke import CustodianPrivateKey, CustodianPublicKey
from hotline.crypto.passphrase import (
    DEFAULT_SCRYPT,
    ScryptParams,
    open_with_passphrase,
    seal_with_passphrase,
)
from hotline.wire.codec import decode, encode
from hotline.wire.encoding import b64d, b64e
from hotline.wire.errors import MalformedInput

_AAD = b"hotline/v1/custodian-key"
PRIVATE_FILE = "custodian.key"
PUBLIC_FILE = "custodian.pub"


class _PublicFile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    v: int
    hpke_public: str
    signing_public: str
    fingerprint: str


class _PrivateFile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    v: int
    hpke_private: str
    signing_private: str


def fingerprint(hpke_public: bytes) -> str:
    """Eight groups of four hex digits over the sealing key (compare it out of band)."""
    digest = hashlib.sha256(b"hotline/v1/custodian\x00" + hpke_public).hexdigest()[:32]
    return " ".join(digest[i : i + 4] for i in range(0, 32, 4))


@dataclass(frozen=True)
class CustodianPublic:
    hpke: CustodianPublicKey
    signing: Ed25519PublicKey

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.hpke.to_bytes())

    def signing_bytes(self) -> bytes:
        return self.signing.public_bytes(Encoding.Raw, PublicFormat.Raw)


@dataclass(frozen=True)
class CustodianKeys:
    hpke: CustodianPrivateKey
    signing: Ed25519PrivateKey

    @classmethod
    def generate(cls) -> CustodianKeys:
        return cls(CustodianPrivateKey.generate(), Ed25519PrivateKey.generate())

    @property
    def public(self) -> CustodianPublic:
        return CustodianPublic(self.hpke.public, self.signing.public_key())


def write_keys(
    directory: Path, keys: CustodianKeys, passphrase: str, *, scrypt: ScryptParams = DEFAULT_SCRYPT
) -> tuple[Path, Path]:
    """Write ``custodian.key`` (sealed, mode 0600) and ``custodian.pub``; refuses to overwrite."""
    directory.mkdir(parents=True, exist_ok=True)
    private, public = directory / PRIVATE_FILE, directory / PUBLIC_FILE
    if private.exists() or public.exists():
        raise MalformedInput(f"custodian keys already exist in {directory}; refusing to overwrite")
    from cryptography.hazmat.primitives.serialization import NoEncryption, PrivateFormat

    raw_signing = keys.signing.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    secret = encode(
        _PrivateFile(
            v=1, hpke_private=b64e(keys.hpke.to_bytes()), signing_private=b64e(raw_signing)
        )
    )
    private.touch(mode=0o600)
    private.write_bytes(seal_with_passphrase(passphrase, secret, aad=_AAD, scrypt=scrypt))
    pub = keys.public
    public.write_bytes(
        encode(
            _PublicFile(
                v=1,
                hpke_public=b64e(pub.hpke.to_bytes()),
                signing_public=b64e(pub.signing_bytes()),
                fingerprint=pub.fingerprint,
            )
        )
        + b"\n"
    )
    return private, public


def read_public(path: Path) -> CustodianPublic:
    """Raises: MalformedInput (not a custodian.pub file)."""
    parsed = decode(path.read_bytes().strip(), _PublicFile, what="custodian public key file")
    return CustodianPublic(
        CustodianPublicKey.from_bytes(b64d(parsed.hpke_public, max_len=4096)),
        Ed25519PublicKey.from_public_bytes(b64d(parsed.signing_public)),
    )


def read_keys(path: Path, passphrase: str) -> CustodianKeys:
    """Raises: WrongPassphrase (or a damaged file), MalformedInput."""
    secret = open_with_passphrase(passphrase, path.read_bytes(), aad=_AAD)
    parsed = decode(secret, _PrivateFile, what="custodian key file")
    return CustodianKeys(
        CustodianPrivateKey.from_bytes(b64d(parsed.hpke_private, max_len=4096)),
        Ed25519PrivateKey.from_private_bytes(b64d(parsed.signing_private)),
    )
