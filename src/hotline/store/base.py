"""The storage interface of the home server.

Every method is one transaction: it either happens completely or not at all. Methods raise the
typed errors of :mod:`hotline.wire.errors` (never a SQLAlchemy or driver exception), so the
server can answer with a stable code and nothing stored is damaged. Any method may also raise
:class:`~hotline.wire.errors.StorageError` when the database itself fails (retryable, 503).
Times are POSIX seconds (``float``) passed in by the caller: the store never reads the clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from hotline.store.delegation_base import DelegationStore


@dataclass(frozen=True, slots=True)
class SignedBlob:
    """Exact signed bytes as received, the signature beside them, and the version inside."""

    version: int
    payload: bytes
    signature: bytes


@dataclass(frozen=True, slots=True)
class DeviceRow:
    device_id: str
    handle: str
    curve25519: bytes
    ed25519: bytes
    created_at: float


@dataclass(frozen=True, slots=True)
class PrincipalRow:
    handle: str
    display_name: str
    identity_key: bytes
    created_at: float
    device_list: SignedBlob
    allowlist: SignedBlob | None


@dataclass(frozen=True, slots=True)
class ClaimedKey:
    device_id: str
    key_id: str
    key: bytes
    signature: bytes
    fallback: bool


@dataclass(frozen=True, slots=True)
class InviteRow:
    invite_id: str
    handle: str
    verifier: bytes
    expires_at: float
    revoked: bool


@dataclass(frozen=True, slots=True)
class DeliveryItem:
    """One thing to put in one device's mailbox."""

    device_id: str
    kind: str
    body: bytes


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    """One thing waiting in a device's mailbox. ``seq`` grows per store (delivery order)."""

    seq: int
    message_id: str
    device_id: str
    kind: str
    sender_handle: str
    sender_device: str
    body: bytes
    created_at: float


@dataclass(frozen=True, slots=True)
class AideGrant:
    """An active grant of ``principal`` to ``aide`` (its signed payload, which names the
    rights) and the aide's current device ids."""

    principal: str
    aide: str
    payload: bytes
    aide_devices: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SendContext:
    """What :meth:`Store.send_context` read, in one transaction."""

    undelivered: int
    allowed: bool
    recipient_devices: list[str]
    sender_devices: list[str]
    #: active (unexpired, unrevoked) grants of the recipient, of the sender and of the
    #: principal an aide writes for
    grants: list[AideGrant] = field(default_factory=list)
    #: current device ids of the principal an aide writes for (``on_behalf_of``)
    principal_devices: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class GroupSendContext:
    """What :meth:`GroupStore.group_send_context` read, in one transaction."""

    undelivered: int
    #: the members on the sender's own roster of the group (empty: the sender is not in it)
    roster: frozenset[str]
    #: those of the asked local members whose own roster of the group lists the sender
    listed_by: frozenset[str]
    #: current device ids of each asked local member, ordered (absent: it has none)
    devices: dict[str, list[str]]
    #: those of the asked peer domains that are pinned
    peers: frozenset[str]


# -- the records log ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class LogLeaf:
    """One entry to append: the exact sealed-record bytes and their RFC 9162 leaf hash."""

    record_id: str
    leaf: bytes
    leaf_hash: bytes
    device_id: str


@dataclass(frozen=True, slots=True)
class LogEntryRow:
    index: int
    record_id: str
    leaf: bytes
    leaf_hash: bytes
    device_id: str
    created_at: float


@dataclass(frozen=True, slots=True)
class TreeHeadRow:
    """A signed tree head as issued: exact head bytes and the log key's signature."""

    size: int
    head: bytes
    signature: bytes
    created_at: float


#: most leaf hashes an appending transaction reads back for the caller's Merkle tree
MAX_TAIL = 10_000


@dataclass(frozen=True, slots=True)
class LogTail:
    """Leaf hashes of the committed entries ``[start, start + len(hashes))``, read inside the
    transaction that appended, so the server's Merkle tree catches up without another query.

    Entries commit in index order behind the sequencer row, so everything below the appended
    indices is committed when the appending transaction reads it: the tail has no gaps.
    """

    start: int
    hashes: list[bytes]


#: Signs, inside an appending transaction, the tree head of the log as extended by the tail
#: just read (the caller keeps the tree and the key; the store only stores the head, in the same
#: transaction, so an append costs one write instead of two). None: it cannot (the tail does not
#: continue the caller's tree), and the head is signed after the commit as before.
HeadSigner = Callable[[LogTail], "TreeHeadRow | None"]


@dataclass(frozen=True, slots=True)
class Appended:
    """What :meth:`LogStore.append_records_tail` did: indices of the leaves, the tail and the
    tree head signed and stored with them (None when no signer was given or it declined)."""

    indices: list[int]
    tail: LogTail
    head: TreeHeadRow | None = None


class LogStore(Protocol):
    """The append-only records log. Entries are never changed or deleted through this API."""

    async def append_records(self, leaves: list[LogLeaf], now: float) -> list[int]:
        """Append leaves in order; returns their indices (0-based, gap-free).

        Idempotent per record id: a leaf already in the log (same record id, same bytes)
        is not appended again and its existing index is returned.

        Raises:
            AlreadyExists: a record id is already in the log with different bytes.
        """

    async def append_records_tail(
        self,
        leaves: list[LogLeaf],
        now: float,
        tail_from: int,
        sign_head: HeadSigner | None = None,
    ) -> Appended:
        """:meth:`append_records`, and in the same transaction the leaf hashes from index
        ``tail_from`` up to the largest index of ``leaves`` (at most :data:`MAX_TAIL`; empty
        if ``tail_from`` is past it) and, with ``sign_head``, the head it signs over that tail
        stored as :meth:`put_tree_head` would.

        Raises:
            AlreadyExists: as :meth:`append_records` (nothing appended).
        """

    async def record_index(self, record_id: str) -> int | None: ...

    async def log_size(self) -> int: ...

    async def leaf_hashes(self, start: int, end: int) -> list[bytes]:
        """Leaf hashes of entries ``[start, end)`` in index order."""

    async def log_entries(self, start: int, end: int) -> list[LogEntryRow]:
        """Entries ``[start, end)`` in index order."""

    async def put_tree_head(self, head: TreeHeadRow) -> TreeHeadRow:
        """Store a signed tree head; a second head for the same size is ignored.

        Returns the stored head for that size: ``head`` itself, or the one stored first (by
        another worker) — the authoritative one, in one transaction.
        """

    async def tree_heads(self, after_size: int = -1, limit: int = 1000) -> list[TreeHeadRow]:
        """Stored heads with ``size > after_size``, smallest first."""

    async def latest_tree_head(self) -> TreeHeadRow | None: ...


# -- federation --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PeerRow:
    """An operator-pinned peer server; ``previous_key`` is valid until ``previous_until``."""

    domain: str
    url: str
    key: bytes
    previous_key: bytes | None
    previous_until: float | None
    added_at: float


@dataclass(frozen=True, slots=True)
class OutboundItem:
    """A message for a peer server, queued in the transaction that accepted it."""

    destination: str
    message_id: str
    sender_device: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class OutboundRow:
    id: int
    destination: str
    message_id: str
    sender_device: str
    payload: bytes
    attempts: int
    created_at: float


@dataclass(frozen=True, slots=True)
class Enqueued:
    """What :meth:`Store.enqueue_message` did."""

    stored: bool
    record_index: int | None
    tail: LogTail | None
    head: TreeHeadRow | None = None


class FederationStore(Protocol):
    """Pinned peers, the replay guard and the durable outbound queue."""

    async def put_peer(
        self, domain: str, url: str, key: bytes, now: float, overlap_until: float | None = None
    ) -> None:
        """Pin (or re-pin) a peer. A new key keeps the old one valid until ``overlap_until``."""

    async def get_peer(self, domain: str) -> PeerRow | None: ...

    async def list_peers(self) -> list[PeerRow]: ...

    async def remove_peer(self, domain: str) -> bool: ...

    async def use_nonce(self, origin: str, nonce: str, expires_at: float, now: float) -> None:
        """Record a request nonce (and forget expired ones).

        Raises:
            ReplayedRequest: this origin used this nonce before.
        """

    async def outbound_destinations(self) -> list[str]:
        """Peers with queued messages."""

    async def outbound_batch(self, destination: str, limit: int = 100) -> list[OutboundRow]:
        """The oldest queued messages for ``destination``, in acceptance order."""

    async def lease_outbound(
        self, destination: str, owner: str, now: float, until: float, limit: int = 100
    ) -> list[OutboundRow]:
        """Lease ``destination`` to ``owner`` until ``until`` and return its oldest messages.

        The lease is granted (or renewed) only if it is free, expired (``until <= now``) or
        already ``owner``'s; otherwise the answer is ``[]`` and nothing changes. One worker
        drains one peer at a time, in acceptance order; a worker that dies stops renewing and
        its lease expires. Renew it (call again) before ``until`` while still sending.
        """

    async def release_outbound(self, destination: str, owner: str, not_before: float = 0.0) -> None:
        """Give the lease back (if ``owner`` still holds it); nobody may take it before
        ``not_before`` (a back-off shared by every worker)."""

    async def finish_outbound(self, ids: list[int]) -> None:
        """Remove delivered (or permanently refused) messages from the queue."""

    async def retry_outbound(self, ids: list[int], next_attempt_at: float) -> None:
        """Count one more failed attempt."""


# -- device links (enrolling a principal's new device from an existing one) --------------------
#: links that expired this long ago (seconds) are forgotten when a new one is created
LINK_RETENTION = 86400.0


@dataclass(frozen=True, slots=True)
class DeviceLinkRow:
    """A new device waiting to be approved by an existing device of some principal.

    ``state`` goes ``pending`` -> ``approved`` (``handle`` and the sealed ``bundle`` set, the
    new device listed) -> ``collected`` (the bundle is deleted). Never backwards.
    """

    link_id: str
    verifier: bytes
    device_id: str
    curve25519: bytes
    ed25519: bytes
    link_key: bytes
    binding: bytes
    created_at: float
    expires_at: float
    state: str = "pending"
    handle: str | None = None
    bundle: bytes | None = None


class DeviceLinkStore(Protocol):
    """Pending device links. A link is used once; the server never reads the bundle."""

    async def create_device_link(self, link: DeviceLinkRow, now: float) -> None:
        """Store a new pending link; forgets links expired more than LINK_RETENTION ago.

        Raises:
            AlreadyExists: the link id is taken, or the device id is already registered.
        """

    async def open_device_link(self, link_id: str, verifier: bytes, now: float) -> DeviceLinkRow:
        """The pending link, for the approving device to read. Changes nothing.

        Raises:
            LinkInvalid: unknown link, or ``verifier`` is not its verifier (checked first).
            LinkUsed: already approved or collected.
            LinkExpired: ``now >= expires_at``.
        """

    async def approve_device_link(
        self,
        link_id: str,
        verifier: bytes,
        *,
        handle: str,
        bundle: bytes,
        device_list: SignedBlob,
        devices: list[DeviceRow],
        now: float,
        collect_until: float,
    ) -> None:
        """In one transaction: use the link, store the sealed bundle for ``handle`` and replace
        the principal's device list (as :meth:`Store.set_device_list`) with ``devices``.

        Raises:
            LinkInvalid, LinkUsed, LinkExpired: as :meth:`open_device_link`.
            MalformedInput: ``devices`` does not name the link's device with its keys.
            UnknownPrincipal, StaleVersion, AlreadyExists: as :meth:`Store.set_device_list`.
        """

    async def collect_device_link(self, link_id: str, verifier: bytes, now: float) -> DeviceLinkRow:
        """The new device's poll. A pending link is returned unchanged; an approved one is
        returned with its bundle once, then marked collected and its bundle deleted.

        Raises:
            LinkInvalid: unknown link or wrong verifier (checked first).
            LinkUsed: the bundle was already collected.
            LinkExpired: not collected before ``expires_at``.
        """


class GroupStore(Protocol):
    """Each local member's copy of the rosters of its groups (see ``store.sql_groups``)."""

    async def put_group_membership(
        self, owner: str, group_id: str, roster: SignedBlob, members: list[str]
    ) -> None:
        """Raises: UnknownPrincipal, StaleVersion (older than the stored version)."""
        ...

    async def drop_group_membership(self, owner: str, group_id: str) -> bool: ...

    async def group_membership(self, owner: str, group_id: str) -> SignedBlob | None: ...

    async def is_group_member(self, owner: str, group_id: str, member: str) -> bool: ...

    async def shares_group(self, owner: str, member: str) -> bool: ...

    async def group_send_context(
        self,
        sender_device: str,
        sender_handle: str,
        group_id: str,
        local_members: list[str],
        peer_domains: list[str],
    ) -> GroupSendContext:
        """Everything the server checks before relaying a group message, read in one
        transaction: the sender's undelivered count, the sender's own roster of the group,
        which ``local_members`` list the sender on theirs, their current device ids, and which
        ``peer_domains`` are pinned peers."""
        ...


class Store(LogStore, FederationStore, DeviceLinkStore, GroupStore, DelegationStore, Protocol):
    """What the server needs from persistence. See module docstring for the contract."""

    async def close(self) -> None: ...

    # -- enrolment and principals ------------------------------------------------------------
    async def create_enrolment(self, token_hash: bytes, name: str, expires_at: float) -> None:
        """Record an admin-issued enrolment token (only its SHA-256 is stored).

        ``name`` is the handle the token may enrol (see :meth:`create_principal`).

        Raises:
            AlreadyExists: the same token hash is already recorded.
        """

    async def create_principal(
        self,
        *,
        token_hash: bytes,
        handle: str,
        display_name: str,
        identity_key: bytes,
        device: DeviceRow,
        device_list: SignedBlob,
        now: float,
    ) -> None:
        """Consume the enrolment token and create principal + first device atomically.

        Raises:
            EnrolmentInvalid: token unknown, used, expired at ``now``, or issued for another
                handle (a token only enrols the handle it was created for).
            AlreadyExists: handle, identity key or device id already registered (the token
                is then not consumed).
            MalformedInput: ``device.handle`` is not ``handle``.
        """

    async def get_principal(self, handle: str) -> PrincipalRow | None: ...

    async def get_device(self, device_id: str) -> DeviceRow | None: ...

    async def list_devices(self, handle: str) -> list[DeviceRow]:
        """Current devices of ``handle`` ordered by device_id (empty if unknown)."""

    async def set_device_list(
        self, handle: str, device_list: SignedBlob, devices: list[DeviceRow]
    ) -> None:
        """Replace the device set with ``devices`` and store the signed list.

        Devices no longer listed are removed with their one-time and fallback keys,
        challenges, sessions and mailbox. Devices already present keep their stored row.

        Raises:
            UnknownPrincipal: no such handle.
            StaleVersion: ``device_list.version`` not greater than the stored one.
            AlreadyExists: a listed device id belongs to another principal, or is already
                registered with other keys.
            MalformedInput: a row's ``handle`` is not ``handle``, or a device id is repeated.
        """

    # -- keys --------------------------------------------------------------------------------
    async def put_one_time_keys(self, device_id: str, keys: list[tuple[str, bytes, bytes]]) -> int:
        """Publish ``(key_id, key, signature)`` triples; returns unclaimed count after.

        Keys are claimed in publication order (list order within one call).

        Raises:
            OneTimeKeyReused: a key id was published before (claimed or not) or is repeated
                in ``keys``. Nothing stored.
            UnknownDevice: no such device.
        """

    async def set_fallback_key(
        self, device_id: str, key_id: str, key: bytes, signature: bytes
    ) -> None:
        """Store or replace the device's fallback key.

        Raises:
            UnknownDevice: no such device.
        """

    async def claim_key(self, device_id: str) -> ClaimedKey:
        """Atomically claim the oldest unclaimed one-time key, else return the fallback key.

        A claimed one-time key is never handed out again, even to concurrent callers; the
        fallback key is not consumed (returned until replaced).

        Raises:
            NoKeysAvailable: neither exists (also for an unknown device).
        """

    async def count_one_time_keys(self, device_id: str) -> int:
        """Unclaimed one-time keys of ``device_id`` (0 if unknown)."""

    # -- authentication ----------------------------------------------------------------------
    async def create_challenge(self, challenge: bytes, device_id: str, expires_at: float) -> None:
        """Record a one-time auth challenge for ``device_id``.

        Raises:
            UnknownDevice: no such device.
            AlreadyExists: the same challenge is already outstanding.
        """

    async def consume_challenge(self, challenge: bytes, device_id: str, now: float) -> None:
        """Delete the challenge; it can be used once. Valid while ``now < expires_at``.

        Raises:
            ChallengeInvalid: unknown, for another device, expired or already used.
        """

    async def create_session(self, token_hash: bytes, device_id: str, expires_at: float) -> None:
        """Record a session token (by SHA-256) bound to ``device_id``.

        Raises:
            UnknownDevice: no such device.
            AlreadyExists: the token hash is already recorded.
        """

    async def session_caller(self, token_hash: bytes, now: float) -> DeviceRow | None:
        """The device of a live session token (by SHA-256), else None; one query."""

    async def session_device(self, token_hash: bytes, now: float) -> str | None:
        """Device id of a live session token (by SHA-256; live while ``now < expires_at``)."""

    # -- allowlist and invites ---------------------------------------------------------------
    async def set_allowlist(self, handle: str, allowlist: SignedBlob, members: list[str]) -> None:
        """Store the signed allowlist and its member handles (replacing the previous ones).

        The first allowlist of a principal may have any version.

        Raises:
            UnknownPrincipal: no such handle.
            StaleVersion: version not greater than the stored one.
        """

    async def is_allowed(self, owner: str, member: str) -> bool:
        """Whether ``member`` is on ``owner``'s stored allowlist."""

    async def put_invite(self, invite: InviteRow) -> None:
        """Store a new invite of ``invite.handle``.

        Raises:
            AlreadyExists: invite id taken.
            UnknownPrincipal: no such handle.
        """

    async def revoke_invite(self, handle: str, invite_id: str) -> None:
        """Mark the invite revoked (idempotent).

        Raises:
            InviteInvalid: no such invite of ``handle``.
        """

    async def get_invite(self, invite_id: str) -> InviteRow | None: ...

    # -- mailbox -----------------------------------------------------------------------------
    async def enqueue(
        self,
        *,
        message_id: str,
        sender_handle: str,
        sender_device: str,
        items: list[DeliveryItem],
        now: float,
        record: LogLeaf | None = None,
        outbound: list[OutboundItem] | None = None,
    ) -> bool:
        """Put ``items`` in their devices' mailboxes; False if ``message_id`` was seen before.

        With ``record``, the sender's sealed record is appended to the log in the same
        transaction (capture at creation): the message is relayed only if it is on the record.

        Idempotent by ``(sender_device, message_id)``: a retried send stores nothing new,
        even after the first copy was delivered and acknowledged. Items get increasing ``seq``
        in list order.

        Raises:
            UnknownDevice: an item names an unregistered device (nothing stored and the
                message id not remembered, so a corrected retry goes through).
        """

    async def pending(
        self, device_id: str, after_seq: int = 0, limit: int = 100
    ) -> list[DeliveryRow]:
        """Mailbox rows of ``device_id`` with ``seq > after_seq``, oldest first, at most ``limit``.

        ``seq`` is never reused, so a client may page with the last ``seq`` it saw.
        """

    async def enqueue_message(
        self,
        *,
        message_id: str,
        sender_handle: str,
        sender_device: str,
        items: list[DeliveryItem],
        now: float,
        record: LogLeaf | None = None,
        outbound: list[OutboundItem] | None = None,
        tail_from: int = 0,
        sign_head: HeadSigner | None = None,
    ) -> Enqueued:
        """:meth:`enqueue`, answering in the same transaction with the record's log index and
        the log tail from ``tail_from`` (see :class:`LogTail`); both None without a record.
        With ``sign_head``, the head it signs over the tail is stored in the same transaction.

        A retried message (id seen before) stores nothing and returns the index the record
        got the first time (``None`` if it is not in the log) and no tail.

        Raises:
            UnknownDevice: as :meth:`enqueue`.
            AlreadyExists: the record id is in the log with different bytes (nothing stored).
        """

    async def send_context(
        self,
        sender_device: str,
        sender_handle: str,
        to: str,
        now: float,
        on_behalf_of: str | None = None,
    ) -> SendContext:
        """Everything the server checks before relaying a message, read in one transaction:
        the sender's undelivered count, whether ``to`` allows the writer (``on_behalf_of``
        when an aide writes for a principal, else the sender; always True for one's own
        handle), the current device ids of both principals (and of ``on_behalf_of``) and their
        grants active at ``now`` with each aide's devices."""

    async def count_undelivered(self, sender_device: str) -> int:
        """Mailbox items and queued peer messages sent by ``sender_device``, not yet taken."""

    async def ack(self, device_id: str, seqs: list[int]) -> int:
        """Delete those rows of ``device_id``'s mailbox (ciphertext gone); returns count deleted."""

    async def ack_many(self, acks: list[tuple[str, list[int]]]) -> int:
        """:meth:`ack` for several ``(device_id, seqs)`` in one transaction; returns the count
        deleted. Rows of other devices, or already deleted, are ignored."""
