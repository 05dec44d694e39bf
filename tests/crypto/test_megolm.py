"""Megolm wrappers: round trip, replays decrypt again (callers dedupe), tamper and foreign
sessions fail with one typed error, pickles survive and need the right key."""

from __future__ import annotations

import pytest

from hotline.crypto.megolm import InboundGroup, OutboundGroup
from hotline.wire.errors import CorruptState, DecryptionFailed, MalformedInput

KEY = bytes(range(32))


def test_round_trip_indices_and_later_key_cannot_read_earlier_messages() -> None:
    outbound = OutboundGroup.generate()
    first = outbound.encrypt(b"one")
    late = InboundGroup.from_session_key(outbound.session_key())  # shared after message 0
    second = outbound.encrypt(b"two")
    after_two = InboundGroup.from_session_key(
        OutboundGroup.from_pickle(outbound.pickle(KEY), KEY).session_key()
    )
    assert late.session_id == outbound.session_id
    assert late.decrypt(second).plaintext == b"two"
    assert late.decrypt(second).message_index == 1
    with pytest.raises(DecryptionFailed):
        late.decrypt(first)  # a member added later cannot read what came before
    with pytest.raises(DecryptionFailed):
        after_two.decrypt(second)  # nor can a key exported after the message


def test_replay_decrypts_again_so_callers_must_dedupe() -> None:
    outbound = OutboundGroup.generate()
    inbound = InboundGroup.from_session_key(outbound.session_key())
    message = outbound.encrypt(b"once")
    assert inbound.decrypt(message) == inbound.decrypt(message)


def test_tampered_foreign_and_garbage_fail_alike() -> None:
    outbound = OutboundGroup.generate()
    inbound = InboundGroup.from_session_key(outbound.session_key())
    message = bytearray(outbound.encrypt(b"secret"))
    message[-5] ^= 1
    for bad in (bytes(message), OutboundGroup.generate().encrypt(b"x"), b"", b"\x03garbage"):
        with pytest.raises(DecryptionFailed) as caught:
            inbound.decrypt(bad)
        assert caught.value.detail == DecryptionFailed.title
    with pytest.raises(MalformedInput):
        InboundGroup.from_session_key("not a key")


def test_pickles_round_trip_and_refuse_the_wrong_key() -> None:
    outbound = OutboundGroup.generate()
    inbound = InboundGroup.from_session_key(outbound.session_key())
    restored = InboundGroup.from_pickle(inbound.pickle(KEY), KEY)
    assert restored.decrypt(outbound.encrypt(b"x")).plaintext == b"x"
    assert outbound.session_key() not in repr(outbound)
    for load in (OutboundGroup.from_pickle, InboundGroup.from_pickle):
        with pytest.raises(CorruptState):
            load(inbound.pickle(KEY), bytes(32))
