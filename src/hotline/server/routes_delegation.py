"""Delegation routes: a principal publishes and revokes grants; contacts read them (``/v1``).

``POST /v1/delegations`` takes a grant the principal signed; the server verifies it against
the principal's registered identity key, checks that the aide is an account of this server
with the identity key the grant names, and applies the organisation's policy (``aides``):
refusals are recorded as every policy refusal is. ``GET /v1/principals/{handle}/delegations``
answers whoever may see the principal's device list, with each active grant and its aide's
signed device list, plus the signed revocations of grants not yet expired.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from hotline.policy.grants import open_grant, open_revocation
from hotline.server.context import Caller, ServerState, authenticate, read_struct, state_of
from hotline.server.delegation import acting_for, parsed
from hotline.server.federation_client import domain_of
from hotline.server.lookups import visible_principal
from hotline.server.policy_gate import refuse
from hotline.server.responses import ok
from hotline.store.delegation_base import GrantRow
from hotline.wire.codec import Signed
from hotline.wire.delegation import (
    MAX_AIDES,
    DelegationGrant,
    DelegationsResponse,
    GrantUpload,
    PublishedGrant,
    RevocationUpload,
)
from hotline.wire.encoding import b64d, b64e
from hotline.wire.errors import MalformedInput, NotDelegated, UnknownPrincipal
from hotline.wire.federation import RemoteLookup

#: how far in the future a grant's issue time may lie (clock skew between device and server)
SKEW = 300.0
#: how long an expired grant stays published (messages relayed before expiry still verify)
EXPIRED_GRACE = 30 * 86400.0


async def _principal_key(state: ServerState, handle: str) -> bytes:
    principal = await state.store.get_principal(handle)
    if principal is None:
        raise UnknownPrincipal(handle)
    return principal.identity_key


async def _check_policy(state: ServerState, caller: Caller, grant: DelegationGrant) -> int:
    """The most aides allowed; refuses (recorded) what policy forbids. Raises: ForbiddenByPolicy."""
    policy = state.policy
    if policy is None:
        return MAX_AIDES
    if not policy.aides.allowed:
        await refuse(state, caller, "aides.allowed", "aides are not allowed")
    days = (grant.expires_at - state.now()) / 86400
    if days > policy.aides.max_grant_days + 1 / 24:
        await refuse(
            state,
            caller,
            "aides.max_grant_days",
            f"a grant valid {days:.0f} days; at most {policy.aides.max_grant_days}",
        )
    if policy.aides.max_aides == 0:
        await refuse(state, caller, "aides.max_aides", "no aides allowed")
    return policy.aides.max_aides


async def _check_aide(state: ServerState, grant: DelegationGrant) -> None:
    """Raises: MalformedInput unless the aide is an account here with the named identity key."""
    if domain_of(grant.aide) != state.config.domain:
        raise MalformedInput("an aide must be an account of the principal's own home server")
    aide = await state.store.get_principal(grant.aide)
    if aide is None or aide.identity_key != b64d(grant.aide_identity_key):
        raise MalformedInput(f"{grant.aide} is not an account here with that identity key")


async def grant(request: Request) -> Response:
    caller = await authenticate(request)
    state = state_of(request)
    body = await read_struct(request, GrantUpload)
    key = await _principal_key(state, caller.handle)
    opened = open_grant(body.grant, key, caller.handle)
    now = state.now()
    if opened.expires_at <= now or opened.issued_at > now + SKEW:
        raise MalformedInput("the grant must be issued now and expire in the future")
    await _check_aide(state, opened)
    max_active = await _check_policy(state, caller, opened)
    await state.store.put_grant(
        GrantRow(
            grant_id=opened.grant_id,
            principal=caller.handle,
            aide=opened.aide,
            payload=b64d(body.grant.payload),
            signature=b64d(body.grant.signature),
            expires_at=float(opened.expires_at),
            created_at=now,
        ),
        max_active=max_active,
        now=now,
    )
    return ok({"grant_id": opened.grant_id}, status=201)


async def revoke(request: Request) -> Response:
    caller = await authenticate(request)
    state = state_of(request)
    body = await read_struct(request, RevocationUpload)
    key = await _principal_key(state, caller.handle)
    revocation = open_revocation(body.revocation, key, caller.handle)
    row = await state.store.get_grant(revocation.grant_id)
    if row is None or row.principal != caller.handle or row.aide != revocation.aide:
        raise NotDelegated(
            f"{caller.handle} has no grant {revocation.grant_id} to {revocation.aide}"
        )
    await state.store.revoke_grant(
        revocation.grant_id,
        caller.handle,
        b64d(body.revocation.payload),
        b64d(body.revocation.signature),
        state.now(),
    )
    return ok({"grant_id": revocation.grant_id, "revoked": True})


async def delegations_response(
    state: ServerState, requester: str, handle: str, acting_for: list[str] | None = None
) -> DelegationsResponse:
    """Raises: NotAContact (as the device list)."""
    await visible_principal(state.store, requester, handle, acting_for)
    grants: list[PublishedGrant] = []
    revocations: list[Signed] = []
    # Recently expired grants stay published: a message relayed in time still verifies.
    for row in await state.store.grants_of(handle, state.now() - EXPIRED_GRACE):
        if row.revoked_at is not None:
            if row.revocation_payload is not None and row.revocation_signature is not None:
                revocations.append(
                    Signed(
                        payload=b64e(row.revocation_payload),
                        signature=b64e(row.revocation_signature),
                    )
                )
            continue
        aide = await state.store.get_principal(parsed(row).aide)
        if aide is None:
            continue
        grants.append(
            PublishedGrant(
                grant=Signed(payload=b64e(row.payload), signature=b64e(row.signature)),
                aide_device_list=Signed(
                    payload=b64e(aide.device_list.payload),
                    signature=b64e(aide.device_list.signature),
                ),
            )
        )
    return DelegationsResponse(
        handle=handle, grants=grants[-MAX_AIDES:], revocations=revocations[-256:]
    )


async def get_delegations(request: Request) -> Response:
    caller = await authenticate(request)
    state = state_of(request)
    handle = str(request.path_params["handle"])
    if domain_of(handle) != state.config.domain:
        grants = await acting_for(state.store, caller.handle, state.now())
        lookup = RemoteLookup(requester=caller.handle, handle=handle, acting_for=grants)
        return ok(
            await state.peers.call(
                state, domain_of(handle), "delegations", lookup, DelegationsResponse
            )
        )
    return ok(await delegations_response(state, caller.handle, handle))


__all__ = ["delegations_response", "get_delegations", "grant", "revoke"]
