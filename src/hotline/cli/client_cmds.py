"""The device commands: register, card, contacts, send, listen, history, verify."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

import segno
import typer
from rich.markup import escape
from rich.table import Table

from hotline.cli.common import console, home_dir, passphrase, run_async
from hotline.client.device import HotlineClient
from hotline.client.events import ClientEvent
from hotline.crypto.safety_number import format_safety_number
from hotline.policy.keys import read_org_public
from hotline.wire.errors import NotVerified

contacts_app = typer.Typer(help="List, add, accept and remove contacts.", no_args_is_help=False)


@asynccontextmanager
async def opened() -> AsyncIterator[HotlineClient]:
    client = await HotlineClient.open(home_dir(), passphrase())
    try:
        yield client
    finally:
        await client.close()


def when(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


@run_async
async def register(
    server: Annotated[str, typer.Option(help="Home server URL, e.g. http://127.0.0.1:8448")],
    handle: Annotated[str, typer.Option(help="Your handle name@domain (from the admin).")],
    token: Annotated[str, typer.Option(help="Enrolment token from 'hotline server enrol'.")],
    name: Annotated[str, typer.Option(help="Display name, e.g. 'Prime Minister of Canada'.")],
    org_key: Annotated[
        Path | None,
        typer.Option(
            help="Your organisation's org.pub (from the admin): the policy must be signed by "
            "it, and the records custodian must be the one that policy names."
        ),
    ] = None,
) -> None:
    """Create this device's keys (in HOTLINE_HOME) and register with the home server."""
    client = await HotlineClient.register(
        home_dir(),
        passphrase(confirm=True),
        server_url=server,
        enrolment_token=token,
        handle=handle,
        display_name=name,
        org_key=read_org_public(org_key) if org_key is not None else None,
    )
    await client.close()
    console.print(f"Registered [bold]{handle}[/] (device {client.device_id}) in {home_dir()}")
    console.print("[dim]Next: 'hotline card' prints the card to hand to a counterpart.[/]")


@run_async
async def card(
    new: Annotated[bool, typer.Option("--new", help="Issue a fresh card (new invite).")] = False,
    revoke: Annotated[bool, typer.Option("--revoke", help="Revoke your live card(s).")] = False,
    invite: Annotated[str | None, typer.Option(help="With --revoke: only this invite id.")] = None,
    qr: Annotated[bool, typer.Option("--qr", help="Also draw a QR code in the terminal.")] = False,
    png: Annotated[Path | None, typer.Option(help="Write the QR code as PNG.")] = None,
    svg: Annotated[Path | None, typer.Option(help="Write the QR code as SVG.")] = None,
    days: Annotated[int, typer.Option(help="Validity of a new card in days.")] = 30,
) -> None:
    """Print your contact card (your "number") as a hotline: URI, or revoke it."""
    async with opened() as client:
        if revoke:
            revoked = await client.revoke_card(invite)
            console.print(f"Revoked {len(revoked)} card invite(s): {', '.join(revoked) or '-'}")
            return
        uri = await client.my_card(new=new, validity_days=days)
    console.print(uri, highlight=False, soft_wrap=True)
    code = segno.make(uri, error="m")
    if qr:
        code.terminal(compact=True)
    if png:
        code.save(str(png), kind="png", scale=4)
        console.print(f"[dim]QR code written to {png}[/]")
    if svg:
        code.save(str(svg), kind="svg", scale=4)
        console.print(f"[dim]QR code written to {svg}[/]")


@contacts_app.callback(invoke_without_command=True)
@run_async
async def contacts_list(ctx: typer.Context) -> None:
    """List contacts (no subcommand)."""
    if ctx.invoked_subcommand is not None:
        return
    async with opened() as client:
        table = Table("handle", "name", "status", "verified")
        for c in client.contacts():
            flag = (
                "[red]KEY CHANGED[/]" if c.changed_identity_key else ("yes" if c.verified else "no")
            )
            table.add_row(escape(c.handle), escape(c.display_name), c.status, flag)
        console.print(table)
        for request in client.pending_requests():
            console.print(
                f"pending request from {request.sender}: hotline contacts accept {request.sender}"
            )


@contacts_app.command("add")
@run_async
async def contacts_add(card_text: Annotated[str, typer.Argument(metavar="CARD")]) -> None:
    """Verify a card and send its owner a contact request."""
    async with opened() as client:
        contact = await client.add_contact(card_text)
    console.print(
        f"Contact request sent to [bold]{escape(contact.display_name)}[/] "
        f"({escape(contact.handle)}).",
        highlight=False,
    )
    console.print(f"[dim]Compare safety numbers next: hotline verify {contact.handle}[/]")


@contacts_app.command("mode")
@run_async
async def contacts_mode(
    mode: Annotated[str, typer.Argument(help="'auto' (accept valid invites) or 'ask'.")],
) -> None:
    """Choose whether requests with a valid invite of your card are accepted automatically."""
    if mode not in ("auto", "ask"):
        raise typer.BadParameter("mode is 'auto' or 'ask'")
    async with opened() as client:
        await client.set_auto_accept(mode == "auto")
    hint = "" if mode == "auto" else " Accept with: hotline contacts accept HANDLE"
    console.print(f"Contact requests: {mode}.{hint}")


@contacts_app.command("accept")
@run_async
async def contacts_accept(handle: str) -> None:
    """Accept a pending contact request (when auto-accept is off)."""
    async with opened() as client:
        contact = await client.accept_request(handle)
    console.print(f"{escape(contact.display_name)} is now a contact.", highlight=False)


@contacts_app.command("remove")
@run_async
async def contacts_remove(contact: str) -> None:
    """Cut a contact off at both ends (they are told, end to end)."""
    async with opened() as client:
        await client.remove_contact(contact)
    console.print(f"Removed {contact}.")


@run_async
async def send(contact: str, text: str) -> None:
    """Send TEXT to CONTACT, end-to-end encrypted to each of their devices."""
    async with opened() as client:
        await client.sync()
        if not client.history(contact):
            print_banners(client, contact)
        entry = await client.send_text(contact, text)
    where = (
        f"on the record at log index {entry.record_index}"
        if entry.record_index >= 0
        else "NOT on the record yet"
    )
    console.print(f"sent #{entry.seq} to {contact} (end-to-end encrypted; {where})")
    for warning in entry.warnings:
        console.print(f"[bold yellow]  ⚠ {warning}[/]", highlight=False)


def print_banners(client: HotlineClient, contact: str) -> None:
    """Tell the user, before anything is said, who records this conversation."""
    for banner in client.archive_banners(contact):
        console.print(f"[bold blue]ⓡ {banner}[/]", highlight=False)


def print_event(event: ClientEvent) -> None:
    if event.kind == "message":
        arrow = "→" if event.outgoing else "←"
        console.print(
            f"{arrow} [bold]{escape(event.contact)}[/] #{event.seq}: {escape(event.text)}"
            + (f" [italic]({escape(event.label)})[/]" if event.label else ""),
            highlight=False,
        )
    elif event.kind == "warning":
        console.print(f"[bold yellow]warning[/] {escape(event.text)}", highlight=False)
    else:
        console.print(
            f"[dim]{event.kind}: {escape(event.contact)} {escape(event.text)}[/]", highlight=False
        )
    for warning in event.warnings:
        console.print(f"[bold yellow]  ⚠ {escape(warning)}[/]", highlight=False)


@run_async
async def listen() -> None:
    """Print incoming messages and events as they arrive (Ctrl-C to stop)."""
    async with opened() as client:
        console.print(f"[dim]listening as {client.handle}…[/]")
        async for event in client.listen(reconnect=True):
            print_event(event)
            if event.kind == "message" and not event.outgoing:
                await client.send_read_receipts(event.contact)


@run_async
async def sync() -> None:
    """Fetch and process everything waiting, then exit."""
    async with opened() as client:
        for event in await client.sync():
            print_event(event)


@run_async
async def history(contact: str) -> None:
    """Show the conversation with CONTACT and its transcript digest."""
    async with opened() as client:
        await client.sync()
        print_banners(client, contact)
        for m in client.history(contact):
            who = "me" if m.outgoing and m.sender == client.handle else m.sender
            if m.on_behalf_of:
                who = f"{who} (sent by {m.sender} for {m.on_behalf_of})"
            record = f"log #{m.record_index}" if m.record_index >= 0 else "NOT ON THE RECORD"
            console.print(
                f"[dim]{when(m.sent_at_ms)}[/] {escape(who)} #{m.seq} "
                f"{escape(f'[{m.status}, {record}]')}: {escape(m.text)}",
                highlight=False,
            )
            for warning in m.warnings:
                console.print(f"[bold yellow]  ⚠ {escape(warning)}[/]", highlight=False)
        await client.send_read_receipts(contact)
        console.print(f"[dim]transcript digest {client.transcript_digest(contact)}[/]")


@run_async
async def verify(
    contact: str,
    confirm: Annotated[
        bool, typer.Option("--confirm", help="Record that the numbers matched.")
    ] = False,
    sas: Annotated[
        bool, typer.Option("--sas", help="Interactive check: both sides run this at once.")
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the other side.")] = 120,
) -> None:
    """Show the 60-digit safety number with CONTACT; compare it with theirs in person."""
    async with opened() as client:
        state = client.contact(contact)
        if sas:
            await _interactive_sas(client, state.handle, timeout)
            return
        number = format_safety_number(client.safety_number(contact))
        if state.changed_identity_key:
            console.print(
                f"[bold red]{state.handle}'s IDENTITY KEY CHANGED.[/] Sending is "
                "blocked until you compare the new safety number and confirm it."
            )
        console.print(
            f"Safety number with {escape(state.display_name)} ({escape(state.handle)}):",
            highlight=False,
        )
        console.print(f"[bold]{number}[/]", highlight=False)
        if confirm:
            await client.mark_verified(contact)
            console.print("[green]Marked as verified.[/]")
        elif not state.verified:
            console.print(
                f"[dim]If it matches theirs: hotline verify {escape(state.handle)} --confirm[/]",
                highlight=False,
            )


async def _interactive_sas(client: HotlineClient, peer: str, timeout: float) -> None:
    """Answer a pending request from ``peer`` or start one; compare codes; exchange MACs."""
    events = await client.sync()
    requested = [e for e in events if e.kind == "sas" and e.contact == peer]
    flow_id = requested[-1].message_id if requested else (await client.start_sas(peer)).flow_id
    if not requested:
        console.print(f"Waiting for {escape(peer)} to run 'hotline verify --sas' too…")
    deadline = asyncio.get_running_loop().time() + timeout
    asked = False
    while asyncio.get_running_loop().time() < deadline:
        flow = client.sas.flows.get(flow_id)
        if flow is None:
            raise NotVerified("the verification was cancelled")
        if flow.done:
            console.print(
                f"[green]{escape(peer)} is verified[/] (codes matched, identity keys vouched)."
            )
            return
        if flow.codes and not asked:
            asked = True
            console.print("Compare with the other device: " + "  ".join(map(str, flow.codes)))
            console.print("  ".join(f"{e} {name}" for e, name in flow.emoji))
            if not typer.confirm("Do they match exactly?", default=False):
                await client.cancel_sas(flow_id)
                raise NotVerified("the codes differ: do NOT trust this contact's key")
            await client.confirm_sas(flow_id)
        for event in await client.sync():
            if event.kind == "warning":
                print_event(event)
        await asyncio.sleep(0.3)
    raise NotVerified(f"no answer from {peer} within {timeout:g} s")
