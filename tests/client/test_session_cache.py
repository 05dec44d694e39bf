"""Olm sessions kept open by ``SessionCache`` and used by ``client.channel`` (real vodozemac,
no I/O): the cache must never hand out an object whose state differs from the pickle the
client state holds."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from hotline.client import channel
from hotline.client.session_cache import MAX_OPEN_SESSIONS, SessionCache
from hotline.client.state import ClientState
from hotline.crypto.olm import DeviceAccount, OlmMessage, OlmSession
from hotline.wire.errors import DecryptionFailed

PICKLE_KEY = os.urandom(32)


@dataclass
class Side:
    handle: str
    device_id: str
    account: DeviceAccount
    state: ClientState
    sessions: SessionCache


def side(name: str) -> Side:
    state = ClientState(
        v=1,
        handle=f"{name}@test",
        display_name=name,
        server_url="https://test",
        device_id=f"{name}-dev",
        identity_key="",
        account_pickle="",
    )
    return Side(
        state.handle, state.device_id, DeviceAccount.generate(), state, SessionCache(PICKLE_KEY)
    )


def send(sender: Side, to: Side, text: bytes) -> OlmMessage:
    return channel.encrypt_for(sender.state, sender.sessions, to.handle, to.device_id, text)


def receive(receiver: Side, sender: Side, message: OlmMessage) -> bytes:
    return channel.decrypt_from(
        receiver.state,
        receiver.account,
        receiver.sessions,
        sender.handle,
        sender.device_id,
        sender.account.curve25519,
        message,
    )


def channel_pair() -> tuple[Side, Side]:
    """Alice opens a session to Bob from one of his one-time keys; Bob has replied once."""
    alice, bob = side("alice"), side("bob")
    ((_, one_time_key),) = bob.account.generate_one_time_keys(1)
    bob.account.mark_keys_as_published()
    channel.start_session(
        alice.state,
        alice.account,
        alice.sessions,
        bob.handle,
        bob.device_id,
        bob.account.curve25519,
        one_time_key,
    )
    assert receive(bob, alice, send(alice, bob, b"hello")) == b"hello"
    assert receive(alice, bob, send(bob, alice, b"hello back")) == b"hello back"
    return alice, bob


def stored(s: Side, peer: Side) -> list[str]:
    return list(s.state.sessions[channel.session_key(peer.handle, peer.device_id)].pickles)


def cached(cache: SessionCache) -> Iterator[tuple[str, OlmSession]]:
    return iter(cache._open.items())


def assert_truthful(cache: SessionCache) -> None:
    """The invariant: every cached object's state equals the pickle it is keyed under."""
    for pickle, session in cached(cache):
        assert session.pickle(cache.pickle_key) == pickle


def test_sessions_stay_open_and_the_peer_decrypts(olm_restores: list[str]) -> None:
    alice, bob = channel_pair()
    for i in range(5):
        text = b"message %d" % i
        assert receive(bob, alice, send(alice, bob, text)) == text
        assert receive(alice, bob, send(bob, alice, b"re: " + text)) == b"re: " + text
    assert olm_restores == []  # every operation found its session open
    assert stored(alice, bob)[0] in alice.sessions and stored(bob, alice)[0] in bob.sessions
    assert_truthful(alice.sessions)
    assert_truthful(bob.sessions)


def test_a_pickle_not_in_the_cache_is_restored(olm_restores: list[str]) -> None:
    alice, bob = channel_pair()
    alice.sessions.clear()
    assert receive(bob, alice, send(alice, bob, b"after a restart")) == b"after a restart"
    assert len(olm_restores) == 1


def test_stale_object_is_not_used_after_the_state_changed_elsewhere() -> None:
    alice, bob = channel_pair()
    # Another process opens the same state, sends, and saves: the state holds a newer pickle.
    other = SessionCache(PICKLE_KEY)
    elsewhere = Side(alice.handle, alice.device_id, alice.account, alice.state, other)
    assert receive(bob, alice, send(elsewhere, bob, b"from elsewhere")) == b"from elsewhere"
    # This process's open object is still keyed under the older pickle: it is not used.
    assert receive(bob, alice, send(alice, bob, b"from here")) == b"from here"


@pytest.mark.parametrize("corruption", ["flipped byte", "other session", "garbage"])
def test_failed_decrypt_leaves_stored_sessions_unchanged(corruption: str) -> None:
    alice, bob = channel_pair()
    genuine = send(alice, bob, b"genuine")  # a new ratchet chain: Bob's reply is pending now
    assert receive(bob, alice, genuine) == b"genuine"
    follow_up = send(alice, bob, b"follow-up")
    if corruption == "flipped byte":
        raw = bytearray(follow_up.ciphertext)
        raw[len(raw) // 2] ^= 1
        forged = OlmMessage(follow_up.message_type, bytes(raw))
    elif corruption == "other session":
        # A genuine message of another session names a ratchet key Bob does not know: vodozemac
        # then makes Bob's pending sending ratchet active (a fresh key) before the MAC fails.
        stranger, victim = channel_pair()
        forged = send(stranger, victim, b"not for bob")
    else:
        forged = OlmMessage(1, os.urandom(len(follow_up.ciphertext)))
    before = stored(bob, alice)
    with pytest.raises(DecryptionFailed):
        receive(bob, alice, forged)
    assert stored(bob, alice) == before
    assert before[0] not in bob.sessions  # the object it was tried on is not used again
    assert_truthful(bob.sessions)
    assert receive(bob, alice, follow_up) == b"follow-up"
    assert receive(alice, bob, send(bob, alice, b"reply")) == b"reply"


def test_the_cache_is_bounded_least_recently_used_first() -> None:
    cache = SessionCache(PICKLE_KEY, capacity=3)
    sessions = [channel_pair()[0] for _ in range(5)]
    pickles = []
    for s in sessions:
        (entry,) = s.state.sessions.values()
        session = s.sessions.take(entry.pickles[0])
        pickles.append(cache.keep(session))
    assert len(cache) == 3
    cache.put_back(pickles[2], cache.take(pickles[2]))  # used again: now the most recent
    assert cache.keep(OlmSession.from_pickle(pickles[0], PICKLE_KEY)) == pickles[0]
    assert len(cache) == 3
    assert pickles[2] in cache and pickles[4] in cache and pickles[0] in cache
    assert pickles[3] not in cache and pickles[1] not in cache
    assert_truthful(cache)


def test_default_bound() -> None:
    assert SessionCache(PICKLE_KEY).capacity == MAX_OPEN_SESSIONS
    with pytest.raises(ValueError):
        SessionCache(PICKLE_KEY, capacity=0)


def test_a_transaction_pickles_each_session_once(olm_pickles: list[str]) -> None:
    alice, bob = channel_pair()
    olm_pickles.clear()
    alice.sessions.begin()
    messages = [send(alice, bob, b"batch %d" % i) for i in range(10)]
    alice.sessions.write_back(alice.state)
    alice.sessions.end()
    assert len(olm_pickles) == 1  # ten encrypts, one pickle
    bob.sessions.begin()
    before = stored(bob, alice)
    assert [receive(bob, alice, m) for m in messages] == [b"batch %d" % i for i in range(10)]
    assert stored(bob, alice) == before  # the state keeps its pickle until the write-back
    bob.sessions.write_back(bob.state)
    bob.sessions.end()
    assert len(olm_pickles) == 2  # ten decrypts, one pickle
    assert stored(bob, alice) != before
    assert_truthful(alice.sessions)
    assert_truthful(bob.sessions)
    assert receive(alice, bob, send(bob, alice, b"reply")) == b"reply"


def test_an_abandoned_transaction_leaves_the_saved_sessions_in_use() -> None:
    alice, bob = channel_pair()
    messages = [send(alice, bob, b"again %d" % i) for i in range(3)]
    bob.sessions.begin()
    assert [receive(bob, alice, m) for m in messages] == [b"again %d" % i for i in range(3)]
    bob.sessions.abandon()  # the transaction failed: its state is not saved
    bob.sessions.end()
    assert len(bob.sessions) == 0
    # The state still holds the pickle from before: the same messages decrypt again.
    assert [receive(bob, alice, m) for m in messages] == [b"again %d" % i for i in range(3)]


def forged_for(alice: Side, bob: Side, corruption: str) -> tuple[OlmMessage, OlmMessage]:
    """A genuine message of Alice's current chain, and a forgery of the kind named."""
    genuine = send(alice, bob, b"genuine")
    if corruption == "same chain":
        raw = bytearray(genuine.ciphertext)
        raw[-3] ^= 1  # in the MAC: the ratchet key stays Alice's
        forged = OlmMessage(genuine.message_type, bytes(raw))
        assert forged.ratchet_key == genuine.ratchet_key
        return genuine, forged
    stranger, victim = channel_pair()
    assert receive(victim, stranger, send(stranger, victim, b"stranger's new chain")) != b""
    return genuine, send(stranger, victim, b"a chain bob does not know")


@pytest.mark.parametrize("corruption", ["same chain", "unknown chain"])
def test_failed_decrypt_in_a_transaction_stores_the_state_before_it(
    corruption: str, olm_pickles: list[str]
) -> None:
    alice, bob = channel_pair()
    assert receive(alice, bob, send(bob, alice, b"bob speaks last")) == b"bob speaks last"
    first = send(alice, bob, b"first of a new chain")
    genuine, forged = forged_for(alice, bob, corruption)
    bob.sessions.begin()
    assert receive(bob, alice, first) == b"first of a new chain"  # Bob's reply is pending now
    key = channel.session_key(alice.handle, alice.device_id)
    expected = bob.sessions.take(bob.state.sessions[key].pickles[0]).pickle(PICKLE_KEY)
    olm_pickles.clear()
    with pytest.raises(DecryptionFailed):
        receive(bob, alice, forged)
    if corruption == "same chain":
        assert olm_pickles == []  # proven unchanged: tried as it was, no pickle needed
    bob.sessions.write_back(bob.state)
    bob.sessions.end()
    assert stored(bob, alice)[0] == expected  # what a pickle per operation would have stored
    assert_truthful(bob.sessions)
    assert receive(bob, alice, genuine) == b"genuine"
    assert receive(alice, bob, send(bob, alice, b"reply")) == b"reply"
