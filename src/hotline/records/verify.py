"""Verification of records-log Merkle proofs, RFC 9162 §2.1.3.2 and §2.1.4.2.

The loops are the RFC's algorithms step by step; before them the expected proof length is
worked out from the sizes (as transparency-dev/merkle ``proof/verify.go`` does), so a proof of
the wrong shape is reported as such rather than as an unexplained root mismatch.

Every failure raises a :class:`~hotline.wire.errors.ProofInvalid`:
:class:`~hotline.wire.errors.InclusionProofInvalid` /
:class:`~hotline.wire.errors.ConsistencyProofInvalid` for a malformed proof and
:class:`~hotline.wire.errors.RootMismatch` (with ``expected`` and ``calculated`` roots as
evidence) for a well-formed proof that does not lead to the trusted root.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from hotline.records.hasher import HASH_SIZE, hash_children
from hotline.wire.errors import ConsistencyProofInvalid, InclusionProofInvalid, RootMismatch

#: Sizes are unsigned 64-bit integers on the wire (RFC 9162 §4.1 ``uint64 tree_size``).
MAX_TREE_SIZE = 2**64 - 1


def _lsb(x: int) -> int:
    return x & 1


def _proof_shape(index: int, size: int) -> tuple[int, int]:
    """Split the proof for ``index`` in a tree of ``size`` into (inner, border) lengths.

    ``inner`` hashes sit below the level where the paths to ``index`` and ``size - 1`` meet;
    the ``border`` hashes above it are left siblings on the tree's right edge.
    """
    inner = (index ^ (size - 1)).bit_length()
    border = (index >> inner).bit_count()
    return inner, border


def _check_hashes(
    proof: Sequence[bytes],
    error: type[InclusionProofInvalid | ConsistencyProofInvalid],
    **evidence: int,
) -> None:
    for position, node in enumerate(proof):
        if len(node) != HASH_SIZE:
            raise error(
                f"proof[{position}] is {len(node)} bytes, not {HASH_SIZE}",
                position=position,
                **evidence,
            )


def _check_match(which: str, expected: bytes, calculated: bytes) -> None:
    # Constant-time compare: roots are public, but the habit costs nothing.
    if not hmac.compare_digest(expected, calculated):
        raise RootMismatch(
            f"calculated {which} does not match the expected one",
            which=which,
            expected=expected.hex(),
            calculated=calculated.hex(),
        )


# --- inclusion, RFC 9162 §2.1.3.2 --------------------------------------------------------------
def _check_inclusion_shape(leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes]) -> None:
    if not 0 <= index < size <= MAX_TREE_SIZE:
        raise InclusionProofInvalid(
            f"leaf index {index} is not below tree size {size}", index=index, size=size
        )
    if len(leaf_hash) != HASH_SIZE:
        raise InclusionProofInvalid(
            f"leaf hash is {len(leaf_hash)} bytes, not {HASH_SIZE}", index=index, size=size
        )
    want = sum(_proof_shape(index, size))
    if len(proof) != want:
        raise InclusionProofInvalid(
            f"proof has {len(proof)} hashes, want {want}",
            index=index,
            size=size,
            proof_len=len(proof),
            want_len=want,
        )
    _check_hashes(proof, InclusionProofInvalid, index=index, size=size)


def root_from_inclusion_proof(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes]
) -> bytes:
    """The root that ``proof`` leads to from leaf ``index`` of a tree of ``size`` (§2.1.3.2).

    Raises:
        InclusionProofInvalid: ``index >= size``, a hash that is not 32 bytes, or a proof of
            the wrong length for ``index`` and ``size``.
    """
    _check_inclusion_shape(leaf_hash, index, size, proof)
    fn, sn, r = index, size - 1, leaf_hash
    for p in proof:
        if sn == 0:  # Unreachable after the length check; kept as the RFC's own safeguard.
            raise InclusionProofInvalid("proof too long", index=index, size=size)
        if _lsb(fn) or fn == sn:
            r = hash_children(p, r)
            while not _lsb(fn) and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = hash_children(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise InclusionProofInvalid("proof too short", index=index, size=size)
    return r


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf_hash`` is leaf ``index`` of the tree of ``size`` with ``root``.

    Raises:
        InclusionProofInvalid: the proof is malformed (see :func:`root_from_inclusion_proof`).
        RootMismatch: the proof leads to another root (``which="root"``).
    """
    _check_match("root", root, root_from_inclusion_proof(leaf_hash, index, size, proof))


# --- consistency, RFC 9162 §2.1.4.2 ------------------------------------------------------------
def _check_consistency_shape(size1: int, size2: int, proof: Sequence[bytes], root1: bytes) -> None:
    evidence = {"size1": size1, "size2": size2}
    if not 0 < size1 < size2 <= MAX_TREE_SIZE:
        raise ConsistencyProofInvalid(
            f"need 0 < size1 < size2, got {size1} and {size2}", **evidence
        )
    want = _consistency_proof_length(size1, size2)
    if len(proof) != want:
        raise ConsistencyProofInvalid(
            f"proof has {len(proof)} hashes, want {want}",
            proof_len=len(proof),
            want_len=want,
            **evidence,
        )
    _check_hashes(proof, ConsistencyProofInvalid, **evidence)
    if len(root1) != HASH_SIZE:  # root1 may seed the chain (step 2), so its size matters.
        raise ConsistencyProofInvalid(f"root1 is {len(root1)} bytes, not {HASH_SIZE}", **evidence)


def _consistency_proof_length(size1: int, size2: int) -> int:
    inner, border = _proof_shape(size1 - 1, size2)
    shift = (size1 & -size1).bit_length() - 1  # trailing zero bits of size1
    seeded_by_root1 = size1 == 1 << shift
    return (0 if seeded_by_root1 else 1) + inner - shift + border


def _chain_consistency(size1: int, size2: int, path: Sequence[bytes]) -> tuple[bytes, bytes]:
    """Steps 3 to 6 of §2.1.4.2: returns (first root, second root) as the proof implies."""
    fn, sn = size1 - 1, size2 - 1
    while _lsb(fn):
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ConsistencyProofInvalid("proof too long", size1=size1, size2=size2)
        if _lsb(fn) or fn == sn:
            fr, sr = hash_children(c, fr), hash_children(c, sr)
            while not _lsb(fn) and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = hash_children(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ConsistencyProofInvalid("proof too short", size1=size1, size2=size2)
    return fr, sr


def roots_from_consistency_proof(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes
) -> tuple[bytes, bytes]:
    """The (first, second) roots that ``proof`` implies for sizes ``0 < size1 < size2``.

    Raises:
        ConsistencyProofInvalid: sizes out of order or zero, a hash that is not 32 bytes, or a
            proof of the wrong length.
    """
    _check_consistency_shape(size1, size2, proof, root1)
    path = list(proof)
    if size1 & (size1 - 1) == 0:  # Step 2: size1 is a power of two, its root is a node.
        path.insert(0, root1)
    return _chain_consistency(size1, size2, path)


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Check that the tree of ``size2`` with ``root2`` extends the one of ``size1``/``root1``.

    Equal sizes need an empty proof and equal roots. A proof from the empty tree (``size1``
    of 0) proves nothing and is refused, as in transparency-dev/merkle.

    Raises:
        ConsistencyProofInvalid: ``size1 > size2``, ``size1 == 0``, a non-empty proof for
            equal sizes, or a malformed proof (see :func:`roots_from_consistency_proof`).
        RootMismatch: the proof leads to another ``root1`` or ``root2`` (``which`` says).
    """
    if 0 < size1 == size2 <= MAX_TREE_SIZE:
        if proof:
            raise ConsistencyProofInvalid(
                "equal sizes need an empty proof",
                size1=size1,
                size2=size2,
                proof_len=len(proof),
                want_len=0,
            )
        _check_match("root2", root2, root1)
        return
    calculated1, calculated2 = roots_from_consistency_proof(size1, size2, proof, root1)
    _check_match("root1", root1, calculated1)
    _check_match("root2", root2, calculated2)
