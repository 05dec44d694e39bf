"""Olm sessions per device pair, kept in the client state (pickled under the pickle key).

Encrypting for a device uses its most recently used session; decrypting tries every session
known for the sender device and, for a pre-key message from a new session, creates one from the
sender's Curve25519 key taken from its *verified* device list. A failed decryption leaves every
stored session unchanged (the session objects are restored from pickles for each attempt).
"""

from __future__ import annotations

from hotline.client.state import ClientState, SessionState
from hotline.crypto.olm import DeviceAccount, OlmMessage, OlmSession
from hotline.wire import api
from hotline.wire.encoding import b64d, b64e
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
    pickle_key: bytes,
    *,
    replace_first: bool,
) -> None:
    entry = state.sessions.setdefault(key, SessionState(peer_curve25519=b64e(curve)))
    pickle = session.pickle(pickle_key)
    if replace_first and entry.pickles:
        entry.pickles[0] = pickle
    else:
        entry.pickles.insert(0, pickle)
        del entry.pickles[MAX_SESSIONS_PER_DEVICE:]


def start_session(
    state: ClientState,
    account: DeviceAccount,
    pickle_key: bytes,
    handle: str,
    device_id: str,
    curve25519: bytes,
    one_time_key: bytes,
) -> None:
    """Create an outbound session to a device from a claimed (and verified) one-time key."""
    session = account.create_outbound_session(curve25519, one_time_key)
    _remember(
        state, session_key(handle, device_id), curve25519, session, pickle_key, replace_first=False
    )


def encrypt_for(
    state: ClientState, pickle_key: bytes, handle: str, device_id: str, plaintext: bytes
) -> OlmMessage:
    """Encrypt with the newest session to that device. Raises KeyError if there is none."""
    entry = state.sessions[session_key(handle, device_id)]
    session = OlmSession.from_pickle(entry.pickles[0], pickle_key)
    message = session.encrypt(plaintext)
    entry.pickles[0] = session.pickle(pickle_key)
    return message


def decrypt_from(
    state: ClientState,
    account: DeviceAccount,
    pickle_key: bytes,
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
        if curve25519 is not None and b64d(entry.peer_curve25519) != curve25519:
            raise DecryptionFailed()
        for index, pickle in enumerate(entry.pickles):
            session = OlmSession.from_pickle(pickle, pickle_key)
            if message.is_pre_key and not session.matches(message):
                continue
            try:
                plaintext = session.decrypt(message)
            except DecryptionFailed:
                continue
            # The session that worked becomes the one we send with.
            del entry.pickles[index]
            entry.pickles.insert(0, session.pickle(pickle_key))
            return plaintext
    if not message.is_pre_key or curve25519 is None:
        raise DecryptionFailed()
    session, plaintext = account.create_inbound_session(curve25519, message)
    _remember(state, key, curve25519, session, pickle_key, replace_first=False)
    return plaintext


def encrypt_for_all(
    state: ClientState,
    pickle_key: bytes,
    targets: list[tuple[str, DeviceKeys]],
    plaintext: bytes,
) -> list[api.DeviceCiphertext]:
    """One ciphertext of ``plaintext`` per target device (each must have a session)."""
    ciphertexts = []
    for handle, device in targets:
        message = encrypt_for(state, pickle_key, handle, device.device_id, plaintext)
        ciphertexts.append(
            api.DeviceCiphertext(
                device_id=device.device_id,
                type=message.message_type,
                body=b64e(message.ciphertext),
            )
        )
    return ciphertexts
