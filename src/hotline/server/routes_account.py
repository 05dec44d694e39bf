"""Registration, device authentication, keys, signed lists and invites (``/v1``)."""

from __future__ import annotations

import hmac
import secrets

from starlette.requests import Request
from starlette.responses import Response

from hotline.crypto.identity import DOMAIN_AUTH
from hotline.crypto.olm import verify_device_signature
from hotline.server.admin_devices import refuse_blocked
from hotline.server.context import (
    authenticate,
    limit_anonymous,
    read_struct,
    state_of,
    token_hash,
)
from hotline.server.delegation import acting_for
from hotline.server.federation_client import domain_of
from hotline.server.lookups import claim_response, devices_response
from hotline.server.policy_gate import check_card_validity, check_contacts, check_devices
from hotline.server.responses import ok
from hotline.server.signed_lists import verify_allowlist, verify_device_list, verify_one_time_key
from hotline.store import DeviceRow, InviteRow
from hotline.wire import api
from hotline.wire.encoding import b64d, b64e
from hotline.wire.errors import (
    ChallengeInvalid,
    DeviceBlocked,
    InviteInvalid,
    MalformedInput,
    UnknownDevice,
    UnknownPrincipal,
)
from hotline.wire.federation import RemoteLookup


def auth_message(challenge: bytes, domain: str) -> bytes:
    """What a device signs to log in: the challenge bound to this server's domain."""
    return challenge + b"\x00" + domain.encode("utf-8")


async def register(request: Request) -> Response:
    limit_anonymous(request)
    state = state_of(request)
    body = await read_struct(request, api.RegisterRequest)
    if not body.handle.endswith("@" + state.config.domain):
        raise MalformedInput(f"handles on this server end with @{state.config.domain}")
    identity_key = b64d(body.identity_key, field="identity_key")
    now = state.now()
    signed, devices = verify_device_list(body.device_list, identity_key, body.handle, now)
    if [d.device_id for d in devices] != [body.device.device_id] or devices[0].curve25519 != b64d(
        body.device.curve25519
    ):
        raise MalformedInput("the signed device list must name exactly the registering device")
    await state.store.create_principal(
        token_hash=token_hash(body.enrolment_token),
        handle=body.handle,
        display_name=body.display_name,
        identity_key=identity_key,
        device=devices[0],
        device_list=signed,
        now=now,
    )
    return ok({"handle": body.handle}, status=201)


async def challenge(request: Request) -> Response:
    limit_anonymous(request)
    state = state_of(request)
    body = await read_struct(request, api.ChallengeRequest)
    if await state.store.is_blocked(body.device_id):
        raise DeviceBlocked("this device was removed by the administrator")
    if await state.store.get_device(body.device_id) is None:
        raise UnknownDevice("this device is not registered here")
    nonce = secrets.token_bytes(32)
    expires = state.now() + state.config.challenge_ttl
    await state.store.create_challenge(nonce, body.device_id, expires)
    return ok(api.ChallengeResponse(challenge=b64e(nonce), expires_at=expires))


async def token(request: Request) -> Response:
    limit_anonymous(request)
    state = state_of(request)
    body = await read_struct(request, api.TokenRequest)
    device = await state.store.get_device(body.device_id)
    if device is None:
        raise UnknownDevice("this device is not registered here")
    nonce = b64d(body.challenge, field="challenge")
    if len(nonce) != 32:
        raise ChallengeInvalid("challenge unknown")
    verify_device_signature(
        device.ed25519,
        DOMAIN_AUTH,
        auth_message(nonce, state.config.domain),
        b64d(body.signature, field="signature"),
    )
    # Consumed only after the signature checked out, so a forger cannot burn challenges.
    await state.store.consume_challenge(nonce, device.device_id, state.now())
    session = secrets.token_urlsafe(32)
    expires = state.now() + state.config.token_ttl
    await state.store.create_session(token_hash(session), device.device_id, expires)
    return ok(api.TokenResponse(token=session, expires_at=expires, handle=device.handle))


async def upload_keys(request: Request) -> Response:
    caller = await authenticate(request)
    state = state_of(request)
    body = await read_struct(request, api.KeysUpload)
    device = await state.store.get_device(caller.device_id)
    if device is None:
        raise UnknownDevice("device removed")
    triples = [verify_one_time_key(device, k) for k in body.one_time_keys]
    fallback = verify_one_time_key(device, body.fallback_key) if body.fallback_key else None
    count = (
        await state.store.put_one_time_keys(device.device_id, triples)
        if triples
        else (await state.store.count_one_time_keys(device.device_id))
    )
    if fallback is not None:
        await state.store.set_fallback_key(device.device_id, *fallback)
    return ok(api.KeysUploadResponse(one_time_key_count=count))


async def claim_keys(request: Request) -> Response:
    caller = await authenticate(request)
    state = state_of(request)
    body = await read_struct(request, api.ClaimRequest)
    if domain_of(body.handle) != state.config.domain:
        lookup = RemoteLookup(
            requester=caller.handle,
            handle=body.handle,
            device_ids=body.device_ids,
            acting_for=await acting_for(state.store, caller.handle, state.now()),
        )
        return ok(
            await state.peers.call(
                state, domain_of(body.handle), "claim", lookup, api.ClaimResponse
            )
        )
    return ok(
        await claim_response(
            state.store,
            caller.handle,
            body.handle,
            body.device_ids,
            exclude_device=caller.device_id,
        )
    )


async def get_devices(request: Request) -> Response:
    caller = await authenticate(request)
    state = state_of(request)
    handle = str(request.path_params["handle"])
    if domain_of(handle) != state.config.domain:
        grants = await acting_for(state.store, caller.handle, state.now())
        lookup = RemoteLookup(requester=caller.handle, handle=handle, acting_for=grants)
        return ok(
            await state.peers.call(state, domain_of(handle), "devices", lookup, api.DevicesResponse)
        )
    return ok(await devices_response(state.store, caller.handle, handle))


async def put_device_list(request: Request) -> Response:
    caller = await authenticate(request)
    state = state_of(request)
    body = await read_struct(request, api.SignedListUpload)
    principal = await state.store.get_principal(caller.handle)
    if principal is None:
        raise UnknownPrincipal(caller.handle)
    signed, devices = verify_device_list(
        body.signed, principal.identity_key, caller.handle, state.now()
    )
    await check_devices(state, caller, len(devices))
    await refuse_blocked(state.store, devices)
    await state.store.set_device_list(caller.handle, signed, devices)
    return ok({"version": signed.version})


async def put_allowlist(request: Request) -> Response:
    caller = await authenticate(request)
    store = state_of(request).store
    body = await read_struct(request, api.SignedListUpload)
    principal = await store.get_principal(caller.handle)
    if principal is None:
        raise UnknownPrincipal(caller.handle)
    signed, members = verify_allowlist(body.signed, principal.identity_key, caller.handle)
    await check_contacts(state_of(request), caller, len(members))
    await store.set_allowlist(caller.handle, signed, members)
    return ok({"version": signed.version})


async def create_invite(request: Request) -> Response:
    caller = await authenticate(request)
    store = state_of(request).store
    body = await read_struct(request, api.InviteCreate)
    await check_card_validity(state_of(request), caller, float(body.expires_at))
    await store.put_invite(
        InviteRow(
            invite_id=body.invite_id,
            handle=caller.handle,
            verifier=b64d(body.verifier, field="verifier"),
            expires_at=float(body.expires_at),
            revoked=False,
        )
    )
    return ok({"invite_id": body.invite_id}, status=201)


async def revoke_invite(request: Request) -> Response:
    caller = await authenticate(request)
    await state_of(request).store.revoke_invite(
        caller.handle, str(request.path_params["invite_id"])
    )
    return ok({"revoked": True})


def check_invite(invite: InviteRow | None, owner: str, secret_hash: bytes, now: float) -> None:
    """Raises: InviteInvalid, with one message for every cause (no oracle)."""
    valid = (
        invite is not None
        and invite.handle == owner
        and hmac.compare_digest(invite.verifier, secret_hash)
        and not invite.revoked
        and invite.expires_at > now
    )
    if not valid:
        raise InviteInvalid(
            "this card's invite is not valid (unknown, revoked or expired); "
            "ask its owner for a new card"
        )


__all__ = ["DeviceRow", "auth_message", "check_invite"]
