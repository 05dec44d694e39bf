"""The contact card: a principal's "number", signed by their identity key.

Text form: ``hotline:`` followed by unpadded base64url of ``payload || signature`` where
``payload`` is the exact JSON bytes of :class:`CardPayload` and ``signature`` the 64-byte
Ed25519 signature over ``b"hotline/v1/card\\x00" + payload``. Whitespace and line breaks
(as an email client may insert) and angle brackets around the URI are ignored on input.
"""

from __future__ import annotations

import re

import msgspec

from hotline.wire.codec import Handle, Ident, Key32, Name, Version, decode, encode
from hotline.wire.encoding import b64d, b64e
from hotline.wire.errors import BodyTooLarge, MalformedCard, MalformedInput, UnsupportedVersion

SCHEME = "hotline:"
SIGNATURE_LEN = 64
MAX_CARD_CHARS = 4096
_STRIP = re.compile(r"[\s<>]")


class CardPayload(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What a card says. ``invite_secret`` lets its holder send one contact request."""

    v: Version
    display_name: Name
    handle: Handle
    identity_key: Key32
    server_url: str
    invite_id: Ident
    invite_secret: Key32
    issued_at: int
    expires_at: int


class SignedCard(msgspec.Struct, frozen=True):
    """A decoded card: the exact payload bytes, the parsed payload and the signature."""

    payload_bytes: bytes
    payload: CardPayload
    signature: bytes

    def to_uri(self) -> str:
        """Text form, safe to paste into email and chat."""
        return SCHEME + b64e(self.payload_bytes + self.signature)


def encode_card_payload(payload: CardPayload) -> bytes:
    """Exact bytes to sign for ``payload``."""
    return encode(payload)


def parse_card(text: str) -> SignedCard:
    """Parse a ``hotline:`` URI. Does NOT verify the signature (see ``client.cards``).

    Raises:
        MalformedCard: wrong scheme, bad base64url, too short or payload that does not decode.
    """
    compact = _STRIP.sub("", text)
    if len(compact) > MAX_CARD_CHARS:
        raise MalformedCard("card text is too long")
    if not compact.lower().startswith(SCHEME):
        raise MalformedCard("a contact card starts with 'hotline:'")
    body = compact[len(SCHEME) :]
    try:
        raw = b64d(body, field="card")
    except MalformedInput as exc:
        raise MalformedCard("card text is damaged (not base64url); copy it again") from exc
    if len(raw) <= SIGNATURE_LEN:
        raise MalformedCard("card text is truncated; copy it again")
    payload_bytes, signature = raw[:-SIGNATURE_LEN], raw[-SIGNATURE_LEN:]
    try:
        payload = decode(payload_bytes, CardPayload, what="card")
    except (MalformedInput, UnsupportedVersion, BodyTooLarge) as exc:
        raise MalformedCard(f"card contents are not valid: {exc.detail}") from exc
    if not payload.server_url.startswith(("https://", "http://")):
        raise MalformedCard("card server URL must be http(s)")
    return SignedCard(payload_bytes=payload_bytes, payload=payload, signature=signature)


__all__ = ["CardPayload", "SignedCard", "encode_card_payload", "parse_card"]
