"""The organisation policy as this device holds it: pinned key, version never going down.

The client enforces the policy itself (it does not offer what is forbidden) and the server
enforces it again, so a modified client gains nothing.
"""

from __future__ import annotations

import hmac

import msgspec

from hotline.client.state import ClientState, PolicyPin
from hotline.client.transport import ServerApi
from hotline.policy.document import open_policy
from hotline.wire.codec import Signed, decode
from hotline.wire.encoding import b64d, b64e
from hotline.wire.errors import CustodianNotAuthorised, ForbiddenByPolicy, HotlineError, NotFound
from hotline.wire.policy import ContentClass, Policy


class _Published(msgspec.Struct, frozen=True):
    policy: Signed
    org_key: str


async def fetch(
    server: ServerApi, state: ClientState, expected_org_key: bytes | None = None
) -> None:
    """Take the server's current policy if it verifies and does not go back in version.

    The first time, the organisation key is pinned (trust on first use, or checked against
    ``expected_org_key`` when the administrator gave one); afterwards only the pinned key counts.

    Raises:
        BadSignature: the policy is not signed by the pinned organisation key.
        PolicyDowngrade: an older version than the one in force.
        CustodianNotAuthorised: the policy names custodians and the pinned records archive
            seals to none of them.
    """
    try:
        published = await server.call("GET", "/v1/policy", response=_Published)
    except NotFound:
        return
    assert published is not None
    org_key = b64d(published.org_key) if state.policy is None else b64d(state.policy.org_key)
    if expected_org_key is not None and org_key != expected_org_key:
        raise ForbiddenByPolicy("the server's organisation key is not the one you were given")
    floor = state.policy.version if state.policy is not None else 0
    policy = open_policy(published.policy, org_key, not_below=floor)
    check_custodian(policy, state)
    state.policy = PolicyPin(
        org_key=b64e(org_key),
        payload=published.policy.payload,
        signature=published.policy.signature,
        version=policy.version,
    )


def check_custodian(policy: Policy, state: ClientState) -> None:
    """Refuse a records archive whose custodian the organisation's policy does not name.

    Raises:
        CustodianNotAuthorised: the pinned records policy seals to another custodian key.
    """
    if policy.records is None or state.archive is None:
        return
    have = state.archive.custodian_fingerprint
    if not any(hmac.compare_digest(have, f) for f in policy.records.custodian_fingerprints):
        raise CustodianNotAuthorised(
            f"your home server seals records to custodian {have}, which policy version "
            f"{policy.version} of {policy.organisation} does not name; do not use this server",
            custodian=have,
            authorised=list(policy.records.custodian_fingerprints),
        )


def current(state: ClientState) -> Policy | None:
    if state.policy is None:
        return None
    pin = state.policy
    return decode(b64d(pin.payload), Policy, what="policy")


def require(state: ClientState, rule: str) -> None:
    """Raises ForbiddenByPolicy when the policy in force switches ``rule`` off."""
    policy = current(state)
    if policy is None:
        return
    allowed = {
        "voice_calls": policy.features.voice_calls,
        "attachments": policy.features.attachments.allowed,
        "forwarding": policy.features.forwarding,
        "link_previews": policy.features.link_previews,
        "copy_export": policy.features.copy_export,
    }.get(rule, True)
    if not allowed:
        raise ForbiddenByPolicy(
            f"your organisation's policy turns off {rule.replace('_', ' ')}", rule=rule
        )


def check_count(state: ClientState, rule: str, count: int) -> None:
    """Raises ForbiddenByPolicy when ``count`` exceeds the policy's limit ``rule``."""
    policy = current(state)
    if policy is None:
        return
    limit = {"max_contacts": policy.max_contacts, "max_devices": policy.max_devices}[rule]
    if count > limit:
        raise ForbiddenByPolicy(
            f"your organisation's policy allows at most {limit} {rule.removeprefix('max_')}",
            rule=rule,
        )


def card_days(state: ClientState, requested: int) -> int:
    policy = current(state)
    return requested if policy is None else min(requested, policy.card_validity_days)


def content_class(envelope_kind: str) -> ContentClass:
    """What a sender declares for an envelope (the receiver checks it after decrypting)."""
    if envelope_kind == "text":
        return "message"
    return "call" if envelope_kind == "call" else "control"


__all__ = [
    "HotlineError",
    "card_days",
    "check_count",
    "content_class",
    "current",
    "fetch",
    "require",
]
