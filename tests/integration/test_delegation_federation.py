"""Delegation across two home servers: the counterpart is on the other government's server.
The aide reads what the counterpart sends the principal and answers for the principal; the
counterpart sees "sent by <aide> for <principal>"; each government archives its own side."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from harness import CUSTODIAN, connect
from test_federation import governments, principal  # noqa: F401  (fixture)

from hotline.client.delegation import answer_for, grant_aide, revoke_aide
from hotline.client.transcript import conversation_id
from hotline.records.sealing import open_record
from hotline.wire.errors import NotDelegated


def records(db: Path) -> list:
    with sqlite3.connect(db) as conn:
        leaves = [bytes(r[0]) for r in conn.execute("SELECT leaf FROM log_entries ORDER BY idx")]
    return [open_record(CUSTODIAN, leaf) for leaf in leaves]


async def test_aide_answers_a_counterpart_on_another_server(governments, tmp_path: Path) -> None:  # noqa: F811
    washington, ottawa = governments
    potus = await principal(washington, "potus", tmp_path / "potus")
    chief = await principal(washington, "chief", tmp_path / "chief")
    pm = await principal(ottawa, "pm", tmp_path / "pm")
    try:
        await connect(potus, chief)
        await connect(pm, potus)
        await grant_aide(potus, chief.handle)
        await chief.sync()

        await pm.send_text(potus.handle, "From Ottawa: shall we talk?")
        for _ in range(50):  # the outbound queue relays it to Washington
            await chief.sync()
            seen = [
                m.text
                for m in chief.keystore.history()
                if m.conversation == conversation_id(potus.handle, pm.handle)
            ]
            if seen:
                break
        assert seen == ["From Ottawa: shall we talk?"]

        sent = await answer_for(chief, potus.handle, pm.handle, "Yes; the President calls at 9.")
        shown = []
        for _ in range(50):
            events = await pm.sync()
            shown += [e for e in events if e.kind == "message"]
            if shown:
                break
        assert [(e.text, e.label) for e in shown] == [
            (sent.text, f"sent by {chief.handle} for {potus.handle}")
        ]
        await pm.flush_records()
        assert washington.server and ottawa.server
        w = [r for r in records(washington.server.db_path) if r.body == sent.text]
        o = [r for r in records(ottawa.server.db_path) if r.body == sent.text]
        assert [(r.side, r.principal, r.detail["on_behalf_of"]) for r in w] == [
            ("sent", chief.handle, potus.handle)
        ]
        assert [(r.side, r.principal, r.detail["on_behalf_of"]) for r in o] == [
            ("received", pm.handle, potus.handle)
        ]

        await revoke_aide(potus, chief.handle)
        with pytest.raises(NotDelegated):  # the aide's server refuses at once
            await answer_for(chief, potus.handle, pm.handle, "after revocation")
    finally:
        for client in (potus, chief, pm):
            await client.close()
