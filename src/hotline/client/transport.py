"""HTTP and websocket transport to the home server; maps problem+json to typed errors."""

from __future__ import annotations

import asyncio
import functools
import json
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final, TypeVar

import httpx
import msgspec
import websockets
from websockets.asyncio.client import ClientConnection, connect

from hotline.wire import api
from hotline.wire.codec import decode, encode
from hotline.wire.errors import (
    HotlineError,
    MalformedInput,
    RateLimited,
    ServerUnavailable,
    error_from_problem,
)

T = TypeVar("T")
MAX_RESPONSE = 4 * 1024 * 1024
#: seconds an idle keep-alive connection is reused (below the server's 5 s keep-alive timeout)
KEEPALIVE_EXPIRY = 2.0
#: a request refused for the rate limit is sent again after the wait the server names, at
#: most this many times and only when that wait is at most RATE_WAIT_MAX seconds (the limit is
#: checked before a request does anything, so any request may be repeated)
RATE_RETRIES = 3
RATE_WAIT_MAX = 5.0
#: how a connection drops under a request: closed or reset before the answer (a server or a
#: proxy closing an idle keep-alive connection just as it is reused), or not opened at all
DROPPED: Final = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError, httpx.ConnectError)
#: POST routes whose effect is keyed by what the client chose, so that a second identical
#: request changes nothing: messages by ``message_id`` (a repeat stores nothing and answers
#: with the first record index), records by record id (same bytes), acks by sequence number
IDEMPOTENT_POSTS: Final = frozenset(
    {"/v1/messages", "/v1/groups/messages", "/v1/records", "/v1/inbox/ack"}
)


def retry_safe(method: str, path: str, body: object) -> bool:
    """Whether a request may be sent again when the connection dropped before its answer
    (the server may or may not have acted on it): only if twice has the effect of once.

    An allow-list: every ``GET`` (the server's GET routes only read), the
    :data:`IDEMPOTENT_POSTS`, and ``POST /v1/keys`` carrying no one-time keys (a count, and
    the fallback key replaced; with keys a repeat is refused as ``one_time_key_reused``).
    Never the rest: registration, login challenges and tokens (one-time), key claims (each
    takes a key), invites, contact requests, grants, device links, signed lists (versioned)
    and deletions.
    """
    if method == "GET":
        return True
    if method != "POST":
        return False
    if path in IDEMPOTENT_POSTS:
        return True
    return path == "/v1/keys" and isinstance(body, api.KeysUpload) and not body.one_time_keys


@functools.cache
def tls_context() -> ssl.SSLContext:
    """httpx's default verifying TLS context, built once per process: loading the CA bundle
    takes ~60 ms of CPU, which every client in a process (a bench load generator, a device
    with linked sessions) would otherwise pay again. A context is safe to share."""
    return httpx.create_ssl_context()


class ServerApi:
    """One device's connection to its home server. Holds the session token (never logged)."""

    def __init__(self, base_url: str, *, timeout: float = 15.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=timeout,
            verify=tls_context(),
            # Drop idle connections before the server does (uvicorn closes them after 5 s):
            # reusing one the server is closing at that moment fails the request with
            # RemoteProtocolError, which reached users as "cannot reach the server". A proxy
            # closing sooner still can: ``call`` sends a retry-safe request again.
            limits=httpx.Limits(keepalive_expiry=KEEPALIVE_EXPIRY),
        )
        self.token: str | None = None
        #: signs a fresh challenge when the session token has expired (set by the client)
        self.relogin: Callable[[], Awaitable[None]] | None = None

    async def close(self) -> None:
        await self._http.aclose()

    def _headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}"} if self.token else {}

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        response: type[T] | None = None,
        params: dict[str, str] | None = None,
        *,
        _rate_retries: int = RATE_RETRIES,
    ) -> T | None:
        """Send ``body`` (a struct) and decode the answer into ``response``.

        A request refused for the rate limit is sent again after the wait the server names
        (``RATE_RETRIES`` times at most, waits up to ``RATE_WAIT_MAX``); a longer wait is the
        caller's ``RateLimited``.

        A request the connection dropped under is sent once more if that is safe
        (:func:`retry_safe`): the keep-alive expiry alone cannot avoid the race with a server
        or proxy that closes idle connections sooner.

        Raises:
            ServerUnavailable: the server cannot be reached.
            HotlineError: the typed error the server answered with.
        """
        content = encode(body) if body is not None else None
        headers = self._headers()
        if content is not None:
            headers["content-type"] = "application/json"
        try:
            try:
                reply = await self._http.request(
                    method, path, content=content, headers=headers, params=params
                )
            except DROPPED:
                if not retry_safe(method, path, body):
                    raise
                reply = await self._http.request(
                    method, path, content=content, headers=headers, params=params
                )
        except httpx.HTTPError as exc:
            raise ServerUnavailable(
                f"cannot reach {self.base_url} ({type(exc).__name__}); is the server running?"
            ) from exc
        if reply.status_code == 401 and self.token is not None and self.relogin is not None:
            # The session token expired (they live an hour): sign a new challenge, retry once.
            self.token = None
            await self.relogin()
            return await self.call(method, path, body, response, params)
        if reply.status_code == 429 and _rate_retries > 0:
            problem = _problem(reply)
            wait = problem.extra.get("retry_after")
            waitable = isinstance(wait, int | float) and 0 <= wait <= RATE_WAIT_MAX
            if isinstance(problem, RateLimited) and waitable:
                await asyncio.sleep(float(wait))  # type: ignore[arg-type]
                return await self.call(
                    method, path, body, response, params, _rate_retries=_rate_retries - 1
                )
            raise problem
        if reply.status_code >= 400:
            raise _problem(reply)
        if response is None:
            return None
        return decode(reply.content, response, max_size=MAX_RESPONSE)

    async def websocket(self) -> AsyncIterator[list[api.InboxItem]]:
        """Yield batches of mailbox items pushed by the server until the socket closes."""
        url = "ws" + self.base_url[len("http") :] + "/v1/ws"
        try:
            async with connect(
                url, additional_headers=self._headers(), max_size=MAX_RESPONSE
            ) as ws:
                self._ws: ClientConnection | None = ws
                async for frame in ws:
                    raw = frame.encode() if isinstance(frame, str) else frame
                    yield decode(raw, _Push, max_size=MAX_RESPONSE).items
        except (OSError, websockets.exceptions.InvalidHandshake) as exc:
            raise ServerUnavailable(f"websocket to {self.base_url} failed: {exc}") from exc
        except websockets.exceptions.ConnectionClosed:
            return
        finally:
            self._ws = None

    async def ack_over_websocket(self, seqs: list[int]) -> None:
        """Acknowledge over the open websocket, else over HTTP.

        If the socket dropped meanwhile, the HTTP ack is tried; if that fails too the items
        are simply pushed again later, and the client recognises them (dedup by message id).
        """
        ws = getattr(self, "_ws", None)
        if ws is not None:
            try:
                await ws.send(json.dumps({"ack": seqs}))
                return
            except websockets.exceptions.ConnectionClosed:
                pass
        try:
            await self.call("POST", "/v1/inbox/ack", api.AckRequest(seqs=seqs), api.AckResponse)
        except ServerUnavailable:
            return


class _Push(msgspec.Struct, frozen=True):
    items: list[api.InboxItem]


def _problem(reply: httpx.Response) -> HotlineError:
    try:
        doc = json.loads(reply.content)
        if isinstance(doc, dict) and "code" in doc:
            return error_from_problem(doc)
    except ValueError:
        pass
    return MalformedInput(f"server answered HTTP {reply.status_code} without a problem document")
