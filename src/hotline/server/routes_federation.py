"""``POST /v1/federation``: what pinned peer servers may ask of us, each request signed."""

from __future__ import annotations

import hashlib
import secrets

from starlette.requests import Request
from starlette.responses import Response

from hotline.server.context import Caller, ServerState, state_of
from hotline.server.delegation import readers
from hotline.server.federation_auth import open_request
from hotline.server.federation_client import domain_of
from hotline.server.lookups import claim_response, devices_response
from hotline.server.policy_gate import check_content
from hotline.server.responses import ok
from hotline.server.routes_account import check_invite
from hotline.server.routes_delegation import delegations_response
from hotline.server.routes_groups import deliver_remote_group
from hotline.server.routes_messages import delivery_kind
from hotline.store import DeliveryItem
from hotline.wire.codec import decode, encode
from hotline.wire.encoding import b64d
from hotline.wire.errors import (
    BodyTooLarge,
    DeviceListMismatch,
    HotlineError,
    NotAContact,
    WrongDestination,
    WrongOrigin,
)
from hotline.wire.federation import (
    MAX_FEDERATION_BODY,
    SIGNATURE_HEADER,
    DeliverBatch,
    DeliverResponse,
    DeliveryResult,
    FederationRequest,
    RemoteContactRequest,
    RemoteLookup,
    RemoteMessage,
)


async def _body(request: Request) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_FEDERATION_BODY:
            raise BodyTooLarge(f"federation request exceeds {MAX_FEDERATION_BODY} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def federation(request: Request) -> Response:
    state = state_of(request)
    signed, payload = await open_request(
        state.store,
        state.config.domain,
        await _body(request),
        request.headers.get(SIGNATURE_HEADER, ""),
        state.now(),
    )
    if signed.kind == "deliver":
        return ok(await _deliver(state, signed, decode(payload, DeliverBatch)))
    if signed.kind == "contact_request":
        await _contact_request(state, signed, decode(payload, RemoteContactRequest))
        return ok({"accepted": True})
    if signed.kind in ("devices", "claim", "delegations"):
        lookup = decode(payload, RemoteLookup)
        for handle in (lookup.requester, *lookup.acting_for):
            _check_origin(signed, handle)
        _check_local(state, lookup.handle)
        acting = list(lookup.acting_for)
        if signed.kind == "devices":
            return ok(await devices_response(state.store, lookup.requester, lookup.handle, acting))
        if signed.kind == "delegations":
            return ok(await delegations_response(state, lookup.requester, lookup.handle, acting))
        return ok(
            await claim_response(
                state.store, lookup.requester, lookup.handle, lookup.device_ids, acting_for=acting
            )
        )
    return ok({"pong": state.config.domain})


def _check_origin(signed: FederationRequest, handle: str) -> None:
    """A peer speaks only for its own users. Raises: WrongOrigin."""
    if domain_of(handle) != signed.origin:
        raise WrongOrigin(f"{signed.origin} may not speak for {handle}")


def _check_local(state: ServerState, handle: str) -> None:
    if domain_of(handle) != state.config.domain:
        raise WrongDestination(f"{handle} is not a user of {state.config.domain}")


async def _deliver(
    state: ServerState, signed: FederationRequest, batch: DeliverBatch
) -> DeliverResponse:
    # Refuse the whole request before storing anything if the peer speaks for strangers.
    for message in batch.messages:
        _check_origin(signed, message.sender)
        if message.on_behalf_of is not None:
            _check_origin(signed, message.on_behalf_of)
        _check_local(state, message.to)
    results = []
    for message in batch.messages:
        try:
            stored = await _deliver_one(state, message)
        except HotlineError as exc:
            results.append(
                DeliveryResult(
                    message_id=message.message_id,
                    status="refused",
                    code=exc.code,
                    detail=exc.detail,
                )
            )
            continue
        results.append(
            DeliveryResult(message_id=message.message_id, status="ok" if stored else "duplicate")
        )
    return DeliverResponse(results=results)


async def _deliver_one(state: ServerState, message: RemoteMessage) -> bool:
    if message.group:
        return await deliver_remote_group(state, message)
    # An aide's message: the origin checked the grant; the recipient must allow the principal.
    writer = message.on_behalf_of or message.sender
    context = await state.store.send_context(
        message.sender_device, message.sender, message.to, state.now(), message.on_behalf_of
    )
    if not context.allowed and not await state.store.shares_group(message.to, writer):
        raise NotAContact(f"{message.to} does not accept messages from {writer}")
    # the recipient's devices and those of its reading aides (the writer's are on its server)
    devices = set(context.recipient_devices) | readers(context.grants, {message.to})
    addressed = [c.device_id for c in message.ciphertexts]
    if set(addressed) != devices or len(addressed) != len(devices):
        raise DeviceListMismatch(
            "encrypt for exactly the current devices", expected=sorted(devices)
        )
    await check_content(state, Caller(message.sender_device, message.sender), message.content_class)
    kind = delivery_kind(message.content_class)
    items = [
        DeliveryItem(c.device_id, kind, bytes([c.type]) + b64d(c.body, field="body"))
        for c in message.ciphertexts
    ]
    stored = await state.store.enqueue(
        message_id=message.message_id,
        sender_handle=message.sender,
        sender_device=message.sender_device,
        items=items,
        now=state.now(),
    )
    state.hub.notify(addressed)
    return stored


async def _contact_request(
    state: ServerState, signed: FederationRequest, body: RemoteContactRequest
) -> None:
    from hotline.server.routes_messages import ContactRequestNotice

    _check_origin(signed, body.sender)
    _check_local(state, body.to)
    invite = await state.store.get_invite(body.invite_id)
    secret_hash = hashlib.sha256(b64d(body.invite_secret, field="invite_secret")).digest()
    check_invite(invite, body.to, secret_hash, state.now())
    devices = [d.device_id for d in await state.store.list_devices(body.to)]
    notice = encode(ContactRequestNotice(body.sender, body.card, body.invite_id))
    await state.store.enqueue(
        message_id=secrets.token_urlsafe(16),
        sender_handle=body.sender,
        sender_device="remote",
        items=[DeliveryItem(d, "contact_request", notice) for d in devices],
        now=state.now(),
    )
    state.hub.notify(devices)
