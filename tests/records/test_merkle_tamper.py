"""Property tests: proofs from a changed log fail against the honest signed root, and only then.

The verifier trusts a tree head (n, root) of the honest log. A server now holds a possibly
tampered copy (a bit flipped in an entry, an entry deleted, inserted or two swapped) and
answers with proofs computed from it. Verification (RFC 9162 §2.1.3.2, §2.1.4.2) must pass
exactly when the first n entries are unchanged. Tampering with an honest proof itself (bit
flip, truncation, extension) must always fail.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hotline.records.hasher import hash_leaf
from hotline.records.proof import MerkleTree
from hotline.records.verify import verify_consistency, verify_inclusion
from hotline.wire.errors import ProofInvalid, RootMismatch

Entries = list[bytes]
entries_st = st.lists(st.binary(max_size=8), min_size=1, max_size=40)


def _flip(entries: Entries, i: int, bit: int) -> Entries:
    i %= len(entries)
    e = entries[i] or b"\x00"  # an empty entry becomes non-empty: still a change
    flipped = e if not entries[i] else bytes([e[0] ^ (1 << bit)]) + e[1:]
    return [*entries[:i], flipped, *entries[i + 1 :]]


def _delete(entries: Entries, i: int, _: int) -> Entries:
    i %= len(entries)
    return entries[:i] + entries[i + 1 :]


def _insert(entries: Entries, i: int, bit: int) -> Entries:
    i %= len(entries) + 1  # i == len(entries) is a plain append: no change to the prefix
    return [*entries[:i], bytes([bit]), *entries[i:]]


def _swap(entries: Entries, i: int, bit: int) -> Entries:
    i, j = i % len(entries), (i + bit + 1) % len(entries)
    out = list(entries)
    out[i], out[j] = out[j], out[i]
    return out


TAMPERINGS: dict[str, Callable[[Entries, int, int], Entries]] = {
    "flip": _flip, "delete": _delete, "insert": _insert, "swap": _swap,
}  # fmt: skip


def _passes(check: Callable[[], None]) -> bool:
    try:
        check()
    except ProofInvalid:
        return False
    return True


def _unchanged(honest: Entries, tampered: Entries) -> bool:
    return tampered[: len(honest)] == honest


@given(entries_st, st.sampled_from(sorted(TAMPERINGS)), st.integers(0, 99), st.integers(0, 7))
def test_inclusion_fails_exactly_when_log_changed(
    entries: Entries, how: str, where: int, bit: int
) -> None:
    n, root = len(entries), MerkleTree.from_entries(entries).root()
    tampered = TAMPERINGS[how](entries, where, bit)
    bad = MerkleTree.from_entries(tampered)
    size = min(n, bad.size)  # a shrunken log can only answer for its own size
    for index in range(size):

        def check(index: int = index) -> None:
            proof = bad.inclusion_proof(index, size)
            verify_inclusion(bad.leaf_hash(index), index, n, proof, root)

        assert _passes(check) == _unchanged(entries, tampered)


@given(entries_st, st.sampled_from(sorted(TAMPERINGS)), st.integers(0, 99), st.integers(0, 7))
def test_consistency_fails_exactly_when_log_changed(
    entries: Entries, how: str, where: int, bit: int
) -> None:
    n, root1 = len(entries), MerkleTree.from_entries(entries).root()
    tampered = TAMPERINGS[how](entries, where, bit)
    bad = MerkleTree.from_entries(tampered)

    def check() -> None:
        # The server signs its own (tampered) head honestly and proves from size n.
        proof = bad.consistency_proof(n) if bad.size >= n else []
        verify_consistency(n, bad.size, proof, root1, bad.root())

    assert _passes(check) == _unchanged(entries, tampered)


proof_tamper_st = st.sampled_from(["flip", "truncate", "extend", "drop_first", "duplicate"])


def _tamper_proof(proof: list[bytes], how: str, at: int, bit: int) -> list[bytes]:
    if how == "extend" or not proof:
        return [*proof, hash_leaf(bytes([bit]))]
    at %= len(proof)
    if how == "flip":
        node = bytearray(proof[at])
        node[at % len(node)] ^= 1 << bit
        return [*proof[:at], bytes(node), *proof[at + 1 :]]
    if how == "truncate":
        return proof[:at]
    if how == "drop_first":
        return proof[1:]
    return [*proof[: at + 1], proof[at], *proof[at + 1 :]]


@given(entries_st, st.data(), proof_tamper_st, st.integers(0, 99), st.integers(0, 7))
def test_tampered_inclusion_proof_fails(
    entries: Entries, data: st.DataObject, how: str, at: int, bit: int
) -> None:
    tree = MerkleTree.from_entries(entries)
    size = data.draw(st.integers(1, tree.size))
    index = data.draw(st.integers(0, size - 1))
    proof = _tamper_proof(tree.inclusion_proof(index, size), how, at, bit)
    with pytest.raises(ProofInvalid):
        verify_inclusion(tree.leaf_hash(index), index, size, proof, tree.root(size))


@given(entries_st, st.data(), proof_tamper_st, st.integers(0, 99), st.integers(0, 7))
def test_tampered_consistency_proof_fails(
    entries: Entries, data: st.DataObject, how: str, at: int, bit: int
) -> None:
    tree = MerkleTree.from_entries(entries)
    size2 = data.draw(st.integers(1, tree.size))
    size1 = data.draw(st.integers(1, size2))
    proof = _tamper_proof(tree.consistency_proof(size1, size2), how, at, bit)
    with pytest.raises(ProofInvalid):
        verify_consistency(size1, size2, proof, tree.root(size1), tree.root(size2))


@given(entries_st, st.data())
def test_honest_proofs_verify(entries: Entries, data: st.DataObject) -> None:
    tree = MerkleTree.from_entries(entries)
    size2 = data.draw(st.integers(1, tree.size))
    size1 = data.draw(st.integers(1, size2))
    index = data.draw(st.integers(0, size2 - 1))
    verify_inclusion(tree.leaf_hash(index), index, size2, tree.inclusion_proof(index, size2),
                     tree.root(size2))  # fmt: skip
    verify_consistency(size1, size2, tree.consistency_proof(size1, size2), tree.root(size1),
                       tree.root(size2))  # fmt: skip


def test_root_mismatch_carries_evidence() -> None:
    tree = MerkleTree.from_entries([b"a", b"b", b"c"])
    wrong = bytes(32)
    with pytest.raises(RootMismatch) as info:
        verify_inclusion(tree.leaf_hash(1), 1, 3, tree.inclusion_proof(1), wrong)
    err = info.value
    assert (err.expected, err.calculated) == (wrong, tree.root())
    assert err.extra["which"] == "root"
    assert err.to_problem()["code"] == "root_mismatch"


def test_consistency_mismatch_names_the_root() -> None:
    tree = MerkleTree.from_entries([b"a", b"b", b"c"])
    with pytest.raises(RootMismatch) as info:
        verify_consistency(2, 3, tree.consistency_proof(2), tree.root(2), bytes(32))
    assert info.value.extra["which"] == "root2"
    assert info.value.calculated == tree.root()


def test_pure_append_is_not_tampering() -> None:
    entries = [b"a", b"b", b"c"]
    grown = _insert(entries, 3, 7)
    old, new = MerkleTree.from_entries(entries), MerkleTree.from_entries(grown)
    verify_consistency(3, 4, new.consistency_proof(3), old.root(), new.root())
    verify_inclusion(new.leaf_hash(1), 1, 3, new.inclusion_proof(1, 3), old.root())
