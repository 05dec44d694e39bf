"""``hotline devices``: list, provision and remove this principal's devices."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from hotline.cli.client_cmds import opened
from hotline.cli.common import console, passphrase, run_async
from hotline.client.linked_devices import list_devices, provision_device, remove_device

devices_app = typer.Typer(help="List, add and remove your devices.", no_args_is_help=False)


@devices_app.callback(invoke_without_command=True)
@run_async
async def devices_list(ctx: typer.Context) -> None:
    """List your devices from the signed device list (no subcommand)."""
    if ctx.invoked_subcommand is not None:
        return
    async with opened() as client:
        table = Table("device id", "this device", "curve25519 key")
        for device in await list_devices(client):
            mine = "yes" if device.device_id == client.device_id else ""
            table.add_row(device.device_id, mine, device.curve25519[:16] + "…")
        console.print(table)


@devices_app.command("add")
@run_async
async def devices_add(
    home: Annotated[Path, typer.Option(help="HOTLINE_HOME folder for the new device.")],
) -> None:
    """Provision a new device of yours into HOME (e.g. removable media for the new device)."""
    async with opened() as client:
        console.print("Passphrase for the NEW device's keystore:")
        new = await provision_device(client, home, passphrase(confirm=True))
        await new.close()
    console.print(f"New device {new.device_id} added; use it with HOTLINE_HOME={home}")


@devices_app.command("remove")
@run_async
async def devices_remove(device_id: str) -> None:
    """Remove a lost or retired device: it gets nothing sent from now on."""
    async with opened() as client:
        await remove_device(client, device_id)
    console.print(f"Device {device_id} removed from your signed device list.")
