"""Export the archive as a BagIt bag (RFC 8493) that verifies offline.

Layout under ``data/``:

* ``records.jsonl`` — every record opened with the custodian key, in log order, one JSON per
  line: ``{"index", "record_id", "record"}`` (or ``"error"`` for an entry the key cannot open);
* ``conversations/<name>.txt`` — a human-readable transcript per conversation, each line
  saying which side's record it is; ``conversations/<name>.mbox`` — its message records as
  RFC 5322 mail;
* ``log/entries.jsonl`` — ``{"index", "record_id", "leaf" (base64url), "leaf_hash" (hex)}``;
* ``log/tree-head.json`` — the latest signed tree head (exact bytes, signature, log key);
* ``log/proofs.jsonl`` — the inclusion proof of every entry against that head
  (RFC 9162 §2.1.3).

The bag covers exactly the entries of the latest signed head; entries appended after it are
left for the next export (they have no signed root yet). Manifests are SHA-256 and SHA-512.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import bagit  # type: ignore[import-untyped]
import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from hotline.crypto.hpke import CustodianPrivateKey
from hotline.custodian.errors import BagInvalid, LogIndexGap, TreeHeadRootMismatch
from hotline.custodian.rendering import (
    append_mbox,
    record_conversation,
    safe_name,
    to_email,
    transcript_line,
)
from hotline.custodian.source import iter_entries, public_key_b64
from hotline.records.checkpoint import SignedTreeHead, TreeHead, verify_tree_head
from hotline.records.hasher import hash_leaf
from hotline.records.proof import MerkleTree
from hotline.records.sealing import open_record
from hotline.store.base import LogEntryRow, LogStore
from hotline.wire.encoding import b64e
from hotline.wire.errors import HotlineError, MalformedInput

CHECKSUMS = ["sha256", "sha512"]
Progress = Callable[[str, int, int], None]


@dataclass
class ExportSummary:
    """What went into the bag."""

    bag: Path
    entries: int = 0
    unreadable: int = 0
    conversations: set[str] = field(default_factory=set)
    head: TreeHead | None = None
    left_for_later: int = 0


def _jsonl(handle: IO[str], obj: dict[str, Any]) -> None:
    handle.write(json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n")


def _prepare(out: Path) -> Path:
    if out.exists() and any(out.iterdir()):
        raise MalformedInput(f"{out} exists and is not empty; choose a new folder")
    (out / "conversations").mkdir(parents=True, exist_ok=True)
    (out / "log").mkdir(exist_ok=True)
    return out


class _Writer:
    """Writes one entry's lines into the bag's files as the log streams by."""

    def __init__(self, out: Path, custodian: CustodianPrivateKey, stack: ExitStack) -> None:
        self.out = out
        self.custodian = custodian
        self.records = stack.enter_context((out / "records.jsonl").open("w", encoding="utf-8"))
        self.entries = stack.enter_context((out / "log/entries.jsonl").open("w", encoding="utf-8"))
        self.summary = ExportSummary(out)

    def write(self, row: LogEntryRow) -> None:
        _jsonl(
            self.entries,
            {
                "index": row.index,
                "record_id": row.record_id,
                "leaf": b64e(row.leaf),
                "leaf_hash": row.leaf_hash.hex(),
            },
        )
        line: dict[str, Any] = {"index": row.index, "record_id": row.record_id}
        try:
            record = open_record(self.custodian, row.leaf)
        except HotlineError as exc:
            line["error"] = exc.code
            self.summary.unreadable += 1
        else:
            line["record"] = msgspec.to_builtins(record)
            self._conversation(row.index, record)
        _jsonl(self.records, line)
        self.summary.entries += 1

    def _conversation(self, index: int, record: Any) -> None:
        conversation = record_conversation(record)
        name = safe_name(conversation)
        self.summary.conversations.add(conversation)
        text = self.out / "conversations" / f"{name}.txt"
        if not text.exists():
            text.write_text(f"Hotline conversation {conversation}\n\n", encoding="utf-8")
        with text.open("a", encoding="utf-8") as handle:
            handle.write(transcript_line(index, record))
        if record.kind == "message":
            append_mbox(
                self.out / "conversations" / f"{name}.mbox",
                to_email(index, record, conversation),
            )


async def export_bag(
    store: LogStore,
    custodian: CustodianPrivateKey,
    log_key: Ed25519PublicKey,
    out: Path,
    *,
    progress: Progress | None = None,
) -> ExportSummary:
    """Write a verifiable bag of the log up to its latest signed head into ``out``.

    Raises:
        MalformedInput: ``out`` is not empty, or the log has no signed head yet.
        TreeHeadInvalid-like ``BadSignature``: the latest head does not verify.
        LogIndexGap, TreeHeadRootMismatch: storage does not match the head (run verify).
    """
    latest = await store.latest_tree_head()
    if latest is None:
        raise MalformedInput("the log has no signed tree head yet; nothing to export")
    signed = SignedTreeHead(latest.head, latest.signature)
    head = verify_tree_head(signed, log_key)
    _prepare(out)
    tree = MerkleTree()
    with ExitStack() as stack:
        writer = _Writer(out, custodian, stack)
        async for row in iter_entries(store, 0, head.size):
            if row.index != tree.size:
                raise LogIndexGap(
                    f"entry {tree.size} is missing from storage; run 'hotline archive verify'",
                    expected=tree.size,
                    got=row.index,
                )
            tree.append(hash_leaf(row.leaf))
            writer.write(row)
            if progress is not None:
                progress("records", tree.size, head.size)
    _check_root(tree, head)
    _write_proofs(out, tree, head.size, progress)
    _write_head(out, signed, head, log_key)
    summary = writer.summary
    summary.head = head
    summary.left_for_later = await store.log_size() - head.size
    _make_bag(out, head)
    return summary


def _check_root(tree: MerkleTree, head: TreeHead) -> None:
    root = tree.root(head.size) if tree.size >= head.size else b""
    if tree.size != head.size or root != head.root:
        raise TreeHeadRootMismatch(
            f"storage does not produce the signed root at size {head.size}; "
            "run 'hotline archive verify'",
            size=head.size,
            expected=head.root.hex(),
            calculated=root.hex(),
        )


def _write_proofs(out: Path, tree: MerkleTree, size: int, progress: Progress | None) -> None:
    with (out / "log/proofs.jsonl").open("w", encoding="utf-8") as handle:
        for index in range(size):
            proof = tree.inclusion_proof(index, size)
            _jsonl(handle, {"index": index, "proof": [p.hex() for p in proof]})
            if progress is not None:
                progress("proofs", index + 1, size)


def _write_head(
    out: Path, signed: SignedTreeHead, head: TreeHead, log_key: Ed25519PublicKey
) -> None:
    document = {
        "head": b64e(signed.head_bytes),
        "signature": b64e(signed.signature),
        "log_key": public_key_b64(log_key),
        "log_id": head.log_id,
        "size": head.size,
        "root": head.root.hex(),
    }
    (out / "log/tree-head.json").write_text(json.dumps(document, indent=2) + "\n")


def _make_bag(out: Path, head: TreeHead) -> None:
    info = {
        "Source-Organization": head.log_id.split("/", 1)[0],
        "Bagging-Date": datetime.now(UTC).date().isoformat(),
        "External-Description": "Hotline records archive export (records never deleted).",
        "Hotline-Log-Id": head.log_id,
        "Hotline-Tree-Size": str(head.size),
        "Hotline-Root": head.root.hex(),
    }
    try:
        bagit.make_bag(str(out), bag_info=info, checksums=CHECKSUMS)
    except (bagit.BagError, OSError, RuntimeError) as exc:
        raise BagInvalid(f"could not make the bag in {out}: {exc}") from exc
