"""Real, valid encodings of every object Hotline decodes from outside bytes.

These are the seeds of the fuzzers (``fuzz/make_corpus.py`` writes them to ``fuzz/corpus/``)
and the starting points of the structure-aware mutations in ``tests/fuzz``. Every key is
fixed, so the signatures (Ed25519 is deterministic) are the same on every run; only the HPKE
seals are random. Nothing here is a secret: these keys exist only for fuzzing.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from hotline.client.cards import make_card, sign_device_list
from hotline.crypto.hpke import CustodianPrivateKey
from hotline.crypto.identity import IdentityKey
from hotline.records.checkpoint import (
    TreeHead,
    encode_signed_tree_head,
    encode_tree_head,
    sign_tree_head,
)
from hotline.records.hasher import EMPTY_ROOT, hash_leaf
from hotline.records.proof import MerkleTree
from hotline.records.sealing import seal_record
from hotline.wire import api
from hotline.wire.card import CardPayload
from hotline.wire.codec import encode
from hotline.wire.encoding import b64e
from hotline.wire.envelope import CallSignal, Envelope, Receipt, SasStep
from hotline.wire.federation import (
    FEDERATION_DOMAIN,
    DeliverBatch,
    FederationRequest,
    RemoteContactRequest,
    RemoteLookup,
    RemoteMessage,
)
from hotline.wire.lists import DeviceKeys
from hotline.wire.records import Record, RecordReceipt, SignedHead

#: the fixed "now" of every fuzz target (seconds since the epoch)
NOW = 1_750_000_000.0
NOW_MS = int(NOW * 1000)
ORIGIN = "washington.test"
DESTINATION = "ottawa.test"
LOG_ID = f"{DESTINATION}/records"

IDENTITY = IdentityKey.from_bytes(bytes(range(32)))
LOG_KEY = Ed25519PrivateKey.from_private_bytes(b"\x02" * 32)
PEER_KEY = Ed25519PrivateKey.from_private_bytes(b"\x03" * 32)
#: ML-KEM keys cannot be derived from a seed through the public API: one per process.
CUSTODIAN = CustodianPrivateKey.generate()

_KEY32 = b64e(b"\x07" * 32)
_SIG64 = b64e(b"\x09" * 64)


def public_bytes(key: Ed25519PrivateKey) -> bytes:
    """Raw 32-byte public half of ``key``."""
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def card_payload(**changes: object) -> CardPayload:
    """A valid card payload for ``pm@ottawa.test`` (fields can be overridden)."""
    fields: dict[str, object] = {
        "v": 1,
        "display_name": "Prime Minister of Canada",
        "handle": "pm@ottawa.test",
        "identity_key": b64e(IDENTITY.public.to_bytes()),
        "server_url": "https://hotline.ottawa.test",
        "invite_id": "inv-1",
        "invite_secret": _KEY32,
        "issued_at": int(NOW),
        "expires_at": int(NOW) + 30 * 86400,
    }
    fields.update(changes)
    return CardPayload(**fields)  # type: ignore[arg-type]


def card_uris() -> list[str]:
    """Signed ``hotline:`` URIs: plain, wrapped as an email client would, expired."""
    plain = make_card(IDENTITY, card_payload()).to_uri()
    wrapped = "<" + "\n".join(plain[i : i + 60] for i in range(0, len(plain), 60)) + ">"
    expired = make_card(IDENTITY, card_payload(expires_at=int(NOW) - 1)).to_uri()
    return [plain, wrapped, expired]


def envelopes() -> list[bytes]:
    """Envelope JSON of every kind (what an Olm message decrypts to)."""
    base: dict[str, object] = {
        "v": 1,
        "message_id": "m-1",
        "sender": "potus@washington.test",
        "sender_device": "dev-a",
        "recipient": "pm@ottawa.test",
        "sent_at_ms": NOW_MS,
        "conversation": "c0ffee",
        "seq": 3,
        "prev": b64e(b"\x01" * 32),
    }
    variants = [
        Envelope(kind="text", text="Do you have a minute on the summit?", **base),  # type: ignore[arg-type]
        Envelope(kind="receipt", receipt=Receipt(kind="read", message_ids=["m-0"]), **base),  # type: ignore[arg-type]
        Envelope(kind="sas", sas=SasStep(flow_id="f-1", step="key", data=_KEY32), **base),  # type: ignore[arg-type]
        Envelope(
            kind="call",
            call=CallSignal(call_id="call-1", event="offer", sdp="v=0\r\n"),
            **base,  # type: ignore[arg-type]
        ),
        Envelope(kind="contact_accepted", **base),  # type: ignore[arg-type]
    ]
    return [encode(e) for e in variants]


def records() -> list[bytes]:
    """Plaintext Record JSON (what the custodian decodes after opening a seal)."""
    record = Record(
        record_id="r-1",
        log_id=LOG_ID,
        kind="message",
        side="sent",
        principal="pm@ottawa.test",
        device="dev-b",
        conversation="c0ffee",
        sender="pm@ottawa.test",
        recipients=["potus@washington.test"],
        message_id="m-1",
        created_at_ms=NOW_MS,
        captured_at_ms=NOW_MS,
        body="On the record.",
        envelope=b64e(envelopes()[0]),
        detail={"law": "PRA"},
    )
    return [encode(record)]


def record_object() -> Record:
    """The record of :func:`records` as an object (for sealing)."""
    from hotline.wire.codec import decode

    return decode(records()[0], Record)


def sealed_records() -> list[bytes]:
    """Log leaves: the record of :func:`records` sealed to :data:`CUSTODIAN`."""
    return [seal_record(CUSTODIAN.public, record_object())]


def tree() -> MerkleTree:
    """A small records log of 11 leaves."""
    return MerkleTree(hash_leaf(b"leaf %d" % i) for i in range(11))


def tree_heads() -> list[bytes]:
    """Exact head bytes (what the log key signs), including the empty log."""
    log = tree()
    heads = [
        TreeHead(log_id=LOG_ID, size=size, root=log.root(size), timestamp_ms=NOW_MS)
        for size in (1, 7, 11)
    ]
    heads.append(TreeHead(log_id=LOG_ID, size=0, root=EMPTY_ROOT, timestamp_ms=NOW_MS))
    return [encode_tree_head(h) for h in heads]


def signed_tree_heads() -> list[bytes]:
    """Transport form of signed tree heads, signed by :data:`LOG_KEY`."""
    from hotline.records.checkpoint import decode_tree_head

    return [
        encode_signed_tree_head(sign_tree_head(decode_tree_head(h), LOG_KEY)) for h in tree_heads()
    ]


def receipts() -> list[bytes]:
    """RecordReceipt JSON for leaf 5 of the log at size 11."""
    from hotline.records.checkpoint import decode_tree_head

    log = tree()
    signed = sign_tree_head(decode_tree_head(tree_heads()[2]), LOG_KEY)
    receipt = RecordReceipt(
        record_id="r-5",
        leaf_index=5,
        tree_head=SignedHead(head=b64e(signed.head_bytes), signature=b64e(signed.signature)),
        inclusion=[b64e(p) for p in log.inclusion_proof(5, 11)],
    )
    return [encode(receipt)]


def _ciphertext() -> api.DeviceCiphertext:
    return api.DeviceCiphertext(device_id="dev-b", type=0, body=b64e(b"\x03olm-ciphertext"))


def federation_payloads() -> dict[str, bytes]:
    """One valid payload per federation request kind."""
    message = RemoteMessage(
        message_id="m-1",
        sender="potus@washington.test",
        sender_device="dev-a",
        to="pm@ottawa.test",
        ciphertexts=[_ciphertext()],
    )
    contact = RemoteContactRequest(
        sender="potus@washington.test",
        to="pm@ottawa.test",
        invite_id="inv-1",
        invite_secret=_KEY32,
        card=card_uris()[0],
    )
    lookup = RemoteLookup(requester="potus@washington.test", handle="pm@ottawa.test")
    return {
        "deliver": encode(DeliverBatch(messages=[message])),
        "contact_request": encode(contact),
        "devices": encode(lookup),
        "claim": encode(RemoteLookup(lookup.requester, lookup.handle, ["dev-b"])),
        "ping": b"{}",
    }


def federation_request(
    kind: str, payload: bytes, nonce: str = "n" * 24, timestamp_ms: int = NOW_MS
) -> bytes:
    """Exact body of a federation request from :data:`ORIGIN` to :data:`DESTINATION`."""
    return encode(
        FederationRequest(
            v=1,
            origin=ORIGIN,
            destination=DESTINATION,
            nonce=nonce,
            timestamp_ms=timestamp_ms,
            kind=kind,  # type: ignore[arg-type]
            payload=b64e(payload),
        )
    )


def federation_requests() -> list[bytes]:
    """A valid request body of every kind."""
    return [federation_request(k, p) for k, p in federation_payloads().items()]


def sign_federation(body: bytes) -> str:
    """The ``Hotline-Signature`` header :data:`PEER_KEY` would send for ``body``."""
    return b64e(PEER_KEY.sign(FEDERATION_DOMAIN + body))


def ws_frames() -> list[bytes]:
    """Websocket frames: client acks (to the server) and mailbox pushes (to the client)."""
    item = api.InboxItem(
        seq=7,
        message_id="m-1",
        kind="olm",
        sender_handle="potus@washington.test",
        sender_device="dev-a",
        body=b64e(b"\x00olm"),
        created_at=NOW,
    )
    return [b'{"ack":[1,2,3]}', b'{"ack":[]}', encode({"items": [item]}), b'{"items":[]}']


def device_list() -> bytes:
    """A signed device list payload (JSON of :class:`~hotline.wire.codec.Signed`)."""
    keys = DeviceKeys(device_id="dev-b", curve25519=_KEY32, ed25519=_KEY32)
    return encode(sign_device_list(IDENTITY, "pm@ottawa.test", 1, [keys], NOW))


def api_bodies() -> dict[str, bytes]:
    """A plausible body for every POST/PUT route of the client-server API."""
    signed = {"payload": b64e(b"{}"), "signature": _SIG64}
    device = {"device_id": "dev-z", "curve25519": _KEY32, "ed25519": _KEY32}
    one_time = {"key_id": "k1", "key": _KEY32, "signature": _SIG64}
    return {
        "/v1/register": encode(
            {
                "enrolment_token": "t" * 20,
                "handle": "zed@washington.test",
                "display_name": "Zed",
                "identity_key": _KEY32,
                "device": device,
                "device_list": signed,
            }
        ),
        "/v1/auth/challenge": encode({"device_id": "dev-z"}),
        "/v1/auth/token": encode(
            {"device_id": "dev-z", "challenge": b64e(b"c" * 32), "signature": _SIG64}
        ),
        "/v1/keys": encode({"one_time_keys": [one_time], "fallback_key": one_time}),
        "/v1/keys/claim": encode({"handle": "pm@washington.test", "device_ids": ["dev-b"]}),
        "/v1/device-list": encode({"signed": signed}),
        "/v1/allowlist": encode({"signed": signed}),
        "/v1/invites": encode({"invite_id": "inv-9", "verifier": _KEY32, "expires_at": 10**10}),
        "/v1/contact-requests": encode(
            {
                "to": "pm@washington.test",
                "invite_id": "inv-1",
                "invite_secret": _KEY32,
                "card": card_uris()[0],
            }
        ),
        "/v1/messages": encode(
            {
                "message_id": "m-9",
                "to": "pm@washington.test",
                "ciphertexts": [{"device_id": "dev-b", "type": 1, "body": b64e(b"x")}],
                "record": b64e(sealed_records()[0]),
            }
        ),
        "/v1/inbox/ack": encode({"seqs": [1, 2]}),
        "/v1/records": encode({"leaves": [b64e(sealed_records()[0])]}),
        "/v1/federation": federation_requests()[0],
    }


def encode_proof_case(mode: int, a: int, b: int, proof: list[bytes], h1: bytes, h2: bytes) -> bytes:
    """One proof case in the input format of ``fuzz/fuzz_proofs.py``."""
    out = bytes([mode]) + a.to_bytes(9, "big", signed=True) + b.to_bytes(9, "big", signed=True)
    out += bytes([len(proof)]) + b"".join(bytes([len(p)]) + p for p in proof)
    return out + h1 + h2


def proof_inputs() -> list[tuple[int, int, int, list[bytes], bytes, bytes]]:
    """Valid (mode, a, b, proof, hash_a, hash_b) tuples for the proof fuzzer.

    Mode 0 is inclusion (leaf index ``a`` in a tree of ``b``, leaf hash, root); mode 1 is
    consistency (sizes ``a`` < ``b``, first root, second root).
    """
    log = tree()
    out: list[tuple[int, int, int, list[bytes], bytes, bytes]] = []
    for index, size in ((0, 1), (5, 11), (10, 11), (3, 8)):
        proof = log.inclusion_proof(index, size)
        out.append((0, index, size, proof, log.leaf_hash(index), log.root(size)))
    for first, second in ((1, 11), (4, 11), (7, 11), (11, 11)):
        proof = log.consistency_proof(first, second) if first < second else []
        out.append((1, first, second, proof, log.root(first), log.root(second)))
    return out


__all__ = [
    "CUSTODIAN",
    "DESTINATION",
    "LOG_KEY",
    "NOW",
    "ORIGIN",
    "PEER_KEY",
    "api_bodies",
    "card_uris",
    "device_list",
    "encode_proof_case",
    "envelopes",
    "federation_payloads",
    "federation_request",
    "federation_requests",
    "proof_inputs",
    "receipts",
    "records",
    "sealed_records",
    "sign_federation",
    "signed_tree_heads",
    "tree_heads",
    "ws_frames",
]
