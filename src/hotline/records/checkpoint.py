"""Signed tree heads of the records log, after RFC 9162 §4.10 (``TreeHeadDataV2``) and §4.11.

A :class:`TreeHead` names the log, its size, its root hash (RFC 9162 §2.1.1) and when it was
produced. The server signs the exact JSON bytes of the head, domain-separated by
:data:`TREE_HEAD_DOMAIN`, and ships those bytes beside the signature in a
:class:`SignedTreeHead`. Verifiers check the signature over the bytes they received and only
then decode them — a head is never re-serialised to be verified (DESIGN.md, "Signed objects").

The Ed25519 primitives come straight from ``cryptography`` here; they may move behind
``hotline.crypto.identity`` once that layer exists.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from hotline.records.hasher import EMPTY_ROOT, HASH_SIZE
from hotline.wire.codec import Counter, Version, decode, encode
from hotline.wire.errors import BadSignature

#: Prefix of the signed message, so a tree-head signature can never pass for another object's.
TREE_HEAD_DOMAIN = b"hotline/v1/tree-head\x00"
#: Cap on the JSON bytes of one tree head (a real one is ~150 bytes).
MAX_TREE_HEAD_BYTES = 1024
#: Cap on the JSON bytes of one signed tree head (base64 of the head plus a signature).
MAX_SIGNED_TREE_HEAD_BYTES = 2048
SIGNATURE_SIZE = 64

#: A log's name: printable ASCII without spaces, e.g. ``ottawa.example/records``.
LogId = Annotated[str, msgspec.Meta(pattern=r"^[\x21-\x7e]{1,128}$")]
RootHash = Annotated[bytes, msgspec.Meta(min_length=HASH_SIZE, max_length=HASH_SIZE)]


class TreeHead(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The state of a log at one size (RFC 9162 §4.10, with a log id instead of a log OID).

    Attributes:
        v: format version, 1.
        log_id: which log this head belongs to.
        size: number of leaves.
        root: MTH of those leaves (:data:`~hotline.records.hasher.EMPTY_ROOT` when empty).
        timestamp_ms: when the head was produced, milliseconds since the Unix epoch.
    """

    v: Version = 1
    log_id: LogId
    size: Counter  # RFC 9162 allows uint64; 2**53 keeps JSON numbers exact everywhere
    root: RootHash
    timestamp_ms: Counter

    def __post_init__(self) -> None:
        # Runs on decode too, where msgspec turns the ValueError into a ValidationError.
        if self.size == 0 and self.root != EMPTY_ROOT:
            raise ValueError("the root of an empty log must be SHA-256 of the empty string")


class SignedTreeHead(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The exact bytes of a :class:`TreeHead` and the log's Ed25519 signature over them.

    The signed message is ``TREE_HEAD_DOMAIN + head_bytes``.
    """

    head_bytes: Annotated[bytes, msgspec.Meta(min_length=1, max_length=MAX_TREE_HEAD_BYTES)]
    signature: Annotated[bytes, msgspec.Meta(min_length=SIGNATURE_SIZE, max_length=SIGNATURE_SIZE)]


def encode_tree_head(head: TreeHead) -> bytes:
    """The JSON bytes of ``head`` (what gets signed)."""
    return encode(head)


def decode_tree_head(head_bytes: bytes) -> TreeHead:
    """Decode and validate the JSON bytes of a tree head.

    Raises:
        BodyTooLarge: longer than :data:`MAX_TREE_HEAD_BYTES`.
        UnsupportedVersion: ``v`` is not 1.
        MalformedInput: not JSON, unknown or missing fields, a root that is not 32 bytes, a
            negative size, or an empty log whose root is not the empty root.
    """
    return decode(head_bytes, TreeHead, max_size=MAX_TREE_HEAD_BYTES, what="tree head")


def encode_signed_tree_head(signed: SignedTreeHead) -> bytes:
    """The JSON bytes of ``signed`` for transport."""
    return encode(signed)


def decode_signed_tree_head(data: bytes) -> SignedTreeHead:
    """Decode the transport form of a signed tree head (the signature is not checked here).

    Raises:
        BodyTooLarge: longer than :data:`MAX_SIGNED_TREE_HEAD_BYTES`.
        MalformedInput: not JSON, unknown or missing fields, or fields of the wrong size.
    """
    return decode(
        data, SignedTreeHead, max_size=MAX_SIGNED_TREE_HEAD_BYTES, what="signed tree head"
    )


def sign_tree_head(head: TreeHead, private_key: Ed25519PrivateKey) -> SignedTreeHead:
    """Sign ``head`` with the log's key.

    Raises:
        MalformedInput: ``head`` would not pass :func:`decode_tree_head` (never sign what a
            verifier must refuse).
    """
    head_bytes = encode_tree_head(head)
    decode_tree_head(head_bytes)
    return SignedTreeHead(head_bytes, private_key.sign(TREE_HEAD_DOMAIN + head_bytes))


def verify_tree_head(signed: SignedTreeHead, public_key: Ed25519PublicKey) -> TreeHead:
    """Verify the signature over the received bytes, then decode them.

    Raises:
        BadSignature: the signature does not verify under ``public_key``.
        MalformedInput: the signed bytes are not a valid tree head (see
            :func:`decode_tree_head`; also ``BodyTooLarge`` and ``UnsupportedVersion``).
    """
    try:
        public_key.verify(signed.signature, TREE_HEAD_DOMAIN + signed.head_bytes)
    except InvalidSignature as exc:
        raise BadSignature("tree head signature does not verify") from exc
    return decode_tree_head(signed.head_bytes)


def open_signed_tree_head(data: bytes, public_key: Ed25519PublicKey) -> TreeHead:
    """Decode a signed tree head from transport bytes, verify it and return the head.

    Raises:
        BodyTooLarge, MalformedInput, UnsupportedVersion: the bytes do not decode.
        BadSignature: the signature does not verify under ``public_key``.
    """
    return verify_tree_head(decode_signed_tree_head(data), public_key)
