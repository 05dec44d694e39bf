"""Device accounts and Olm sessions over vodozemac. Hazmat layer.

Part of the labelled *hazmat* layer (STYLE.md §2): thin typed wrappers over ``vodozemac``'s
``Account`` and ``Session``, which implement Olm (Matrix Olm spec v1: triple-DH session set-up
from one-time keys, then the Double Ratchet). Application code uses the conversation layer.

Key sizes (all raw bytes at this boundary):

* device Curve25519 identity key, one-time keys, fallback key: 32 bytes;
* device Ed25519 signing key: 32 bytes; device signature: 64 bytes;
* pickle key (the keystore-derived key that encrypts pickles at rest): exactly 32 bytes.

Failure atomicity: vodozemac commits receiving chains and message keys only after a message's
MAC verifies (checked by ``tests/crypto/test_olm.py::test_failed_decrypt_leaves_session_usable``),
so a forged or tampered message never corrupts a session and no copy-on-decrypt is needed here.
One exception, harmless but visible in the pickle: a message naming a ratchet key the session
does not know, tried while the session's reply is pending, makes vodozemac activate the
session's sending ratchet (a fresh key of ours, the step the next encrypt takes anyway) before
the MAC fails (``test_failed_decrypt_of_an_unknown_chain_can_change_a_pending_session``). A
caller that keeps session objects open must not assume one equals its pickle after a failed
decrypt unless the message is of the chain it decrypted last (:attr:`OlmMessage.ratchet_key`).
Every vodozemac exception is translated into a Hotline error and carries no detail (STYLE.md §7).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Protocol, cast

import vodozemac

from hotline.crypto.identity import IdentityPublicKey, domain_separated
from hotline.crypto.pickles import PICKLE_KEY_SIZE, open_pickle, write_pickle
from hotline.wire.errors import CorruptState, DecryptionFailed, MalformedInput

__all__ = [
    "CURVE25519_KEY_SIZE",
    "ED25519_KEY_SIZE",
    "MESSAGE_TYPE_NORMAL",
    "MESSAGE_TYPE_PRE_KEY",
    "PICKLE_KEY_SIZE",
    "DeviceAccount",
    "OlmMessage",
    "OlmSession",
    "verify_device_signature",
]

CURVE25519_KEY_SIZE = 32
ED25519_KEY_SIZE = 32
MESSAGE_TYPE_PRE_KEY = 0
MESSAGE_TYPE_NORMAL = 1
#: Olm spec v1 message layout: version byte, key-value fields, truncated 8-byte MAC
_MESSAGE_VERSION = 3
_MAC_SIZE = 8
_RATCHET_KEY_TAG = 0x0A  # field 1, length-delimited


class _AccountWithFallback(Protocol):
    """The part of ``vodozemac.Account`` that exists at runtime but is missing from its .pyi."""

    @property
    def fallback_key(self) -> dict[str, vodozemac.Curve25519PublicKey]: ...

    def generate_fallback_key(self) -> object: ...


def _curve_key(raw: bytes, field: str) -> vodozemac.Curve25519PublicKey:
    if len(raw) != CURVE25519_KEY_SIZE:
        raise MalformedInput(f"{field} must be a 32-byte Curve25519 key")
    try:
        return vodozemac.Curve25519PublicKey.from_bytes(raw)
    except ValueError as exc:
        raise MalformedInput(f"{field} is not a Curve25519 key") from exc


def _unbase64(text: str) -> bytes:
    # vodozemac renders keys and signatures as unpadded *standard* base64.
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:  # pragma: no cover - vodozemac's own output
        raise CorruptState("vodozemac returned invalid base64") from exc


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while pos < len(data) and shift < 64:
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos, shift = pos + 1, shift + 7
        if byte < 0x80:
            return value, pos
    raise ValueError("bad varint")


def _ratchet_key(body: bytes) -> bytes | None:
    """The sender's ratchet key in a normal Olm message (Olm spec v1, "Olm message format"),
    or None unless the message holds exactly one, 32 bytes long, in fields that all parse."""
    if len(body) <= 1 + _MAC_SIZE or body[0] != _MESSAGE_VERSION:
        return None
    end = len(body) - _MAC_SIZE
    # The layout vodozemac writes: ratchet key, chain index, ciphertext up to the MAC.
    if body[1:3] == b"\x0a\x20" and end > 35 and body[35] == 0x10:
        try:
            _, pos = _varint(body, 36)
            if pos < end and body[pos] == 0x22:
                size, pos = _varint(body, pos + 1)
                if pos + size == end:
                    return body[3:35]
        except ValueError:
            pass
    return _scan_ratchet_key(body[1:end])


def _scan_ratchet_key(fields: bytes) -> bytes | None:
    """The one 32-byte field 1 among Olm's protobuf-style fields (any order), else None."""
    pos, found = 0, []
    try:
        while pos < len(fields):
            tag, pos = _varint(fields, pos)
            if tag & 7 == 0:
                _, pos = _varint(fields, pos)
            elif tag & 7 == 2:
                size, pos = _varint(fields, pos)
                if tag == _RATCHET_KEY_TAG:
                    found.append(fields[pos : pos + size])
                pos += size
            else:
                return None
    except ValueError:
        return None
    if pos != len(fields) or len(found) != 1 or len(found[0]) != CURVE25519_KEY_SIZE:
        return None
    return found[0]


def verify_device_signature(
    ed25519_raw: bytes, domain: bytes, payload: bytes, signature: bytes
) -> None:
    """Verify a device-key signature made by :meth:`DeviceAccount.sign`, without vodozemac.

    vodozemac signs with standard Ed25519 (RFC 8032), so ``cryptography`` verifies it.

    Raises:
        MalformedInput: ``ed25519_raw`` is not a 32-byte Ed25519 key.
        BadSignature: the signature does not verify over ``domain || 0x00 || payload``.
    """
    IdentityPublicKey.from_bytes(ed25519_raw).verify(domain, payload, signature)


@dataclass(frozen=True, slots=True)
class OlmMessage:
    """One Olm message as carried on the wire: its type and the opaque ciphertext.

    ``message_type`` is 0 for a pre-key message (the first messages of a session, which carry
    the sender's keys) and 1 for a normal message.

    Raises:
        MalformedInput: on construction, a type other than 0 or 1.
    """

    message_type: int
    ciphertext: bytes

    def __post_init__(self) -> None:
        if self.message_type not in (MESSAGE_TYPE_PRE_KEY, MESSAGE_TYPE_NORMAL):
            raise MalformedInput("Olm message type must be 0 or 1")

    @property
    def is_pre_key(self) -> bool:
        """True for a pre-key message (type 0)."""
        return self.message_type == MESSAGE_TYPE_PRE_KEY

    @property
    def ratchet_key(self) -> bytes | None:
        """The sender's 32-byte ratchet key of a normal message: the receiving chain vodozemac
        decrypts it with. None for a pre-key message or one that does not parse plainly."""
        return None if self.is_pre_key else _ratchet_key(self.ciphertext)

    @classmethod
    def _from_vodozemac(cls, message: vodozemac.AnyOlmMessage) -> OlmMessage:
        message_type, ciphertext = message.to_parts()
        return cls(message_type, ciphertext)

    def _to_vodozemac(self) -> vodozemac.AnyOlmMessage:
        """Parse into vodozemac's message type.

        Raises:
            DecryptionFailed: the ciphertext does not parse (same error as a bad MAC).
        """
        try:
            return vodozemac.AnyOlmMessage.from_parts(self.message_type, self.ciphertext)
        except ValueError as exc:
            raise DecryptionFailed() from exc

    def _to_pre_key(self) -> vodozemac.PreKeyMessage:
        pre_key = self._to_vodozemac().to_pre_key() if self.is_pre_key else None
        if pre_key is None:
            raise DecryptionFailed()
        return pre_key


class OlmSession:
    """One Olm session with one peer device (Olm spec v1, Double Ratchet)."""

    __slots__ = ("_session",)

    def __init__(self, session: vodozemac.Session) -> None:
        self._session = session

    @classmethod
    def from_pickle(cls, pickle: str, key: bytes) -> OlmSession:
        """Restore a session pickled with :meth:`pickle` under the same 32-byte ``key``.

        Raises:
            CorruptState: wrong key, or a damaged pickle.
        """
        return cls(open_pickle(vodozemac.Session.from_pickle, pickle, key, "Olm session"))

    def pickle(self, key: bytes) -> str:
        """Serialise and encrypt the session state under the 32-byte ``key``."""
        return write_pickle(self._session, key)

    @property
    def session_id(self) -> str:
        """Stable session id (unpadded base64), the same on both ends."""
        return self._session.session_id

    def encrypt(self, plaintext: bytes) -> OlmMessage:
        """Encrypt one message; pre-key type until the peer has replied."""
        return OlmMessage._from_vodozemac(self._session.encrypt(plaintext))

    def decrypt(self, message: OlmMessage) -> bytes:
        """Decrypt one message. State is only advanced when authentication succeeds.

        Raises:
            DecryptionFailed: tampered, forged, replayed or undecodable message.
        """
        parsed = message._to_vodozemac()
        try:
            return self._session.decrypt(parsed)
        except ValueError as exc:
            raise DecryptionFailed() from exc

    def matches(self, message: OlmMessage) -> bool:
        """True if ``message`` is a pre-key message that belongs to this session."""
        if not message.is_pre_key:
            return False
        try:
            return self._session.session_matches(message._to_pre_key())
        except (DecryptionFailed, ValueError):
            return False


class DeviceAccount:
    """A device's Olm account: identity keys, one-time keys and fallback key (Olm spec v1)."""

    __slots__ = ("_account", "_changed")

    def __init__(self, account: vodozemac.Account) -> None:
        self._account = account
        self._changed = False

    @property
    def changed(self) -> bool:
        """Whether keys were generated, published or used since the last :meth:`pickle`
        (signing and starting outbound sessions leave the account as it was)."""
        return self._changed

    @classmethod
    def generate(cls) -> DeviceAccount:
        """Create a fresh account with new random identity keys."""
        return cls(vodozemac.Account())

    @classmethod
    def from_pickle(cls, pickle: str, key: bytes) -> DeviceAccount:
        """Restore an account pickled with :meth:`pickle` under the same 32-byte ``key``.

        Raises:
            CorruptState: wrong key, or a damaged pickle.
        """
        return cls(open_pickle(vodozemac.Account.from_pickle, pickle, key, "Olm account"))

    def pickle(self, key: bytes) -> str:
        """Serialise and encrypt the account under the 32-byte keystore-derived ``key``."""
        pickled = write_pickle(self._account, key)
        self._changed = False
        return pickled

    @property
    def curve25519(self) -> bytes:
        """The device's 32-byte Curve25519 identity key."""
        return self._account.curve25519_key.to_bytes()

    @property
    def ed25519(self) -> bytes:
        """The device's 32-byte Ed25519 signing key."""
        return _unbase64(self._account.ed25519_key.to_base64())

    @property
    def max_one_time_keys(self) -> int:
        """How many unpublished one-time keys the account keeps at most."""
        return self._account.max_number_of_one_time_keys

    def sign(self, domain: bytes, payload: bytes) -> bytes:
        """Sign ``domain || 0x00 || payload`` with the device key; 64-byte Ed25519 signature."""
        signature = self._account.sign(domain_separated(domain, payload))
        return _unbase64(signature.to_base64())

    def generate_one_time_keys(self, count: int) -> list[tuple[str, bytes]]:
        """Create ``count`` one-time keys; returns the new ``(key_id, 32-byte key)`` pairs.

        Raises:
            ValueError: ``count`` is not between 1 and :attr:`max_one_time_keys`.
        """
        if not 1 <= count <= self.max_one_time_keys:
            raise ValueError(f"count must be between 1 and {self.max_one_time_keys}")
        before = set(self._account.one_time_keys)
        self._changed = True
        self._account.generate_one_time_keys(count)
        fresh = self._account.one_time_keys
        return sorted((kid, key.to_bytes()) for kid, key in fresh.items() if kid not in before)

    def generate_fallback_key(self) -> tuple[str, bytes]:
        """Create a new fallback key (replacing any unpublished one); returns ``(id, key)``."""
        account = cast(_AccountWithFallback, self._account)
        self._changed = True
        account.generate_fallback_key()
        ((key_id, key),) = account.fallback_key.items()
        return key_id, key.to_bytes()

    def mark_keys_as_published(self) -> None:
        """Record that the current one-time and fallback keys are on the server."""
        self._changed = True
        self._account.mark_keys_as_published()

    def create_outbound_session(
        self, their_curve25519: bytes, their_one_time_key: bytes
    ) -> OlmSession:
        """Start a session to a device from its identity key and a claimed one-time key.

        Raises:
            MalformedInput: a key is not 32 bytes or not a valid Curve25519 key.
        """
        identity = _curve_key(their_curve25519, "identity key")
        one_time = _curve_key(their_one_time_key, "one-time key")
        try:
            return OlmSession(self._account.create_outbound_session(identity, one_time))
        except ValueError as exc:
            raise MalformedInput("cannot start a session with these keys") from exc

    def create_inbound_session(
        self, their_curve25519: bytes, message: OlmMessage
    ) -> tuple[OlmSession, bytes]:
        """Accept a session from a pre-key message; returns the session and the plaintext.

        The one-time key the message used is removed from the account.

        Raises:
            MalformedInput: ``their_curve25519`` is not a Curve25519 key.
            DecryptionFailed: not a pre-key message, unknown or used one-time key, or a message
                that does not authenticate.
        """
        sender = _curve_key(their_curve25519, "sender key")
        pre_key = message._to_pre_key()
        self._changed = True  # the one-time key is used up
        try:
            session, plaintext = self._account.create_inbound_session(sender, pre_key)
        except ValueError as exc:
            raise DecryptionFailed() from exc
        return OlmSession(session), plaintext

    def __repr__(self) -> str:
        return f"DeviceAccount(curve25519={self.curve25519.hex()[:16]}…)"
