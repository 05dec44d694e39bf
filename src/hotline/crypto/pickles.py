"""vodozemac pickles: Olm and Megolm state encrypted at rest with the keystore's pickle key.
Hazmat layer.

Part of the labelled *hazmat* layer (STYLE.md §2), used by :mod:`.olm` and :mod:`.megolm`: one
place that checks the pickle key and turns vodozemac's refusal to open a pickle into
:class:`~hotline.wire.errors.CorruptState`, without detail (STYLE.md §7).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar

from hotline.wire.errors import CorruptState

__all__ = ["PICKLE_KEY_SIZE", "open_pickle", "write_pickle"]

#: the pickle key (derived from the keystore's key) is exactly this many bytes
PICKLE_KEY_SIZE = 32

T = TypeVar("T")


class _Picklable(Protocol):
    def pickle(self, key: bytes) -> str: ...


def _check_key(key: bytes) -> None:
    if len(key) != PICKLE_KEY_SIZE:
        raise ValueError("pickle key must be exactly 32 bytes")


def open_pickle(restore: Callable[[str, bytes], T], pickle: str, key: bytes, what: str) -> T:
    """``restore(pickle, key)`` (a vodozemac ``from_pickle``).

    Raises:
        CorruptState: wrong key, or a damaged pickle ("<what> pickle does not open").
        ValueError: ``key`` is not 32 bytes (a programming error, not a state problem).
    """
    _check_key(key)
    try:
        return restore(pickle, key)
    except ValueError as exc:
        raise CorruptState(f"{what} pickle does not open") from exc


def write_pickle(state: _Picklable, key: bytes) -> str:
    """``state.pickle(key)``. Raises: ValueError (``key`` is not 32 bytes)."""
    _check_key(key)
    return state.pickle(key)
