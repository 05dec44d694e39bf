"""Policy documents: TOML in, signed exact bytes out, verified and version-checked on use.

The TOML an organisation writes (see ``docs/policy.md``) is validated into
:class:`hotline.wire.policy.Policy`, encoded as JSON, and those exact bytes are signed with the
organisation key (``hotline/v1/policy`` domain). Verifiers check the signature over the bytes
received and only then decode them.
"""

from __future__ import annotations

import tomllib

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hotline.crypto.identity import IdentityPublicKey
from hotline.wire.codec import Signed, decode, encode
from hotline.wire.encoding import b64d, b64e
from hotline.wire.errors import MalformedInput, PolicyDowngrade
from hotline.wire.policy import POLICY_DOMAIN, Policy

MAX_POLICY = 16 * 1024


def parse_toml(text: str) -> Policy:
    """Raises: MalformedInput (not TOML, or not a valid policy; the message names the field)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MalformedInput(f"policy is not valid TOML: {exc}") from exc
    data.setdefault("v", 1)
    return decode(encode(data), Policy, max_size=MAX_POLICY, what="policy")


def sign_policy(policy: Policy, key: Ed25519PrivateKey) -> Signed:
    payload = encode(policy)
    return Signed(
        payload=b64e(payload), signature=b64e(key.sign(POLICY_DOMAIN + b"\x00" + payload))
    )


def open_policy(signed: Signed, org_key: bytes, *, not_below: int = 0) -> Policy:
    """Verify a signed policy against the pinned organisation key.

    Raises:
        BadSignature: not signed by that key.
        MalformedInput: not a policy.
        PolicyDowngrade: its version is below ``not_below`` (one accepted before).
    """
    payload = b64d(signed.payload, field="policy", max_len=MAX_POLICY)
    IdentityPublicKey.from_bytes(org_key).verify(
        POLICY_DOMAIN, payload, b64d(signed.signature, field="signature")
    )
    policy = decode(payload, Policy, max_size=MAX_POLICY, what="policy")
    if policy.version < not_below:
        raise PolicyDowngrade(
            f"policy version {policy.version} is older than version {not_below} already in force",
            got=policy.version,
            current=not_below,
        )
    return policy
