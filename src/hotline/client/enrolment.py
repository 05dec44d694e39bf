"""Enrolling a new device of a principal remotely, from an existing one (Signal-style linking).

The protocol (server endpoints in :mod:`hotline.server.routes_enrolment`):

1. **New device** (``hotline devices join --server URL``) generates its Olm account, a device
   id, an ephemeral X25519 *link key* and a random 16-byte *secret*. From the secret HKDF
   derives ``auth``, ``binding`` and ``bundle`` keys (:mod:`hotline.crypto.device_link`). It
   registers a pending link: ``POST /v1/device-links`` (unauthenticated, rate-limited per
   address) with its device keys, the link key, SHA-256(``auth``) and
   ``binding_tag = HMAC(binding, device keys || link key)``. The server answers a link id; the
   link is single use and expires in 10 minutes. The device shows the **enrolment code**
   ``hotline-link:<link id>?s=<secret>&server=<url>`` (text and QR) and a 20-digit
   fingerprint of its keys, then polls.
2. **Existing device** (``hotline devices approve CODE``) reads the link
   (``POST /v1/device-links/{id}/open`` with ``auth``: proves knowledge of the secret) and
   checks ``binding_tag``: the server knows neither ``binding`` nor the secret, so it cannot
   substitute its own keys for the new device's. The user compares the fingerprint on both
   screens. The device then builds the **provisioning bundle** (identity private key, handle,
   display name, contacts with pinned keys and verified flags, invites, transcript positions,
   settings, archive and policy pins; *no* message history and no Olm sessions), seals it with
   HPKE base mode (DHKEM-X25519, HKDF-SHA256, ChaCha20-Poly1305) to the link key with
   ``info = "hotline/v1/device-link/bundle" || 0 || link id || 0 || bundle key``, signs the
   new device list (old devices + the new one) with the identity key and uploads both
   (``POST /v1/device-links/{id}/approve``). The server stores them in one transaction after
   checking the signature, that the list names the linked device with its keys, the
   organisation's ``max_devices`` and that the link is unused and unexpired.
3. **New device** collects the bundle once (``POST /v1/device-links/{id}/collect``; the
   server deletes it) with the principal's signed device list, opens it (only the holder of
   the link key *and* the secret can: a server-forged bundle does not open), checks that the
   identity key in the bundle signs a device list naming *its own* keys, creates its keystore
   under the passphrase, logs in and publishes its one-time keys.

The server never sees the secret or the bundle's plaintext. Safety numbers do not change
(same identity key); contacts pick up the new device list the next time they send and verify
it against the identity key they pinned. Errors: ``link_invalid`` (unknown link or wrong
secret, one answer for both), ``link_used``, ``link_expired``, ``forbidden_by_policy``.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, quote, urlsplit

import msgspec

from hotline.client import policy_pin
from hotline.client.cards import open_device_list, sign_device_list
from hotline.client.device_lists import devices_of
from hotline.client.keystore import Keystore
from hotline.client.linked_devices import new_device_state
from hotline.client.state import ClientState
from hotline.client.transport import ServerApi
from hotline.crypto.device_link import (
    LinkPrivateKey,
    derive_link_key,
    link_open,
    link_seal,
    link_tag,
    verify_link_tag,
)
from hotline.crypto.identity import IdentityKey
from hotline.crypto.olm import DeviceAccount
from hotline.crypto.passphrase import DEFAULT_SCRYPT, ScryptParams
from hotline.wire.codec import Version, decode, encode
from hotline.wire.device_link import (
    COLLECT_WINDOW,
    MAX_BUNDLE,
    LinkApprove,
    LinkCollected,
    LinkCreate,
    LinkCreated,
    LinkOffer,
    LinkProof,
)
from hotline.wire.encoding import b64d, b64e
from hotline.wire.errors import (
    AlreadyExists,
    BadSignature,
    LinkExpired,
    LinkInvalid,
    MalformedInput,
    RateLimited,
    ServerUnavailable,
)
from hotline.wire.lists import MAX_DEVICES, DeviceKeys

if TYPE_CHECKING:
    from hotline.client.device import HotlineClient

SCHEME = "hotline-link"
SECRET_SIZE = 16
_BINDING = b"hotline/v1/device-link/binding"
_BUNDLE = b"hotline/v1/device-link/bundle"


class ProvisioningBundle(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What the existing device seals to the new one (plaintext only on the two devices)."""

    v: Version
    link_id: str
    state: ClientState


@dataclass(frozen=True)
class LinkCode:
    """The one-time enrolment code the new device shows: link id, home server, secret."""

    link_id: str
    server_url: str
    secret: bytes

    def __str__(self) -> str:
        return f"{SCHEME}:{self.link_id}?s={b64e(self.secret)}&server={quote(self.server_url)}"

    @classmethod
    def parse(cls, text: str) -> LinkCode:
        """Raises: LinkInvalid if ``text`` is not a well-formed ``hotline-link:`` code."""
        parts = urlsplit(text.strip())
        query = parse_qs(parts.query)
        secret = query.get("s", [""])[0]
        server = query.get("server", [""])[0]
        if parts.scheme != SCHEME or not parts.path or not secret or not server:
            raise LinkInvalid("not a hotline-link: enrolment code; copy it again")
        try:
            raw = b64d(secret, field="secret", max_len=64)
        except MalformedInput:
            raise LinkInvalid("the enrolment code's secret is damaged; copy it again") from None
        if len(raw) < SECRET_SIZE:
            raise LinkInvalid("the enrolment code's secret is too short; copy it again")
        return cls(link_id=parts.path, server_url=server.rstrip("/"), secret=raw)

    def auth(self) -> str:
        """What proves knowledge of the secret to the server (not the secret itself)."""
        return b64e(derive_link_key(self.secret, "auth"))

    def bundle_info(self) -> bytes:
        return b"\x00".join(
            [_BUNDLE, self.link_id.encode("utf-8"), derive_link_key(self.secret, "bundle")]
        )


def _binding_data(device: DeviceKeys, link_key: bytes) -> bytes:
    return b"\x00".join(
        [
            _BINDING,
            device.device_id.encode("utf-8"),
            b64d(device.curve25519) + b64d(device.ed25519) + link_key,
        ]
    )


def key_fingerprint(device: DeviceKeys, link_key: bytes) -> str:
    """20 digits both screens show, so the user knows the approved device is the one in hand."""
    digest = hashlib.sha256(_binding_data(device, link_key)).digest()
    groups = [int.from_bytes(digest[i : i + 5], "big") % 100_000 for i in range(0, 20, 5)]
    return " ".join(f"{g:05d}" for g in groups)


# -- the new device ----------------------------------------------------------------------------
@dataclass
class PendingJoin:
    """The new device's half of a link, in memory until the existing device approves it."""

    code: LinkCode
    account: DeviceAccount
    device: DeviceKeys
    link_key: LinkPrivateKey
    expires_at: float

    @property
    def fingerprint(self) -> str:
        return key_fingerprint(self.device, self.link_key.public_bytes)


async def start_join(server_url: str) -> PendingJoin:
    """Create the new device's keys and register a pending link on ``server_url``.

    Raises:
        ServerUnavailable, RateLimited: from the server.
    """
    server_url = server_url.rstrip("/")
    account = DeviceAccount.generate()
    device = DeviceKeys(
        device_id=secrets.token_urlsafe(9),
        curve25519=b64e(account.curve25519),
        ed25519=b64e(account.ed25519),
    )
    link_key = LinkPrivateKey.generate()
    secret = secrets.token_bytes(SECRET_SIZE)
    auth = derive_link_key(secret, "auth")
    binding = link_tag(
        derive_link_key(secret, "binding"), _binding_data(device, link_key.public_bytes)
    )
    request = LinkCreate(
        v=1,
        device=device,
        link_key=b64e(link_key.public_bytes),
        verifier=b64e(hashlib.sha256(auth).digest()),
        binding=b64e(binding),
    )
    server = ServerApi(server_url)
    try:
        created = await server.call("POST", "/v1/device-links", request, LinkCreated)
    finally:
        await server.close()
    assert created is not None
    code = LinkCode(link_id=created.link_id, server_url=server_url, secret=secret)
    return PendingJoin(code, account, device, link_key, created.expires_at)


async def collect(pending: PendingJoin) -> LinkCollected:
    """One poll. Raises: LinkExpired, LinkUsed, LinkInvalid, ServerUnavailable."""
    server = ServerApi(pending.code.server_url)
    try:
        reply = await server.call(
            "POST",
            f"/v1/device-links/{pending.code.link_id}/collect",
            LinkProof(auth=pending.code.auth()),
            LinkCollected,
        )
    finally:
        await server.close()
    assert reply is not None
    return reply


async def finish_join(
    pending: PendingJoin,
    home: Path,
    passphrase: str,
    *,
    scrypt: ScryptParams = DEFAULT_SCRYPT,
    clock: Callable[[], float] = time.time,
    poll_interval: float = 1.0,
) -> HotlineClient:
    """Wait for the approval, open the bundle, create the keystore in ``home``, log in and
    publish keys; returns the new device open.

    Raises:
        AlreadyExists: a keystore is already in ``home`` (checked before anything else).
        LinkExpired: not approved in time. LinkUsed: the bundle was collected before.
        DecryptionFailed: the bundle does not open (not sealed by the code's holder).
        LinkInvalid, BadSignature: the bundle's identity key does not list this device.
    """
    if Keystore.exists(home):
        raise AlreadyExists(f"a keystore already exists in {home}; use another HOTLINE_HOME")
    while True:
        wait = poll_interval
        try:
            reply = await collect(pending)
            if reply.status == "approved":
                break
        except RateLimited as exc:
            wait = max(poll_interval, float(exc.extra.get("retry_after", poll_interval)))
        except ServerUnavailable:
            pass  # keep polling until the link would have expired anyway
        if clock() > pending.expires_at + COLLECT_WINDOW:
            raise LinkExpired("the enrolment code was not approved in time; run join again")
        await asyncio.sleep(wait)
    state = open_bundle(pending, reply)
    return await _create_device(pending, state, home, passphrase, scrypt, clock)


def open_bundle(pending: PendingJoin, reply: LinkCollected) -> ClientState:
    """Open and check the collected bundle (see :func:`finish_join` for the errors)."""
    if reply.bundle is None or reply.device_list is None or reply.handle is None:
        raise MalformedInput("the server answered 'approved' without the bundle")
    sealed = b64d(reply.bundle, field="bundle", max_len=MAX_BUNDLE)
    plaintext = link_open(pending.link_key, sealed, pending.code.bundle_info())
    bundle = decode(plaintext, ProvisioningBundle, max_size=MAX_BUNDLE, what="bundle")
    state = bundle.state
    if bundle.link_id != pending.code.link_id or state.device_id != pending.device.device_id:
        raise LinkInvalid("the provisioning bundle is for another link or device")
    if state.handle != reply.handle:
        raise LinkInvalid("the provisioning bundle is for another principal")
    identity = IdentityKey.from_bytes(b64d(state.identity_key, field="identity_key"))
    try:
        listed = open_device_list(reply.device_list, identity.public.to_bytes(), state.handle)
    except BadSignature:
        raise BadSignature("the device list is not signed by the bundle's identity key") from None
    if pending.device not in listed.devices:
        raise LinkInvalid("the principal's signed device list does not name this device")
    state.own_devices = list(listed.devices)
    state.device_list_version = listed.version
    state.server_url = pending.code.server_url
    # Whatever the bundle carried, a new device starts with no sessions and no history.
    state.account_pickle = ""
    state.sessions = {}
    state.messages = []
    state.history_entries = 0  # this device's history log starts empty
    state.outbox = []
    state.pending_records = []
    state.seen_message_ids = []
    return state


async def _create_device(
    pending: PendingJoin,
    state: ClientState,
    home: Path,
    passphrase: str,
    scrypt: ScryptParams,
    clock: Callable[[], float],
) -> HotlineClient:
    from hotline.client.device import HotlineClient

    keystore = Keystore.create(home, passphrase, state, scrypt=scrypt)
    state.account_pickle = pending.account.pickle(keystore.pickle_key)
    keystore.save(state)
    client = HotlineClient(keystore, ServerApi(state.server_url), clock)
    await client.publish_keys()
    return client


# -- the existing device -----------------------------------------------------------------------
@dataclass(frozen=True)
class LinkRequest:
    """A pending link as the approving device sees it (keys checked against the code)."""

    code: LinkCode
    device: DeviceKeys
    link_key: bytes
    expires_at: float

    @property
    def fingerprint(self) -> str:
        return key_fingerprint(self.device, self.link_key)


async def open_link(client: HotlineClient, code_text: str) -> LinkRequest:
    """Read the pending link named by an enrolment code (nothing is changed).

    Raises:
        LinkInvalid: malformed code, another home server, unknown link or wrong secret.
        LinkUsed, LinkExpired: from the server.
        BadSignature: the server's keys for the link are not the ones the code vouches for.
    """
    code = LinkCode.parse(code_text)
    mine = client.keystore.load().server_url.rstrip("/")
    if code.server_url != mine:
        raise LinkInvalid(f"this code is for {code.server_url}, not your home server {mine}")
    await client._ensure_login()
    offer = await client.server.call(
        "POST",
        f"/v1/device-links/{code.link_id}/open",
        LinkProof(auth=code.auth()),
        LinkOffer,
    )
    assert offer is not None
    link_key = b64d(offer.link_key, field="link_key")
    verify_link_tag(
        derive_link_key(code.secret, "binding"),
        _binding_data(offer.device, link_key),
        b64d(offer.binding, field="binding"),
    )
    return LinkRequest(code, offer.device, link_key, offer.expires_at)


async def approve_link(client: HotlineClient, request: LinkRequest) -> None:
    """Seal the provisioning bundle to the new device and list it (signed by the identity key).

    Raises:
        ForbiddenByPolicy: the organisation's ``max_devices`` would be exceeded.
        MalformedInput: already :data:`MAX_DEVICES` devices.
        AlreadyExists: the device is already listed.
        LinkUsed, LinkExpired, LinkInvalid, StaleVersion: from the server.
    """
    await client._ensure_login()
    async with client._tx() as (state, _):
        devices = await devices_of(client, state, state.handle, refresh=True)
        if request.device.device_id in {d.device_id for d in devices}:
            raise AlreadyExists(f"device {request.device.device_id} is already yours")
        if len(devices) >= MAX_DEVICES:
            raise MalformedInput(f"at most {MAX_DEVICES} devices per principal")
        policy_pin.check_count(state, "max_devices", len(devices) + 1)
        fresh = new_device_state(state, request.device)
        bundle = ProvisioningBundle(v=1, link_id=request.code.link_id, state=fresh)
        sealed = link_seal(request.link_key, encode(bundle), request.code.bundle_info())
        if len(sealed) > MAX_BUNDLE:
            raise MalformedInput(f"the provisioning bundle exceeds {MAX_BUNDLE} bytes")
        identity = IdentityKey.from_bytes(b64d(state.identity_key))
        signed = sign_device_list(
            identity, state.handle, fresh.device_list_version, fresh.own_devices, client.clock()
        )
        await client.server.call(
            "POST",
            f"/v1/device-links/{request.code.link_id}/approve",
            LinkApprove(auth=request.code.auth(), bundle=b64e(sealed), device_list=signed),
        )
        state.own_devices = list(fresh.own_devices)
        state.device_list_version = fresh.device_list_version


__all__ = [
    "LinkCode",
    "LinkRequest",
    "PendingJoin",
    "ProvisioningBundle",
    "approve_link",
    "collect",
    "finish_join",
    "key_fingerprint",
    "open_bundle",
    "open_link",
    "start_join",
]
