"""Fuzz server-to-server requests as ``POST /v1/federation`` opens them.

Each input is the exact request body. It is checked twice by
:func:`hotline.server.federation_auth.open_request` against an in-memory store that pins
:data:`~valid_encodings.PEER_KEY` for ``washington.test``:

* with the first bytes of the input as the ``Hotline-Signature`` header (forged or garbage);
* signed for real by the pinned peer (a compromised or buggy peer), so the payload decoders
  of every request kind (deliver batch, contact request, lookups) are reached too.
"""

from __future__ import annotations

import contextlib
from collections.abc import Coroutine
from typing import Any, TypeVar

from runner import instrumented, main

with instrumented():
    from valid_encodings import DESTINATION, NOW, ORIGIN, PEER_KEY, public_bytes, sign_federation

    from hotline.server.federation_auth import open_request
    from hotline.store.base import PeerRow
    from hotline.wire.codec import decode
    from hotline.wire.encoding import b64d
    from hotline.wire.errors import HotlineError, ReplayedRequest
    from hotline.wire.federation import DeliverBatch, RemoteContactRequest, RemoteLookup

T = TypeVar("T")


class PinnedPeers:
    """The two store methods ``open_request`` uses, in memory (no I/O, never suspends)."""

    def __init__(self) -> None:
        key = public_bytes(PEER_KEY)
        self.peer = PeerRow(ORIGIN, "https://washington.test", key, None, None, 0)
        self.nonces: set[tuple[str, str]] = set()

    async def get_peer(self, domain: str) -> PeerRow | None:
        return self.peer if domain == ORIGIN else None

    async def use_nonce(self, origin: str, nonce: str, expires_at: float, now: float) -> None:
        if (origin, nonce) in self.nonces:
            raise ReplayedRequest("nonce used before")
        if len(self.nonces) > 10_000:
            self.nonces.clear()
        self.nonces.add((origin, nonce))


STORE = PinnedPeers()


def run_now(coro: Coroutine[Any, Any, T]) -> T:
    """Drive a coroutine that never really awaits anything to its result."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coro.close()
    raise AssertionError("the coroutine suspended; the fake store must not")


def decode_payload(kind: str, payload: bytes) -> None:
    """What ``routes_federation.federation`` decodes for each kind."""
    if kind == "deliver":
        for message in decode(payload, DeliverBatch).messages:
            for c in message.ciphertexts:
                b64d(c.body, field="body")
    elif kind == "contact_request":
        b64d(decode(payload, RemoteContactRequest).invite_secret, field="invite_secret")
    elif kind in ("devices", "claim"):
        decode(payload, RemoteLookup)


def test_one_input(data: bytes) -> None:
    """Open ``data`` unsigned and signed; only HotlineError may come out."""
    forged = data[:90].decode("latin-1")
    with contextlib.suppress(HotlineError):
        run_now(open_request(STORE, DESTINATION, data, forged, NOW))  # type: ignore[arg-type]
    STORE.nonces.clear()
    request, payload = run_now(
        open_request(STORE, DESTINATION, data, sign_federation(data), NOW)  # type: ignore[arg-type]
    )
    decode_payload(request.kind, payload)


if __name__ == "__main__":
    main("federation_request", test_one_input)
