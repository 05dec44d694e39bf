"""Human and mail renderings of records: one transcript line, one RFC 5322 message.

Records systems ingest mail, so each message record also becomes an email (RFC 5322, built
with the stdlib :mod:`email` package) appended to an mbox file (``From `` lines quoted).
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from email.generator import BytesGenerator
from email.message import EmailMessage
from email.policy import default as default_policy
from email.utils import format_datetime
from pathlib import Path

from hotline.client.transcript import conversation_id
from hotline.wire.records import Record

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAIL_POLICY = default_policy.clone(linesep="\n")
LOCAL_CONVERSATION = "_local"


def record_conversation(record: Record) -> str:
    """The record's conversation, or the direct one implied by its parties (contact changes)."""
    if record.conversation:
        return record.conversation
    others = [h for h in [record.sender, *record.recipients] if h != record.principal]
    if len(set(others)) == 1:
        return conversation_id(record.principal, others[0])
    return LOCAL_CONVERSATION


def safe_name(conversation: str) -> str:
    """A file name for ``conversation``: readable slug plus a short hash (no collisions)."""
    slug = _UNSAFE.sub("_", conversation).strip("._")[:80] or "conversation"
    return f"{slug}-{hashlib.sha256(conversation.encode()).hexdigest()[:8]}"


def utc(ms: int) -> datetime:
    """Milliseconds since the epoch as an aware UTC datetime."""
    return datetime.fromtimestamp(ms / 1000, UTC)


def transcript_line(index: int, record: Record) -> str:
    """One line of a conversation's human-readable transcript."""
    when = utc(record.created_at_ms).strftime("%Y-%m-%d %H:%M:%S UTC")
    to = ", ".join(record.recipients) or "-"
    text = record.body.replace("\n", "\n    ") if record.body else f"({record.kind})"
    return (
        f"{when}  {record.sender} -> {to}: {text}\n"
        f"    [{record.kind}, {record.side} record of {record.principal} "
        f"device {record.device}, log entry {index}, record {record.record_id}]\n"
    )


def to_email(index: int, record: Record, conversation: str) -> EmailMessage:
    """The RFC 5322 message of one message record (Message-ID ``<message_id@hotline>``)."""
    message = EmailMessage(policy=_MAIL_POLICY)
    message["From"] = record.sender
    message["To"] = ", ".join(record.recipients)
    message["Date"] = format_datetime(utc(record.created_at_ms))
    message["Message-ID"] = f"<{record.message_id or record.record_id}@hotline>"
    message["Subject"] = f"Hotline: {conversation}"
    message["X-Hotline-Record-Id"] = record.record_id
    message["X-Hotline-Log-Index"] = str(index)
    message["X-Hotline-Side"] = f"{record.side} ({record.principal}, device {record.device})"
    message.set_content(record.body or f"({record.kind})")
    stamp = utc(record.created_at_ms).strftime("%a %b %d %H:%M:%S %Y")
    message.set_unixfrom(f"From {record.sender or 'hotline'} {stamp}")
    return message


def append_mbox(path: Path, message: EmailMessage) -> None:
    """Append ``message`` to an mbox file, quoting body lines that start with ``From ``."""
    with path.open("ab") as handle:
        BytesGenerator(handle, mangle_from_=True, policy=_MAIL_POLICY).flatten(
            message, unixfrom=True
        )
        handle.write(b"\n")
