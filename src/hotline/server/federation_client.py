"""Calling peer servers: signed requests over HTTP, typed errors back."""

from __future__ import annotations

import functools
import json
import ssl
from typing import TYPE_CHECKING, TypeVar

import httpx
import msgspec

from hotline.server.federation_auth import sign_request
from hotline.wire.codec import decode, encode
from hotline.wire.errors import (
    HotlineError,
    ServerUnavailable,
    UnknownPeer,
    error_from_problem,
)
from hotline.wire.federation import SIGNATURE_HEADER, FederationKind

if TYPE_CHECKING:
    from hotline.server.context import ServerState

T = TypeVar("T")
TIMEOUT = 10.0


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """httpx's default verifying TLS context, built once per process: loading the CA bundle
    takes ~60 ms of CPU, which every server start (and every embedded server of a test or a
    benchmark) would otherwise pay again. A context is safe to share."""
    return httpx.create_ssl_context()


def domain_of(handle: str) -> str:
    return handle.rpartition("@")[2]


class PeerClient:
    """One HTTP connection pool for all peers of this server."""

    def __init__(self) -> None:
        self._http = httpx.AsyncClient(timeout=TIMEOUT, verify=_tls_context())

    async def close(self) -> None:
        await self._http.aclose()

    async def call(
        self,
        state: ServerState,
        destination: str,
        kind: FederationKind,
        payload: msgspec.Struct,
        response: type[T],
    ) -> T:
        """Send a signed request to a pinned peer and decode its answer.

        Raises:
            UnknownPeer: ``destination`` is not pinned.
            ServerUnavailable: the peer cannot be reached or failed (retry later).
            HotlineError: the typed error the peer answered with (a refusal).
        """
        peer = await state.store.get_peer(destination)
        if peer is None or state.config.server_key is None:
            raise UnknownPeer(f"{destination} is not a pinned peer of {state.config.domain}")
        body, signature = sign_request(
            state.config.server_key,
            state.config.domain,
            destination,
            kind,
            encode(payload),
            state.now(),
        )
        try:
            reply = await self._http.post(
                peer.url.rstrip("/") + "/v1/federation",
                content=body,
                headers={SIGNATURE_HEADER: signature, "content-type": "application/json"},
            )
        except httpx.HTTPError as exc:
            raise ServerUnavailable(
                f"peer {destination} unreachable ({type(exc).__name__})"
            ) from exc
        if reply.status_code >= 500:
            raise ServerUnavailable(f"peer {destination} failed (HTTP {reply.status_code})")
        if reply.status_code >= 400:
            raise _problem(reply)
        return decode(reply.content, response, max_size=4 * 1024 * 1024)


def _problem(reply: httpx.Response) -> HotlineError:
    try:
        doc = json.loads(reply.content)
    except ValueError:
        doc = None
    if isinstance(doc, dict) and "code" in doc:
        return error_from_problem(doc)
    return ServerUnavailable(f"peer answered HTTP {reply.status_code} without a problem document")
