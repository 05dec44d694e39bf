"""The custodian's own action log: append-only, hash-chained, every line signed.

Every custodian action (export, search, attestation, legal hold, retention schedule) appends
one line to ``custodian-actions.jsonl`` beside the key file. A line is the JSON
``{"entry": <base64url of the exact entry bytes>, "signature": <base64url>}``; the entry bytes
are the JSON of :class:`ActionEntry`, whose ``prev`` is the SHA-256 (hex) of the previous
*line* (the genesis value for the first). The signature is the custodian's Ed25519 signature
over ``ACTION_DOMAIN + entry bytes``. A changed, removed, reordered or inserted line breaks
either a signature or the chain, and :func:`verify_actions` names the first line that does.

Legal holds and the retention schedule are recorded here only: records are never deleted.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from hotline.custodian.errors import ActionLogBroken
from hotline.wire.codec import decode, encode
from hotline.wire.encoding import b64d, b64e
from hotline.wire.errors import HotlineError

ACTIONS_FILE = "custodian-actions.jsonl"
ACTION_DOMAIN = b"hotline/v1/custodian-action\x00"
GENESIS = hashlib.sha256(b"hotline/v1/custodian-actions").hexdigest()


class ActionEntry(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One custodian action. ``detail`` holds its parameters (never record content)."""

    v: int = 1
    seq: int
    at_ms: int
    action: str
    detail: dict[str, str] = msgspec.field(default_factory=dict)
    prev: str


class _Line(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    entry: str
    signature: str


def actions_path(key_file: Path) -> Path:
    """The action log beside ``custodian.key``."""
    return key_file.parent / ACTIONS_FILE


def _line_hash(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()


def _read_lines(path: Path) -> list[bytes]:
    if not path.exists():
        return []
    return [line for line in path.read_bytes().split(b"\n") if line]


def verify_actions(path: Path, signing_public: Ed25519PublicKey) -> list[ActionEntry]:
    """Check every line's signature and the hash chain; returns the entries in order.

    Raises:
        ActionLogBroken: the first line (1-based ``line``) that is not what was signed, or
            does not follow the line before it.
    """
    entries: list[ActionEntry] = []
    prev = GENESIS
    for number, line in enumerate(_read_lines(path), start=1):
        entry = _open_line(number, line, signing_public)
        if entry.prev != prev or entry.seq != number:
            raise ActionLogBroken(
                f"line {number} does not follow line {number - 1} "
                "(a line was removed, inserted or reordered)",
                line=number,
            )
        entries.append(entry)
        prev = _line_hash(line)
    return entries


def _open_line(number: int, line: bytes, key: Ed25519PublicKey) -> ActionEntry:
    try:
        parsed = decode(line, _Line, what="action line")
        payload = b64d(parsed.entry, field="entry")
        key.verify(b64d(parsed.signature, field="signature"), ACTION_DOMAIN + payload)
        return decode(payload, ActionEntry, what="action entry")
    except (HotlineError, InvalidSignature) as exc:
        raise ActionLogBroken(
            f"line {number} was altered: its signature does not verify", line=number
        ) from exc


def append_action(
    path: Path, signing: Ed25519PrivateKey, action: str, now_ms: int, **detail: str
) -> ActionEntry:
    """Verify the log so far, then append one signed line chained to the last one.

    Raises:
        ActionLogBroken: the existing log does not verify (nothing is appended to it).
    """
    entries = verify_actions(path, signing.public_key())
    lines = _read_lines(path)
    entry = ActionEntry(
        seq=len(entries) + 1,
        at_ms=now_ms,
        action=action,
        detail=detail,
        prev=_line_hash(lines[-1]) if lines else GENESIS,
    )
    payload = encode(entry)
    line = encode(_Line(entry=b64e(payload), signature=b64e(signing.sign(ACTION_DOMAIN + payload))))
    with path.open("ab") as handle:
        handle.write(line + b"\n")
    return entry


@dataclass(frozen=True)
class Hold:
    """A legal hold in force: its name, conversation and reason."""

    name: str
    conversation: str
    reason: str


def holds_in_force(entries: list[ActionEntry]) -> list[Hold]:
    """Replay ``hold_added``/``hold_removed`` actions."""
    holds: dict[str, Hold] = {}
    for entry in entries:
        name = entry.detail.get("name", "")
        if entry.action == "hold_added":
            holds[name] = Hold(
                name, entry.detail.get("conversation", ""), entry.detail.get("reason", "")
            )
        elif entry.action == "hold_removed":
            holds.pop(name, None)
    return list(holds.values())


def retention_years(entries: list[ActionEntry]) -> int | None:
    """The latest retention schedule set, in years (None if never set)."""
    years = None
    for entry in entries:
        if entry.action == "retention_set":
            years = int(entry.detail["years"])
    return years
