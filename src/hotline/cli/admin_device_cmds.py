"""``hotline server device-remove``: the administrator removes a principal's lost device."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from hotline.cli.common import console
from hotline.server.admin import archive_settings
from hotline.server.admin_devices import remove_device_by_admin
from hotline.server.config import default_database_url
from hotline.server.factory import resolve_domain
from hotline.server.records_log import RecordsLog
from hotline.store import open_store


async def device_remove(
    handle: Annotated[str, typer.Argument(help="The principal, name@domain.")],
    device_id: Annotated[str, typer.Argument(help="The lost device's id.")],
    data_dir: Annotated[
        Path,
        typer.Option("--data-dir", envvar="HOTLINE_SERVER_DATA", help="The server's folder."),
    ] = Path("hotline-server"),
) -> None:
    """Remove a principal's lost device at once: logged out, nothing more delivered, recorded;
    the principal's other devices then re-sign their device list without it."""
    domain = resolve_domain(data_dir, None)
    settings = archive_settings(data_dir, None, None)
    records = RecordsLog(settings, domain) if settings is not None else None
    store = await open_store(default_database_url(data_dir))
    try:
        told = await remove_device_by_admin(store, records, domain, handle, device_id, time.time())
    finally:
        await store.close()
    console.print(
        f"Device {device_id} of {handle} removed and blocked"
        + (" (on the record)" if records is not None else "")
        + f"; {len(told)} remaining device(s) told to re-sign the device list.",
        highlight=False,
    )


__all__ = ["device_remove"]
