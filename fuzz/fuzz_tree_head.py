"""Fuzz signed tree heads and receipts of the records log, as a client receives them.

Each input is tried as:

* the transport form of a signed tree head (:func:`open_signed_tree_head`, pinned log key);
* the exact head bytes after a valid signature (a breached server holds the log key and can
  sign anything), i.e. :func:`verify_tree_head` over ``data`` signed for real;
* a :class:`~hotline.wire.records.RecordReceipt` as ``POST /v1/messages`` returns it, checked
  as the client does (signature, then the inclusion proof against the signed root).
"""

from __future__ import annotations

import contextlib

from runner import instrumented, main

with instrumented():
    from valid_encodings import LOG_KEY

    from hotline.records.checkpoint import (
        TREE_HEAD_DOMAIN,
        SignedTreeHead,
        open_signed_tree_head,
        verify_tree_head,
    )
    from hotline.records.hasher import hash_leaf
    from hotline.records.verify import verify_inclusion
    from hotline.wire.codec import decode
    from hotline.wire.encoding import b64d
    from hotline.wire.errors import HotlineError
    from hotline.wire.records import RecordReceipt

PUBLIC = LOG_KEY.public_key()


def check_receipt(data: bytes) -> None:
    """The synchronous part of ``hotline.client.capture.check_receipt``."""
    receipt = decode(data, RecordReceipt, what="receipt")
    signed = SignedTreeHead(b64d(receipt.tree_head.head), b64d(receipt.tree_head.signature))
    head = verify_tree_head(signed, PUBLIC)
    proof = [b64d(p) for p in receipt.inclusion]
    verify_inclusion(hash_leaf(b"leaf 5"), receipt.leaf_index, head.size, proof, head.root)


def test_one_input(data: bytes) -> None:
    """Every tree-head path; only HotlineError may come out of each."""
    with contextlib.suppress(HotlineError):
        open_signed_tree_head(data, PUBLIC)
    with contextlib.suppress(HotlineError):
        verify_tree_head(SignedTreeHead(data, LOG_KEY.sign(TREE_HEAD_DOMAIN + data)), PUBLIC)
    check_receipt(data)


if __name__ == "__main__":
    main("tree_head", test_one_input)
