"""Merkle tree roots and proof generation for the records log, RFC 9162 §2.1.

Roots follow the MTH definition of §2.1.1, inclusion proofs the PATH definition of §2.1.3.1 and
consistency proofs the PROOF/SUBPROOF definition of §2.1.4.1. All three only ever need "the
hash of leaves ``[start, end)``" for O(log n) ranges, so the definitions are written once over
a ``subtree`` callable and fed either by

* :class:`MerkleTree`, an in-memory log that keeps the hash of every complete (perfect)
  subtree, level by level, so roots and proofs for any past size cost O(log n) lookups plus at
  most O(log n) hashes for the one incomplete right edge; or
* any :class:`LeafHashSource` (e.g. a store-backed log), hashed by streaming its leaf hashes
  in batches with O(log n) memory — O(n) work, for logs too large to keep in memory.

Modelled on transparency-dev/merkle (``proof`` and ``compact`` packages).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Protocol, runtime_checkable

from hotline.records.hasher import (
    EMPTY_ROOT,
    HASH_SIZE,
    hash_children,
    hash_leaf,
    largest_power_of_two_below,
)
from hotline.wire.errors import TreeRangeInvalid

#: How many leaf hashes a streaming computation reads from a source at a time.
READ_BATCH = 4096

SubtreeHash = Callable[[int, int], bytes]


@runtime_checkable
class LeafHashSource(Protocol):
    """An append-only sequence of leaf hashes (``hash_leaf(entry)``), indexed from 0."""

    @property
    def size(self) -> int:
        """Number of leaves."""
        ...

    def leaf_hash(self, index: int) -> bytes:
        """The hash of leaf ``index`` (``0 <= index < size``)."""
        ...

    def leaf_hashes(self, start: int, end: int) -> Sequence[bytes]:
        """The hashes of leaves ``[start, end)`` in order (``0 <= start <= end <= size``)."""
        ...


# --- the RFC definitions, over any subtree-hash function ---------------------------------------
def fold_root(perfect_roots: Sequence[bytes]) -> bytes:
    """MTH of a tree given its perfect subtree roots, largest (leftmost) first (§2.1.1).

    Because the split point ``k`` of §2.1.1 is always the largest power of two below ``n``,
    MTH(D[n]) is the right-to-left fold of the perfect subtrees given by the bits of ``n``.
    """
    if not perfect_roots:
        return EMPTY_ROOT
    acc = perfect_roots[-1]
    for left in reversed(perfect_roots[:-1]):
        acc = hash_children(left, acc)
    return acc


def inclusion_path(subtree: SubtreeHash, index: int, size: int) -> list[bytes]:
    """PATH(index, D[size]) of RFC 9162 §2.1.3.1, ordered from the leaf up."""
    path: list[bytes] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = largest_power_of_two_below(hi - lo)
        if index < lo + k:
            path.append(subtree(lo + k, hi))
            hi = lo + k
        else:
            path.append(subtree(lo, lo + k))
            lo += k
    path.reverse()
    return path


def consistency_path(subtree: SubtreeHash, size1: int, size2: int) -> list[bytes]:
    """PROOF(size1, D[size2]) = SUBPROOF(size1, D[size2], true) of RFC 9162 §2.1.4.1."""
    proof: list[bytes] = []
    lo, hi, m, whole = 0, size2, size1, True
    while m != hi - lo:
        k = largest_power_of_two_below(hi - lo)
        if m <= k:
            proof.append(subtree(lo + k, hi))
            hi = lo + k
        else:
            proof.append(subtree(lo, lo + k))
            lo, m, whole = lo + k, m - k, False
    if not whole:
        proof.append(subtree(lo, hi))
    proof.reverse()
    return proof


# --- range checks shared by every generator ----------------------------------------------------
def check_size(size: int, available: int) -> None:
    """Raises TreeRangeInvalid unless ``0 <= size <= available``."""
    if not 0 <= size <= available:
        raise TreeRangeInvalid(
            f"tree size {size} is not between 0 and {available}", size=size, available=available
        )


def check_index(index: int, size: int, available: int) -> None:
    """Raises TreeRangeInvalid unless ``0 <= index < size <= available``."""
    check_size(size, available)
    if not 0 <= index < size:
        raise TreeRangeInvalid(
            f"leaf index {index} is not below tree size {size}", index=index, size=size
        )


def check_sizes(size1: int, size2: int, available: int) -> None:
    """Raises TreeRangeInvalid unless ``0 < size1 <= size2 <= available``.

    A consistency proof from the empty tree is meaningless (§2.1.4.1 requires 0 < m).
    """
    check_size(size2, available)
    if not 0 < size1 <= size2:
        raise TreeRangeInvalid(
            f"consistency needs 0 < size1 <= size2, got {size1} and {size2}",
            size1=size1,
            size2=size2,
        )


# --- streaming over a LeafHashSource ----------------------------------------------------------
class _CompactRange:
    """The roots of the perfect subtrees covering the leaves pushed so far (a "frontier")."""

    def __init__(self) -> None:
        self.size = 0
        self.roots: list[bytes] = []

    def push(self, leaf_hash: bytes) -> None:
        node = leaf_hash
        self.size += 1
        n = self.size
        while n & 1 == 0:
            node = hash_children(self.roots.pop(), node)
            n >>= 1
        self.roots.append(node)

    def root(self) -> bytes:
        return fold_root(self.roots)


def _streaming_subtree(source: LeafHashSource) -> SubtreeHash:
    def subtree(start: int, end: int) -> bytes:
        frontier = _CompactRange()
        for batch_start in range(start, end, READ_BATCH):
            for leaf in source.leaf_hashes(batch_start, min(end, batch_start + READ_BATCH)):
                frontier.push(leaf)
        return frontier.root()

    return subtree


def _subtree_of(source: LeafHashSource) -> SubtreeHash:
    # A MerkleTree answers from its memo; anything else is streamed from its leaves.
    if isinstance(source, MerkleTree):
        return source.subtree_hash
    return _streaming_subtree(source)


def root_at(source: LeafHashSource, size: int) -> bytes:
    """MTH(D[size]) over the first ``size`` leaves of ``source`` (RFC 9162 §2.1.1).

    Raises:
        TreeRangeInvalid: ``size`` is negative or beyond ``source.size``.
    """
    check_size(size, source.size)
    return _subtree_of(source)(0, size) if size else EMPTY_ROOT


def inclusion_proof(source: LeafHashSource, index: int, size: int) -> list[bytes]:
    """The inclusion proof of leaf ``index`` in the tree of the first ``size`` leaves (§2.1.3.1).

    Raises:
        TreeRangeInvalid: unless ``0 <= index < size <= source.size``.
    """
    check_index(index, size, source.size)
    return inclusion_path(_subtree_of(source), index, size)


def consistency_proof(source: LeafHashSource, size1: int, size2: int) -> list[bytes]:
    """The consistency proof between tree sizes ``size1`` and ``size2`` (§2.1.4.1).

    Raises:
        TreeRangeInvalid: unless ``0 < size1 <= size2 <= source.size``.
    """
    check_sizes(size1, size2, source.size)
    return consistency_path(_subtree_of(source), size1, size2)


# --- the in-memory tree -----------------------------------------------------------------------
class MerkleTree:
    """An append-only in-memory Merkle tree of leaf hashes (RFC 9162 §2.1).

    Level ``k`` holds, back to back in one ``bytearray``, the hashes of the complete subtrees of
    ``2**k`` leaves seen so far: node ``j`` covers leaves ``[j * 2**k, (j + 1) * 2**k)``. The
    last node of each odd-length level is the compact range (frontier) of the tree. Appending
    is O(1) amortised; the root or a proof for any past size costs O(log n) lookups plus at most
    O(log n) hashes for the single incomplete right edge. 10**6 leaves take ~64 MB.
    """

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self._levels: list[bytearray] = [bytearray()]
        self._size = 0
        self.extend(leaf_hashes)

    @classmethod
    def from_entries(cls, entries: Iterable[bytes]) -> MerkleTree:
        """A tree over raw log entries, each hashed with :func:`hash_leaf`."""
        return cls(hash_leaf(entry) for entry in entries)

    @property
    def size(self) -> int:
        """Number of leaves appended so far."""
        return self._size

    def append(self, leaf_hash: bytes) -> int:
        """Append one leaf hash; returns its index.

        Raises:
            ValueError: ``leaf_hash`` is not :data:`HASH_SIZE` bytes.
        """
        if len(leaf_hash) != HASH_SIZE:
            raise ValueError(f"leaf hash must be {HASH_SIZE} bytes, got {len(leaf_hash)}")
        index = self._size
        self._size += 1
        self._levels[0] += leaf_hash
        self._complete_parents(leaf_hash)
        return index

    def _complete_parents(self, node: bytes) -> None:
        # Each trailing 1-bit of the new size closes one more perfect subtree.
        level, n = 0, self._size
        while n & 1 == 0:
            node = hash_children(bytes(self._levels[level][-2 * HASH_SIZE : -HASH_SIZE]), node)
            level, n = level + 1, n >> 1
            if level == len(self._levels):
                self._levels.append(bytearray())
            self._levels[level] += node

    def append_entry(self, entry: bytes) -> int:
        """Append a raw log entry (hashed with :func:`hash_leaf`); returns its index."""
        return self.append(hash_leaf(entry))

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Append several leaf hashes in order."""
        for leaf_hash in leaf_hashes:
            self.append(leaf_hash)

    def leaf_hash(self, index: int) -> bytes:
        """The hash of leaf ``index``.

        Raises:
            TreeRangeInvalid: unless ``0 <= index < size``.
        """
        check_index(index, self._size, self._size)
        return self._node(0, index)

    def leaf_hashes(self, start: int, end: int) -> list[bytes]:
        """The hashes of leaves ``[start, end)``.

        Raises:
            TreeRangeInvalid: unless ``0 <= start <= end <= size``.
        """
        check_size(end, self._size)
        check_size(start, end)
        return [self._node(0, i) for i in range(start, end)]

    def _node(self, level: int, index: int) -> bytes:
        offset = index * HASH_SIZE
        return bytes(self._levels[level][offset : offset + HASH_SIZE])

    def subtree_hash(self, start: int, end: int) -> bytes:
        """MTH(D[start:end]) for a range that the RFC recursion produces.

        Such a range starts at a multiple of the largest power of two not above its length, so
        it splits into perfect subtrees that are all memoised. Other ranges are hashed from
        their leaves.

        Raises:
            TreeRangeInvalid: unless ``0 <= start < end <= size``.
        """
        check_index(start, end, self._size)
        width = end - start
        top = width.bit_length() - 1
        if start % (1 << top):
            return _streaming_subtree(self)(start, end)
        return fold_root(self._perfect_roots(start, width))

    def _perfect_roots(self, start: int, width: int) -> list[bytes]:
        roots: list[bytes] = []
        for level in reversed(range(width.bit_length())):
            if width >> level & 1:
                roots.append(self._node(level, start >> level))
                start += 1 << level
        return roots

    def root(self, size: int | None = None) -> bytes:
        """MTH of the first ``size`` leaves (default: all), RFC 9162 §2.1.1.

        Raises:
            TreeRangeInvalid: ``size`` is negative or beyond :attr:`size`.
        """
        return root_at(self, self._size if size is None else size)

    def root_extended(self, leaf_hashes: Sequence[bytes]) -> bytes:
        """MTH of the tree with ``leaf_hashes`` appended, leaving the tree as it is: the
        frontier's O(log n) roots plus the new leaves (for signing a head before the append
        commits).

        Raises:
            ValueError: a leaf hash is not :data:`HASH_SIZE` bytes.
        """
        if not leaf_hashes:
            return self.root()
        frontier = _CompactRange()
        frontier.size = self._size
        frontier.roots = self._perfect_roots(0, self._size)
        for leaf_hash in leaf_hashes:
            if len(leaf_hash) != HASH_SIZE:
                raise ValueError(f"leaf hash must be {HASH_SIZE} bytes, got {len(leaf_hash)}")
            frontier.push(leaf_hash)
        return frontier.root()

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """PATH(index, D[size]) (default size: all leaves), RFC 9162 §2.1.3.1.

        Raises:
            TreeRangeInvalid: unless ``0 <= index < size <= self.size``.
        """
        return inclusion_proof(self, index, self._size if size is None else size)

    def consistency_proof(self, size1: int, size2: int | None = None) -> list[bytes]:
        """PROOF(size1, D[size2]) (default size2: all leaves), RFC 9162 §2.1.4.1.

        Raises:
            TreeRangeInvalid: unless ``0 < size1 <= size2 <= self.size``.
        """
        return consistency_proof(self, size1, self._size if size2 is None else size2)
