"""Operator actions that run against the database directly (not over the API)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
)

from hotline.policy.document import open_policy
from hotline.policy.keys import read_org_public
from hotline.records.custodian_keys import fingerprint, read_public
from hotline.server.context import token_hash
from hotline.server.records_log import ArchiveSettings
from hotline.store import Store
from hotline.wire.codec import Signed, decode
from hotline.wire.errors import CustodianNotAuthorised, MalformedInput

ENROLMENT_TTL = 7 * 24 * 3600.0


async def issue_enrolment(store: Store, handle: str, now: float, ttl: float = ENROLMENT_TTL) -> str:
    """Create a single-use enrolment token for ``handle``; only its hash is stored."""
    token = secrets.token_urlsafe(24)
    await store.create_enrolment(token_hash(token), handle, now + ttl)
    return token


LOG_KEY_FILE = "log.key"
CUSTODIAN_PUB_FILE = "custodian.pub"


SERVER_KEY_FILE = "server.key"


def load_server_key(data_dir: Path) -> Ed25519PrivateKey:
    """The server's federation key (signs server-to-server requests), created on first use."""
    return _load_or_create_key(data_dir / SERVER_KEY_FILE)


def load_log_key(data_dir: Path) -> Ed25519PrivateKey:
    """The server's records-log signing key, created (mode 0600) on first use."""
    return _load_or_create_key(data_dir / LOG_KEY_FILE)


def _load_or_create_key(path: Path) -> Ed25519PrivateKey:
    data_dir = path.parent
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = Ed25519PrivateKey.generate()
        raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(raw)
        return key
    return Ed25519PrivateKey.from_private_bytes(path.read_bytes())


def archive_settings(
    data_dir: Path, custodian_pub: Path | None, law: str | None
) -> ArchiveSettings | None:
    """Archive settings from the data dir; a given ``custodian.pub`` is copied in first.

    Returns None when no custodian key was ever configured (the server then keeps no archive).

    Raises:
        MalformedInput: the file is not a custodian public key file.
    """
    stored = data_dir / CUSTODIAN_PUB_FILE
    if custodian_pub is not None:
        read_public(custodian_pub)  # refuse anything that is not a public key file
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        stored.write_bytes(custodian_pub.read_bytes())
    if not stored.exists():
        return None
    law_file = data_dir / "records-law.txt"
    if law:
        law_file.write_text(law)
    public = read_public(stored)
    return ArchiveSettings(
        log_key=load_log_key(data_dir),
        custodian_key=public.hpke.to_bytes(),
        law=law_file.read_text() if law_file.exists() else ArchiveSettings.law,
    )


def check_custodian_named(
    archive: ArchiveSettings | None, policy: Signed | None, org_key: bytes | None
) -> None:
    """Refuse to serve a records archive whose custodian the signed policy does not name.

    Clients refuse such a server anyway (threat model row 12); this tells the operator first.

    Raises:
        CustodianNotAuthorised: the policy names custodians and the configured one is not among
            them.
    """
    if archive is None or policy is None or org_key is None:
        return
    binding = open_policy(policy, org_key).records
    have = fingerprint(archive.custodian_key)
    if binding is not None and have not in binding.custodian_fingerprints:
        raise CustodianNotAuthorised(
            f"the configured custodian key {have} is not named in the organisation's policy "
            f"(it names {', '.join(binding.custodian_fingerprints)})"
        )


POLICY_FILE = "policy.signed"
ORG_PUB_FILE = "org.pub"


def policy_settings(
    data_dir: Path, policy: Path | None, org_key: Path | None
) -> tuple[Signed | None, bytes | None]:
    """The signed policy and organisation key kept in the data dir (given files are copied in).

    Raises:
        MalformedInput: not a signed policy / not an organisation public key.
        BadSignature: the policy is not signed by the organisation key.
        PolicyDowngrade: the new policy's version is below the one in force.
    """
    stored_policy, stored_key = data_dir / POLICY_FILE, data_dir / ORG_PUB_FILE
    current = None
    if stored_policy.exists() and stored_key.exists():
        current = open_policy(
            decode(stored_policy.read_bytes(), Signed), read_org_public(stored_key)
        )
    key_bytes = org_key.read_bytes() if org_key is not None else None
    key = (
        read_org_public(org_key)
        if org_key is not None
        else (read_org_public(stored_key) if stored_key.exists() else None)
    )
    policy_bytes = policy.read_bytes() if policy is not None else None
    if policy_bytes is not None:
        if key is None:
            raise MalformedInput(
                "a policy needs the organisation key it is signed with (--org-key)"
            )
        signed = decode(policy_bytes, Signed, what="signed policy")
        open_policy(signed, key, not_below=current.version if current else 0)
    # Everything checked: only now is anything written.
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if key_bytes is not None:
        stored_key.write_bytes(key_bytes)
    if policy_bytes is not None:
        stored_policy.write_bytes(policy_bytes)
    if not (stored_policy.exists() and stored_key.exists()):
        return None, None
    return decode(stored_policy.read_bytes(), Signed), read_org_public(stored_key)
