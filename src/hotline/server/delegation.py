"""Server-side checks of delegation: who an aide's grant lets see whom, and who a message
must reach when a principal has aides (the "audience" of a handle).

The server verified every stored grant against the principal's registered identity key when
it was uploaded (``routes_delegation``); here it only reads them. An aide's message for a
principal is accepted only if the recipient allows the principal and the grant is active
(unexpired, unrevoked, with the ``answer`` right): else ``not_delegated``.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable

from hotline.policy.grants import check_active
from hotline.server.context import Caller, ServerState
from hotline.server.federation_client import domain_of
from hotline.store import AideGrant, Store
from hotline.store.delegation_base import GrantRow
from hotline.wire.codec import decode
from hotline.wire.delegation import DelegationGrant, Right
from hotline.wire.errors import NotAContact


def parsed(row: GrantRow) -> DelegationGrant:
    """A stored grant's fields (its signature was verified before it was stored)."""
    return decode(row.payload, DelegationGrant, what="stored grant")


async def aides_of(store: Store, principal: str, now: float, right: Right = "read") -> list[str]:
    """Aides holding an active grant of ``principal`` with ``right``."""
    found = []
    for row in await store.grants_of(principal, now):
        if row.revoked_at is None and right in parsed(row).rights:
            found.append(row.aide)
    return found


async def aide_devices(store: Store, principals: list[str], now: float) -> set[str]:
    """Device ids of the aides of ``principals`` with the ``read`` right."""
    devices: set[str] = set()
    for principal in principals:
        for aide in await aides_of(store, principal, now):
            devices |= {d.device_id for d in await store.list_devices(aide)}
    return devices


def readers(grants: Iterable[AideGrant], principals: Collection[str]) -> set[str]:
    """Device ids of the aides with the ``read`` right of ``principals``, from grants read
    with the rest of a send's checks (``Store.send_context``: no further query)."""
    return {
        device
        for grant in grants
        if grant.principal in principals
        and "read" in decode(grant.payload, DelegationGrant, what="stored grant").rights
        for device in grant.aide_devices
    }


async def audience(store: Store, handle: str, now: float) -> set[str]:
    """Device ids that read what is addressed to or sent by ``handle``: its own and those of
    its aides with the ``read`` right."""
    devices = {d.device_id for d in await store.list_devices(handle)}
    return devices | await aide_devices(store, [handle], now)


async def delegated_visible(
    store: Store, requester: str, handle: str, acting_for: list[str]
) -> bool:
    """Whether a grant makes ``handle``'s device list visible to ``requester``: the aide of a
    principal to the principal's contacts (to read the aide's messages), and the principal's
    contacts to the aide (to answer them). ``acting_for``: principals a peer server vouches the
    (remote) requester acts for."""
    if any([await store.is_allowed(handle, p) for p in acting_for]):
        return True
    now = time.time()  # lookups serve peers too and carry no clock; grants are coarse
    for row in await store.grants_to(handle, now):
        if requester == row.principal or await store.is_allowed(row.principal, requester):
            return True
    for row in await store.grants_to(requester, now):
        if handle == row.principal or await store.is_allowed(handle, row.principal):
            return True
    return False


async def acting_for(store: Store, aide: str, now: float) -> list[str]:
    """The principals ``aide`` may answer for (what this server vouches to its peers)."""
    return sorted({r.principal for r in await store.grants_to(aide, now)})[:8]


async def check_on_behalf(state: ServerState, caller: Caller, to: str, principal: str) -> None:
    """An aide's message for ``principal`` to ``to``.

    Raises:
        NotDelegated: ``caller`` holds no active grant of ``principal`` with ``answer``.
        NotAContact: ``to`` does not allow ``principal``.
    """
    now = state.now()
    rows = [r for r in await state.store.grants_to(caller.handle, now) if r.principal == principal]
    grant = parsed(rows[-1]) if rows else None
    check_active(grant, aide=caller.handle, right="answer", now=now)
    if domain_of(to) != state.config.domain:
        return  # the counterpart's own server checks its allowlist (RemoteMessage.on_behalf_of)
    if to != principal and not await state.store.is_allowed(to, principal):
        raise NotAContact(f"{to} does not accept messages from {principal}")


async def expected_targets(
    state: ServerState, caller: Caller, to: str, on_behalf_of: str | None
) -> set[str]:
    """Every device a message must be encrypted for (see ``routes_messages.send``).

    Raises: NotDelegated, NotAContact.
    """
    now = state.now()
    store = state.store
    if on_behalf_of is not None:
        await check_on_behalf(state, caller, to, on_behalf_of)
        devices = await audience(store, to, now) | await audience(store, on_behalf_of, now)
        devices |= {d.device_id for d in await store.list_devices(caller.handle)}
    else:
        if to != caller.handle and not await store.is_allowed(to, caller.handle):
            raise NotAContact(f"{to} does not accept messages from you")
        devices = await audience(store, to, now) | await audience(store, caller.handle, now)
    devices.discard(caller.device_id)
    return devices


__all__ = [
    "acting_for",
    "aide_devices",
    "aides_of",
    "audience",
    "check_on_behalf",
    "delegated_visible",
    "expected_targets",
    "readers",
]
