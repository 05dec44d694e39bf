"""``hotline group``: small group conversations (create, add, remove, leave, send, list, show)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from hotline.cli.client_cmds import opened, when
from hotline.cli.common import console, run_async
from hotline.client.group_state import GroupState
from hotline.client.groups import roster_of

group_app = typer.Typer(
    help="Group conversations of up to 50 principals (Megolm, signed roster, on the record).",
    no_args_is_help=True,
)


def _summary(group: GroupState) -> str:
    roster = roster_of(group)
    state = "" if group.active else " [yellow](you left or were removed)[/]"
    return f"[bold]{escape(group.name)}[/] v{group.version}, {len(roster.members)} members{state}"


def _warn(warnings: list[str]) -> None:
    for warning in warnings:
        console.print(f"[bold yellow]  ⚠ {escape(warning)}[/]", highlight=False)


@group_app.command("create")
@run_async
async def group_create(
    name: Annotated[str, typer.Argument(help="The group's name.")],
    member: Annotated[
        list[str], typer.Option("--member", "-m", help="A contact to add (repeat the option).")
    ],
) -> None:
    """Create a group of you (its admin) and some of your contacts."""
    async with opened() as client:
        group = await client.groups.create(name, member)
        warnings = client.groups.warnings
    console.print(f"Created {_summary(group)}; id {group.group_id}")
    _warn(warnings)


@group_app.command("add")
@run_async
async def group_add(
    group: Annotated[str, typer.Argument(help="Group name or id.")],
    member: Annotated[list[str], typer.Argument(help="Contacts to add.")],
) -> None:
    """Add contacts to a group you administer (they cannot read earlier messages)."""
    async with opened() as client:
        state = await client.groups.add(group, member)
        warnings = client.groups.warnings
    console.print(f"Updated {_summary(state)}")
    _warn(warnings)


@group_app.command("remove")
@run_async
async def group_remove(
    group: Annotated[str, typer.Argument(help="Group name or id.")],
    member: Annotated[str, typer.Argument(help="The member to remove.")],
) -> None:
    """Remove a member: every device rotates its key, so they read nothing sent afterwards."""
    async with opened() as client:
        state = await client.groups.remove(group, member)
        warnings = client.groups.warnings
    console.print(f"Updated {_summary(state)}")
    _warn(warnings)


@group_app.command("leave")
@run_async
async def group_leave(group: Annotated[str, typer.Argument(help="Group name or id.")]) -> None:
    """Leave a group (signed by you; the others rotate their keys)."""
    async with opened() as client:
        state = await client.groups.leave(group)
        warnings = client.groups.warnings
    console.print(f"Left {_summary(state)}")
    _warn(warnings)


@group_app.command("send")
@run_async
async def group_send(
    group: Annotated[str, typer.Argument(help="Group name or id.")],
    text: Annotated[str, typer.Argument(help="The message.")],
) -> None:
    """Send a message to every member of a group (encrypted once, on the record once)."""
    async with opened() as client:
        entry = await client.groups.send(group, text)
    on_record = f", record #{entry.record_index}" if entry.record_index >= 0 else ""
    console.print(f"Sent to the group (index {entry.seq}{on_record})")
    _warn(entry.warnings)


@group_app.command("list")
@run_async
async def group_list() -> None:
    """List your groups."""
    async with opened() as client:
        for group in client.groups.all():
            console.print(f"{group.group_id}  {_summary(group)}")


@group_app.command("show")
@run_async
async def group_show(group: Annotated[str, typer.Argument(help="Group name or id.")]) -> None:
    """Show a group's signed roster and its messages."""
    async with opened() as client:
        state = client.groups.find(group)
        history = client.groups.history(group)
    roster = roster_of(state)
    console.print(_summary(state))
    table = Table("member", "admin", "identity key")
    for member in roster.members:
        admin = "yes" if member.handle in roster.admins else ""
        table.add_row(member.handle, admin, member.identity_key[:16] + "…")
    console.print(table)
    for message in history:
        arrow = "→" if message.outgoing else "←"
        console.print(
            f"{when(message.sent_at_ms)} {arrow} [bold]{escape(message.sender)}[/]: "
            f"{escape(message.text)}",
            highlight=False,
        )
