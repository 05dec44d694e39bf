"""``hotline devices``: list, link (join/approve), provision and remove this principal's devices."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import segno
import typer
from rich.table import Table

from hotline.cli.client_cmds import opened
from hotline.cli.common import console, home_dir, passphrase, run_async
from hotline.client.enrolment import approve_link, finish_join, open_link, start_join
from hotline.client.keystore import Keystore
from hotline.client.linked_devices import list_devices, provision_device, remove_device
from hotline.wire.errors import AlreadyExists

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


@devices_app.command("join")
@run_async
async def devices_join(
    server: Annotated[str, typer.Option(help="Your home server URL, e.g. http://127.0.0.1:8448")],
    qr: Annotated[bool, typer.Option("--qr", help="Also draw the code as a QR code.")] = False,
    png: Annotated[Path | None, typer.Option(help="Write the QR code as PNG.")] = None,
    svg: Annotated[Path | None, typer.Option(help="Write the QR code as SVG.")] = None,
) -> None:
    """On a NEW device: show a one-time enrolment code, wait until one of your existing devices
    approves it (hotline devices approve CODE), then set this device up in HOTLINE_HOME."""
    home = home_dir()
    if Keystore.exists(home):
        raise AlreadyExists(f"a keystore already exists in {home}; use another HOTLINE_HOME")
    console.print("Passphrase for this NEW device's keystore:")
    secret = passphrase(confirm=True)
    pending = await start_join(server)
    code = str(pending.code)
    console.print("On one of your existing devices run:")
    console.print(f"  hotline devices approve '{code}'", highlight=False, soft_wrap=True)
    picture = segno.make(code, error="m")
    if qr:
        picture.terminal(compact=True)
    if png:
        picture.save(str(png), kind="png", scale=4)
    if svg:
        picture.save(str(svg), kind="svg", scale=4)
    console.print(f"This device's key fingerprint: [bold]{pending.fingerprint}[/]")
    console.print("[dim]Waiting for approval (the code expires in 10 minutes)…[/]")
    client = await finish_join(pending, home, secret)
    await client.close()
    console.print(f"Linked: this is device {client.device_id} of [bold]{client.handle}[/].")
    console.print("[dim]Your contacts' safety numbers with you are unchanged.[/]")


@devices_app.command("approve")
@run_async
async def devices_approve(
    code: Annotated[str, typer.Argument(help="The hotline-link: code the new device shows.")],
    yes: Annotated[
        bool, typer.Option("--yes", help="Do not ask to compare the fingerprint.")
    ] = False,
) -> None:
    """On an EXISTING device: approve a new device of yours from its enrolment code. It gets
    your identity key, contacts and settings (not your message history)."""
    async with opened() as client:
        request = await open_link(client, code)
        console.print(f"New device {request.device.device_id} wants to join as {client.handle}.")
        console.print(f"Its key fingerprint: [bold]{request.fingerprint}[/]")
        if not yes and not typer.confirm("Does the new device show the same fingerprint?"):
            console.print("Not approved; nothing was changed.")
            raise typer.Exit(1)
        await approve_link(client, request)
    console.print(f"Device {request.device.device_id} approved and added to your device list.")
