"""Issue 8 item 3, the administrator's side: a lost device removed by the admin is blocked at
once (logged out, nothing more delivered, its mailbox dropped, never listed again), the
removal is on the record, and the principal's other devices re-sign their device list."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from harness import CUSTODIAN, FAST_SCRYPT, PASSPHRASE, connect

from hotline.client.linked_devices import list_devices, provision_device, publish_device_list
from hotline.records.sealing import open_record
from hotline.server.admin_devices import remove_device_by_admin
from hotline.server.records_log import RecordsLog
from hotline.wire.errors import DeviceBlocked, HotlineError, UnknownDevice


def admin_records(db: Path) -> list[dict[str, str]]:
    with sqlite3.connect(db) as conn:
        leaves = [bytes(r[0]) for r in conn.execute("SELECT leaf FROM log_entries ORDER BY idx")]
    opened = (open_record(CUSTODIAN, leaf) for leaf in leaves)
    return [
        r.detail | {"about": ",".join(r.recipients)} for r in opened if r.kind == "device_admin"
    ]


async def test_admin_removes_a_lost_device(make_principal, live_server, tmp_path: Path) -> None:
    desk = await make_principal("potus", "President")
    pm = await make_principal("pm", "Prime Minister")
    await connect(desk, pm)
    phone = await provision_device(desk, tmp_path / "phone", PASSPHRASE, scrypt=FAST_SCRYPT)
    try:
        await pm.send_text(desk.handle, "to both devices")
        await pm.send_text(desk.handle, "still waiting in the phone's mailbox")
        records = RecordsLog(live_server.config.archive, live_server.config.domain)
        with pytest.raises(UnknownDevice):  # not that principal's device
            await remove_device_by_admin(
                live_server.store, records, "washington.test", pm.handle, phone.device_id, 0.0
            )
        told = await remove_device_by_admin(
            live_server.store,
            records,
            live_server.config.domain,
            desk.handle,
            phone.device_id,
            time.time(),
        )
        assert told == [desk.device_id]
        # Blocked at once: its token no longer works, it cannot log in again, its mailbox is gone.
        assert await live_server.store.pending(phone.device_id, 0, 10) == []
        assert phone.server.token is not None
        phone.server.relogin = None  # use the old token as it is
        with pytest.raises(HotlineError) as refused:
            await phone.server.call("GET", "/v1/inbox")
        assert refused.value.status == 401
        phone.server.token = None
        with pytest.raises(DeviceBlocked):
            await phone.login()
        # A counterpart with the old list is told to refresh and then skips the lost device.
        await pm.send_text(desk.handle, "after the loss")
        assert await live_server.store.pending(phone.device_id, 0, 10) == []
        # The principal's remaining device re-signs its list without the lost device...
        events = await desk.sync()
        assert any("removed your device" in e.text for e in events)
        assert [d.device_id for d in await list_devices(desk)] == [desk.device_id]
        assert [m.text for m in desk.history(pm.handle)][-1] == "after the loss"
        # ...and no device list naming it is accepted again.
        async with desk._tx() as (state, _):
            with pytest.raises(DeviceBlocked):
                await publish_device_list(
                    desk, state, [*state.own_devices, *phone.keystore.load().own_devices[-1:]]
                )
        (record,) = admin_records(live_server.db_path)
        assert record == {
            "event": "device_removed",
            "device": phone.device_id,
            "by": "administrator",
            "about": desk.handle,
        }
    finally:
        await phone.close()
