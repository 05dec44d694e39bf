"""What a principal's device does when the administrator removed one of its devices.

The server blocked the device at once (see :mod:`hotline.server.admin_devices`) but cannot
re-sign the principal's device list: this device does, dropping the blocked device. The notice is
server-authored and not signed by anyone the device trusts; acting on it can only *remove* a
device the server already refuses to serve, so it gives the server no power it did not have.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import msgspec

from hotline.client.device_lists import devices_of
from hotline.client.events import ClientEvent
from hotline.client.linked_devices import publish_device_list
from hotline.client.state import ClientState
from hotline.wire import api
from hotline.wire.codec import Ident, decode
from hotline.wire.encoding import b64d
from hotline.wire.errors import StaleVersion

if TYPE_CHECKING:
    from hotline.client.device import HotlineClient

#: mailbox item kind (the same string as ``server.admin_devices.DEVICE_REMOVED``)
DEVICE_REMOVED = "device_removed"


class _Notice(msgspec.Struct, frozen=True):
    device_id: Ident
    removed_at: int


async def admin_removed(
    client: HotlineClient, state: ClientState, item: api.InboxItem
) -> list[ClientEvent]:
    """Re-sign my device list without the device the administrator removed."""
    notice = decode(b64d(item.body), _Notice, what="device removal notice")
    reply = await client.server.call(
        "GET", f"/v1/principals/{state.handle}/devices", response=api.DevicesResponse
    )
    assert reply is not None
    if notice.device_id not in reply.blocked:
        return [ClientEvent("warning", state.handle, "a device removal the server does not hold")]
    remaining = await devices_of(client, state, state.handle, refresh=True)  # blocked left out
    with contextlib.suppress(StaleVersion):  # another of my devices re-signed it first
        await publish_device_list(client, state, remaining)
    await devices_of(client, state, state.handle, refresh=True)
    return [
        ClientEvent(
            "warning",
            state.handle,
            f"the administrator removed your device {notice.device_id}; "
            "your signed device list no longer names it",
        )
    ]


__all__ = ["DEVICE_REMOVED", "admin_removed"]
