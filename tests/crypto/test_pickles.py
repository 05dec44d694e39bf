"""The one pickle helper behind the Olm and Megolm wrappers: every kind of vodozemac state
round-trips under the 32-byte key, and a wrong key, a damaged pickle or a short key fail the
same way for all of them."""

from __future__ import annotations

import pytest

from hotline.crypto.megolm import InboundGroup, OutboundGroup
from hotline.crypto.olm import DeviceAccount
from hotline.crypto.pickles import PICKLE_KEY_SIZE, open_pickle
from hotline.wire.errors import CorruptState

KEY = bytes(range(PICKLE_KEY_SIZE))


def test_every_state_round_trips_and_refuses_a_wrong_or_short_key() -> None:
    outbound = OutboundGroup.generate()
    states = {
        DeviceAccount.from_pickle: DeviceAccount.generate(),
        OutboundGroup.from_pickle: outbound,
        InboundGroup.from_pickle: InboundGroup.from_session_key(outbound.session_key()),
    }
    for restore, state in states.items():
        pickle = state.pickle(KEY)
        assert repr(restore(pickle, KEY)) == repr(state)  # names its keys or session id
        with pytest.raises(CorruptState):
            restore(pickle, bytes(PICKLE_KEY_SIZE))
        with pytest.raises(CorruptState):
            restore(pickle[:-8], KEY)
        with pytest.raises(ValueError):  # a programming error, not corrupt state
            restore(pickle, KEY[:16])
        with pytest.raises(ValueError):
            state.pickle(KEY[:16])


def test_only_a_refused_pickle_becomes_corrupt_state() -> None:
    def refuses(_pickle: str, _key: bytes) -> str:
        raise ValueError("vodozemac's detail, not shown")

    with pytest.raises(CorruptState) as caught:
        open_pickle(refuses, "p", KEY, "Test state")
    assert caught.value.detail == "Test state pickle does not open"

    def breaks(_pickle: str, _key: bytes) -> str:
        raise KeyError("a bug")

    with pytest.raises(KeyError):
        open_pickle(breaks, "p", KEY, "Test state")
