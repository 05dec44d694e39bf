"""Verify an exported bag offline (no server, no database).

1. The bag itself (RFC 8493): ``bagit`` validates the manifests, so any changed, missing or
   added file is named with its expected and found checksum.
2. The signed tree head in ``data/log/tree-head.json``, under the log key given by the caller
   (or the one in the bag, which is self-asserted: the caller is warned).
3. Every entry of ``data/log/entries.jsonl``: its index, that its bytes hash to its leaf hash
   (RFC 9162 §2.1.1), that it is a sealed record of the id it claims, and that its inclusion
   proof in ``data/log/proofs.jsonl`` leads to the signed root (§2.1.3.2).
4. ``data/records.jsonl`` lines up with the entries (count, index, record id); with the
   custodian key, every record is compared with the sealed entry it was opened from.

This catches a smart tamperer who also recomputes the manifests: the leaves, proofs and the
signed head still have to agree.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bagit  # type: ignore[import-untyped]
import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from hotline.crypto.hpke import CustodianPrivateKey
from hotline.custodian.errors import BagInvalid
from hotline.records.checkpoint import SignedTreeHead, TreeHead, verify_tree_head
from hotline.records.hasher import hash_leaf
from hotline.records.sealing import open_record
from hotline.records.verify import verify_inclusion
from hotline.wire.codec import decode
from hotline.wire.encoding import b64d
from hotline.wire.errors import HotlineError
from hotline.wire.records import MAX_LEAF, SealedRecord

ENTRIES = "data/log/entries.jsonl"
PROOFS = "data/log/proofs.jsonl"
RECORDS = "data/records.jsonl"
HEAD = "data/log/tree-head.json"


@dataclass
class BagReport:
    """A bag that verified: its head, how many entries, and warnings."""

    head: TreeHead
    entries: int = 0
    records_checked_against_seal: int = 0
    warnings: list[str] = field(default_factory=list)


def _validate_bag(bag_dir: Path) -> None:
    # bagit also logs each mismatch as a raw line on stderr; the error below names them all,
    # so its logger is muted while it validates (the custodian CLI and the demo print ours).
    logger = logging.getLogger("bagit")
    was_disabled, logger.disabled = logger.disabled, True
    try:
        bagit.Bag(str(bag_dir)).validate()
    except bagit.BagValidationError as exc:
        details = "; ".join(str(d) for d in exc.details) or exc.message
        raise BagInvalid(f"bag manifests do not verify: {details}") from exc
    except (bagit.BagError, OSError) as exc:
        raise BagInvalid(f"{bag_dir} is not a readable bag: {exc}") from exc
    finally:
        logger.disabled = was_disabled


def _open_head(
    bag_dir: Path, log_key: Ed25519PublicKey | None, report_warnings: list[str]
) -> TreeHead:
    try:
        document = json.loads((bag_dir / HEAD).read_text())
        signed = SignedTreeHead(b64d(document["head"]), b64d(document["signature"]))
        if log_key is None:
            log_key = Ed25519PublicKey.from_public_bytes(b64d(document["log_key"]))
            report_warnings.append(
                "the log key was taken from the bag itself (self-asserted): pass --log-key "
                "from the server's published policy to rule out a forged bag"
            )
        return verify_tree_head(signed, log_key)
    except (HotlineError, KeyError, ValueError, TypeError) as exc:
        detail = exc.detail if isinstance(exc, HotlineError) else repr(exc)
        raise BagInvalid(f"{HEAD}: {detail}") from exc


def _lines(handle: Any, name: str) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, line in enumerate(handle, start=1):
        try:
            yield number, json.loads(line)
        except ValueError as exc:
            raise BagInvalid(f"{name} line {number} is not JSON") from exc


def verify_bag(
    bag_dir: Path,
    log_key: Ed25519PublicKey | None = None,
    custodian: CustodianPrivateKey | None = None,
) -> BagReport:
    """Verify ``bag_dir`` completely and offline.

    Raises:
        BagInvalid: the first problem, naming the file, line, entry and what differs.
    """
    _validate_bag(bag_dir)
    warnings: list[str] = []
    report = BagReport(head=_open_head(bag_dir, log_key, warnings), warnings=warnings)
    with ExitStack() as stack:
        files = [
            _lines(stack.enter_context((bag_dir / name).open(encoding="utf-8")), name)
            for name in (ENTRIES, PROOFS, RECORDS)
        ]
        for entry, proof, record in _zip_exact(*files):
            _check_entry(report, entry, proof, record, custodian)
    if report.entries != report.head.size:
        raise BagInvalid(
            f"{ENTRIES} holds {report.entries} entries, the signed head covers {report.head.size}"
        )
    return report


def _zip_exact(
    *iterators: Iterator[tuple[int, dict[str, Any]]],
) -> Iterator[tuple[tuple[int, dict[str, Any]], ...]]:
    names = (ENTRIES, PROOFS, RECORDS)
    while True:
        items = [next(it, None) for it in iterators]
        if all(item is None for item in items):
            return
        for name, item in zip(names, items, strict=True):
            if item is None:
                raise BagInvalid(f"{name} ends before the other log files (count differs)")
        yield tuple(item for item in items if item is not None)


def _check_entry(
    report: BagReport,
    entry_line: tuple[int, dict[str, Any]],
    proof_line: tuple[int, dict[str, Any]],
    record_line: tuple[int, dict[str, Any]],
    custodian: CustodianPrivateKey | None,
) -> None:
    number, entry = entry_line
    index = report.entries
    where = f"{ENTRIES} line {number} (entry {index})"
    try:
        leaf = b64d(entry["leaf"], max_len=MAX_LEAF * 2)
        if entry["index"] != index:
            raise BagInvalid(f"{where}: index is {entry['index']}, expected {index}")
        if hash_leaf(leaf).hex() != entry["leaf_hash"]:
            raise BagInvalid(f"{where}: the leaf bytes do not hash to its leaf_hash")
        sealed = decode(leaf, SealedRecord, max_size=MAX_LEAF, what="sealed record")
        if sealed.record_id != entry["record_id"]:
            raise BagInvalid(
                f"{where}: the leaf is record {sealed.record_id}, not {entry['record_id']}"
            )
        _check_proof(report.head, leaf, index, proof_line)
        _check_record(leaf, entry["record_id"], index, record_line, custodian, report)
    except BagInvalid:
        raise
    except (HotlineError, KeyError, TypeError, ValueError) as exc:
        detail = exc.detail if isinstance(exc, HotlineError) else repr(exc)
        raise BagInvalid(f"{where}: {detail}") from exc
    report.entries += 1


def _check_proof(
    head: TreeHead, leaf: bytes, index: int, proof_line: tuple[int, dict[str, Any]]
) -> None:
    number, proof = proof_line
    where = f"{PROOFS} line {number} (entry {index})"
    if proof.get("index") != index:
        raise BagInvalid(f"{where}: index is {proof.get('index')}, expected {index}")
    try:
        path = [bytes.fromhex(p) for p in proof["proof"]]
        verify_inclusion(hash_leaf(leaf), index, head.size, path, head.root)
    except (HotlineError, KeyError, TypeError, ValueError) as exc:
        detail = exc.detail if isinstance(exc, HotlineError) else repr(exc)
        raise BagInvalid(f"{where}: entry is not in the signed tree: {detail}") from exc


def _check_record(
    leaf: bytes,
    record_id: str,
    index: int,
    record_line: tuple[int, dict[str, Any]],
    custodian: CustodianPrivateKey | None,
    report: BagReport,
) -> None:
    number, line = record_line
    where = f"{RECORDS} line {number} (entry {index})"
    if line.get("index") != index or line.get("record_id") != record_id:
        raise BagInvalid(
            f"{where}: is index {line.get('index')} record {line.get('record_id')}, "
            f"the log has record {record_id} there"
        )
    if custodian is None or "record" not in line:
        return
    opened = msgspec.to_builtins(open_record(custodian, leaf))
    if opened != line["record"]:
        fields = sorted(k for k in opened if opened.get(k) != line["record"].get(k))
        raise BagInvalid(
            f"{where}: differs from the sealed entry in {', '.join(fields) or 'fields'}"
        )
    report.records_checked_against_seal += 1
