"""Messages reach every device of the recipient and the sender's own other devices."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import FAST_SCRYPT, PASSPHRASE

from hotline.client.device import HotlineClient
from hotline.client.linked_devices import list_devices, provision_device, remove_device
from hotline.wire.errors import Unauthenticated, UnknownDevice


async def test_two_devices_one_principal(connected_pair, tmp_path: Path) -> None:
    washington, ottawa = connected_pair
    number_before = ottawa.safety_number(washington.handle)
    phone: HotlineClient = await provision_device(
        washington, tmp_path / "potus-phone", PASSPHRASE, scrypt=FAST_SCRYPT
    )
    try:
        assert phone.handle == washington.handle and phone.device_id != washington.device_id
        assert len(await list_devices(washington)) == 2
        # Ottawa's next message reaches both of Washington's devices.
        await ottawa.send_text(washington.handle, "to all your devices")
        for device in (washington, phone):
            texts = [e.text for e in await device.sync() if e.kind == "message"]
            assert texts == ["to all your devices"]
        # A message from the new device reaches Ottawa and, as a sent copy, the old device.
        await phone.send_text(ottawa.handle, "from my phone")
        assert [e.text for e in await ottawa.sync() if e.kind == "message"] == ["from my phone"]
        copies = [e for e in await washington.sync() if e.kind == "message"]
        assert [(e.text, e.outgoing) for e in copies] == [("from my phone", True)]
        await washington.send_text(ottawa.handle, "from my desk")
        await ottawa.sync()
        await phone.sync()
        digests = {d.transcript_digest(ottawa.handle) for d in (washington, phone)}
        assert digests == {ottawa.transcript_digest(washington.handle)}
        # The safety number is bound to the identity key, not to devices.
        assert ottawa.safety_number(washington.handle) == number_before
        # The phone is lost: remove it from the desk device.
        await remove_device(washington, phone.device_id)
        phone.server.token = None
        with pytest.raises((Unauthenticated, UnknownDevice)):
            await phone.sync()
        await ottawa.send_text(washington.handle, "after the phone was lost")
        assert [e.text for e in await washington.sync() if e.kind == "message"] == [
            "after the phone was lost"
        ]
        assert [d.device_id for d in await list_devices(washington)] == [washington.device_id]
    finally:
        await phone.close()
