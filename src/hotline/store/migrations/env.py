"""Alembic environment for the home server's store.

Run only through :func:`hotline.store.sql.open_store`, which builds the Alembic ``Config`` in
code and hands over an open synchronous connection (``AsyncConnection.run_sync``) in
``config.attributes["connection"]``; there is no ``alembic.ini`` and no offline mode.
"""

from __future__ import annotations

from alembic import context

from hotline.store.schema import metadata


def run_migrations_online() -> None:
    """Run migrations on the connection the caller provided, inside its transaction."""
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through hotline.store.open_store()")
    context.configure(connection=connection, target_metadata=metadata)
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
