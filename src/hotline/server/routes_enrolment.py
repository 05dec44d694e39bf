"""Device links (``/v1/device-links``): a principal enrols a new device from an existing one.

The server is a mailbox for the exchange and enforces its rules (single use, 10-minute expiry,
the secret's verifier, the signed device list, the ``max_devices`` policy); it stores only
public keys, the SHA-256 of the link's auth value and, until the new device collects it, the
bundle sealed to the new device. See :mod:`hotline.client.enrolment` for the protocol.
"""

from __future__ import annotations

import hashlib
import secrets

from starlette.requests import Request
from starlette.responses import Response

from hotline.server.admin_devices import refuse_blocked
from hotline.server.context import authenticate, limit_anonymous, read_struct, state_of
from hotline.server.policy_gate import check_devices
from hotline.server.responses import ok
from hotline.server.signed_lists import verify_device_list
from hotline.store import DeviceLinkRow
from hotline.wire.codec import Signed
from hotline.wire.device_link import (
    COLLECT_WINDOW,
    LINK_TTL,
    MAX_BUNDLE,
    LinkApprove,
    LinkCollected,
    LinkCreate,
    LinkCreated,
    LinkOffer,
    LinkProof,
)
from hotline.wire.encoding import b64d, b64e
from hotline.wire.errors import LinkInvalid, UnknownPrincipal
from hotline.wire.lists import DeviceKeys


def _link_id(request: Request) -> str:
    link_id = str(request.path_params["link_id"])
    if not 1 <= len(link_id) <= 64:
        raise LinkInvalid("no such device link, or the code's secret is wrong")
    return link_id


def _verifier(auth: str) -> bytes:
    return hashlib.sha256(b64d(auth, field="auth")).digest()


async def create_link(request: Request) -> Response:
    """The new device registers itself as waiting (no account yet: rate-limited per address)."""
    limit_anonymous(request)
    state = state_of(request)
    body = await read_struct(request, LinkCreate)
    now = state.now()
    link = DeviceLinkRow(
        link_id=secrets.token_urlsafe(12),
        verifier=b64d(body.verifier, field="verifier"),
        device_id=body.device.device_id,
        curve25519=b64d(body.device.curve25519, field="curve25519"),
        ed25519=b64d(body.device.ed25519, field="ed25519"),
        link_key=b64d(body.link_key, field="link_key"),
        binding=b64d(body.binding, field="binding"),
        created_at=now,
        expires_at=now + LINK_TTL,
    )
    await state.store.create_device_link(link, now)
    return ok(LinkCreated(link_id=link.link_id, expires_at=link.expires_at), status=201)


async def open_link(request: Request) -> Response:
    """An existing device reads a pending link (knowing its secret) before approving it."""
    await authenticate(request)
    state = state_of(request)
    body = await read_struct(request, LinkProof)
    link = await state.store.open_device_link(_link_id(request), _verifier(body.auth), state.now())
    return ok(
        LinkOffer(
            link_id=link.link_id,
            device=DeviceKeys(
                device_id=link.device_id,
                curve25519=b64e(link.curve25519),
                ed25519=b64e(link.ed25519),
            ),
            link_key=b64e(link.link_key),
            binding=b64e(link.binding),
            expires_at=link.expires_at,
        )
    )


async def approve_link(request: Request) -> Response:
    """Store the sealed bundle and the new signed device list in one transaction."""
    caller = await authenticate(request)
    state = state_of(request)
    body = await read_struct(request, LinkApprove)
    principal = await state.store.get_principal(caller.handle)
    if principal is None:
        raise UnknownPrincipal(caller.handle)
    now = state.now()
    signed, devices = verify_device_list(
        body.device_list, principal.identity_key, caller.handle, now
    )
    await check_devices(state, caller, len(devices))
    await refuse_blocked(state.store, devices)
    await state.store.approve_device_link(
        _link_id(request),
        _verifier(body.auth),
        handle=caller.handle,
        bundle=b64d(body.bundle, field="bundle", max_len=MAX_BUNDLE),
        device_list=signed,
        devices=devices,
        now=now,
        collect_until=now + COLLECT_WINDOW,
    )
    return ok({"version": signed.version})


async def collect_link(request: Request) -> Response:
    """The new device's poll: ``pending``, or (once) its sealed bundle and the device list."""
    limit_anonymous(request)
    state = state_of(request)
    body = await read_struct(request, LinkProof)
    link = await state.store.collect_device_link(
        _link_id(request), _verifier(body.auth), state.now()
    )
    if link.state == "pending" or link.handle is None or link.bundle is None:
        return ok(LinkCollected(status="pending"))
    principal = await state.store.get_principal(link.handle)
    if principal is None:
        raise UnknownPrincipal(link.handle)
    listed = principal.device_list
    return ok(
        LinkCollected(
            status="approved",
            handle=link.handle,
            bundle=b64e(link.bundle),
            device_list=Signed(payload=b64e(listed.payload), signature=b64e(listed.signature)),
        )
    )
