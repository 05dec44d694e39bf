"""Shared fixtures.

Store: ``store`` yields an empty, migrated :class:`~hotline.store.SqlStore` on every backend:
``[sqlite]`` a new file in ``tmp_path``; ``[postgres]`` one database migrated once per session
and truncated before each test (``CREATE DATABASE`` costs ~0.3 s with fsync on).
``store_url`` is the URL of a brand-new, unmigrated database of each backend.

PostgreSQL is found through ``HOTLINE_TEST_POSTGRES_URL`` (an admin URL allowed to
``CREATE DATABASE``), else the local default below. When none answers, postgres tests skip
with the reason, or fail when ``CI=true`` (CI must not silently lose a backend).
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import NoReturn

import asyncpg
import pytest
from sqlalchemy.engine import URL, make_url

from hotline.store import SqlStore, open_store
from hotline.store.schema import metadata

POSTGRES_URL_ENV = "HOTLINE_TEST_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
# Why PostgreSQL was unreachable, remembered so later tests skip without waiting again.
_postgres_down: dict[str, str] = {}


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but PostgreSQL is unavailable: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL unavailable ({reason}); set {POSTGRES_URL_ENV}")


def _admin_url() -> URL:
    return make_url(os.environ.get(POSTGRES_URL_ENV) or DEFAULT_POSTGRES_URL)


async def _admin_connection() -> asyncpg.Connection:
    if "reason" in _postgres_down:
        _unavailable(_postgres_down["reason"])
    url = _admin_url()
    try:
        dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        return await asyncpg.connect(dsn, timeout=5)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        _postgres_down["reason"] = f"{url.render_as_string()}: {type(exc).__name__}: {exc}"
        _unavailable(_postgres_down["reason"])


async def _create_database() -> str:
    """Create an empty database; return its SQLAlchemy URL."""
    admin = await _admin_connection()
    name = f"hotline_test_{secrets.token_hex(6)}"
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = _admin_url().set(drivername="postgresql+asyncpg", database=name)
    return url.render_as_string(hide_password=False)


async def _drop_database(url: str) -> None:
    admin = await _admin_connection()
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')
    finally:
        await admin.close()


async def _migrate(url: str) -> None:
    store = await open_store(url)
    await store.close()


@asynccontextmanager
async def postgres_database() -> AsyncIterator[str]:
    """A brand-new empty database for one test, dropped afterwards."""
    url = await _create_database()
    try:
        yield url
    finally:
        await _drop_database(url)


@pytest.fixture(scope="session")
def _postgres_shared_url() -> Iterator[str]:
    """One migrated database for the whole session (created on first use)."""
    url = asyncio.run(_create_database())
    try:
        asyncio.run(_migrate(url))
        yield url
    finally:
        asyncio.run(_drop_database(url))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    """Name of the store backend under test."""
    return str(request.param)


@pytest.fixture
async def store_url(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    """URL of a brand-new, unmigrated database of each backend."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'hotline.db'}"
        return
    async with postgres_database() as url:
        yield url


@pytest.fixture
def _store_target(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    # Sync on purpose: the shared database is set up with asyncio.run, outside any loop.
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'hotline.db'}"
    return str(request.getfixturevalue("_postgres_shared_url"))


@pytest.fixture
async def store(backend: str, _store_target: str) -> AsyncIterator[SqlStore]:
    """An empty, migrated store of each backend, closed after the test."""
    opened = await open_store(_store_target)
    try:
        if backend == "postgres":
            # DELETE beats TRUNCATE on near-empty tables; sequences keep counting (harmless).
            async with opened.engine.begin() as conn:
                for table in reversed(metadata.sorted_tables):
                    if table.name == "log_state":
                        # The sequencer row is seeded by migration 0002: reset, keep it.
                        await conn.execute(table.update().values(size=0))
                    else:
                        await conn.execute(table.delete())
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def olm_restores(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every pickle restored with ``OlmSession.from_pickle`` while the test runs."""
    from hotline.crypto.olm import OlmSession

    seen: list[str] = []
    original = OlmSession.from_pickle.__func__  # type: ignore[attr-defined]

    def counting(cls: type[OlmSession], pickle: str, key: bytes) -> OlmSession:
        seen.append(pickle)
        return original(cls, pickle, key)  # type: ignore[no-any-return]

    monkeypatch.setattr(OlmSession, "from_pickle", classmethod(counting))
    return seen


@pytest.fixture
def olm_pickles(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every ``OlmSession.pickle`` made while the test runs."""
    from hotline.crypto.olm import OlmSession

    made: list[str] = []
    original = OlmSession.pickle

    def counting(session: OlmSession, key: bytes) -> str:
        made.append(original(session, key))
        return made[-1]

    monkeypatch.setattr(OlmSession, "pickle", counting)
    return made
