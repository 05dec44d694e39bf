"""Answers about a local principal's keys, for local callers and for peer servers alike.

No directory: only the principal itself and the contacts on its signed allowlist may see its
device list or claim its one-time keys; everyone else gets ``not_a_contact`` (the same answer
for an unknown handle, so existence does not leak).
"""

from __future__ import annotations

from hotline.server.delegation import delegated_visible
from hotline.store import Store
from hotline.wire import api
from hotline.wire.codec import Signed
from hotline.wire.encoding import b64e
from hotline.wire.errors import NotAContact


async def allowed_or_group_peer(store: Store, owner: str, requester: str) -> bool:
    """Whether ``owner`` allows ``requester``: on its allowlist, or in one of its groups.

    A co-member of a group may reach the member's devices (to share Megolm keys over Olm and
    to read its device list); the member's *client* refuses anything but group traffic from
    a co-member who is not a contact (``client.group_inbox``).
    """
    return await store.is_allowed(owner, requester) or await store.shares_group(owner, requester)


async def visible_principal(
    store: Store, requester: str, handle: str, acting_for: list[str] | None = None
) -> None:
    """Raises: NotAContact unless ``requester`` is ``handle``, on its allowlist, in one of its
    groups, or linked to it by an active delegation grant
    (``server.delegation.delegated_visible``)."""
    if await store.get_principal(handle) is None or (
        handle != requester
        and not await allowed_or_group_peer(store, handle, requester)
        and not await delegated_visible(store, requester, handle, acting_for or [])
    ):
        raise NotAContact(f"{handle} does not accept you as a contact")


async def devices_response(
    store: Store, requester: str, handle: str, acting_for: list[str] | None = None
) -> api.DevicesResponse:
    """Raises: NotAContact."""
    await visible_principal(store, requester, handle, acting_for)
    principal = await store.get_principal(handle)
    if principal is None:
        raise NotAContact(f"{handle} does not accept you as a contact")
    return api.DevicesResponse(
        handle=handle,
        display_name=principal.display_name,
        identity_key=b64e(principal.identity_key),
        device_list=Signed(
            payload=b64e(principal.device_list.payload),
            signature=b64e(principal.device_list.signature),
        ),
        blocked=await store.blocked_devices(handle),
    )


async def claim_response(
    store: Store,
    requester: str,
    handle: str,
    device_ids: list[str] | None,
    exclude_device: str = "",
    acting_for: list[str] | None = None,
) -> api.ClaimResponse:
    """Claim one key for each wanted device of ``handle``. Raises: NotAContact."""
    listing = await devices_response(store, requester, handle, acting_for)
    wanted = set(device_ids) if device_ids is not None else None
    keys = []
    for device in await store.list_devices(handle):
        if device.device_id == exclude_device or (
            wanted is not None and device.device_id not in wanted
        ):
            continue
        claimed = await store.claim_key(device.device_id)
        keys.append(
            api.ClaimedDeviceKey(
                device_id=claimed.device_id,
                key_id=claimed.key_id,
                key=b64e(claimed.key),
                signature=b64e(claimed.signature),
                fallback=claimed.fallback,
            )
        )
    return api.ClaimResponse(
        handle=handle, identity_key=listing.identity_key, device_list=listing.device_list, keys=keys
    )
