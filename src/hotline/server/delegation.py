"""Server-side checks of delegation: who an aide's grant lets see whom, and who a message
must reach when a principal has aides (their reading aides' devices: :func:`readers`).

The server verified every stored grant against the principal's registered identity key when
it was uploaded (``routes_delegation``); here it only reads them. An aide's message for a
principal is accepted only if the recipient allows the principal and the grant is active
(unexpired, unrevoked, with the ``answer`` right): else ``not_delegated``. A send's checks
and targets use the grants, device sets and allowlist ``Store.send_context`` read in its one
transaction, whether the message is direct, an aide's, for a peer server or from one.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Collection, Iterable

from hotline.policy.grants import check_active
from hotline.server.context import Caller
from hotline.store import AideGrant, SendContext, Store
from hotline.store.delegation_base import GrantRow
from hotline.wire.codec import decode
from hotline.wire.delegation import DelegationGrant, Right
from hotline.wire.errors import NotAContact


def parsed(row: GrantRow) -> DelegationGrant:
    """A stored grant's fields (its signature was verified before it was stored)."""
    return decode(row.payload, DelegationGrant, what="stored grant")


@functools.lru_cache(maxsize=4096)
def _read_rights(payload: bytes) -> frozenset[Right]:
    """The rights a stored grant's signed payload names, decoded once per payload: a grant's
    bytes never change, and every send reads its principals' grants again (``readers``)."""
    return frozenset(decode(payload, DelegationGrant, what="stored grant").rights)


def readers(grants: Iterable[AideGrant], principals: Collection[str]) -> set[str]:
    """Device ids of the aides with the ``read`` right of ``principals``, from grants read
    with the rest of a send's checks (``Store.send_context``: no further query)."""
    return {
        device
        for grant in grants
        if grant.principal in principals and "read" in _read_rights(grant.payload)
        for device in grant.aide_devices
    }


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


def check_on_behalf(
    context: SendContext, caller: Caller, to: str, principal: str, *, local: bool, now: float
) -> None:
    """An aide's message for ``principal`` to ``to``, checked against what
    ``Store.send_context`` read for it (called with ``on_behalf_of=principal``: the grants and
    whether ``to`` allows the principal). A principal has one active grant per aide (a new
    one revokes the old: ``Store.put_grant``).

    Raises:
        NotDelegated: ``caller`` holds no active grant of ``principal`` with ``answer``.
        NotAContact: ``to`` is ``local`` and does not allow ``principal`` (a counterpart on a
            peer server is checked there: ``RemoteMessage.on_behalf_of``).
    """
    held = [g for g in context.grants if g.principal == principal and g.aide == caller.handle]
    grant = decode(held[-1].payload, DelegationGrant, what="stored grant") if held else None
    check_active(grant, aide=caller.handle, right="answer", now=now)
    if local and not context.allowed:
        raise NotAContact(f"{to} does not accept messages from {principal}")


__all__ = [
    "acting_for",
    "check_on_behalf",
    "delegated_visible",
    "parsed",
    "readers",
]
