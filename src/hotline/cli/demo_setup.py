"""The demo's two governments: each a home server on loopback with its own SQLite database,
records log, custodian and law; the two servers pin each other (closed federation)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from rich.console import Console

from hotline.client.device import HotlineClient
from hotline.client.events import ClientEvent
from hotline.crypto.passphrase import ScryptParams
from hotline.records.custodian_keys import CustodianKeys, write_keys
from hotline.server.admin import issue_enrolment
from hotline.server.config import ServerConfig
from hotline.server.embedded import EmbeddedServer, start_embedded
from hotline.server.records_log import ArchiveSettings

CUSTODIAN_PASSPHRASE = "custodian demo passphrase (not for real use)"  # noqa: S105
DEMO_SCRYPT = ScryptParams(log2_n=14, r=8, p=1)
console = Console()


class DemoFailed(Exception):
    """A step of the demo did not check out."""


def check(ok: bool, what: str) -> None:
    if not ok:
        raise DemoFailed(what)
    console.print(f"  [green]✓[/] {what}")


@dataclass
class Government:
    name: str
    domain: str
    law: str
    home: Path
    custodian: CustodianKeys
    server_key: Ed25519PrivateKey
    server: EmbeddedServer

    @property
    def db(self) -> Path:
        return self.home / "server.db"

    @classmethod
    async def start(cls, name: str, domain: str, law: str, root: Path) -> Government:
        home = root / domain
        home.mkdir(parents=True)
        custodian = CustodianKeys.generate()
        write_keys(home / "custodian", custodian, CUSTODIAN_PASSPHRASE, scrypt=DEMO_SCRYPT)
        archive = ArchiveSettings(
            log_key=Ed25519PrivateKey.generate(),
            custodian_key=custodian.public.hpke.to_bytes(),
            law=law,
        )
        server_key = Ed25519PrivateKey.generate()
        server = await start_embedded(
            ServerConfig(
                domain=domain,
                database_url=f"sqlite+aiosqlite:///{home / 'server.db'}",
                archive=archive,
                server_key=server_key,
                retry_base=0.05,
                call_recording="required",
                retry_max=1.0,
            )
        )
        return cls(name, domain, law, home, custodian, server_key, server)

    async def pin(self, other: Government) -> None:
        key = other.server_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        await self.server.store.put_peer(other.domain, other.server.url, key, time.time())

    async def enrol(self, local: str, display: str) -> HotlineClient:
        handle = f"{local}@{self.domain}"
        token = await issue_enrolment(self.server.store, handle, time.time())
        client = await HotlineClient.register(
            self.home / local,
            "demo passphrase (not for real use)",
            server_url=self.server.url,
            enrolment_token=token,
            handle=handle,
            display_name=display,
            scrypt=DEMO_SCRYPT,
        )
        console.print(
            f"  [green]✓[/] {display} enrolled on {self.domain} as [bold]{handle}[/]"
            " (keys generated on the device)"
        )
        return client

    def queued_for(self, device_id: str) -> list[tuple[str, int, bytes]]:
        """What a thief of this server's database file would find queued for a device."""
        with sqlite3.connect(self.db) as conn:
            return list(
                conn.execute(
                    "SELECT kind, length(body), body FROM deliveries WHERE device_id = ? "
                    "ORDER BY seq",
                    (device_id,),
                )
            )

    def files_contain(self, needles: list[str]) -> list[str]:
        blob = b"".join(p.read_bytes() for p in self.home.glob("server.db*"))
        return [n for n in needles if n.encode() in blob]


async def until(
    client: HotlineClient, done: Callable[[list[ClientEvent]], bool], timeout: float = 15.0
) -> list[ClientEvent]:
    """Sync until ``done(events so far)`` (messages between servers arrive asynchronously)."""
    events: list[ClientEvent] = []
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        events += await client.sync()
        if done(events):
            return events
        await asyncio.sleep(0.05)
    raise DemoFailed(f"{client.handle} did not receive what it waited for")


Step = Callable[[], Awaitable[None]]
