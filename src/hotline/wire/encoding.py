"""Byte encodings used on the wire: unpadded base64url (RFC 4648 §5)."""

from __future__ import annotations

import base64
import binascii

from hotline.wire.errors import MalformedInput


def b64e(data: bytes) -> str:
    """Encode bytes as unpadded base64url."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64d(text: str, *, field: str = "value", max_len: int = 1 << 20) -> bytes:
    """Decode unpadded base64url strictly.

    Raises:
        MalformedInput: not base64url, padded, or longer than ``max_len`` bytes decoded.
    """
    if len(text) > (max_len * 4) // 3 + 4:
        raise MalformedInput(f"{field} is too long")
    if "=" in text or any(c in text for c in "+/ \n\r\t"):
        raise MalformedInput(f"{field} must be unpadded base64url")
    try:
        out = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise MalformedInput(f"{field} is not valid base64url") from exc
    if b64e(out) != text:
        # Non-canonical trailing bits: two strings would decode to the same bytes.
        raise MalformedInput(f"{field} is not canonical base64url")
    return out
