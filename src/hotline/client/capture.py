"""Capture at creation: the device's side of the records archive.

For every envelope it sends, the device seals a record to its government's custodian and the
server relays the message only together with it (appending it in the same transaction). For
every message it receives, and every contact change, it seals a record and submits it; until a
receipt comes back the item is "not on the record" and is retried on every sync.

Each receipt is checked: the tree head is signed by the log key pinned at registration, the
inclusion proof leads to its root, and the head extends every head seen before (consistency
proof, RFC 9162 §2.1.4) — a fork or rollback of the log raises :class:`LogInconsistent`.
"""

from __future__ import annotations

import functools
import hmac
import secrets

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from hotline.client.state import ArchivePin, ClientState, HeadState, PendingRecord
from hotline.client.transport import ServerApi
from hotline.crypto.hpke import CustodianPublicKey
from hotline.records.checkpoint import SignedTreeHead, TreeHead, verify_tree_head
from hotline.records.custodian_keys import fingerprint as custodian_fingerprint
from hotline.records.hasher import hash_leaf
from hotline.records.sealing import seal_record
from hotline.records.verify import verify_consistency, verify_inclusion
from hotline.wire.codec import Signed, decode
from hotline.wire.encoding import b64d, b64e
from hotline.wire.errors import (
    ArchiveDisabled,
    BadSignature,
    HotlineError,
    LogInconsistent,
    MalformedInput,
    ProofInvalid,
    TreeRangeInvalid,
)
from hotline.wire.records import (
    MAX_RECORDS_PER_UPLOAD,
    ConsistencyResponse,
    Record,
    RecordKind,
    RecordReceipt,
    RecordSide,
    RecordsPolicy,
)

POLICY_DOMAIN = b"hotline/v1/records-policy\x00"

#: which record kind an envelope kind produces
RECORD_KIND: dict[str, RecordKind] = {
    "text": "message",
    "receipt": "receipt",
    "contact_accepted": "contact_added",
    "contact_removed": "contact_removed",
    "sas": "verification",
    "call": "call",
    "group_roster": "group",
    "group_key": "group",
    "delegation": "delegation",
}


def open_policy(signed: Signed, pinned_log_key: str | None = None) -> RecordsPolicy:
    """Verify a server's signed records policy (self-signed by its log key; the key must be
    the pinned one when a pin exists).

    Raises:
        BadSignature: the signature does not verify, or the log key is not the pinned one.
    """
    payload = b64d(signed.payload, field="policy")
    policy = decode(payload, RecordsPolicy, what="records policy")
    if pinned_log_key is not None and not hmac.compare_digest(policy.log_key, pinned_log_key):
        raise BadSignature("the server's records log key changed since registration")
    key = Ed25519PublicKey.from_public_bytes(b64d(policy.log_key))
    try:
        key.verify(b64d(signed.signature), POLICY_DOMAIN + payload)
    except Exception as exc:  # cryptography raises InvalidSignature
        raise BadSignature("records policy signature does not verify") from exc
    return policy


async def fetch_policy(server: ServerApi) -> ArchivePin | None:
    """The home server's records policy, verified, as a pin; None if it keeps no archive."""
    try:
        signed = await server.call("GET", "/v1/records/policy", response=Signed)
    except ArchiveDisabled:
        return None
    assert signed is not None
    policy = open_policy(signed)
    # The fingerprint shown to users is computed here from the key itself: the server's own
    # statement of it is only checked, never believed.
    shown = custodian_fingerprint(b64d(policy.custodian_key, field="custodian_key"))
    if not hmac.compare_digest(shown, policy.custodian_fingerprint):
        raise BadSignature("the records policy states a fingerprint that is not its key's")
    return ArchivePin(
        log_id=policy.log_id,
        log_key=policy.log_key,
        custodian_key=policy.custodian_key,
        custodian_fingerprint=shown,
        law=policy.law,
        banner=policy.banner,
        domain=policy.domain,
    )


def build_record(
    state: ClientState,
    *,
    kind: RecordKind,
    side: RecordSide,
    now_ms: int,
    sender: str,
    recipients: list[str],
    conversation: str = "",
    message_id: str = "",
    created_at_ms: int = 0,
    body: str = "",
    envelope: bytes = b"",
    detail: dict[str, str] | None = None,
) -> tuple[str, bytes]:
    """Build and seal one record; returns ``(record_id, leaf bytes)``."""
    assert state.archive is not None
    record = Record(
        record_id=secrets.token_urlsafe(16),
        log_id=state.archive.log_id,
        kind=kind,
        side=side,
        principal=state.handle,
        device=state.device_id,
        conversation=conversation,
        sender=sender,
        recipients=sorted(recipients),
        message_id=message_id,
        created_at_ms=created_at_ms or now_ms,
        captured_at_ms=now_ms,
        body=body,
        envelope=b64e(envelope) if envelope else "",
        detail=detail or {},
    )
    return record.record_id, seal_record(_custodian(state.archive.custodian_key), record)


@functools.lru_cache(maxsize=8)
def _custodian(encoded: str) -> CustodianPublicKey:
    """The pinned custodian key, parsed once (ML-KEM key parsing on every record was a tenth
    of a record's sealing cost). Raises: MalformedInput."""
    return CustodianPublicKey.from_bytes(b64d(encoded, max_len=4096))


def queue_record(state: ClientState, message_id: str = "", **fields: object) -> None:
    """Seal a record now and keep it until the server acknowledges it."""
    if state.archive is None:
        return
    record_id, leaf = build_record(state, message_id=message_id, **fields)  # type: ignore[arg-type]
    state.pending_records.append(
        PendingRecord(record_id=record_id, leaf=b64e(leaf), message_id=message_id)
    )


async def check_receipt(
    server: ServerApi, state: ClientState, receipt: RecordReceipt, leaf: bytes
) -> int:
    """Verify a receipt for ``leaf`` and advance the remembered tree head; returns the index.

    Raises:
        BadSignature: the tree head is not signed by the pinned log key.
        ProofInvalid: the inclusion proof does not lead to the signed root.
        LogInconsistent: the head does not extend the heads seen before (fork or rollback).
    """
    assert state.archive is not None
    signed = SignedTreeHead(b64d(receipt.tree_head.head), b64d(receipt.tree_head.signature))
    key = Ed25519PublicKey.from_public_bytes(b64d(state.archive.log_key))
    head = verify_tree_head(signed, key)
    if head.log_id != state.archive.log_id:
        raise MalformedInput(f"receipt from log {head.log_id}, not {state.archive.log_id}")
    proof = [b64d(p) for p in receipt.inclusion]
    verify_inclusion(hash_leaf(leaf), receipt.leaf_index, head.size, proof, head.root)
    offered = None
    if state.last_head is not None and receipt.consistency_from == state.last_head.size:
        offered = [b64d(p) for p in receipt.consistency]
    await _check_consistency(server, state, head, offered)
    if state.last_head is None or head.size > state.last_head.size:
        state.last_head = HeadState(
            size=head.size,
            root=b64e(head.root),
            head=receipt.tree_head.head,
            signature=receipt.tree_head.signature,
        )
    return receipt.leaf_index


async def _check_consistency(
    server: ServerApi, state: ClientState, head: TreeHead, offered: list[bytes] | None = None
) -> None:
    """Check ``head`` extends the last head seen (a proof in the receipt, else ask for one)."""
    last = state.last_head
    if last is None:
        return
    old_root = b64d(last.root)
    if head.size == last.size:
        if not hmac.compare_digest(head.root, old_root):
            raise LogInconsistent(f"two different logs of size {head.size}: the log forked")
        return
    small, big = sorted(((last.size, old_root), (head.size, head.root)))
    if small[0] == 0:
        return  # every tree extends the empty one
    proof = offered if offered is not None and small[0] == last.size else None
    if proof is None:
        try:
            reply = await server.call(
                "GET",
                "/v1/records/consistency",
                response=ConsistencyResponse,
                params={"first": str(small[0]), "second": str(big[0])},
            )
        except TreeRangeInvalid as exc:
            raise LogInconsistent(
                f"the log no longer reaches size {big[0]}, which it signed before: rollback",
                seen=last.size,
                got=head.size,
            ) from exc
        assert reply is not None
        proof = [b64d(p) for p in reply.proof]
    try:
        verify_consistency(small[0], big[0], proof, small[1], big[1])
    except ProofInvalid as exc:
        raise LogInconsistent(
            f"the log at size {head.size} does not extend the one seen at size {last.size}: "
            "fork or rollback",
            seen=last.size,
            got=head.size,
        ) from exc


async def flush_records(server: ServerApi, state: ClientState) -> list[str]:
    """Submit pending records; returns warnings (empty when everything is on the record)."""
    from hotline.wire.records import RecordsResponse, RecordsUpload

    warnings: list[str] = []
    while state.pending_records:
        batch = _next_batch(state.pending_records)
        try:
            known = state.last_head.size if state.last_head is not None else 0
            reply = await server.call(
                "POST",
                "/v1/records",
                RecordsUpload(leaves=[p.leaf for p in batch], known_size=known),
                RecordsResponse,
            )
        except HotlineError as exc:
            return [f"{len(state.pending_records)} record(s) not on the record yet: {exc.code}"]
        assert reply is not None
        by_id = {p.record_id: p for p in batch}
        for receipt in reply.receipts:
            pending = by_id.pop(receipt.record_id, None)
            if pending is None:
                continue
            try:
                index = await check_receipt(server, state, receipt, b64d(pending.leaf))
            except HotlineError as exc:
                warnings.append(f"{exc.code}: {exc.detail}")
                continue
            _mark_on_record(state, pending.message_id, index)
            state.pending_records.remove(pending)
        if by_id:
            warnings.append(f"{len(by_id)} record(s) got no receipt; will retry")
            break
    return warnings


#: keep an upload well under the server's 256 KiB body cap
MAX_UPLOAD_BYTES = 192 * 1024


def _next_batch(pending: list[PendingRecord]) -> list[PendingRecord]:
    """The oldest pending records that fit in one upload (at least one)."""
    batch: list[PendingRecord] = []
    size = 0
    for record in pending[:MAX_RECORDS_PER_UPLOAD]:
        size += len(record.leaf) + 8
        if batch and size > MAX_UPLOAD_BYTES:
            break
        batch.append(record)
    return batch


def _mark_on_record(state: ClientState, message_id: str, index: int) -> None:
    if not message_id:
        return
    for message in reversed(state.messages):
        if message.message_id == message_id:
            message.record_index = index
            return


__all__ = [
    "RECORD_KIND",
    "build_record",
    "check_receipt",
    "fetch_policy",
    "flush_records",
    "msgspec",
    "open_policy",
    "queue_record",
]
