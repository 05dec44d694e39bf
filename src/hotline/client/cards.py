"""Making and checking contact cards and the signed lists (client side).

A card is self-certifying: it carries the identity key that signed it. What makes it
trustworthy is how it was handed over (in person, by a trusted channel) and the safety number
compared afterwards (``hotline verify``).
"""

from __future__ import annotations

from hotline.crypto.identity import (
    DOMAIN_ALLOWLIST,
    DOMAIN_CARD,
    DOMAIN_DEVICE_LIST,
    IdentityKey,
    IdentityPublicKey,
)
from hotline.wire.card import CardPayload, SignedCard, encode_card_payload, parse_card
from hotline.wire.codec import Signed, decode, encode
from hotline.wire.encoding import b64d, b64e
from hotline.wire.errors import BadSignature, CardExpired, MalformedCard, MalformedInput
from hotline.wire.lists import Allowlist, DeviceKeys, DeviceList


def make_card(identity: IdentityKey, payload: CardPayload) -> SignedCard:
    payload_bytes = encode_card_payload(payload)
    return SignedCard(
        payload_bytes=payload_bytes,
        payload=payload,
        signature=identity.sign(DOMAIN_CARD, payload_bytes),
    )


def read_card(text: str, now: float) -> SignedCard:
    """Parse and verify a card someone handed over.

    Raises:
        MalformedCard: not a well-formed card.
        BadSignature: not signed by the identity key it carries (altered in transit).
        CardExpired: past its expiry.
    """
    card = parse_card(text)
    try:
        key = IdentityPublicKey.from_bytes(b64d(card.payload.identity_key, field="identity_key"))
    except MalformedInput as exc:
        raise MalformedCard("the card's identity key is damaged; copy the card again") from exc
    try:
        key.verify(DOMAIN_CARD, card.payload_bytes, card.signature)
    except BadSignature:
        raise BadSignature(
            "this card's signature does not verify: it was altered or forged"
        ) from None
    if card.payload.expires_at <= now:
        raise CardExpired(f"the card of {card.payload.handle} has expired; ask for a new one")
    return card


def sign_device_list(
    identity: IdentityKey, handle: str, version: int, devices: list[DeviceKeys], now: float
) -> Signed:
    payload = encode(
        DeviceList(v=1, handle=handle, version=version, issued_at=int(now), devices=devices)
    )
    return Signed(payload=b64e(payload), signature=b64e(identity.sign(DOMAIN_DEVICE_LIST, payload)))


def sign_allowlist(
    identity: IdentityKey, handle: str, version: int, members: list[str], now: float
) -> Signed:
    payload = encode(
        Allowlist(v=1, handle=handle, version=version, issued_at=int(now), members=sorted(members))
    )
    return Signed(payload=b64e(payload), signature=b64e(identity.sign(DOMAIN_ALLOWLIST, payload)))


def open_device_list(signed: Signed, identity_key: bytes, handle: str) -> DeviceList:
    """Verify a device list against the pinned identity key of ``handle``.

    Raises:
        BadSignature: not signed by that identity key (a server cannot inject devices).
        MalformedInput: for another handle.
    """
    payload = b64d(signed.payload, field="device_list")
    IdentityPublicKey.from_bytes(identity_key).verify(
        DOMAIN_DEVICE_LIST, payload, b64d(signed.signature, field="signature")
    )
    parsed = decode(payload, DeviceList, what="device list")
    if parsed.handle != handle:
        raise MalformedInput(f"device list is for {parsed.handle}, not {handle}")
    return parsed
