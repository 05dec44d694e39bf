"""Call setup data the home server advertises (``GET /v1/calls/config``): ICE (STUN/TURN)
servers, and whether its principals' calls are recorded into the archive, under which law."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Annotated, Literal

import msgspec

from hotline.wire.codec import Version

# -- NAT traversal advertised by the home server (GET /v1/calls/config) ---------------------------
IceUrl = Annotated[str, msgspec.Meta(pattern=r"^(stun|stuns|turn|turns):[\x21-\x7e]{1,250}$")]


class IceServerEntry(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One STUN/TURN server as the home server advertises it (RFC 8489 / RFC 8656 URIs)."""

    urls: Annotated[list[IceUrl], msgspec.Meta(min_length=1, max_length=8)]
    username: Annotated[str, msgspec.Meta(max_length=256)] = ""
    credential: Annotated[str, msgspec.Meta(max_length=256)] = ""


CallRecordingPolicy = Literal["required", "off"]


class CallsConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The body of ``GET /v1/calls/config``: the ICE servers this home server offers, and its
    call recording policy: ``required`` means every call of its principals is recorded into the
    records archive under ``law`` (the archive's law), with both parties told before connecting;
    ``off`` means calls are not recorded (their call detail records still are)."""

    v: Version
    ice_servers: Annotated[list[IceServerEntry], msgspec.Meta(max_length=8)] = msgspec.field(
        default_factory=list
    )
    recording: CallRecordingPolicy = "off"
    law: Annotated[str, msgspec.Meta(max_length=512)] = ""


def turn_rest_credentials(
    secret: bytes, user: str, now: float, ttl_s: int = 3600
) -> tuple[str, str]:
    """Short-lived TURN credentials for coturn's ``use-auth-secret`` mode (the "TURN REST API",
    draft-uberti-behave-turn-rest-00 §2.2): username ``expiry:user``, password
    ``base64(HMAC-SHA1(secret, username))``. The home server hands these out per request, so no
    long-lived TURN password sits on devices. SHA-1 here is what coturn verifies, as an HMAC.
    """
    if not 60 <= ttl_s <= 86_400:
        raise ValueError("TURN credentials should live between a minute and a day")
    username = f"{int(now) + ttl_s}:{user}"
    mac = hmac.new(secret, username.encode("utf-8"), hashlib.sha1).digest()
    return username, base64.b64encode(mac).decode("ascii")
