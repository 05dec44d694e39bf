"""Home server configuration, from explicit arguments or ``HOTLINE_*`` environment variables."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from hotline.server.records_log import ArchiveSettings
    from hotline.wire.codec import Signed


def default_database_url(data_dir: Path) -> str:
    """``HOTLINE_DATABASE_URL`` if set, else an SQLite file in ``data_dir``."""
    url = os.environ.get("HOTLINE_DATABASE_URL")
    if url:
        return url
    return f"sqlite+aiosqlite:///{data_dir / 'hotline-server.db'}"


@dataclass(frozen=True)
class ServerConfig:
    """Everything the ASGI app needs. ``clock`` is injected so tests control time."""

    domain: str
    database_url: str
    challenge_ttl: float = 60.0
    token_ttl: float = 3600.0
    max_body: int = 256 * 1024
    #: token bucket per device: sustained requests per second and burst size
    rate_per_second: float = 50.0
    rate_burst: float = 200.0
    #: unauthenticated endpoints, per client address
    anon_rate_per_second: float = 5.0
    anon_rate_burst: float = 30.0
    max_pending_per_device: int = 10_000
    clock: Callable[[], float] = field(default=time.time)
    #: the records archive; None runs the server without one (messages need no record)
    archive: ArchiveSettings | None = None
    #: this server's federation key; None: no federation (local principals only)
    server_key: Ed25519PrivateKey | None = None
    #: first retry delay for a peer that is down, doubling up to ``retry_max`` (with jitter)
    retry_base: float = 0.5
    retry_max: float = 300.0
    #: the organisation's signed device policy and the key it must verify under (both or none)
    policy: Signed | None = None
    org_key: bytes | None = None
    #: STUN/TURN servers advertised to devices for calls (empty: direct ICE, e.g. loopback)
    turn_urls: tuple[str, ...] = ()
    #: coturn ``static-auth-secret``: devices get short-lived credentials derived from it
    turn_secret: bytes | None = None
    #: "required": devices record calls into the archive (under its law), both parties told
    #: before connecting; "off": calls are not recorded. "required" needs an archive.
    call_recording: str = "off"

    def __post_init__(self) -> None:
        if self.call_recording not in ("required", "off"):
            raise ValueError(f"call_recording is 'required' or 'off', not {self.call_recording!r}")
        if self.call_recording == "required" and self.archive is None:
            raise ValueError("call_recording='required' needs a records archive to record into")
