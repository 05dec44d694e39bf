"""Two-party harness helpers: a real home server on loopback (uvicorn, SQLite) and real clients.

``server_url`` starts the ASGI app under uvicorn on an ephemeral 127.0.0.1 port for one test;
``make_principal`` enrols, registers and returns a :class:`HotlineClient` with its own
``HOTLINE_HOME`` under ``tmp_path``; ``connected_pair`` returns two principals that exchanged
cards and are contacts both ways.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import event as sa_event

from hotline.client.device import HotlineClient
from hotline.crypto.hpke import CustodianPrivateKey
from hotline.crypto.passphrase import ScryptParams
from hotline.server.config import ServerConfig
from hotline.server.embedded import start_embedded
from hotline.server.records_log import ArchiveSettings
from hotline.store.base import Store

DOMAIN = "washington.test"
FAST_SCRYPT = ScryptParams(log2_n=4, r=8, p=1)
PASSPHRASE = "correct horse battery staple"


#: One custodian for the whole test session (ML-KEM key generation is not free).
CUSTODIAN = CustodianPrivateKey.generate()
LAW = "Presidential Records Act, 44 U.S.C. 2209"


@dataclass
class LiveServer:
    url: str
    store: Store
    config: ServerConfig
    db_path: Path
    custodian: CustodianPrivateKey | None


def archive_settings(custodian: CustodianPrivateKey = CUSTODIAN) -> ArchiveSettings:
    return ArchiveSettings(
        log_key=Ed25519PrivateKey.generate(), custodian_key=custodian.public.to_bytes(), law=LAW
    )


async def start_server(
    db_path: Path,
    domain: str = DOMAIN,
    *,
    archive: bool = True,
    host: str = "127.0.0.1",
    **overrides: object,
) -> tuple[LiveServer, Callable[[], Awaitable[None]]]:
    """Start a real server on ``host``:<ephemeral>; returns it and a stop function.

    With ``archive`` (the default) the server keeps a records log sealed to ``CUSTODIAN``.
    """
    settings = overrides.pop("archive_settings", None) or (archive_settings() if archive else None)
    config = ServerConfig(
        domain=domain,
        database_url=f"sqlite+aiosqlite:///{db_path}",
        archive=settings,  # type: ignore[arg-type]
        **overrides,  # type: ignore[arg-type]
    )
    server = await start_embedded(config, host=host)
    custodian = CUSTODIAN if archive else None
    return LiveServer(server.url, server.store, config, db_path, custodian), server.stop


async def connect(a: HotlineClient, b: HotlineClient) -> None:
    """``a`` adds ``b``'s card; ``b`` auto-accepts; ``a`` learns of the acceptance."""
    card = await b.my_card()
    await a.add_contact(card)
    await b.sync()
    await a.sync()


class RouteTransactions:
    """Store transactions ``server`` begins while one of ``client``'s requests to ``path`` is
    in flight (the outbound worker's polls left out): one count per request.

    Counts SQLAlchemy ``begin`` events on the server's engine between the request leaving
    ``client`` and its response arriving (httpx event hooks, which only observe).
    """

    def __init__(self, server: LiveServer, client: HotlineClient, path: str) -> None:
        self.counts: list[int] = []
        self._path = path
        self._open = False
        self._engine = server.store.engine.sync_engine  # type: ignore[attr-defined]
        # ServerApi keeps its httpx.AsyncClient in ``_http``.
        client.server._http.event_hooks = {"request": [self._sent], "response": [self._answered]}
        sa_event.listen(self._engine, "begin", self._begun)

    async def _sent(self, request: httpx.Request) -> None:
        self._open = request.url.path == self._path
        if self._open:
            self.counts.append(0)

    async def _answered(self, _response: httpx.Response) -> None:
        self._open = False

    def _begun(self, _conn: object) -> None:
        task = asyncio.current_task()
        if self._open and (task is None or task.get_name() != "hotline-outbound"):
            self.counts[-1] += 1

    def remove(self) -> None:
        sa_event.remove(self._engine, "begin", self._begun)
