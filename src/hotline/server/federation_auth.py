"""Signing and checking server-to-server requests (see :mod:`hotline.wire.federation`)."""

from __future__ import annotations

import secrets

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from hotline.store import Store
from hotline.wire.codec import decode, encode
from hotline.wire.encoding import b64d, b64e
from hotline.wire.errors import (
    BadSignature,
    ClockSkew,
    MalformedInput,
    UnknownPeer,
    WrongDestination,
)
from hotline.wire.federation import (
    CLOCK_WINDOW_SECONDS,
    FEDERATION_DOMAIN,
    MAX_FEDERATION_BODY,
    FederationKind,
    FederationRequest,
)


def sign_request(
    key: Ed25519PrivateKey,
    origin: str,
    destination: str,
    kind: FederationKind,
    payload: bytes,
    now: float,
) -> tuple[bytes, str]:
    """The exact body to send and its signature header value."""
    body = encode(
        FederationRequest(
            v=1,
            origin=origin,
            destination=destination,
            nonce=secrets.token_urlsafe(18),
            timestamp_ms=int(now * 1000),
            kind=kind,
            payload=b64e(payload),
        )
    )
    return body, b64e(key.sign(FEDERATION_DOMAIN + body))


async def open_request(
    store: Store, our_domain: str, body: bytes, signature: str, now: float
) -> tuple[FederationRequest, bytes]:
    """Check a received request; returns it and its payload bytes.

    The nonce is recorded only after every other check passed, so a forger cannot burn the
    nonces of a genuine peer.

    Raises:
        MalformedInput, BodyTooLarge: not a federation request.
        WrongDestination: addressed to another server.
        UnknownPeer: the origin is not pinned by our operator.
        BadSignature: not signed by the pinned key (nor the previous key in its overlap).
        ClockSkew: timestamp outside the window.
        ReplayedRequest: the nonce was used before.
    """
    request = decode(
        body, FederationRequest, max_size=MAX_FEDERATION_BODY, what="federation request"
    )
    if request.destination != our_domain:
        raise WrongDestination(f"this is {our_domain}, not {request.destination}")
    peer = await store.get_peer(request.origin)
    if peer is None:
        raise UnknownPeer(f"{request.origin} is not a pinned peer of {our_domain}")
    try:
        raw_signature = b64d(signature, field="signature")
    except MalformedInput as exc:
        raise BadSignature("missing or malformed request signature") from exc
    keys = [peer.key]
    if peer.previous_key is not None and (peer.previous_until or 0) > now:
        keys.append(peer.previous_key)
    if not any(_verifies(k, raw_signature, body) for k in keys):
        raise BadSignature(f"request does not carry {request.origin}'s pinned signature")
    skew = abs(now - request.timestamp_ms / 1000)
    if skew > CLOCK_WINDOW_SECONDS:
        raise ClockSkew(
            f"request timestamp is {skew:.0f} s away from our clock", window=CLOCK_WINDOW_SECONDS
        )
    await store.use_nonce(request.origin, request.nonce, now + 2 * CLOCK_WINDOW_SECONDS, now)
    return request, b64d(request.payload, field="payload", max_len=MAX_FEDERATION_BODY)


def _verifies(key: bytes, signature: bytes, body: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(key).verify(signature, FEDERATION_DOMAIN + body)
    except (InvalidSignature, ValueError):
        return False
    return True
