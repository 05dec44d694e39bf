"""A large in-memory log (10**5 leaves): appends, roots and proofs stay cheap and correct."""

from __future__ import annotations

import random

from merkle_helpers import ListSource

from hotline.records import proof as gen
from hotline.records.hasher import hash_leaf
from hotline.records.proof import MerkleTree
from hotline.records.verify import verify_consistency, verify_inclusion

N = 100_000


def test_hundred_thousand_leaves() -> None:
    leaves = [hash_leaf(i.to_bytes(4, "big")) for i in range(N)]
    tree = MerkleTree()
    for leaf in leaves:
        tree.append(leaf)
    assert tree.root() == gen.root_at(ListSource(leaves), N)  # streamed, O(n) once
    rng = random.Random(9162)
    for _ in range(200):
        size2 = rng.randint(1, N)
        size1, index = rng.randint(1, size2), rng.randrange(size2)
        root2 = tree.root(size2)
        verify_inclusion(leaves[index], index, size2, tree.inclusion_proof(index, size2), root2)
        proof = tree.consistency_proof(size1, size2)
        verify_consistency(size1, size2, proof, tree.root(size1), root2)
