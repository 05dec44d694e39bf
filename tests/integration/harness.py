"""Two-party harness helpers: a real home server on loopback (uvicorn, SQLite) and real clients.

``server_url`` starts the ASGI app under uvicorn on an ephemeral 127.0.0.1 port for one test;
``make_principal`` enrols, registers and returns a :class:`HotlineClient` with its own
``HOTLINE_HOME`` under ``tmp_path``; ``connected_pair`` returns two principals that exchanged
cards and are contacts both ways.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

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
