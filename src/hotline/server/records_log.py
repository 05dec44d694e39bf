"""The home server's records log: sequencing is in the store; this keeps the Merkle tree,
signs tree heads with the log key and builds receipts and proofs (RFC 9162 §2.1, §4.10).

The in-memory :class:`~hotline.records.proof.MerkleTree` mirrors the stored leaf hashes; it
catches up from the store before answering, so entries appended by another worker (or by the
same transaction that relayed a message) are always covered.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from hotline.crypto.hpke import SUITE_ID, CustodianPublicKey
from hotline.records.checkpoint import (
    SignedTreeHead,
    TreeHead,
    decode_tree_head,
    sign_tree_head,
    verify_tree_head,
)
from hotline.records.custodian_keys import fingerprint
from hotline.records.hasher import hash_leaf
from hotline.records.proof import MerkleTree
from hotline.records.sealing import seal_record
from hotline.store import HeadSigner, LogLeaf, LogTail, Store, TreeHeadRow
from hotline.wire.codec import Signed, decode, encode
from hotline.wire.encoding import b64d, b64e
from hotline.wire.errors import MalformedInput, RootMismatch
from hotline.wire.records import (
    MAX_LEAF,
    Record,
    RecordKind,
    RecordReceipt,
    RecordsPolicy,
    SealedRecord,
    SignedHead,
)

POLICY_DOMAIN = b"hotline/v1/records-policy\x00"
BATCH = 10_000


@dataclass(frozen=True)
class ArchiveSettings:
    """What the operator configures: the log key (generated on the server), the custodian's
    public key (the private half never comes near the server) and the law shown to users."""

    log_key: Ed25519PrivateKey
    custodian_key: bytes
    law: str = "Presidential Records Act, 44 U.S.C. 2209"
    banner: str = ""

    def log_public(self) -> bytes:
        return self.log_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def custodian_fingerprint(custodian_key: bytes) -> str:
    """A short fingerprint users and the custodian can compare (see custodian_keys)."""
    return fingerprint(custodian_key)


@dataclass
class RecordsLog:
    settings: ArchiveSettings
    domain: str
    tree: MerkleTree = field(default_factory=MerkleTree)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _head: tuple[int, SignedTreeHead] | None = None

    @property
    def log_id(self) -> str:
        return f"{self.domain}/records"

    def signed_policy(self, now: float) -> Signed:
        policy = RecordsPolicy(
            v=1,
            domain=self.domain,
            log_id=self.log_id,
            law=self.settings.law,
            banner=self.settings.banner
            or f"Recorded by {self.domain} under the {self.settings.law}.",
            custodian_key=b64e(self.settings.custodian_key),
            custodian_fingerprint=custodian_fingerprint(self.settings.custodian_key),
            suite=SUITE_ID,
            log_key=b64e(self.settings.log_public()),
            issued_at=int(now),
        )
        payload = encode(policy)
        return Signed(
            payload=b64e(payload),
            signature=b64e(self.settings.log_key.sign(POLICY_DOMAIN + payload)),
        )

    def check_leaf(self, leaf: bytes) -> LogLeaf:
        """Validate a sealed record's shape (never its content, which is sealed).

        Raises:
            MalformedInput: not a sealed record of this log with the current suite.
        """
        sealed = decode(leaf, SealedRecord, max_size=MAX_LEAF, what="sealed record")
        if sealed.log_id != self.log_id:
            raise MalformedInput(f"record is for log {sealed.log_id}, this is {self.log_id}")
        if sealed.suite != SUITE_ID:
            raise MalformedInput(f"record suite {sealed.suite} is not {SUITE_ID}")
        if len(b64d(sealed.sealed, field="sealed", max_len=MAX_LEAF)) < 1136:
            raise MalformedInput("sealed record is too short to be HPKE output")
        return LogLeaf(
            record_id=sealed.record_id, leaf=leaf, leaf_hash=hash_leaf(leaf), device_id=""
        )

    async def catch_up(self, store: Store) -> None:
        """Extend the tree with every committed entry, in one query when few are new.

        No ``log_size`` read first: entries commit in index order (an appender holds the
        sequencer row until it commits), so the committed entries are always a gap-free prefix
        and reading ``[size, size + BATCH)`` returns exactly the new ones.
        """
        async with self._lock:
            while True:
                start = self.tree.size
                hashes = await store.leaf_hashes(start, start + BATCH)
                self.absorb(LogTail(start, hashes))
                if len(hashes) < BATCH:
                    return

    def absorb(self, tail: LogTail) -> None:
        """Extend the tree with a gap-free run of committed leaf hashes (read by an appending
        transaction or by :meth:`catch_up`); hashes the tree already has are skipped, and a run
        starting past the tree's end is ignored (catch_up fills the gap later)."""
        have = self.tree.size - tail.start
        if 0 <= have < len(tail.hashes):
            self.tree.extend(tail.hashes[have:])

    def head_signer(self, now: float) -> HeadSigner:
        """Signs, inside an appending transaction, the head of the tree extended by the tail
        the transaction read (``Store.enqueue_message`` / ``append_records_tail``), so the
        head is stored with the append. Declines (None) when the tail does not continue this
        tree or adds nothing; the head is then signed after the commit (:meth:`receipt`)."""

        def sign(tail: LogTail) -> TreeHeadRow | None:
            have = self.tree.size - tail.start
            if have < 0 or have >= len(tail.hashes):
                return None
            fresh = tail.hashes[have:]
            head = TreeHead(
                log_id=self.log_id,
                size=self.tree.size + len(fresh),
                root=self.tree.root_extended(fresh),
                timestamp_ms=int(now * 1000),
            )
            signed = sign_tree_head(head, self.settings.log_key)
            return TreeHeadRow(head.size, signed.head_bytes, signed.signature, now)

        return sign

    def adopt(self, tail: LogTail | None, head: TreeHeadRow | None) -> TreeHeadRow | None:
        """After the appending transaction committed: absorb its tail and remember the head
        signed with it. Returns that head if the tree now covers it (for :meth:`receipt`)."""
        if tail is not None:
            self.absorb(tail)
        if head is None or head.size > self.tree.size:
            return None
        if self._head is None or head.size >= self._head[0]:
            self._head = (head.size, SignedTreeHead(head.head, head.signature))
        return head

    async def load(self, store: Store) -> None:
        """Rebuild the tree at start-up and check it against the latest signed head.

        Raises:
            RootMismatch: the stored entries do not produce the root the log signed.
        """
        await self.catch_up(store)
        latest = await store.latest_tree_head()
        if latest is None:
            return
        head = verify_tree_head(
            SignedTreeHead(latest.head, latest.signature), self.settings.log_key.public_key()
        )
        if head.size > self.tree.size or self.tree.root(head.size) != head.root:
            raise RootMismatch(
                f"stored log does not match the tree head signed at size {head.size}: "
                "run 'hotline archive verify'",
                which="root",
                expected=head.root.hex(),
                calculated=self.tree.root(min(head.size, self.tree.size)).hex(),
            )

    async def signed_head(
        self, store: Store, now: float, *, covering: int = 0
    ) -> tuple[int, SignedTreeHead]:
        """A signed head for the current size (signed once per size, stored).

        ``covering``: when the tree already holds that many leaves (the caller just absorbed
        the tail of its own append), the head is signed without first reading the store.
        """
        if covering <= 0 or self.tree.size < covering:
            await self.catch_up(store)
        size = self.tree.size
        if self._head is not None and self._head[0] == size:
            return self._head
        head = TreeHead(
            log_id=self.log_id, size=size, root=self.tree.root(size), timestamp_ms=int(now * 1000)
        )
        signed = sign_tree_head(head, self.settings.log_key)
        stored = await store.put_tree_head(
            TreeHeadRow(size, signed.head_bytes, signed.signature, now)
        )
        if stored.head != signed.head_bytes:  # another worker signed this size first: theirs
            signed = SignedTreeHead(stored.head, stored.signature)
        self._head = (size, signed)
        return self._head

    async def receipt(
        self,
        store: Store,
        record_id: str,
        index: int,
        now: float,
        known_size: int = 0,
        head: TreeHeadRow | None = None,
    ) -> RecordReceipt:
        """Leaf index, signed head, inclusion proof and, when the client told us the largest
        size it verified, the consistency proof from there (RFC 9162 §2.1.4).

        ``head``: the head stored with the append (:meth:`adopt`); used when it covers
        ``index`` and ``known_size``. Otherwise call :meth:`absorb` with the tail of the append
        first to save a read: the head then covers both without asking the store.
        """
        if head is not None and head.size > index and head.size >= known_size:
            size, signed = head.size, SignedTreeHead(head.head, head.signature)
        else:
            covering = max(index + 1, known_size)
            size, signed = await self.signed_head(store, now, covering=covering)
        proof = self.tree.inclusion_proof(index, size)
        consistency: list[bytes] = []
        if 0 < known_size < size:
            consistency = self.tree.consistency_proof(known_size, size)
        return RecordReceipt(
            record_id=record_id,
            leaf_index=index,
            tree_head=SignedHead(head=b64e(signed.head_bytes), signature=b64e(signed.signature)),
            inclusion=[b64e(p) for p in proof],
            consistency_from=known_size if consistency else 0,
            consistency=[b64e(p) for p in consistency],
        )

    async def server_record(
        self, store: Store, kind: RecordKind, about: str, detail: dict[str, str], now: float
    ) -> int:
        """Seal and append a record the server itself witnessed (a policy change or refusal).

        Sealed to the same custodian key as every record: the operator cannot read it back.
        """
        record = Record(
            record_id=secrets.token_urlsafe(16),
            log_id=self.log_id,
            kind=kind,
            side="local",
            principal=f"server@{self.domain}",
            device="server",
            sender=f"server@{self.domain}",
            recipients=[about] if about else [],
            created_at_ms=int(now * 1000),
            captured_at_ms=int(now * 1000),
            detail=detail,
        )
        leaf = seal_record(CustodianPublicKey.from_bytes(self.settings.custodian_key), record)
        (index,) = await store.append_records(
            [LogLeaf(record.record_id, leaf, hash_leaf(leaf), "server")], now
        )
        return index

    async def consistency(self, store: Store, first: int, second: int) -> list[bytes]:
        await self.catch_up(store)
        return self.tree.consistency_proof(first, second)


__all__ = ["ArchiveSettings", "RecordsLog", "custodian_fingerprint", "decode_tree_head"]
