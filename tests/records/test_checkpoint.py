"""Signed tree heads (hotline.records.checkpoint): sign exact bytes, verify received bytes."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from hotline.records.checkpoint import (
    MAX_SIGNED_TREE_HEAD_BYTES,
    TREE_HEAD_DOMAIN,
    SignedTreeHead,
    TreeHead,
    decode_signed_tree_head,
    decode_tree_head,
    encode_signed_tree_head,
    encode_tree_head,
    open_signed_tree_head,
    sign_tree_head,
    verify_tree_head,
)
from hotline.records.hasher import EMPTY_ROOT
from hotline.records.proof import MerkleTree
from hotline.wire.errors import BadSignature, BodyTooLarge, MalformedInput, UnsupportedVersion

FIXTURE = Path(__file__).resolve().parents[1] / "vectors" / "records" / "tree-head-v1.json"
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
ROOT = MerkleTree.from_entries([b"a", b"b"]).root()


def _head(**changes: object) -> TreeHead:
    fields: dict[str, object] = {
        "log_id": "ottawa.example/records", "size": 2, "root": ROOT, "timestamp_ms": 1_000,
    }  # fmt: skip
    fields.update(changes)
    return TreeHead(**fields)  # type: ignore[arg-type]


def _raw_head(**changes: object) -> bytes:
    doc = msgspec.to_builtins(_head())
    doc.update(changes)
    return msgspec.json.encode(doc)


def test_round_trip() -> None:
    signed = sign_tree_head(_head(), KEY)
    wire = encode_signed_tree_head(signed)
    assert open_signed_tree_head(wire, KEY.public_key()) == _head()
    assert decode_signed_tree_head(wire) == signed


def test_signature_is_domain_separated() -> None:
    signed = sign_tree_head(_head(), KEY)
    KEY.public_key().verify(signed.signature, TREE_HEAD_DOMAIN + signed.head_bytes)
    bare = SignedTreeHead(signed.head_bytes, KEY.sign(signed.head_bytes))
    with pytest.raises(BadSignature):
        verify_tree_head(bare, KEY.public_key())


def test_wrong_key_and_tampered_bytes_fail() -> None:
    signed = sign_tree_head(_head(), KEY)
    with pytest.raises(BadSignature):
        verify_tree_head(signed, Ed25519PrivateKey.generate().public_key())
    tampered = signed.head_bytes.replace(b'"size":2', b'"size":3')
    with pytest.raises(BadSignature):
        verify_tree_head(SignedTreeHead(tampered, signed.signature), KEY.public_key())


def test_received_bytes_are_verified_not_reserialised() -> None:
    spaced = b"  " + encode_tree_head(_head()).replace(b",", b", ") + b"\n"
    signed = SignedTreeHead(spaced, KEY.sign(TREE_HEAD_DOMAIN + spaced))
    assert verify_tree_head(signed, KEY.public_key()) == _head()


def test_empty_log_head() -> None:
    head = _head(size=0, root=EMPTY_ROOT)
    assert verify_tree_head(sign_tree_head(head, KEY), KEY.public_key()) == head


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b"not json", MalformedInput),
        (b"[]", MalformedInput),
        (_raw_head(v=2), UnsupportedVersion),
        (_raw_head(v=0), UnsupportedVersion),
        (_raw_head(size=-1), MalformedInput),
        (_raw_head(size=2**64), MalformedInput),
        (_raw_head(size="2"), MalformedInput),
        (_raw_head(root="AAAA"), MalformedInput),
        (_raw_head(log_id=""), MalformedInput),
        (_raw_head(log_id="has space"), MalformedInput),
        (_raw_head(timestamp_ms=-5), MalformedInput),
        (_raw_head(extra=1), MalformedInput),
        (_raw_head(size=0), MalformedInput),  # empty log, non-empty root
        (b" " * 2000, BodyTooLarge),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else None,
)
def test_decode_tree_head_rejects(raw: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        decode_tree_head(raw)


def test_missing_field_rejected() -> None:
    doc = json.loads(_raw_head())
    del doc["root"]
    with pytest.raises(MalformedInput):
        decode_tree_head(json.dumps(doc).encode())


@pytest.mark.parametrize(
    "raw",
    [
        b"{}",
        b'{"head_bytes":"","signature":""}',
        b'{"head_bytes":"e30=","signature":"AAAA"}',
        b'{"head_bytes":"e30=","signature":"' + b"A" * 86 + b'==","x":1}',
        b'{"head_bytes":"%%%","signature":""}',
    ],
)
def test_decode_signed_tree_head_rejects(raw: bytes) -> None:
    with pytest.raises(MalformedInput):
        decode_signed_tree_head(raw)


def test_decode_signed_tree_head_caps_size() -> None:
    with pytest.raises(BodyTooLarge):
        decode_signed_tree_head(b" " * (MAX_SIGNED_TREE_HEAD_BYTES + 1))


def test_signed_but_malformed_head_is_rejected_after_signature() -> None:
    raw = _raw_head(v=2)
    signed = SignedTreeHead(raw, KEY.sign(TREE_HEAD_DOMAIN + raw))
    with pytest.raises(UnsupportedVersion):
        verify_tree_head(signed, KEY.public_key())


def test_refuses_to_sign_invalid_head() -> None:
    with pytest.raises(MalformedInput):
        sign_tree_head(_head(root=b"short"), KEY)


def test_v1_fixture_still_verifies() -> None:
    fixture = json.loads(FIXTURE.read_text())
    public = Ed25519PublicKey.from_public_bytes(bytes.fromhex(fixture["public_key_hex"]))
    head = open_signed_tree_head(fixture["signed_tree_head"].encode(), public)
    assert (head.log_id, head.size, head.timestamp_ms) == (
        fixture["log_id"], fixture["size"], fixture["timestamp_ms"],
    )  # fmt: skip
    assert head.root.hex() == fixture["root_hex"]
    assert head.root == MerkleTree.from_entries([b"record-%d" % i for i in range(7)]).root()
    # Ed25519 is deterministic, so today's encoder must reproduce the stored bytes exactly.
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(fixture["private_seed_hex"]))
    again = encode_signed_tree_head(sign_tree_head(head, key)).decode()
    assert again == fixture["signed_tree_head"]
