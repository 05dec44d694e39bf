"""Merkle tree hashing of the records log, RFC 9162 §2.1.1 (same as RFC 6962 §2.1).

Leaves and interior nodes are hashed with different one-byte prefixes (0x00 and 0x01) so that
a leaf can never be passed off as an interior node (second-preimage resistance). The hash is
SHA-256, so every node hash is :data:`HASH_SIZE` bytes.
"""

from __future__ import annotations

import hashlib

#: Size in bytes of every leaf, node and root hash.
HASH_SIZE = 32

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"

#: MTH({}) = SHA-256() — the root of the empty tree (RFC 9162 §2.1.1).
EMPTY_ROOT = hashlib.sha256(b"").digest()


def hash_leaf(data: bytes) -> bytes:
    """MTH({d0}) = SHA-256(0x00 || d0): the hash of one log entry (RFC 9162 §2.1.1)."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def hash_children(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right): an interior node over two subtrees (RFC 9162 §2.1.1)."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def largest_power_of_two_below(n: int) -> int:
    """The ``k`` of RFC 9162 §2.1.1: the largest power of two strictly smaller than ``n > 1``."""
    return 1 << ((n - 1).bit_length() - 1)
