"""Interactive SAS verification over vodozemac."""

from __future__ import annotations

import pytest

from hotline.crypto.sas import EMOJI, SasState, SasVerification
from hotline.wire.errors import NotVerified, WrongState

A, A_DEV = "alice@ottawa.example", "ADEV"
B, B_DEV = "bob@canberra.example", "BDEV"


def sas_pair() -> tuple[SasVerification, SasVerification]:
    alice = SasVerification(A, A_DEV, B, B_DEV)
    bob = SasVerification(B, B_DEV, A, A_DEV)
    alice.receive_their_key(bob.public_key)
    bob.receive_their_key(alice.public_key)
    return alice, bob


def test_emoji_table():
    assert len(EMOJI) == 64
    assert EMOJI[0] == ("\U0001f436", "Dog")
    assert EMOJI[34][1] == "Spanner"
    assert EMOJI[63] == ("\U0001f4cc", "Pin")
    assert len({name for _, name in EMOJI}) == 64


def test_both_sides_agree():
    alice, bob = sas_pair()
    assert alice.state is SasState.KEYS_EXCHANGED
    assert alice.decimals() == bob.decimals()
    assert all(1000 <= d <= 9191 for d in alice.decimals())
    assert alice.emoji_indices() == bob.emoji_indices()
    assert len(alice.emoji_indices()) == 7
    assert all(0 <= i < 64 for i in alice.emoji_indices())
    assert alice.emojis() == bob.emojis()


def test_mitm_gets_different_codes():
    alice = SasVerification(A, A_DEV, B, B_DEV)
    bob = SasVerification(B, B_DEV, A, A_DEV)
    # Mallory runs one exchange with each side, posing as the other.
    m_to_alice = SasVerification(B, B_DEV, A, A_DEV)
    m_to_bob = SasVerification(A, A_DEV, B, B_DEV)
    alice.receive_their_key(m_to_alice.public_key)
    m_to_alice.receive_their_key(alice.public_key)
    bob.receive_their_key(m_to_bob.public_key)
    m_to_bob.receive_their_key(bob.public_key)
    assert alice.decimals() != bob.decimals()
    assert alice.emoji_indices() != bob.emoji_indices()
    # Mallory's MAC from the Alice leg does not verify on the Bob leg.
    tag = m_to_alice.mac("key", "ed25519:ADEV")
    with pytest.raises(NotVerified):
        bob.verify_mac("key", "ed25519:ADEV", tag)


def test_identities_are_bound():
    alice = SasVerification(A, A_DEV, B, B_DEV)
    bob = SasVerification(B, "OTHER", A, A_DEV)  # Bob's device id differs from what Alice expects
    alice.receive_their_key(bob.public_key)
    bob.receive_their_key(alice.public_key)
    assert alice.decimals() != bob.decimals()


def test_mac_round_trip_and_verified():
    alice, bob = sas_pair()
    tag = alice.mac("ed25519:ADEV", "device-key-b64")
    bob.verify_mac("ed25519:ADEV", "device-key-b64", tag)
    assert bob.state is SasState.VERIFIED
    # More keys may still be checked once verified.
    bob.verify_mac("master", "identity-key", alice.mac("master", "identity-key"))


def test_wrong_mac_raises_and_cancels():
    alice, bob = sas_pair()
    tag = alice.mac("ed25519:ADEV", "device-key-b64")
    with pytest.raises(NotVerified):
        bob.verify_mac("ed25519:ADEV", "other-key", tag)
    assert bob.state is SasState.CANCELLED
    with pytest.raises(WrongState):
        bob.decimals()


@pytest.mark.parametrize("tag", ["", "!!!", "AAAA"])
def test_malformed_mac_raises(tag):
    _, bob = sas_pair()
    with pytest.raises(NotVerified):
        bob.verify_mac("i", "d", tag)


def test_reflected_mac_rejected():
    alice, _ = sas_pair()
    tag = alice.mac("ed25519:ADEV", "key")
    with pytest.raises(NotVerified):
        alice.verify_mac("ed25519:ADEV", "key", tag)


def test_wrong_state_calls():
    alice = SasVerification(A, A_DEV, B, B_DEV)
    bob = SasVerification(B, B_DEV, A, A_DEV)
    with pytest.raises(WrongState, match="created"):
        alice.decimals()
    with pytest.raises(WrongState):
        alice.mac("i", "d")
    alice.receive_their_key(bob.public_key)
    with pytest.raises(WrongState, match="keys_exchanged"):
        alice.receive_their_key(bob.public_key)
    alice.cancel()
    assert alice.state is SasState.CANCELLED
    with pytest.raises(WrongState, match="cancelled"):
        alice.emoji_indices()
    alice.cancel()  # idempotent


@pytest.mark.parametrize("key", [b"", b"\x01" * 31, bytes(32)])
def test_bad_peer_key_cancels(key):
    alice = SasVerification(A, A_DEV, B, B_DEV)
    with pytest.raises(NotVerified):
        alice.receive_their_key(key)
    assert alice.state is SasState.CANCELLED


def test_own_key_reflected_rejected():
    alice = SasVerification(A, A_DEV, B, B_DEV)
    with pytest.raises(NotVerified):
        alice.receive_their_key(alice.public_key)
