"""Olm sessions kept open between operations, keyed by the exact pickle they stand for.

Restoring a session from its pickle costs ~11 µs and pickling it ~6 µs, against ~16 µs for a
whole encrypt+decrypt round trip in vodozemac: restoring and re-pickling around every
operation made the client's Olm four times slower than vodozemac (issue 6 target: 1.5x).

The client state (``ClientState.sessions``) stays the truth. ``SessionCache`` only keeps
objects whose state equals a pickle, under that exact pickle string: an object is taken out
before it is used and put back, under its new pickle, only after the operation succeeded. A
pickle that is not in the cache — another process changed the keystore, or a transaction
failed after an operation and the keystore still holds the older pickle — is restored from
the pickle, so an object that ran ahead of the keystore is never used.
"""

from __future__ import annotations

from collections import OrderedDict

from hotline.crypto.olm import OlmSession

#: open sessions a client keeps at most (least recently used dropped first); each one is a
#: few KiB of key material in memory, and a device talks to a few hundred devices at most
MAX_OPEN_SESSIONS = 256


class SessionCache:
    """Open Olm sessions of one client, least recently used first, keyed by exact pickle.

    Invariant: a cached object's state equals the pickle it is keyed under.

    Raises:
        ValueError: on construction, a ``capacity`` below 1.
    """

    __slots__ = ("_open", "capacity", "pickle_key")

    def __init__(self, pickle_key: bytes, capacity: int = MAX_OPEN_SESSIONS) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.pickle_key = pickle_key
        self.capacity = capacity
        self._open: OrderedDict[str, OlmSession] = OrderedDict()

    def __len__(self) -> int:
        return len(self._open)

    def __contains__(self, pickle: object) -> bool:
        return pickle in self._open

    def take(self, pickle: str) -> OlmSession:
        """The session ``pickle`` stands for, taken out of the cache (or restored from it).

        Raises:
            CorruptState: the pickle is not in the cache and does not open.
        """
        session = self._open.pop(pickle, None)
        if session is None:
            session = OlmSession.from_pickle(pickle, self.pickle_key)
        return session

    def put_back(self, pickle: str, session: OlmSession) -> None:
        """Return a session taken with :meth:`take` that is still in the state ``pickle`` holds."""
        self._open[pickle] = session
        self._open.move_to_end(pickle)
        while len(self._open) > self.capacity:
            self._open.popitem(last=False)

    def keep(self, session: OlmSession) -> str:
        """Pickle a session that was used (or created) and keep it open; returns the pickle."""
        pickle = session.pickle(self.pickle_key)
        self.put_back(pickle, session)
        return pickle

    def clear(self) -> None:
        self._open.clear()
