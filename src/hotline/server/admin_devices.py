"""The administrator's side of a principal's devices: removing a lost one at once.

The administrator holds no principal's identity key (by design: only the principal's devices
sign its device list), so the server cannot re-sign the list itself. Instead it *blocks* the
device: the device's keys, sessions (tokens) and mailbox are deleted in one transaction, it
may not log in again nor be named on a device list again, the device lists the server serves
say it is ``blocked`` (clients stop encrypting for it although the signed list still names it),
and the principal's remaining devices are told with a ``device_removed`` item so their next
signed device list drops it. The removal is recorded in the archive (sealed to the custodian).
"""

from __future__ import annotations

import msgspec

from hotline.server.records_log import RecordsLog
from hotline.store import DeliveryItem, DeviceRow, Store
from hotline.wire.codec import Ident, encode
from hotline.wire.errors import DeviceBlocked, UnknownDevice

#: mailbox item kind that tells a principal's devices the administrator removed one of them
DEVICE_REMOVED = "device_removed"


class DeviceRemovedNotice(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Body of a ``device_removed`` item (server-authored)."""

    device_id: Ident
    removed_at: int


async def refuse_blocked(store: Store, devices: list[DeviceRow]) -> None:
    """Raises: DeviceBlocked if a device list names a device the administrator removed."""
    for device in devices:
        if await store.is_blocked(device.device_id):
            raise DeviceBlocked(
                f"device {device.device_id} was removed by the administrator; sync, then sign "
                "a device list without it"
            )


async def remove_device_by_admin(
    store: Store, records: RecordsLog | None, domain: str, handle: str, device_id: str, now: float
) -> list[str]:
    """Block ``device_id`` of ``handle``; returns the devices told to re-sign their list.

    Raises:
        UnknownDevice: not a (current) device of ``handle``.
    """
    if not await store.block_device(handle, device_id, now):
        raise UnknownDevice(f"{device_id} is not a device of {handle}")
    if records is not None:
        await records.server_record(
            store,
            "device_admin",
            handle,
            {"event": "device_removed", "device": device_id, "by": "administrator"},
            now,
        )
    remaining = [d.device_id for d in await store.list_devices(handle)]
    if remaining:
        notice = encode(DeviceRemovedNotice(device_id=device_id, removed_at=int(now)))
        await store.enqueue(
            message_id=f"admin-remove-{device_id}"[:64],
            sender_handle=f"server@{domain}",
            sender_device="server",
            items=[DeliveryItem(d, DEVICE_REMOVED, notice) for d in remaining],
            now=now,
        )
    return remaining


__all__ = ["DEVICE_REMOVED", "DeviceRemovedNotice", "refuse_blocked", "remove_device_by_admin"]
