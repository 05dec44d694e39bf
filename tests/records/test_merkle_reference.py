"""Cross-check MerkleTree against the literal recursive definitions of RFC 9162 §2.1.

MTH (§2.1.1), PATH (§2.1.3.1) and PROOF/SUBPROOF (§2.1.4.1) live in ``merkle_helpers``;
here every size 1..70, every leaf index and every pair of sizes is compared, and every
generated proof is verified (§2.1.3.2, §2.1.4.2).
"""

from __future__ import annotations

import pytest
from merkle_helpers import ListSource, mth, path, proof

from hotline.records import proof as gen
from hotline.records.hasher import EMPTY_ROOT, hash_leaf
from hotline.records.proof import MerkleTree
from hotline.records.verify import (
    root_from_inclusion_proof,
    roots_from_consistency_proof,
    verify_consistency,
    verify_inclusion,
)
from hotline.wire.errors import TreeRangeInvalid

MAX_SIZE = 70
ENTRIES = tuple(i.to_bytes(2, "big") * (i % 3) for i in range(MAX_SIZE))


@pytest.fixture(scope="module")
def tree() -> MerkleTree:
    return MerkleTree.from_entries(ENTRIES)


def test_empty_tree() -> None:
    assert MerkleTree().root() == EMPTY_ROOT == mth(())
    assert gen.root_at(ListSource([]), 0) == EMPTY_ROOT


@pytest.mark.parametrize("size", range(1, MAX_SIZE + 1))
def test_root(tree: MerkleTree, size: int) -> None:
    assert tree.root(size) == mth(ENTRIES[:size])
    assert MerkleTree.from_entries(ENTRIES[:size]).root() == mth(ENTRIES[:size])


@pytest.mark.parametrize("size", range(1, MAX_SIZE + 1))
def test_inclusion(tree: MerkleTree, size: int) -> None:
    d, root = ENTRIES[:size], tree.root(size)
    for index in range(size):
        got = tree.inclusion_proof(index, size)
        assert got == path(index, d)
        assert root_from_inclusion_proof(hash_leaf(d[index]), index, size, got) == root
        verify_inclusion(hash_leaf(d[index]), index, size, got, root)


@pytest.mark.parametrize("size2", range(1, MAX_SIZE + 1))
def test_consistency(tree: MerkleTree, size2: int) -> None:
    d = ENTRIES[:size2]
    for size1 in range(1, size2 + 1):
        got = tree.consistency_proof(size1, size2)
        assert got == proof(size1, d)
        verify_consistency(size1, size2, got, tree.root(size1), tree.root(size2))
        if size1 < size2:
            implied = roots_from_consistency_proof(size1, size2, got, tree.root(size1))
            assert implied == (tree.root(size1), tree.root(size2))


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 13, 31, 32, 33, 64, 70])
def test_streaming_source_agrees(tree: MerkleTree, size: int) -> None:
    source = ListSource(tree.leaf_hashes(0, MAX_SIZE))
    assert gen.root_at(source, size) == tree.root(size)
    for index in range(size):
        assert gen.inclusion_proof(source, index, size) == tree.inclusion_proof(index, size)
    for size1 in range(1, size + 1):
        assert gen.consistency_proof(source, size1, size) == tree.consistency_proof(size1, size)


def test_subtree_hash_any_range(tree: MerkleTree) -> None:
    for start in range(25):
        for end in range(start + 1, 26):
            assert tree.subtree_hash(start, end) == mth(ENTRIES[start:end])


def test_leaf_access(tree: MerkleTree) -> None:
    assert tree.size == MAX_SIZE
    assert tree.leaf_hash(5) == hash_leaf(ENTRIES[5])
    assert tree.leaf_hashes(3, 6) == [hash_leaf(e) for e in ENTRIES[3:6]]
    assert tree.leaf_hashes(4, 4) == []


@pytest.mark.parametrize(
    ("call", "args"),
    [
        ("root", (-1,)),
        ("root", (MAX_SIZE + 1,)),
        ("inclusion_proof", (0, 0)),
        ("inclusion_proof", (5, 5)),
        ("inclusion_proof", (-1, 5)),
        ("inclusion_proof", (0, MAX_SIZE + 1)),
        ("consistency_proof", (0, 5)),
        ("consistency_proof", (6, 5)),
        ("consistency_proof", (1, MAX_SIZE + 1)),
        ("leaf_hash", (MAX_SIZE,)),
        ("leaf_hashes", (5, 4)),
        ("subtree_hash", (3, 3)),
    ],
)
def test_out_of_range(tree: MerkleTree, call: str, args: tuple[int, ...]) -> None:
    with pytest.raises(TreeRangeInvalid):
        getattr(tree, call)(*args)


def test_append_rejects_wrong_size_hash() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        MerkleTree().append(b"short")


def test_append_returns_index_and_extends() -> None:
    t = MerkleTree()
    assert t.append_entry(b"a") == 0
    assert t.append(hash_leaf(b"b")) == 1
    t.extend([hash_leaf(b"c")])
    assert t.root() == mth((b"a", b"b", b"c"))


@pytest.mark.parametrize("size", range(0, 40))
def test_root_extended_matches_the_reference_and_leaves_the_tree(size: int) -> None:
    t = MerkleTree.from_entries(ENTRIES[:size])
    before = t.root()
    for extra in (1, 2, 5, 17):
        added = ENTRIES[size : size + extra]
        assert t.root_extended([hash_leaf(e) for e in added]) == mth(ENTRIES[: size + extra])
    assert t.size == size and t.root() == before  # nothing appended
    assert t.root_extended([]) == before


def test_root_extended_rejects_wrong_size_hash() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        MerkleTree.from_entries(ENTRIES[:3]).root_extended([b"short"])
