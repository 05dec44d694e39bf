"""Shared test helpers: a list-backed leaf source and the RFC 9162 reference definitions."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

from hotline.records.hasher import EMPTY_ROOT, hash_children, hash_leaf


class ListSource:
    """A plain LeafHashSource over a list, to exercise the streaming generators."""

    def __init__(self, leaf_hashes: Sequence[bytes]) -> None:
        self._leaves = list(leaf_hashes)

    @property
    def size(self) -> int:
        return len(self._leaves)

    def leaf_hash(self, index: int) -> bytes:
        return self._leaves[index]

    def leaf_hashes(self, start: int, end: int) -> Sequence[bytes]:
        return self._leaves[start:end]


def _k(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


# RFC 9162 §2.1.1 MTH, §2.1.3.1 PATH, §2.1.4.1 PROOF/SUBPROOF — literally, recursively.
@cache
def mth(d: tuple[bytes, ...]) -> bytes:
    if not d:
        return EMPTY_ROOT
    if len(d) == 1:
        return hash_leaf(d[0])
    return hash_children(mth(d[: _k(len(d))]), mth(d[_k(len(d)) :]))


def path(m: int, d: tuple[bytes, ...]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = _k(len(d))
    return [*path(m, d[:k]), mth(d[k:])] if m < k else [*path(m - k, d[k:]), mth(d[:k])]


def subproof(m: int, d: tuple[bytes, ...], b: bool) -> list[bytes]:
    if m == len(d):
        return [] if b else [mth(d)]
    k = _k(len(d))
    if m <= k:
        return [*subproof(m, d[:k], b), mth(d[k:])]
    return [*subproof(m - k, d[k:], False), mth(d[:k])]


def proof(m: int, d: tuple[bytes, ...]) -> list[bytes]:
    return subproof(m, d, True)
