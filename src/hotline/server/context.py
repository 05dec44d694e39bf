"""Per-app state shared by the routes, and the two things every route does first:
authenticate the device and decode the body strictly."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from typing import TypeVar

from starlette.requests import HTTPConnection, Request

from hotline.server.ack_batcher import AckBatcher
from hotline.server.config import ServerConfig
from hotline.server.federation_client import PeerClient
from hotline.server.hub import PushHub
from hotline.server.ratelimit import RateLimiter
from hotline.server.records_log import RecordsLog
from hotline.store import Store
from hotline.wire.codec import decode
from hotline.wire.errors import ArchiveDisabled, BodyTooLarge, Unauthenticated
from hotline.wire.policy import Policy

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated device making a request."""

    device_id: str
    handle: str


@dataclass
class ServerState:
    config: ServerConfig
    store: Store
    hub: PushHub = field(default_factory=PushHub)
    records: RecordsLog | None = None
    policy: Policy | None = None
    peers: PeerClient = field(default_factory=PeerClient)
    #: set when a message for a peer was queued (wakes the outbound worker)
    outbound_wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    device_limiter: RateLimiter = field(init=False)
    anon_limiter: RateLimiter = field(init=False)
    #: websocket acks of every connection, written together
    acks: AckBatcher = field(init=False)

    def __post_init__(self) -> None:
        self.acks = AckBatcher(self.store)
        c = self.config
        self.device_limiter = RateLimiter(c.rate_per_second, c.rate_burst)
        self.anon_limiter = RateLimiter(c.anon_rate_per_second, c.anon_rate_burst)
        if c.archive is not None:
            self.records = RecordsLog(c.archive, c.domain)

    def now(self) -> float:
        return self.config.clock()


def records_of(conn: HTTPConnection) -> RecordsLog:
    """The records log. Raises: ArchiveDisabled if this server runs without one."""
    records = state_of(conn).records
    if records is None:
        raise ArchiveDisabled("this home server runs without a records archive")
    return records


def state_of(conn: HTTPConnection) -> ServerState:
    state: ServerState = conn.app.state.hotline
    return state


def token_hash(token: str) -> bytes:
    """Session tokens are stored only as SHA-256, so a stolen database yields none."""
    return hashlib.sha256(token.encode("utf-8")).digest()


async def authenticate(conn: HTTPConnection) -> Caller:
    """Resolve the bearer token to a device and charge its rate limit.

    Raises:
        Unauthenticated: missing, unknown or expired token, or a removed device.
        RateLimited: the device is over its limit.
    """
    state = state_of(conn)
    header = conn.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token or len(token) > 256:
        raise Unauthenticated("send 'Authorization: Bearer <token>'; get one from /v1/auth/token")
    now = state.now()
    device = await state.store.session_caller(token_hash(token), now)
    if device is None:
        raise Unauthenticated("session token unknown or expired; sign a new challenge")
    state.device_limiter.check(device.device_id, now)
    return Caller(device_id=device.device_id, handle=device.handle)


def limit_anonymous(conn: HTTPConnection) -> None:
    """Charge the per-address limit of unauthenticated endpoints."""
    state = state_of(conn)
    address = conn.client.host if conn.client else "unknown"
    state.anon_limiter.check(address, state.now())


async def read_struct(request: Request, type_: type[T]) -> T:
    """Read at most ``max_body`` bytes and decode them strictly into ``type_``.

    Raises:
        BodyTooLarge, MalformedInput, UnsupportedVersion.
    """
    limit = state_of(request).config.max_body
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"request body is {declared} bytes; the limit is {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"request body exceeds {limit} bytes")
        chunks.append(chunk)
    return decode(b"".join(chunks), type_, max_size=limit)
