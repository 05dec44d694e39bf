"""The organisation key's files: ``org.key`` (sealed under a passphrase) and ``org.pub``."""

from __future__ import annotations

import hashlib
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from hotline.crypto.passphrase import (
    DEFAULT_SCRYPT,
    ScryptParams,
    open_with_passphrase,
    seal_with_passphrase,
)
from hotline.wire.encoding import b64d, b64e
from hotline.wire.errors import MalformedInput

PRIVATE_FILE = "org.key"
PUBLIC_FILE = "org.pub"
_AAD = b"hotline/v1/organisation-key"


def public_bytes(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def fingerprint(public: bytes) -> str:
    digest = hashlib.sha256(b"hotline/v1/organisation\x00" + public).hexdigest()[:32]
    return " ".join(digest[i : i + 4] for i in range(0, 32, 4))


def write_org_key(
    directory: Path, passphrase: str, *, scrypt: ScryptParams = DEFAULT_SCRYPT
) -> tuple[Path, Path]:
    """Create the organisation key; refuses to overwrite an existing one."""
    directory.mkdir(parents=True, exist_ok=True)
    private, public = directory / PRIVATE_FILE, directory / PUBLIC_FILE
    if private.exists() or public.exists():
        raise MalformedInput(f"an organisation key already exists in {directory}")
    key = Ed25519PrivateKey.generate()
    raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    private.touch(mode=0o600)
    private.write_bytes(seal_with_passphrase(passphrase, raw, aad=_AAD, scrypt=scrypt))
    public.write_text(b64e(public_bytes(key)) + "\n")
    return private, public


def read_org_key(path: Path, passphrase: str) -> Ed25519PrivateKey:
    """Raises: WrongPassphrase."""
    return Ed25519PrivateKey.from_private_bytes(
        open_with_passphrase(passphrase, path.read_bytes(), aad=_AAD)
    )


def read_org_public(path: Path) -> bytes:
    """Raises: MalformedInput (not a 32-byte base64url key)."""
    raw = b64d(path.read_text().strip(), field="organisation key")
    if len(raw) != 32:
        raise MalformedInput("an organisation public key is 32 bytes of base64url")
    return raw
