"""Olm sessions per device pair, kept in the client state (pickled under the pickle key).

Encrypting for a device uses its most recently used session; decrypting tries every session
known for the sender device and, for a pre-key message from a new session, creates one from the
sender's Curve25519 key taken from its *verified* device list.

Sessions stay open between operations in the client's :class:`SessionCache`, keyed by the
exact pickle the state holds; a pickle the cache does not hold is restored. In a transaction a
used session is pickled into the state once, when the transaction ends.

A failed decryption leaves every stored session unchanged. vodozemac may change a session a
decrypt fails on (a message naming an unknown ratchet key makes a pending sending ratchet
active, with a fresh key, before its MAC fails), so the object it was tried on is not put back
and is restored from its pickle when next used; a session with advances not yet pickled is
first pickled into the state, unless the message is of the chain it decrypted last or its
sending ratchet is active — then vodozemac commits nothing unless the MAC verifies.
"""

from __future__ import annotations

from hotline.client.session_cache import SessionCache
from hotline.client.state import ClientState, SessionState
from hotline.crypto.olm import DeviceAccount, OlmMessage, OlmSession
from hotline.wire import api
from hotline.wire.encoding import b64e
from hotline.wire.errors import DecryptionFailed
from hotline.wire.lists import DeviceKeys

MAX_SESSIONS_PER_DEVICE = 5


def session_key(handle: str, device_id: str) -> str:
    return f"{handle}/{device_id}"


def has_session(state: ClientState, handle: str, device_id: str) -> bool:
    entry = state.sessions.get(session_key(handle, device_id))
    return bool(entry and entry.pickles)


def _remember(
    state: ClientState,
    key: str,
    curve: bytes,
    session: OlmSession,
    sessions: SessionCache,
    *,
    replace_first: bool,
) -> None:
    entry = state.sessions.setdefault(key, SessionState(peer_curve25519=b64e(curve)))
    pickle = sessions.keep(session)
    if replace_first and entry.pickles:
        entry.pickles[0] = pickle
    else:
        entry.pickles.insert(0, pickle)
        del entry.pickles[MAX_SESSIONS_PER_DEVICE:]


def start_session(
    state: ClientState,
    account: DeviceAccount,
    sessions: SessionCache,
    handle: str,
    device_id: str,
    curve25519: bytes,
    one_time_key: bytes,
) -> None:
    """Create an outbound session to a device from a claimed (and verified) one-time key."""
    session = account.create_outbound_session(curve25519, one_time_key)
    _remember(
        state, session_key(handle, device_id), curve25519, session, sessions, replace_first=False
    )


def encrypt_for(
    state: ClientState, sessions: SessionCache, handle: str, device_id: str, plaintext: bytes
) -> OlmMessage:
    """Encrypt with the newest session to that device. Raises KeyError if there is none."""
    entry = state.sessions[session_key(handle, device_id)]
    session = sessions.take(entry.pickles[0])
    message = session.encrypt(plaintext)
    entry.pickles[0] = sessions.encrypted(entry.pickles[0], session)
    return message


def decrypt_from(
    state: ClientState,
    account: DeviceAccount,
    sessions: SessionCache,
    handle: str,
    device_id: str,
    curve25519: bytes | None,
    message: OlmMessage,
) -> bytes:
    """Decrypt a message from ``handle``'s device ``device_id``.

    ``curve25519`` is that device's key from its verified device list; it is needed only when
    the message opens a new session.

    Raises:
        DecryptionFailed: no session decrypts it and no new one can be made from it.
    """
    key = session_key(handle, device_id)
    entry = state.sessions.get(key)
    if entry is not None:
        # (compared in the form stored: encoding 32 bytes is cheaper than decoding them)
        if curve25519 is not None and entry.peer_curve25519 != b64e(curve25519):
            raise DecryptionFailed()
        ratchet_key = message.ratchet_key
        for index, stored in enumerate(entry.pickles):
            session = sessions.take(stored)
            if message.is_pre_key and not session.matches(message):
                sessions.put_back(stored, session)  # matching reads, never changes, a session
                continue
            pickle = stored if sessions.may_try(stored, ratchet_key) else sessions.save(stored)
            entry.pickles[index] = pickle
            try:
                plaintext = session.decrypt(message)
            except DecryptionFailed:
                continue  # not put back (unless proven unchanged): restored when next used
            # The session that worked becomes the one we send with.
            del entry.pickles[index]
            entry.pickles.insert(0, sessions.decrypted(pickle, session, ratchet_key))
            return plaintext
    if not message.is_pre_key or curve25519 is None:
        raise DecryptionFailed()
    session, plaintext = account.create_inbound_session(curve25519, message)
    _remember(state, key, curve25519, session, sessions, replace_first=False)
    return plaintext


def encrypt_for_all(
    state: ClientState,
    sessions: SessionCache,
    targets: list[tuple[str, DeviceKeys]],
    plaintext: bytes,
) -> list[api.DeviceCiphertext]:
    """One ciphertext of ``plaintext`` per target device (each must have a session)."""
    ciphertexts = []
    for handle, device in targets:
        message = encrypt_for(state, sessions, handle, device.device_id, plaintext)
        ciphertexts.append(
            api.DeviceCiphertext(
                device_id=device.device_id,
                type=message.message_type,
                body=b64e(message.ciphertext),
            )
        )
    return ciphertexts
