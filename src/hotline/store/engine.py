"""Opening a store: engine, SQLite connection settings and Alembic migrations.

:func:`open_store` is the only way the server gets a :class:`~hotline.store.sql.SqlStore`: it
creates the async engine, configures SQLite (WAL, foreign keys, busy timeout, ``BEGIN
IMMEDIATE`` for writers) and runs ``alembic upgrade head`` programmatically. The Alembic
``Config`` is built in code and points at the ``hotline.store:migrations`` package directory,
so no ``alembic.ini`` is needed at run time.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from hotline.store.sql import READ_ONLY_OPTION, SqlStore
from hotline.store.sqlite_inline import BUSY_TIMEOUT_MS, begin_with_first_statement, inline_dbapi
from hotline.wire.errors import StorageError

__all__ = ["DEFAULT_URL", "SQLITE_BUSY_TIMEOUT_MS", "open_store"]

_log = logging.getLogger(__name__)

#: Used when ``HOTLINE_DATABASE_URL`` is not set: an SQLite file in the working directory.
DEFAULT_URL: Final = "sqlite+aiosqlite:///hotline.db"
#: How long an SQLite statement waits for another process's lock before failing (ms).
SQLITE_BUSY_TIMEOUT_MS: Final = BUSY_TIMEOUT_MS
#: ``pg_advisory_xact_lock`` key serialising migrations of workers that start together.
_MIGRATION_LOCK_KEY: Final = 0x686F746C696E65  # "hotline"
_ASYNC_DRIVERS: Final = {
    "sqlite": "sqlite+aiosqlite",
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
}


async def open_store(url: str) -> SqlStore:
    """Connect to ``url``, migrate the schema to the newest revision and return the store.

    Args:
        url: SQLAlchemy URL; ``sqlite:///path`` and ``postgresql://...`` are upgraded to their
            async drivers (``sqlite+aiosqlite``, ``postgresql+asyncpg``).

    Raises:
        StorageError: bad URL, database unreachable, or migration failed (nothing half-done:
            migrations run in one transaction).
    """
    try:
        engine = _create_engine(_async_url(url))
    except SQLAlchemyError as exc:
        # The URL may hold a password: never put it in the error.
        raise StorageError("invalid database URL") from exc
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade_to_head)
    except BaseException as exc:
        await engine.dispose()
        if isinstance(exc, SQLAlchemyError | OSError):
            _log.warning("store migration failed: %s", type(exc).__name__)
            raise StorageError("could not open or migrate the database") from exc
        raise
    return SqlStore(engine)


def _async_url(url: str) -> URL:
    parsed = make_url(url)
    driver = _ASYNC_DRIVERS.get(parsed.drivername)
    return parsed.set(drivername=driver) if driver else parsed


def _create_engine(url: URL) -> AsyncEngine:
    if url.get_backend_name() != "sqlite":
        return create_async_engine(url, hide_parameters=True)
    # Statements inline on the event loop, commits of writers on a thread (sqlite_inline).
    engine = create_async_engine(url, hide_parameters=True, module=inline_dbapi())
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
        event.listen(engine.sync_engine, "begin", _sqlite_on_begin)
    return engine


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Take BEGIN away from the sqlite3 driver (legacy transaction control) so that
    # _sqlite_on_begin decides the transaction kind.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        # Zero: an inline statement never sleeps on the event loop in SQLite's busy handler;
        # one refused as busy is retried on a thread under SQLITE_BUSY_TIMEOUT_MS.
        cursor.execute("PRAGMA busy_timeout=0")
    finally:
        cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    read_only = conn.get_execution_options().get(READ_ONLY_OPTION, False)
    begin_with_first_statement(conn.connection.dbapi_connection, immediate=not read_only)


def _upgrade_to_head(connection: Connection) -> None:
    """Run ``alembic upgrade head`` on ``connection`` (inside its transaction)."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
    config = Config()
    config.set_main_option("script_location", "hotline.store:migrations")
    config.set_main_option("path_separator", "os")
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
