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

Within a keystore transaction (:meth:`begin` ... :meth:`end`, as ``HotlineClient._tx`` does)
a used session is pickled once, at :meth:`write_back` before the state is saved, however many
messages it encrypted or decrypted: until then the state keeps the pickle the session was
opened from, and the cache maps that pickle to the object that ran ahead of it ("unsaved").
A failed transaction drops the unsaved objects with the rest of the cache.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from hotline.client.state import ClientState
from hotline.crypto.olm import OlmSession

#: open sessions a client keeps at most (least recently used dropped first); each one is a
#: few KiB of key material in memory, and a device talks to a few hundred devices at most
MAX_OPEN_SESSIONS = 256


@dataclass(slots=True)
class _Unsaved:
    """A session that ran ahead of its pickle in this transaction."""

    session: OlmSession
    #: its last successful operation was an encrypt: its sending ratchet is active
    sending: bool
    #: the ratchet key of the last message it decrypted (a chain it holds), if known
    last_ratchet_key: bytes | None


class SessionCache:
    """Open Olm sessions of one client, least recently used first, keyed by exact pickle.

    Invariant: a cached object's state equals the pickle it is keyed under. An unsaved object
    of the transaction in progress is not cached: it is registered under the pickle it was
    opened from, which only this transaction's state holds for it, until :meth:`write_back`.

    Raises:
        ValueError: on construction, a ``capacity`` below 1.
    """

    __slots__ = ("_open", "_unsaved", "capacity", "pickle_key")

    def __init__(self, pickle_key: bytes, capacity: int = MAX_OPEN_SESSIONS) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.pickle_key = pickle_key
        self.capacity = capacity
        self._open: OrderedDict[str, OlmSession] = OrderedDict()
        #: None outside a transaction: every used session is pickled at once
        self._unsaved: dict[str, _Unsaved] | None = None

    def __len__(self) -> int:
        return len(self._open)

    def __contains__(self, pickle: object) -> bool:
        return pickle in self._open

    # -- one transaction -----------------------------------------------------------------------
    def begin(self) -> None:
        """From now on, pickle used sessions only at :meth:`write_back`."""
        self._unsaved = {}

    def write_back(self, state: ClientState) -> None:
        """Put the new pickle of every unsaved session into ``state`` (before it is saved).

        Unsaved sessions whose pickle the state no longer holds (a contact removed, an entry
        trimmed) are dropped.
        """
        if not self._unsaved:
            return
        unsaved, self._unsaved = self._unsaved, {}
        for entry in state.sessions.values():
            for index, pickle in enumerate(entry.pickles):
                ahead = unsaved.pop(pickle, None)
                if ahead is not None:
                    entry.pickles[index] = self.keep(ahead.session)

    def end(self) -> None:
        """Back to pickling at once (after :meth:`write_back`)."""
        self._unsaved = None

    def abandon(self) -> None:
        """The transaction failed: nothing it used stays open."""
        self._unsaved = None
        self._open.clear()

    # -- one operation -------------------------------------------------------------------------
    def take(self, pickle: str) -> OlmSession:
        """The session ``pickle`` stands for: taken out of the cache, or restored from it (an
        unsaved session stays registered under the pickle until written back).

        Raises:
            CorruptState: the pickle is not in the cache and does not open.
        """
        if self._unsaved is not None and pickle in self._unsaved:
            return self._unsaved[pickle].session
        session = self._open.pop(pickle, None)
        if session is None:
            session = OlmSession.from_pickle(pickle, self.pickle_key)
        return session

    def put_back(self, pickle: str, session: OlmSession) -> None:
        """Return a session taken with :meth:`take` that is still in the state it was taken in."""
        if self._unsaved is not None and pickle in self._unsaved:
            return
        self._open[pickle] = session
        self._open.move_to_end(pickle)
        while len(self._open) > self.capacity:
            self._open.popitem(last=False)

    def keep(self, session: OlmSession) -> str:
        """Pickle a session that was used (or created) and keep it open; returns the pickle."""
        pickle = session.pickle(self.pickle_key)
        self.put_back(pickle, session)
        return pickle

    def encrypted(self, pickle: str, session: OlmSession) -> str:
        """The session taken under ``pickle`` encrypted a message; returns the pickle for the
        state: a new one, or in a transaction ``pickle`` itself until :meth:`write_back`."""
        if self._unsaved is None:
            return self.keep(session)
        before = self._unsaved.get(pickle)
        last = before.last_ratchet_key if before is not None else None
        self._unsaved[pickle] = _Unsaved(session, sending=True, last_ratchet_key=last)
        return pickle

    def decrypted(self, pickle: str, session: OlmSession, ratchet_key: bytes | None) -> str:
        """The session taken under ``pickle`` decrypted a message with that ratchet key (None:
        not known); returns the pickle for the state, as :meth:`encrypted` does."""
        if self._unsaved is None:
            return self.keep(session)
        before = self._unsaved.get(pickle)
        # A message of the chain it decrypted last changes nothing but that chain; any other
        # may have opened a new chain, which leaves the sending ratchet pending.
        sending = False
        if before is not None and ratchet_key is not None:
            sending = before.sending and ratchet_key == before.last_ratchet_key
        self._unsaved[pickle] = _Unsaved(session, sending, ratchet_key)
        return pickle

    def may_try(self, pickle: str, ratchet_key: bytes | None) -> bool:
        """Whether a decrypt may be tried on the session under ``pickle`` as it is.

        A failed decrypt can change a session (vodozemac makes a pending sending ratchet
        active before the MAC of a message naming an unknown ratchet key fails, see
        :mod:`hotline.crypto.olm`): a saved session is then dropped and restored from its
        pickle, but an unsaved one holds advances no pickle has. It may be tried only if
        nothing can change: its sending ratchet is active, or the message is of the chain it
        decrypted last. Otherwise :meth:`save` it first.
        """
        if self._unsaved is None or pickle not in self._unsaved:
            return True
        ahead = self._unsaved[pickle]
        return ahead.sending or (ratchet_key is not None and ratchet_key == ahead.last_ratchet_key)

    def save(self, pickle: str) -> str:
        """Pickle the unsaved session under ``pickle`` now; returns its new pickle, for the
        state. The session counts as taken out (:meth:`put_back` or drop it)."""
        assert self._unsaved is not None
        return self._unsaved.pop(pickle).session.pickle(self.pickle_key)

    def clear(self) -> None:
        self._open.clear()
