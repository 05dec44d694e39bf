"""Verified device lists of principals, and the Olm sessions claimed to reach their devices.

A device list is signed by its principal's identity key, pinned from their card (or this
principal's own): a server presenting another identity, a list it did not sign, or an older
list than one seen before is refused. Devices the administrator blocked are left out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hotline.client import channel
from hotline.client.cards import open_device_list
from hotline.client.group_state import peer_state
from hotline.client.state import ClientState
from hotline.crypto.identity import DOMAIN_ONE_TIME_KEY, IdentityKey
from hotline.crypto.olm import DeviceAccount, verify_device_signature
from hotline.wire import api
from hotline.wire.encoding import b64d
from hotline.wire.errors import IdentityChanged, StaleVersion, UnknownContact
from hotline.wire.lists import DeviceKeys

if TYPE_CHECKING:
    from hotline.client.device import HotlineClient


def pinned_identity(state: ClientState, handle: str) -> bytes:
    """The identity key pinned for ``handle`` (mine, or a peer's). Raises: UnknownContact."""
    if handle == state.handle:
        return IdentityKey.from_bytes(b64d(state.identity_key)).public.to_bytes()
    contact = peer_state(state.contacts, state.group_peers, handle)
    if contact is None:
        raise UnknownContact(f"{handle} is not a contact")
    return b64d(contact.identity_key)


async def devices_of(
    client: HotlineClient, state: ClientState, handle: str, *, refresh: bool
) -> list[DeviceKeys]:
    """The verified device list of ``handle`` (cached; refreshed on request).

    Raises:
        IdentityChanged: the server presents another identity key than the pinned one.
        BadSignature: the device list is not signed by the pinned identity key.
        StaleVersion: the server offers an older device list than one seen before.
    """
    own = handle == state.handle
    contact = None if own else peer_state(state.contacts, state.group_peers, handle)
    cached = state.own_devices if own else contact.devices if contact else []
    if cached and not refresh:
        return cached
    reply = await client.server.call(
        "GET", f"/v1/principals/{handle}/devices", response=api.DevicesResponse
    )
    assert reply is not None
    pinned = pinned_identity(state, handle)
    if b64d(reply.identity_key) != pinned:
        if contact is not None:
            contact.changed_identity_key = reply.identity_key
            client._save_now(state)
        raise IdentityChanged(
            f"{handle}'s identity key changed"
            + (" (this contact was verified!)" if contact and contact.verified else "")
            + f"; compare safety numbers with 'hotline verify {handle}' before sending"
        )
    device_list = open_device_list(reply.device_list, pinned, handle)
    known = state.device_list_version if own else contact.device_list_version if contact else 0
    if device_list.version < known:
        raise StaleVersion(f"the server offered an old device list of {handle}")
    # Devices the administrator removed are not encrypted for, even while still signed.
    devices = [d for d in device_list.devices if d.device_id not in reply.blocked]
    if own:
        state.own_devices = devices
        state.device_list_version = device_list.version
    elif contact is not None:
        contact.devices = devices
        contact.device_list_version = device_list.version
    return list(devices)


async def claim_sessions(
    client: HotlineClient,
    state: ClientState,
    account: DeviceAccount,
    handle: str,
    devices: list[DeviceKeys],
) -> None:
    """Claim a one-time key of each device, check its signature, and start Olm sessions."""
    reply = await client.server.call(
        "POST",
        "/v1/keys/claim",
        api.ClaimRequest(handle=handle, device_ids=[d.device_id for d in devices]),
        api.ClaimResponse,
    )
    assert reply is not None
    by_id = {d.device_id: d for d in devices}
    for claimed in reply.keys:
        device = by_id.get(claimed.device_id)
        if device is None:
            continue
        key = b64d(claimed.key)
        # The device signed its one-time key: the server cannot substitute its own.
        verify_device_signature(
            b64d(device.ed25519), DOMAIN_ONE_TIME_KEY, key, b64d(claimed.signature)
        )
        channel.start_session(
            state,
            account,
            client.sessions,
            handle,
            device.device_id,
            b64d(device.curve25519),
            key,
        )
