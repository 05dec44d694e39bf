"""Strict, size-capped JSON decoding into frozen msgspec structs.

Every struct on the wire is decoded through :func:`decode`, so a malformed, oversized or
unknown-version input always becomes a typed :class:`~hotline.wire.errors.HotlineError`.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

import msgspec

from hotline.wire.errors import BodyTooLarge, MalformedInput, UnsupportedVersion

T = TypeVar("T")

#: Unpadded base64url text of at most ~256 KiB decoded. Decode with ``encoding.b64d``.
B64 = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]*$", max_length=350_000)]
#: A base64url 32-byte key.
Key32 = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{43}$")]
#: A base64url 64-byte Ed25519 signature.
Sig64 = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{86}$")]
#: ``local@domain``: lowercase, no spaces, bounded.
Handle = Annotated[
    str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}@[a-z0-9][a-z0-9.-]{0,252}$")
]
#: Opaque identifiers chosen by clients (device ids, message ids, key ids).
Ident = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_+/=-]{1,64}$")]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
Version = Annotated[int, msgspec.Meta(ge=1, le=1)]
Counter = Annotated[int, msgspec.Meta(ge=0, le=2**53)]

MAX_BODY = 256 * 1024


def encode(obj: Any) -> bytes:
    """Encode a struct (or plain data) as compact JSON."""
    return msgspec.json.encode(obj)


def decode(data: bytes | str, type_: type[T], *, max_size: int = MAX_BODY, what: str = "") -> T:
    """Decode JSON ``data`` into ``type_`` strictly.

    Raises:
        BodyTooLarge: ``data`` longer than ``max_size`` bytes.
        UnsupportedVersion: the struct's ``v`` field is not one this build speaks.
        MalformedInput: anything else that does not validate (with the path that failed).
    """
    label = what or getattr(type_, "__name__", "input")
    if len(data) > max_size:
        raise BodyTooLarge(f"{label} is {len(data)} bytes; the limit is {max_size}")
    try:
        return msgspec.json.decode(data, type=type_, strict=True)
    except msgspec.ValidationError as exc:
        message = str(exc)
        if message.endswith("at `$.v`"):
            raise UnsupportedVersion(f"{label}: {message}") from exc
        raise MalformedInput(f"{label}: {message}") from exc
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise MalformedInput(f"{label} is not valid JSON") from exc


class Signed(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Exact signed bytes and their signature side by side (never re-serialised to verify)."""

    payload: B64
    signature: Sig64
