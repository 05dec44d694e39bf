"""The home server's configuration from its data dir, and the app factory for worker
processes (``hotline server --workers N`` runs uvicorn's multiprocess mode, which imports the
app by name in each worker: ``hotline.server.factory:app_from_env``).

Everything an operator sets once (custodian key, law, policy, call recording) is kept in the
data dir by the first ``hotline server`` start, so a worker needs only the data dir and the
domain, passed in ``HOTLINE_SERVER_DATA`` and ``HOTLINE_DOMAIN`` (and the database in
``HOTLINE_DATABASE_URL``). The keys (``log.key``, ``server.key``) are created by the parent
before the workers start, so all of them sign with the same keys.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import uvicorn
from sqlalchemy.engine import make_url
from starlette.applications import Starlette
from uvicorn.supervisors import Multiprocess

from hotline.server.admin import (
    archive_settings,
    check_custodian_named,
    load_server_key,
    policy_settings,
)
from hotline.server.app import create_app
from hotline.server.config import ServerConfig, default_database_url
from hotline.wire.errors import MalformedInput

__all__ = [
    "CALL_RECORDING_FILE",
    "app_from_env",
    "call_recording_policy",
    "config_from_data_dir",
    "is_postgres",
    "resolve_domain",
    "serve_workers",
]

CALL_RECORDING_FILE = "call-recording.txt"


def call_recording_policy(data_dir: Path, value: str | None) -> str:
    """The call recording policy kept in the data dir (``call-recording.txt``), first replaced
    by ``value`` when given; "off" when never set.

    Raises:
        MalformedInput: not "required" or "off".
    """
    path = data_dir / CALL_RECORDING_FILE
    if value is not None:
        if value not in ("required", "off"):
            raise MalformedInput(f"--call-recording is 'required' or 'off', not {value!r}")
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.write_text(value + "\n")
    policy = path.read_text().strip() if path.exists() else "off"
    if policy not in ("required", "off"):
        raise MalformedInput(f"{path} says {policy!r}; it must be 'required' or 'off'")
    return policy


def resolve_domain(data_dir: Path, domain: str | None) -> str:
    """The domain recorded in ``server.json`` (written on first use), checked against ``domain``.

    Raises:
        MalformedInput: no domain known yet, or a different one than recorded.
    """
    settings = data_dir / "server.json"
    if settings.exists():
        recorded = str(json.loads(settings.read_text())["domain"])
        if domain and domain != recorded:
            raise MalformedInput(f"this server's domain is {recorded}, not {domain}")
        return recorded
    if not domain:
        raise MalformedInput("first start needs --domain (e.g. --domain washington.example)")
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    settings.write_text(json.dumps({"domain": domain}))
    return domain


def config_from_data_dir(
    data_dir: Path,
    domain: str | None = None,
    *,
    custodian_key: Path | None = None,
    records_law: str | None = None,
    policy: Path | None = None,
    org_key: Path | None = None,
    call_recording: str | None = None,
) -> ServerConfig:
    """The server's configuration: the given settings are first kept in the data dir.

    Raises:
        MalformedInput: a setting is invalid (see the helpers), or calls must be recorded
            without an archive.
        CustodianNotAuthorised: the signed policy names custodians, not the configured one.
    """
    resolved = resolve_domain(data_dir, domain)
    archive = archive_settings(data_dir, custodian_key, records_law)
    signed_policy, org = policy_settings(data_dir, policy, org_key)
    check_custodian_named(archive, signed_policy, org)
    recording = call_recording_policy(data_dir, call_recording)
    if recording == "required" and archive is None:
        raise MalformedInput(
            "--call-recording required needs a records archive (--custodian-key) to record into"
        )
    return ServerConfig(
        domain=resolved,
        database_url=default_database_url(data_dir),
        archive=archive,
        server_key=load_server_key(data_dir),
        policy=signed_policy,
        org_key=org,
        call_recording=recording,
    )


def is_postgres(database_url: str) -> bool:
    return make_url(database_url).get_backend_name() == "postgresql"


def app_from_env() -> Starlette:
    """The app of one worker process, configured from ``HOTLINE_SERVER_DATA`` and
    ``HOTLINE_DOMAIN`` (set by ``hotline server --workers N``).

    Raises:
        MalformedInput: ``HOTLINE_SERVER_DATA`` is not set, or the data dir is not configured.
    """
    data_dir = os.environ.get("HOTLINE_SERVER_DATA")
    if not data_dir:
        raise MalformedInput("HOTLINE_SERVER_DATA must name the server's data dir")
    return create_app(config_from_data_dir(Path(data_dir), os.environ.get("HOTLINE_DOMAIN")))


class TcpNoDelayConfig(uvicorn.Config):
    """uvicorn's config, except that the listening socket it binds for the workers says it is
    TCP (``proto = IPPROTO_TCP``).

    uvicorn's ``bind_socket`` leaves ``proto`` at 0; accepted sockets inherit it, and asyncio
    sets ``TCP_NODELAY`` only on sockets that say ``IPPROTO_TCP``. Without this every
    keep-alive request after the first waits ~40 ms for the client's delayed ACK (Nagle),
    with ``--workers N`` only (uvicorn issue Kludex/uvicorn#3149, open for 0.54).
    """

    def bind_socket(self) -> socket.socket:
        sock = super().bind_socket()
        if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.proto == 0:
            tcp = socket.socket(sock.family, sock.type, socket.IPPROTO_TCP, fileno=sock.detach())
            tcp.set_inheritable(True)
            return tcp
        return sock


def serve_workers(app: str, workers: int, host: str, port: int, log_level: str) -> None:
    """Run the app factory ``app`` ("module:function") in ``workers`` processes sharing one
    port (what ``uvicorn.run(app, factory=True, workers=N)`` does, with the socket fix)."""
    config = TcpNoDelayConfig(
        app,
        factory=True,
        workers=workers,
        host=host,
        port=port,
        ws="websockets-sansio",
        log_level=log_level,
    )
    Multiprocess(config, sockets=[config.bind_socket()]).run()
