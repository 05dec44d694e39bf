"""The store's interface for delegation grants and administrator-blocked devices."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class GrantRow:
    """A grant as stored: its exact signed bytes and, once revoked, the signed revocation."""

    grant_id: str
    principal: str
    aide: str
    payload: bytes
    signature: bytes
    expires_at: float
    created_at: float
    revoked_at: float | None = None
    revocation_payload: bytes | None = None
    revocation_signature: bytes | None = None


class DelegationStore(Protocol):
    """Grants are written by the principal's requests only, after the server verified them."""

    async def put_grant(self, grant: GrantRow, *, max_active: int, now: float) -> None:
        """Store a verified grant. An active grant of the same principal to the same aide is
        replaced (revoked with no revocation bytes): one grant per aide at a time.

        Raises:
            AlreadyExists: the grant id is taken.
            ForbiddenByPolicy: the principal would have more than ``max_active`` aides.
        """

    async def revoke_grant(
        self, grant_id: str, principal: str, payload: bytes, signature: bytes, now: float
    ) -> GrantRow:
        """Mark ``principal``'s grant revoked with the verified signed revocation.

        Raises:
            NotFound: no such grant of ``principal``.
        """

    async def get_grant(self, grant_id: str) -> GrantRow | None: ...

    async def grants_of(self, principal: str, now: float) -> list[GrantRow]:
        """Grants of ``principal`` not expired at ``now`` (revoked ones included, newest last)."""

    async def grants_to(self, aide: str, now: float) -> list[GrantRow]:
        """Active (unexpired, unrevoked) grants held by ``aide``."""

    async def block_device(self, handle: str, device_id: str, now: float) -> bool:
        """Remove a device of ``handle`` at once (keys, sessions, mailbox) and remember it as
        blocked. Returns False if it is not (or no longer) a device of ``handle``."""

    async def blocked_devices(self, handle: str) -> list[str]:
        """Device ids of ``handle`` blocked by the administrator."""

    async def is_blocked(self, device_id: str) -> bool: ...


__all__ = ["DelegationStore", "GrantRow"]
