"""What a device keeps about delegation (inside the keystore, with the rest of its state).

* ``IssuedGrant``: on a principal's devices, each grant it gave an aide (and its revocation).
* ``HeldDelegation``: on an aide's devices, each principal's grant it holds.
* ``AideView``: on anyone's device, a contact's (or one's own) aide as verified from the
  published grant: the grant against the principal's pinned identity key, the aide's devices
  against the aide identity key the grant names.
"""

from __future__ import annotations

import msgspec

from hotline.wire.lists import DeviceKeys


class IssuedGrant(msgspec.Struct):
    aide: str
    grant_id: str
    rights: list[str]
    expires_at: int
    grant: str  # base64url of the exact Signed JSON
    revoked: bool = False


class HeldDelegation(msgspec.Struct):
    principal: str
    grant_id: str
    rights: list[str]
    expires_at: int
    grant: str  # base64url of the exact Signed JSON


class AideView(msgspec.Struct):
    aide: str
    aide_identity_key: str
    grant_id: str
    rights: list[str]
    expires_at: int
    devices: list[DeviceKeys] = msgspec.field(default_factory=list)


class AidesOf(msgspec.Struct):
    """The verified aides of one principal, and the grant ids seen revoked."""

    aides: list[AideView] = msgspec.field(default_factory=list)
    revoked: list[str] = msgspec.field(default_factory=list)


__all__ = ["AideView", "AidesOf", "HeldDelegation", "IssuedGrant"]
