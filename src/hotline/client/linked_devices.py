"""A principal's other devices: provisioning a new one, listing, removing.

A new device on another machine links itself remotely with an enrolment code
(:mod:`hotline.client.enrolment`: ``hotline devices join`` / ``approve``). Here, a new device
can also be provisioned *locally from an existing one*: the existing device creates the new
keystore (with the principal's identity key, the pinned contacts and the
transcript positions, but no message history), then signs and uploads the new device list. The
safety number does not change: it is bound to the identity key, not to devices. Contacts pick
up the new list the next time they send (the server refuses a message that misses a device) and
verify it against the identity key they pinned.
"""

from __future__ import annotations

import copy
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from hotline.client import policy_pin
from hotline.client.cards import sign_device_list
from hotline.client.device_lists import devices_of
from hotline.client.group_state import GroupState
from hotline.client.keystore import Keystore
from hotline.client.state import ClientState
from hotline.crypto.identity import IdentityKey
from hotline.crypto.olm import DeviceAccount
from hotline.crypto.passphrase import DEFAULT_SCRYPT, ScryptParams
from hotline.wire import api
from hotline.wire.encoding import b64d, b64e
from hotline.wire.errors import AlreadyExists, MalformedInput, UnknownDevice
from hotline.wire.lists import MAX_DEVICES, DeviceKeys

if TYPE_CHECKING:
    from hotline.client.device import HotlineClient


def groups_for_new_device(state: ClientState) -> dict[str, GroupState]:
    """The rosters in force, without any Megolm session: members share their current key with
    the new device at their next message (it is new in their device lists), so it reads
    what is sent from then on, never what came before."""
    return {
        gid: GroupState(
            group_id=gid,
            name=g.name,
            roster=g.roster,
            signature=g.signature,
            version=g.version,
            active=g.active,
        )
        for gid, g in state.groups.items()
    }


def new_device_state(state: ClientState, keys: DeviceKeys) -> ClientState:
    """What a new device of this principal starts from (no account, no message history).

    Identity key, contacts (pinned keys and verified flags), invites, transcript positions,
    settings, policy and archive pins are copied; contacts' device lists are re-fetched and
    re-verified by the new device. The own device list names the new device (version + 1).
    """
    fresh = ClientState(
        v=1,
        handle=state.handle,
        display_name=state.display_name,
        server_url=state.server_url,
        device_id=keys.device_id,
        identity_key=state.identity_key,
        account_pickle="",
        device_list_version=state.device_list_version + 1,
        own_devices=[*state.own_devices, keys],
        allowlist_version=state.allowlist_version,
        contacts=copy.deepcopy(state.contacts),
        invites=copy.deepcopy(state.invites),
        transcripts=copy.deepcopy(state.transcripts),
        settings=copy.deepcopy(state.settings),
        policy=copy.deepcopy(state.policy),
        archive=copy.deepcopy(state.archive),
        last_head=copy.deepcopy(state.last_head),
        groups=groups_for_new_device(state),
        group_peers=copy.deepcopy(state.group_peers),
    )
    for contact in fresh.contacts.values():
        contact.devices = []  # re-fetched and re-verified by the new device
        contact.device_list_version = 0
    return fresh


async def publish_device_list(
    client: HotlineClient, state: ClientState, devices: list[DeviceKeys]
) -> None:
    identity = IdentityKey.from_bytes(b64d(state.identity_key))
    version = state.device_list_version + 1
    signed = sign_device_list(identity, state.handle, version, devices, client.clock())
    await client.server.call("PUT", "/v1/device-list", api.SignedListUpload(signed=signed))
    state.own_devices = devices
    state.device_list_version = version


async def provision_device(
    client: HotlineClient, home: Path, passphrase: str, *, scrypt: ScryptParams = DEFAULT_SCRYPT
) -> HotlineClient:
    """Create a new device of this principal in ``home`` and register it; returns it open.

    Raises:
        AlreadyExists: a keystore is already in ``home``.
        MalformedInput: the principal already has the maximum number of devices.
    """
    from hotline.client.device import HotlineClient

    if Keystore.exists(home):
        raise AlreadyExists(f"a keystore already exists in {home}")
    await client._ensure_login()
    account = DeviceAccount.generate()
    device_id = secrets.token_urlsafe(9)
    async with client._tx() as (state, _):
        await devices_of(client, state, state.handle, refresh=True)
        if len(state.own_devices) >= MAX_DEVICES:
            raise MalformedInput(f"at most {MAX_DEVICES} devices per principal")
        policy_pin.check_count(state, "max_devices", len(state.own_devices) + 1)
        keys = DeviceKeys(
            device_id=device_id,
            curve25519=b64e(account.curve25519),
            ed25519=b64e(account.ed25519),
        )
        fresh = new_device_state(state, keys)
        keystore = Keystore.create(home, passphrase, fresh, scrypt=scrypt)
        fresh.account_pickle = account.pickle(keystore.pickle_key)
        keystore.save(fresh)
        try:
            await publish_device_list(client, state, fresh.own_devices)
        except BaseException:
            for name in home.iterdir():
                name.unlink()
            raise
    new = HotlineClient(keystore, type(client.server)(fresh.server_url), client.clock)
    await new.publish_keys()
    return new


async def remove_device(client: HotlineClient, device_id: str) -> None:
    """Take a device (lost, stolen, retired) off the signed device list.

    From then on the server refuses it and no one encrypts for it.

    Raises:
        UnknownDevice: no such device of this principal.
        MalformedInput: it is this device (remove it from another one).
    """
    await client._ensure_login()
    async with client._tx() as (state, _):
        devices = await devices_of(client, state, state.handle, refresh=True)
        if device_id == state.device_id:
            raise MalformedInput("this is the device you are using; remove it from another one")
        if device_id not in {d.device_id for d in devices}:
            raise UnknownDevice(f"{device_id} is not one of your devices")
        await publish_device_list(client, state, [d for d in devices if d.device_id != device_id])
        for key in [k for k in state.sessions if k == f"{state.handle}/{device_id}"]:
            del state.sessions[key]


async def list_devices(client: HotlineClient) -> list[DeviceKeys]:
    """My devices as the signed list on the server says (verified against my identity key)."""
    await client._ensure_login()
    async with client._tx() as (state, _):
        return await devices_of(client, state, state.handle, refresh=True)
