"""Property-based fuzzing of every decoder of outside bytes (issue 7, item 2).

The contract: whatever bytes arrive, a decoder raises only a
:class:`~hotline.wire.errors.HotlineError` subclass (a typed error with a stable code), never
``KeyError``, ``ValueError``, ``TypeError``, ``UnicodeDecodeError``, ``RecursionError``... A
client that processes hostile mailbox items emits a ``warning`` and changes nothing it stores,
and a live server answers every hostile body with a 4xx ``application/problem+json`` that has a
``code`` (never a 500).

Each decoder gets random bytes *and* structure-aware mutations of a real encoding (the seeds
of ``fuzz/valid_encodings.py``, shared with the atheris harnesses under ``fuzz/``): fields
replaced by other JSON values, deleted, added, nested, and byte flips or truncations on top.
Where a signature guards the bytes, the mutated payload is signed for real, so the fuzzer
reaches the decoder behind the signature (a malicious contact, peer server or breached
server signs whatever it likes with its own key).

Crashes found are kept under ``tests/fuzz/regressions/<decoder>/`` and replayed by
``test_fuzz_regressions.py``; until they are fixed the properties here tolerate exactly those
known crash sites (:data:`KNOWN_CRASHES`) so they keep hunting for new ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
import traceback
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import group_encodings as g
import httpx
import msgspec
import pytest
import valid_encodings as v
from harness import FAST_SCRYPT, PASSPHRASE, LiveServer, start_server
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hotline.client.cards import read_card
from hotline.client.device import HotlineClient
from hotline.client.group_roster import open_roster
from hotline.client.inbox import decode_envelope
from hotline.client.transport import MAX_RESPONSE, _Push
from hotline.crypto.identity import DOMAIN_CARD
from hotline.policy.grants import open_grant, open_revocation, sign_grant, sign_revocation
from hotline.records.checkpoint import (
    TREE_HEAD_DOMAIN,
    SignedTreeHead,
    decode_signed_tree_head,
    decode_tree_head,
    open_signed_tree_head,
    verify_tree_head,
)
from hotline.records.hasher import hash_leaf
from hotline.records.sealing import open_record
from hotline.records.verify import verify_consistency, verify_inclusion
from hotline.server.admin import issue_enrolment
from hotline.server.admin_devices import DeviceRemovedNotice
from hotline.server.federation_auth import open_request
from hotline.server.records_log import ArchiveSettings, RecordsLog
from hotline.server.routes_messages import _WsAck
from hotline.store.base import PeerRow
from hotline.wire import api
from hotline.wire.card import SCHEME, parse_card
from hotline.wire.codec import Signed, decode
from hotline.wire.delegation import (
    DOMAIN_GRANT,
    DOMAIN_REVOCATION,
    DelegationGrant,
    DelegationNotice,
    DelegationRevocation,
    DelegationsResponse,
    PublishedGrant,
)
from hotline.wire.encoding import b64d, b64e
from hotline.wire.envelope import Envelope
from hotline.wire.errors import HotlineError, ReplayedRequest
from hotline.wire.federation import (
    SIGNATURE_HEADER,
    DeliverBatch,
    RemoteContactRequest,
    RemoteLookup,
)
from hotline.wire.groups import GroupCiphertext, GroupSendRequest, GroupText
from hotline.wire.records import Record, RecordReceipt

#: Crash sites found by the fuzzers and not fixed yet: (exception type, function) -> the
#: regression file that reproduces it. Remove an entry when its xfail in
#: ``test_fuzz_regressions.py`` is removed.
KNOWN_CRASHES: dict[tuple[str, str], str] = {}

FAST = settings(max_examples=150, deadline=None)
T = TypeVar("T")


# --- the contract --------------------------------------------------------------------------------
def is_known_crash(exc: BaseException) -> bool:
    """Whether (exception type, some ``hotline/`` function it passed) is in KNOWN_CRASHES."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "/hotline/" in f.filename]
    return any((type(exc).__name__, f.name) in KNOWN_CRASHES for f in frames)


def only_typed_errors(target: Callable[[bytes], object], data: bytes) -> None:
    """Run ``target(data)``: a HotlineError is fine, a known crash is tolerated, else fail."""
    try:
        target(data)
    except HotlineError:
        return
    except Exception as exc:
        if is_known_crash(exc):
            return
        raise


# --- structure-aware mutation of real encodings ------------------------------------------------
HOSTILE_STRINGS = st.sampled_from(
    [
        "",
        "A",
        "A" * 43,
        "A" * 86,
        "=",
        "+/",
        "hotline:",
        "\ud800",
        "\x00",
        "é" * 50,
        "x" * 5000,
        "not base64!",
        "-1",
        "1e400",
    ]
)
JSON_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 2**53, 2**53 + 1, 2**63 - 1, 2**63, 2**64 - 1, 2**64]),
    st.floats(),
    st.text(max_size=30),
    HOSTILE_STRINGS,
)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=10,
)


def _nodes(doc: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from _nodes(value, (*path, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            yield from _nodes(value, (*path, index))


def _parent(doc: Any, path: tuple[Any, ...]) -> Any:
    for step in path[:-1]:
        doc = doc[step]
    return doc


@st.composite
def mutated_json(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """A real encoding from ``seeds`` with one to three JSON-level edits, maybe byte edits."""
    doc = json.loads(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(_nodes(doc))))
        op = draw(st.sampled_from(["replace", "delete", "add", "nest"]))
        value = draw(JSON_VALUES)
        if not path:
            doc = value if op == "replace" else [doc] if op == "nest" else doc
            continue
        parent = _parent(doc, path)
        if op == "replace":
            parent[path[-1]] = value
        elif op == "delete":
            del parent[path[-1]]
        elif op == "nest":
            parent[path[-1]] = (
                {"x": parent[path[-1]]} if draw(st.booleans()) else [parent[path[-1]]]
            )
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=10))] = value
        else:
            parent.append(value)
    data = json.dumps(doc, allow_nan=True).encode()
    if draw(st.booleans()):
        data = draw(mutated_bytes(data))
    return data


@st.composite
def mutated_bytes(draw: st.DrawFn, data: bytes) -> bytes:
    """Byte-level edits: flip, truncate, insert, duplicate a slice."""
    buf = bytearray(data)
    for _ in range(draw(st.integers(1, 3))):
        pos = draw(st.integers(0, len(buf)))
        op = draw(st.sampled_from(["flip", "truncate", "insert", "duplicate"]))
        if op == "flip" and buf:
            buf[min(pos, len(buf) - 1)] ^= 1 << draw(st.integers(0, 7))
        elif op == "truncate":
            del buf[pos:]
        elif op == "insert":
            buf[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        else:
            buf[pos:pos] = buf[pos : pos + draw(st.integers(1, 64))]
    return bytes(buf)


def _is_json(data: bytes) -> bool:
    try:
        json.loads(data)
    except ValueError:
        return False
    return True


@st.composite
def card_texts(draw: st.DrawFn) -> bytes:
    """``hotline:`` URIs around a mutated payload and a random 64-byte "signature"."""
    payload = draw(mutated_json([msgspec.json.encode(v.card_payload())]))
    return (SCHEME + b64e(payload + draw(st.binary(min_size=64, max_size=64)))).encode()


def hostile(seeds: list[bytes]) -> st.SearchStrategy[bytes]:
    """Random bytes, byte mutations of a seed, or JSON mutations of a seed."""
    structured = mutated_json(seeds) if all(_is_json(s) for s in seeds) else card_texts()
    return st.one_of(
        st.binary(max_size=2048),
        st.sampled_from(seeds).flatmap(mutated_bytes),
        structured,
    )


# --- the decoders --------------------------------------------------------------------------------
def run_now(coro: Coroutine[Any, Any, Any]) -> Any:
    """Drive a coroutine that never suspends (the in-memory peer store) to its result."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()
    raise AssertionError("coroutine suspended")


class PinnedPeers:
    """The store calls of ``open_request``, in memory: ``washington.test`` is pinned."""

    def __init__(self) -> None:
        key = v.public_bytes(v.PEER_KEY)
        self.peer = PeerRow(v.ORIGIN, "https://washington.test", key, None, None, 0)
        self.nonces: set[str] = set()

    async def get_peer(self, domain: str) -> PeerRow | None:
        return self.peer if domain == v.ORIGIN else None

    async def use_nonce(self, origin: str, nonce: str, expires_at: float, now: float) -> None:
        if nonce in self.nonces:
            raise ReplayedRequest("nonce used before")
        self.nonces.add(nonce)


LOG = RecordsLog(ArchiveSettings(v.LOG_KEY, v.CUSTODIAN.public.to_bytes()), v.DESTINATION)
LOG_PUBLIC = v.LOG_KEY.public_key()


def read_signed_card_payload(data: bytes) -> None:
    """``data`` as the payload of a card signed for real (a contact signs anything)."""
    read_card(SCHEME + b64e(data + v.IDENTITY.sign(DOMAIN_CARD, data)), v.NOW)


def check_receipt(data: bytes) -> None:
    """The synchronous part of ``client.capture.check_receipt`` (a send's receipt)."""
    receipt = decode(data, RecordReceipt, what="receipt")
    signed = SignedTreeHead(b64d(receipt.tree_head.head), b64d(receipt.tree_head.signature))
    head = verify_tree_head(signed, LOG_PUBLIC)
    proof = [b64d(p) for p in receipt.inclusion]
    verify_inclusion(hash_leaf(b"leaf 5"), receipt.leaf_index, head.size, proof, head.root)


def open_federation(data: bytes, *, signed: bool) -> None:
    """``open_request`` then the payload decoder of its kind (``routes_federation``)."""
    header = v.sign_federation(data) if signed else data[:90].decode("latin-1")
    request, payload = run_now(open_request(PinnedPeers(), v.DESTINATION, data, header, v.NOW))  # type: ignore[arg-type]
    if request.kind == "deliver":
        for message in decode(payload, DeliverBatch).messages:
            for c in message.ciphertexts:
                b64d(c.body, field="body")
    elif request.kind == "contact_request":
        b64d(decode(payload, RemoteContactRequest).invite_secret, field="invite_secret")
    elif request.kind in ("devices", "claim"):
        decode(payload, RemoteLookup)


def push_frame(data: bytes) -> None:
    """A websocket push as the client decodes it, then each Olm body as ``process`` does."""
    for item in decode(data, _Push, max_size=MAX_RESPONSE).items:
        b64d(item.body)


PRINCIPAL = "potus@washington.test"


def delegation_grant() -> DelegationGrant:
    key = b64e(v.IDENTITY.public.to_bytes())
    return DelegationGrant(
        v=1,
        grant_id="g1",
        principal=PRINCIPAL,
        principal_identity_key=key,
        aide="chief@washington.test",
        aide_identity_key=key.replace(key[0], "A" if key[0] != "A" else "B", 1),
        rights=["read", "answer"],
        issued_at=int(v.NOW),
        expires_at=int(v.NOW) + 86400,
    )


def delegation_revocation() -> DelegationRevocation:
    return DelegationRevocation(
        v=1, grant_id="g1", principal=PRINCIPAL, aide="chief@washington.test", revoked_at=1
    )


def signed_by_principal(domain: bytes, data: bytes) -> Signed:
    """``data`` signed for real by the principal's key (what a hostile principal can do)."""
    return Signed(payload=b64e(data), signature=b64e(v.IDENTITY.sign(domain, data)))


GRANT_SEEDS = [msgspec.json.encode(delegation_grant())]
REVOCATION_SEEDS = [msgspec.json.encode(delegation_revocation())]
DELEGATIONS_SEEDS = [
    msgspec.json.encode(
        DelegationsResponse(
            handle=PRINCIPAL,
            grants=[
                PublishedGrant(
                    grant=sign_grant(v.IDENTITY, delegation_grant()),
                    aide_device_list=msgspec.json.decode(v.device_list(), type=Signed),
                )
            ],
            revocations=[sign_revocation(v.IDENTITY, delegation_revocation())],
        )
    )
]
DELEGATION_ENVELOPE_SEEDS = [
    msgspec.json.encode(
        Envelope(
            v=1,
            kind="delegation",
            message_id="m1",
            sender=PRINCIPAL,
            sender_device="d1",
            recipient="chief@washington.test",
            sent_at_ms=v.NOW_MS,
            delegation=DelegationNotice(grant=sign_grant(v.IDENTITY, delegation_grant())),
        )
    ),
    msgspec.json.encode(
        Envelope(
            v=1,
            kind="text",
            message_id="m2",
            sender="chief@washington.test",
            sender_device="d2",
            recipient="pm@ottawa.test",
            sent_at_ms=v.NOW_MS,
            text="for the President",
            on_behalf_of=PRINCIPAL,
            grant_id="g1",
        )
    ),
]


CARD_SEEDS = [u.encode() for u in v.card_uris()]
CARD_PAYLOAD_SEEDS = [msgspec.json.encode(v.card_payload())]
RECORD_SEEDS = v.sealed_records()
FEDERATION_SEEDS = v.federation_requests()

#: name -> (decoder of outside bytes, seeds of real encodings it accepts)
DECODERS: dict[str, tuple[Callable[[bytes], object], list[bytes]]] = {
    "card_text": (lambda d: parse_card(d.decode("utf-8", "surrogateescape")), CARD_SEEDS),
    "card_read": (lambda d: read_card(d.decode("utf-8", "surrogateescape"), v.NOW), CARD_SEEDS),
    "card_signed_payload": (read_signed_card_payload, CARD_PAYLOAD_SEEDS),
    "envelope": (decode_envelope, v.envelopes()),
    "sealed_record_check_leaf": (LOG.check_leaf, RECORD_SEEDS),
    "sealed_record_open": (lambda d: open_record(v.CUSTODIAN, d), RECORD_SEEDS),
    "record_plaintext": (lambda d: decode(d, Record, what="record"), v.records()),
    "signed_tree_head": (lambda d: open_signed_tree_head(d, LOG_PUBLIC), v.signed_tree_heads()),
    "signed_tree_head_transport": (decode_signed_tree_head, v.signed_tree_heads()),
    "tree_head_behind_signature": (
        lambda d: verify_tree_head(
            SignedTreeHead(d, v.LOG_KEY.sign(TREE_HEAD_DOMAIN + d)), LOG_PUBLIC
        ),
        v.tree_heads(),
    ),
    "tree_head": (decode_tree_head, v.tree_heads()),
    "record_receipt": (check_receipt, v.receipts()),
    "federation_request_forged": (lambda d: open_federation(d, signed=False), FEDERATION_SEEDS),
    "federation_request_signed": (lambda d: open_federation(d, signed=True), FEDERATION_SEEDS),
    "ws_ack_frame": (lambda d: decode(d, _WsAck, max_size=64 * 1024), v.ws_frames()[:2]),
    "ws_push_frame": (push_frame, v.ws_frames()[2:]),
    "inbox_response": (lambda d: decode(d, api.InboxResponse), v.ws_frames()[2:]),
    "group_roster": (lambda d: open_roster(decode(d, Signed)), g.signed_rosters()),
    "group_text": (lambda d: decode(d, GroupText), g.group_texts()),
    "group_ciphertext": (lambda d: decode(d, GroupCiphertext), g.group_ciphertexts()),
    "group_send_request": (lambda d: decode(d, GroupSendRequest), g.group_send_requests()),
    "delegation_grant": (
        lambda d: open_grant(
            signed_by_principal(DOMAIN_GRANT, d), v.IDENTITY.public.to_bytes(), PRINCIPAL
        ),
        GRANT_SEEDS,
    ),
    "delegation_revocation": (
        lambda d: open_revocation(
            signed_by_principal(DOMAIN_REVOCATION, d), v.IDENTITY.public.to_bytes(), PRINCIPAL
        ),
        REVOCATION_SEEDS,
    ),
    "delegations_response": (lambda d: decode(d, DelegationsResponse), DELEGATIONS_SEEDS),
    "delegation_envelope": (decode_envelope, DELEGATION_ENVELOPE_SEEDS),
    "device_removed_notice": (
        lambda d: decode(d, DeviceRemovedNotice),
        [b'{"device_id":"d1","removed_at":1}'],
    ),
}


@pytest.mark.parametrize("name", sorted(DECODERS))
@FAST
@given(data=st.data())
def test_decoder_raises_only_typed_errors(name: str, data: st.DataObject) -> None:
    target, seeds = DECODERS[name]
    only_typed_errors(target, data.draw(hostile(seeds), label="input"))


@pytest.mark.parametrize("name", sorted(DECODERS))
def test_decoder_accepts_its_seeds(name: str) -> None:
    """The seeds are real encodings: most decoders accept them (the mutations start valid)."""
    target, seeds = DECODERS[name]
    if name == "card_read":
        seeds = seeds[:2]  # the third seed is an expired card, refused on purpose
    if name == "federation_request_forged":
        return  # refused on purpose: the header is garbage
    for seed in seeds:
        target(seed)


@st.composite
def signed_federation_bodies(draw: st.DrawFn) -> bytes:
    """A request of a random kind whose *payload* is a mutated real payload."""
    payloads = v.federation_payloads()
    kind = draw(st.sampled_from(sorted(payloads)))
    payload = draw(st.one_of(mutated_json([payloads[kind]]), st.binary(max_size=512)))
    return v.federation_request(kind, payload)


@FAST
@given(body=signed_federation_bodies())
def test_federation_payloads_raise_only_typed_errors(body: bytes) -> None:
    only_typed_errors(lambda d: open_federation(d, signed=True), body)


PROOF_SIZES = st.one_of(
    st.integers(min_value=-3, max_value=70),
    st.sampled_from([2**63 - 1, 2**63, 2**64 - 1, 2**64, 2**64 + 1, -(2**64)]),
    st.integers(min_value=-(2**70), max_value=2**70),
)
HASHES = st.lists(
    st.binary(min_size=0, max_size=40) | st.binary(min_size=32, max_size=32), max_size=70
)


@FAST
@given(
    consistency=st.booleans(),
    a=PROOF_SIZES,
    b=PROOF_SIZES,
    proof=HASHES,
    first=st.binary(max_size=40),
    second=st.binary(max_size=40),
)
def test_proof_verification_raises_only_typed_errors(
    consistency: bool, a: int, b: int, proof: list[bytes], first: bytes, second: bytes
) -> None:
    if consistency:
        only_typed_errors(lambda _: verify_consistency(a, b, proof, first, second), b"")
    else:
        only_typed_errors(lambda _: verify_inclusion(first, a, b, proof, second), b"")


@FAST
@given(case=st.sampled_from(v.proof_inputs()), data=st.data())
def test_mutated_real_proofs_raise_only_typed_errors(
    case: tuple[int, int, int, list[bytes], bytes, bytes], data: st.DataObject
) -> None:
    """Real proofs with one element changed: a size, a hash, the proof's length."""
    mode, a, b, proof, first, second = case
    proof = list(proof)
    what = data.draw(st.sampled_from(["a", "b", "drop", "add", "hash", "first"]))
    if what == "a":
        a = data.draw(PROOF_SIZES)
    elif what == "b":
        b = data.draw(PROOF_SIZES)
    elif what == "drop" and proof:
        del proof[data.draw(st.integers(0, len(proof) - 1))]
    elif what == "add":
        proof.insert(data.draw(st.integers(0, len(proof))), data.draw(st.binary(max_size=40)))
    elif what == "hash" and proof:
        proof[data.draw(st.integers(0, len(proof) - 1))] = data.draw(st.binary(max_size=40))
    else:
        first = data.draw(st.binary(max_size=40))
    if mode == 0:
        only_typed_errors(lambda _: verify_inclusion(first, a, b, proof, second), b"")
    else:
        only_typed_errors(lambda _: verify_consistency(a, b, proof, first, second), b"")


# --- a real client fed hostile mailbox items ------------------------------------------------------
@contextlib.contextmanager
def server_in_thread(
    db: Path, domain: str = "washington.test", **overrides: object
) -> Iterator[tuple[LiveServer, Callable[[Coroutine[Any, Any, Any]], Any]]]:
    """A live server on its own event loop in a thread, so each example can use its own loop.

    Yields the server and ``call``, which runs a coroutine on the server's loop (its store).
    """
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    def call(coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=120)

    try:
        live, stop = call(start_server(db, domain, **overrides))  # type: ignore[arg-type]
        try:
            yield live, call
        finally:
            call(stop())
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


def register(live: LiveServer, call: Callable[..., Any], home: Path, name: str) -> str:
    """Enrol and register ``name`` with its keystore in ``home``; returns the handle."""
    handle = f"{name}@{live.config.domain}"
    token = call(issue_enrolment(live.store, handle, time.time()))

    async def go() -> None:
        client = await HotlineClient.register(
            home,
            PASSPHRASE,
            server_url=live.url,
            enrolment_token=token,
            handle=handle,
            display_name=name.title(),
            scrypt=FAST_SCRYPT,
        )
        await client.close()

    asyncio.run(go())
    return handle


def with_client(home: Path, action: Callable[[HotlineClient], Coroutine[Any, Any, T]]) -> T:
    """Open the device in ``home`` on a fresh event loop, run ``action``, close it."""

    async def go() -> T:
        client = await HotlineClient.open(home, PASSPHRASE)
        try:
            return await action(client)
        finally:
            await client.close()

    return asyncio.run(go())


async def process_logged_in(client: HotlineClient, items: list[api.InboxItem]) -> Any:
    """``process`` as ``sync`` and ``listen`` call it: with a session token."""
    await client._ensure_login()
    return await client.process(items)


def stored_state(home: Path) -> bytes:
    """What must not change when hostile items are processed."""
    from hotline.client.keystore import Keystore

    state = Keystore.open(home, PASSPHRASE).load()
    return msgspec.json.encode(
        [
            state.contacts,
            state.messages,
            state.pending_requests,
            state.transcripts,
            state.seen_message_ids,
            state.pending_records,
            state.invites,
        ]
    )


B64_TEXT = st.from_regex(r"\A[A-Za-z0-9_-]{0,200}\Z")


@st.composite
def hostile_items(draw: st.DrawFn, real: api.InboxItem, own: str, stranger: str) -> api.InboxItem:
    """Mailbox items a hostile server or contact could produce (bodies pass the B64 pattern,
    as every item does after ``InboxResponse`` is decoded)."""
    raw = b64d(real.body)
    body_bytes = draw(
        st.one_of(
            st.binary(max_size=300),
            st.integers(0, len(raw) - 1).map(lambda n: raw[:n]),  # truncated Olm message
            mutated_bytes(raw).filter(lambda b: b != raw),  # tampered Olm message
            st.sampled_from([b"\x00", b"\x01", b"\x02" + raw[1:]]),
            st.just(b"[" * 10_000),  # deep JSON
            st.just(json.dumps({"sender": "x", "card": "x" * 100_000, "invite_id": "i"}).encode()),
            mutated_json([b'{"sender":"a@b","card":"hotline:AA","invite_id":"i"}']),
            mutated_json([b'{"message_id":"m","to":"a@b","code":"c","detail":"d"}']),
        )
    )
    body = draw(st.one_of(st.just(b64e(body_bytes)), B64_TEXT))
    return api.InboxItem(
        seq=draw(st.integers(1, 2**40)),
        message_id=draw(st.from_regex(r"\A[A-Za-z0-9_-]{1,20}\Z")),
        kind=draw(st.sampled_from(["olm", "olm", "contact_request", "bounce", "megolm", "", "??"])),
        sender_handle=draw(st.sampled_from([real.sender_handle, own, stranger, ""])),
        sender_device=draw(st.sampled_from([real.sender_device, "nope", ""])),
        body=body,
        created_at=v.NOW,
    )


def test_client_survives_hostile_mailbox_items(tmp_path: Path) -> None:
    """No exception escapes ``HotlineClient.process``, each hostile item gives a ``warning``,
    nothing stored changes, and the genuine message still opens afterwards."""
    alice_home, bob_home = tmp_path / "alice", tmp_path / "bob"
    with server_in_thread(
        tmp_path / "server.db", anon_rate_per_second=1e6, anon_rate_burst=1e6
    ) as (live, call):
        register(live, call, alice_home, "alice")
        register(live, call, bob_home, "bob")

        # Card exchange and a first message (which opens the Olm session), as in connect().
        card = with_client(bob_home, lambda bob: bob.my_card())
        with_client(alice_home, lambda alice: alice.add_contact(card))
        with_client(bob_home, lambda bob: bob.sync())
        with_client(alice_home, lambda alice: alice.sync())
        with_client(alice_home, lambda alice: alice.send_text("bob", "first, opens the session"))
        with_client(bob_home, lambda bob: bob.sync())
        with_client(alice_home, lambda alice: alice.send_text("bob", "the genuine message"))

        async def fetch(bob: HotlineClient) -> api.InboxResponse:
            await bob._ensure_login()
            reply = await bob.server.call(
                "GET", "/v1/inbox", response=api.InboxResponse, params={"limit": "100"}
            )
            assert reply is not None
            return reply

        real = next(i for i in with_client(bob_home, fetch).items if i.kind == "olm")
        before = stored_state(bob_home)
        bob_handle = f"bob@{live.config.domain}"

        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
        @given(item=hostile_items(real, bob_handle, f"zed@{live.config.domain}"))
        def one(item: api.InboxItem) -> None:
            try:
                events = with_client(bob_home, lambda bob: process_logged_in(bob, [item]))
            except Exception as exc:
                if is_known_crash(exc):
                    return
                raise
            assert any(e.kind == "warning" for e in events), (item, events)
            assert stored_state(bob_home) == before, item

        one()
        events = with_client(bob_home, lambda bob: process_logged_in(bob, [real]))
        assert [e.text for e in events if e.kind == "message"] == ["the genuine message"]


# --- a live server fed hostile bodies -----------------------------------------------------------
ROUTES = [
    ("POST", "/v1/register"),
    ("POST", "/v1/auth/challenge"),
    ("POST", "/v1/auth/token"),
    ("POST", "/v1/keys"),
    ("POST", "/v1/keys/claim"),
    ("PUT", "/v1/device-list"),
    ("PUT", "/v1/allowlist"),
    ("POST", "/v1/invites"),
    ("POST", "/v1/contact-requests"),
    ("POST", "/v1/messages"),
    ("POST", "/v1/inbox/ack"),
    ("POST", "/v1/records"),
    ("POST", "/v1/federation"),
    ("PUT", "/v1/groups"),
    ("POST", "/v1/groups/messages"),
]


@st.composite
def hostile_requests(draw: st.DrawFn) -> tuple[str, str, bytes, bool, bool]:
    """(method, path, body, authenticated, signed-by-pinned-peer)."""
    method, path = draw(st.sampled_from(ROUTES))
    seed = {**v.api_bodies(), **g.api_bodies()}[path]
    body = draw(st.one_of(st.binary(max_size=1024), mutated_json([seed]), mutated_bytes(seed)))
    if path == "/v1/federation" and draw(st.booleans()):
        payloads = v.federation_payloads()
        kind = draw(st.sampled_from(sorted(payloads)))
        payload = draw(st.one_of(mutated_json([payloads[kind]]), st.just(payloads[kind])))
        nonce = draw(st.from_regex(r"\A[A-Za-z0-9_-]{16,32}\Z"))
        body = v.federation_request(kind, payload, nonce, int(time.time() * 1000))
    return method, path, body, draw(st.booleans()), draw(st.booleans())


def test_server_answers_hostile_bodies_with_problems(tmp_path: Path) -> None:
    """Every POST/PUT route, hostile bodies, with and without a session: never a 5xx, and every
    refusal is a problem+json document with a ``code``."""
    with server_in_thread(
        tmp_path / "server.db",
        v.DESTINATION,
        server_key=v.LOG_KEY,
        rate_per_second=1e6,
        rate_burst=1e6,
        anon_rate_per_second=1e6,
        anon_rate_burst=1e6,
    ) as (live, call):
        key = v.public_bytes(v.PEER_KEY)
        call(live.store.put_peer(v.ORIGIN, "http://127.0.0.1:9", key, time.time()))
        register(live, call, tmp_path / "alice", "alice")

        async def login(alice: HotlineClient) -> str:
            await alice._ensure_login()
            assert alice.server.token
            return alice.server.token

        token = with_client(tmp_path / "alice", login)
        with httpx.Client(base_url=live.url, timeout=30) as http:

            @settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
            @given(request=hostile_requests())
            def one(request: tuple[str, str, bytes, bool, bool]) -> None:
                method, path, body, authed, signed = request
                headers = {"content-type": "application/json"}
                if authed:
                    headers["authorization"] = f"Bearer {token}"
                if path == "/v1/federation" and signed:
                    headers[SIGNATURE_HEADER] = v.sign_federation(body)
                reply = http.request(method, path, content=body, headers=headers)
                if (path, reply.status_code) in KNOWN_SERVER_FAILURES:
                    return
                assert _is_problem_or_success(reply), (method, path, body, reply.text[:300])

            one()


def _is_problem_or_success(reply: httpx.Response) -> bool:
    if reply.status_code < 400:
        return True  # a mutation can still be a valid request
    if reply.status_code >= 500 and not _peer_down(reply):
        return False
    if not reply.headers.get("content-type", "").startswith("application/problem+json"):
        return False
    with contextlib.suppress(ValueError):
        return bool(reply.json().get("code"))
    return False


def _peer_down(reply: httpx.Response) -> bool:
    """503 ``server_unavailable`` for a request relayed to a pinned peer that is not running
    is the right answer (retry later), not a crash: the test pins peers it never starts."""
    with contextlib.suppress(ValueError):
        return reply.status_code == 503 and reply.json().get("code") == "server_unavailable"
    return False


#: Server answers known to be wrong, pending a fix: (path, status) -> regression file.
KNOWN_SERVER_FAILURES: dict[tuple[str, int], str] = {}
