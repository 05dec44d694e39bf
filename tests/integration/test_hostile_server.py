"""A breached or hostile server: what it stores reveals no content, and what it tampers with
is detected by the clients (each with its own error), never silently accepted."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from harness import CUSTODIAN, PASSPHRASE

from hotline.client.device import HotlineClient
from hotline.wire.encoding import b64d
from hotline.wire.errors import BadSignature, IdentityChanged


def server_files(db: Path) -> bytes:
    return b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))


def rows_for(db: Path, device_id: str) -> list[tuple[int, bytes]]:
    with sqlite3.connect(db) as conn:
        return list(
            conn.execute(
                "SELECT seq, body FROM deliveries WHERE device_id = ? ORDER BY seq", (device_id,)
            )
        )


def execute(db: Path, sql: str, *args: object) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute(sql, args)


async def test_database_holds_no_plaintext(connected_pair, live_server) -> None:
    washington, ottawa = connected_pair
    texts = [f"Confidential line {i}: the summit moves to Thursday" for i in range(5)]
    for text in texts:
        await washington.send_text(ottawa.handle, text)
    # Scan while the ciphertexts are queued, and again after delivery.
    blob = server_files(live_server.db_path)
    await ottawa.sync()
    await ottawa.send_text(washington.handle, "Understood, Thursday.")
    await washington.sync()
    blob += server_files(live_server.db_path)
    for secret in [*texts, "Understood, Thursday.", "Confidential", "summit"]:
        assert secret.encode() not in blob
        assert secret.encode("utf-16-le") not in blob
    state = washington.keystore.load()
    assert washington.server.token is not None
    secrets_that_must_not_leak = {
        "identity private key (base64url)": state.identity_key.encode(),
        "identity private key (raw)": b64d(state.identity_key),
        "session token": washington.server.token.encode(),
        "keystore passphrase": PASSPHRASE.encode(),
        "custodian private key": CUSTODIAN.to_bytes(),
        "pickle key": washington.keystore.pickle_key,
    }
    for invite in ottawa.keystore.load().invites.values():
        secrets_that_must_not_leak[f"invite secret {invite.invite_id}"] = b64d(invite.secret)
        secrets_that_must_not_leak[f"invite secret b64 {invite.invite_id}"] = invite.secret.encode()
    leaked = [name for name, value in secrets_that_must_not_leak.items() if value in blob]
    assert leaked == []


async def test_dropped_message_is_detected(connected_pair, live_server) -> None:
    washington, ottawa = connected_pair
    for i in range(3):
        await washington.send_text(ottawa.handle, f"numbered {i + 1}")
    rows = rows_for(live_server.db_path, ottawa.device_id)
    execute(live_server.db_path, "DELETE FROM deliveries WHERE seq = ?", rows[1][0])
    events = [e for e in await ottawa.sync() if e.kind == "message"]
    assert [e.text for e in events] == ["numbered 1", "numbered 3"]
    assert events[0].warnings == []
    assert len(events[1].warnings) == 1 and events[1].warnings[0].startswith("transcript_gap")
    assert ottawa.history(washington.handle)[-1].warnings == events[1].warnings
    assert washington.transcript_digest(ottawa.handle) != ottawa.transcript_digest(
        washington.handle
    )


async def test_reordered_messages_are_detected(connected_pair, live_server) -> None:
    washington, ottawa = connected_pair
    await ottawa.send_text(washington.handle, "open the session")
    await washington.sync()
    await washington.send_text(ottawa.handle, "first")
    await washington.send_text(ottawa.handle, "second")
    (s1, b1), (s2, b2) = [r for r in rows_for(live_server.db_path, ottawa.device_id)][-2:]
    execute(live_server.db_path, "UPDATE deliveries SET body = ? WHERE seq = ?", b2, s1)
    execute(live_server.db_path, "UPDATE deliveries SET body = ? WHERE seq = ?", b1, s2)
    events = [e for e in await ottawa.sync() if e.kind in ("message", "warning")]
    assert events[0].text == "second" and events[0].warnings[0].startswith("transcript_gap")
    # "first" now arrives after its successor: refused as a replay of the past, loudly.
    assert events[1].kind == "warning" and "transcript_replay" in events[1].text


async def test_tampered_and_replayed_ciphertext_rejected(connected_pair, live_server) -> None:
    washington, ottawa = connected_pair
    await washington.send_text(ottawa.handle, "genuine")
    ((seq, body),) = rows_for(live_server.db_path, ottawa.device_id)
    flipped = body[:-5] + bytes([body[-5] ^ 1]) + body[-4:]
    execute(live_server.db_path, "UPDATE deliveries SET body = ? WHERE seq = ?", flipped, seq)
    events = await ottawa.sync()
    assert [e.kind for e in events] == ["warning"]
    assert "decryption_failed" in events[0].text
    assert [m.text for m in ottawa.history(washington.handle)] == []
    # Replay of a message already received: put the same ciphertext back in the mailbox.
    await washington.send_text(ottawa.handle, "second")
    ((seq, body),) = rows_for(live_server.db_path, ottawa.device_id)
    assert [e.text for e in await ottawa.sync() if e.kind == "message"] == ["second"]
    execute(
        live_server.db_path,
        "INSERT INTO deliveries (message_id, device_id, kind, sender_handle, sender_device,"
        " body, created_at) VALUES ('replay', ?, 'olm', ?, ?, ?, 0)",
        ottawa.device_id,
        washington.handle,
        washington.device_id,
        body,
    )
    events = await ottawa.sync()
    assert all(e.kind != "message" for e in events)
    assert [m.text for m in ottawa.history(washington.handle)] == ["second"]


async def test_server_swapping_a_device_key_is_detected(connected_pair, live_server) -> None:
    washington, ottawa = connected_pair
    # The operator edits Ottawa's device list to slip in its own device key.
    with sqlite3.connect(live_server.db_path) as conn:
        (payload,) = conn.execute(
            "SELECT device_list_payload FROM principals WHERE handle = ?", (ottawa.handle,)
        ).fetchone()
    forged = bytearray(payload)
    at = payload.index(b'"curve25519":"') + len(b'"curve25519":"')
    forged[at] = ord("B") if forged[at] != ord("B") else ord("C")
    execute(
        live_server.db_path,
        "UPDATE principals SET device_list_payload = ? WHERE handle = ?",
        bytes(forged),
        ottawa.handle,
    )
    # Force a refresh: forget the cached device list.
    async with washington.keystore.transaction() as state:
        state.contacts[ottawa.handle].devices = []
    with pytest.raises(BadSignature):
        await washington.send_text(ottawa.handle, "are you there?")


async def test_identity_key_change_blocks_sending_until_confirmed(
    connected_pair, live_server
) -> None:
    washington, ottawa = connected_pair
    await washington.mark_verified(ottawa.handle)
    before = washington.safety_number(ottawa.handle)
    # The server now presents another identity key for Ottawa (a breach, or a re-enrolment).
    from hotline.crypto.identity import IdentityKey

    impostor = IdentityKey.generate()
    execute(
        live_server.db_path,
        "UPDATE principals SET identity_key = ? WHERE handle = ?",
        impostor.public.to_bytes(),
        ottawa.handle,
    )
    async with washington.keystore.transaction() as state:
        state.contacts[ottawa.handle].devices = []
    with pytest.raises(IdentityChanged) as info:
        await washington.send_text(ottawa.handle, "hello?")
    assert "verified" in info.value.detail
    contact = washington.contact(ottawa.handle)
    assert contact.changed_identity_key and contact.verified
    with pytest.raises(IdentityChanged):  # still blocked, not just warned once
        await washington.send_text(ottawa.handle, "hello again?")
    assert washington.safety_number(ottawa.handle) != before


async def test_remove_contact_cuts_off_both_ends(connected_pair) -> None:
    from hotline.wire.errors import NotAContact

    washington, ottawa = connected_pair
    await washington.send_text(ottawa.handle, "before")
    await ottawa.sync()
    await ottawa.remove_contact(washington.handle)
    events = await washington.sync()
    assert ("contact_removed", ottawa.handle) in [(e.kind, e.contact) for e in events]
    assert washington.contact(ottawa.handle).status == "removed"
    with pytest.raises(NotAContact):
        await washington.send_text(ottawa.handle, "after")
    with pytest.raises(NotAContact):
        await ottawa.send_text(washington.handle, "after")


async def test_manual_accept(make_principal) -> None:
    alice: HotlineClient = await make_principal("alice")
    bob: HotlineClient = await make_principal("bob")
    await bob.set_auto_accept(False)
    await alice.add_contact(await bob.my_card())
    events = await bob.sync()
    assert [e.kind for e in events] == ["contact_request"]
    assert bob.contacts() == []
    await bob.accept_request(alice.handle)
    await alice.sync()
    await alice.send_text(bob.handle, "thanks for accepting")
    assert [e.text for e in await bob.sync() if e.kind == "message"] == ["thanks for accepting"]


async def test_listen_pushes_over_websocket(connected_pair) -> None:
    washington, ottawa = connected_pair
    received: list[str] = []

    async def listen() -> None:
        async for event in ottawa.listen():
            if event.kind == "message":
                received.append(event.text)
                if len(received) == 3:
                    return

    task = asyncio.create_task(listen())
    await asyncio.sleep(0.2)
    for i in range(3):
        await washington.send_text(ottawa.handle, f"pushed {i}")
    await asyncio.wait_for(task, 10)
    assert received == ["pushed 0", "pushed 1", "pushed 2"]
