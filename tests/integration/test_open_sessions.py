"""A client keeps its Olm sessions open between operations and transactions
(``client.session_cache``): it must never use a session object that ran ahead of the keystore
— another process on the device changed it, or a transaction failed after using it."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import PASSPHRASE

from hotline.client.device import HotlineClient
from hotline.client.inbox import handle_item
from hotline.client.sending import build_request
from hotline.wire import api
from hotline.wire.encoding import b64d, b64e


def texts(events: list) -> list[str]:
    assert not [e.text for e in events if e.kind == "warning"]
    return [e.text for e in events if e.kind == "message"]


def stored_pickles(client: HotlineClient) -> set[str]:
    state = client.keystore.load()
    return {pickle for entry in state.sessions.values() for pickle in entry.pickles}


def assert_nothing_ahead_of_the_keystore(client: HotlineClient) -> None:
    """Every open session is in the state of a pickle the keystore holds."""
    stored = stored_pickles(client)
    for pickle, session in client.sessions._open.items():
        assert pickle in stored
        assert session.pickle(client.sessions.pickle_key) == pickle


async def inbox(client: HotlineClient) -> list[api.InboxItem]:
    reply = await client.server.call("GET", "/v1/inbox", response=api.InboxResponse)
    assert reply is not None
    return list(reply.items)


async def test_open_sessions_encrypt_what_the_peer_decrypts(
    connected_pair: tuple[HotlineClient, HotlineClient], olm_restores: list[str]
) -> None:
    washington, ottawa = connected_pair
    await washington.send_text(ottawa.handle, "warm-up")
    assert texts(await ottawa.sync()) == ["warm-up"]
    await washington.sync()  # the delivery receipt
    olm_restores.clear()
    for i in range(3):
        await washington.send_text(ottawa.handle, f"open session {i}")
    assert olm_restores == []  # no session restored from its pickle: all were open
    assert texts(await ottawa.sync()) == [f"open session {i}" for i in range(3)]
    assert_nothing_ahead_of_the_keystore(washington)
    assert_nothing_ahead_of_the_keystore(ottawa)


async def test_session_changed_by_another_process_is_restored(
    connected_pair: tuple[HotlineClient, HotlineClient], tmp_path: Path
) -> None:
    washington, ottawa = connected_pair
    await washington.send_text(ottawa.handle, "from the first process")  # its session is open
    second = await HotlineClient.open(tmp_path / "home-potus", PASSPHRASE)
    try:
        await second.send_text(ottawa.handle, "from the second process")
    finally:
        await second.close()
    # The first process's open object stands for a pickle the keystore no longer holds.
    await washington.send_text(ottawa.handle, "from the first again")
    assert texts(await ottawa.sync()) == [
        "from the first process",
        "from the second process",
        "from the first again",
    ]


async def test_failed_transaction_leaves_no_advanced_session_in_use(
    connected_pair: tuple[HotlineClient, HotlineClient],
) -> None:
    washington, ottawa = connected_pair
    await washington.send_text(ottawa.handle, "one")
    await washington.send_text(ottawa.handle, "two")
    items = await inbox(ottawa)
    with pytest.raises(RuntimeError):
        async with ottawa._tx() as (state, account):
            for item in items:
                await handle_item(ottawa, state, account, item, {})
            raise RuntimeError("the transaction fails after decrypting")
    assert_nothing_ahead_of_the_keystore(ottawa)
    # The items were never acknowledged: they come again and decrypt with the saved sessions.
    assert texts(await ottawa.sync()) == ["one", "two"]
    # The sender side: an encryption in a failed transaction is not kept either.
    with pytest.raises(RuntimeError):
        async with washington._tx() as (state, account):
            await build_request(
                washington,
                state,
                account,
                ottawa.handle,
                "m1",
                b"never sent",
                None,
                "message",
                None,
                refresh=False,
            )
            raise RuntimeError("the transaction fails after encrypting")
    assert_nothing_ahead_of_the_keystore(washington)
    await washington.send_text(ottawa.handle, "three")
    assert texts(await ottawa.sync()) == ["three"]


async def test_forged_message_leaves_the_session_able_to_decrypt(
    connected_pair: tuple[HotlineClient, HotlineClient],
) -> None:
    washington, ottawa = connected_pair
    await washington.send_text(ottawa.handle, "genuine")
    (genuine,) = await inbox(ottawa)
    raw = bytearray(b64d(genuine.body))
    raw[len(raw) // 2] ^= 1
    forged = api.InboxItem(
        seq=genuine.seq,
        message_id="forged-message-id",
        kind=genuine.kind,
        sender_handle=genuine.sender_handle,
        sender_device=genuine.sender_device,
        body=b64e(bytes(raw)),
        created_at=genuine.created_at,
    )
    before = stored_pickles(ottawa)
    async with ottawa._tx() as (state, account):
        events = await handle_item(ottawa, state, account, forged, {})
    assert [e.kind for e in events] == ["warning"]
    assert stored_pickles(ottawa) == before
    assert_nothing_ahead_of_the_keystore(ottawa)
    assert texts(await ottawa.sync()) == ["genuine"]


async def test_a_batch_pickles_the_session_once(
    connected_pair: tuple[HotlineClient, HotlineClient], olm_pickles: list[str]
) -> None:
    washington, ottawa = connected_pair
    sent = [f"batch {i}" for i in range(5)]
    for text in sent:
        await washington.send_text(ottawa.handle, text)
    olm_pickles.clear()
    # One mailbox batch, one transaction (receive): five decrypts on the one session with
    # Washington's device, pickled once before the state is saved; then settle's transaction:
    # the delivery receipt's encrypt, pickled once more.
    assert texts(await ottawa.sync()) == sent
    assert len(olm_pickles) == 2
    assert_nothing_ahead_of_the_keystore(ottawa)
    events = await washington.sync()
    assert ("receipt", "delivered") in [(e.kind, e.text) for e in events]
