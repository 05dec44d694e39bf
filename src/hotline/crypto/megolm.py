"""Megolm group sessions over vodozemac. Hazmat layer.

Part of the labelled *hazmat* layer (STYLE.md §2): thin typed wrappers over ``vodozemac``'s
``GroupSession`` (outbound: one per group and sending device) and ``InboundGroupSession`` (one
per session received), which implement Megolm (Matrix Megolm spec v1: an AES-CBC + HMAC-SHA-256
ratchet whose messages are signed by the session's Ed25519 key). Application code uses
``client.groups``.

Megolm accepts replays: decrypting the same message twice succeeds both times. Callers must
deduplicate on ``(session_id, message_index)`` (see ``client.group_inbox``).

Every vodozemac exception is translated into a Hotline error that carries no detail
(STYLE.md §7); keys never appear in ``repr`` or in error messages.
"""

from __future__ import annotations

from dataclasses import dataclass

import vodozemac

from hotline.crypto.pickles import open_pickle, write_pickle
from hotline.wire.errors import DecryptionFailed, MalformedInput

__all__ = ["DecryptedGroupMessage", "InboundGroup", "OutboundGroup"]


@dataclass(frozen=True)
class DecryptedGroupMessage:
    plaintext: bytes
    #: the message's index in its session: dedupe on (session id, index)
    message_index: int


class OutboundGroup:
    """This device's sending side of one Megolm session."""

    __slots__ = ("_session",)

    def __init__(self, session: vodozemac.GroupSession) -> None:
        self._session = session

    @classmethod
    def generate(cls) -> OutboundGroup:
        """A fresh session with a random ratchet and signing key."""
        return cls(vodozemac.GroupSession())

    @classmethod
    def from_pickle(cls, pickle: str, key: bytes) -> OutboundGroup:
        """Raises: CorruptState (wrong key or damaged pickle)."""
        return cls(open_pickle(vodozemac.GroupSession.from_pickle, pickle, key, "Megolm session"))

    def pickle(self, key: bytes) -> str:
        return write_pickle(self._session, key)

    @property
    def session_id(self) -> str:
        return self._session.session_id

    @property
    def message_index(self) -> int:
        """Index the next message will get (= messages sent so far)."""
        return self._session.message_index

    def session_key(self) -> str:
        """The session key at the current index (secret: share it over Olm only)."""
        return self._session.session_key.to_base64()

    def encrypt(self, plaintext: bytes) -> bytes:
        """Encrypt one message; returns the Megolm message bytes."""
        return self._session.encrypt(plaintext).to_bytes()

    def __repr__(self) -> str:
        return f"OutboundGroup(session_id={self.session_id!r})"


class InboundGroup:
    """The receiving side of one Megolm session, made from a session key shared over Olm."""

    __slots__ = ("_session",)

    def __init__(self, session: vodozemac.InboundGroupSession) -> None:
        self._session = session

    @classmethod
    def from_session_key(cls, session_key: str) -> InboundGroup:
        """Raises: MalformedInput (not a Megolm session key)."""
        try:
            return cls(vodozemac.InboundGroupSession(vodozemac.SessionKey(session_key)))
        except ValueError as exc:
            raise MalformedInput("not a Megolm session key") from exc

    @classmethod
    def from_pickle(cls, pickle: str, key: bytes) -> InboundGroup:
        """Raises: CorruptState (wrong key or damaged pickle)."""
        restore = vodozemac.InboundGroupSession.from_pickle
        return cls(open_pickle(restore, pickle, key, "Megolm inbound session"))

    def pickle(self, key: bytes) -> str:
        return write_pickle(self._session, key)

    @property
    def session_id(self) -> str:
        return self._session.session_id

    @property
    def first_known_index(self) -> int:
        return self._session.first_known_index

    def decrypt(self, message: bytes) -> DecryptedGroupMessage:
        """Decrypt one Megolm message (its signature and MAC are checked by vodozemac).

        Raises:
            DecryptionFailed: undecodable, forged, tampered, for another session, or before
                the first index this session knows.
        """
        try:
            parsed = vodozemac.MegolmMessage.from_bytes(message)
            result = self._session.decrypt(parsed)
        except ValueError as exc:
            raise DecryptionFailed() from exc
        return DecryptedGroupMessage(bytes(result.plaintext), int(result.message_index))

    def __repr__(self) -> str:
        return f"InboundGroup(session_id={self.session_id!r})"
