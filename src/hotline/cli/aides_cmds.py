"""``hotline aides``: grant, revoke and list aides (principal); answer for a principal (aide)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from hotline.cli.client_cmds import opened
from hotline.cli.common import console, run_async
from hotline.client.delegation import (
    answer_for,
    grant_aide,
    held_delegations,
    list_aides,
    revoke_aide,
)
from hotline.wire.delegation import Right

aides_app = typer.Typer(
    help="Let an aide read and answer for you (signed, limited by policy, revocable, recorded).",
    no_args_is_help=True,
)


def _date(seconds: int) -> str:
    return dt.datetime.fromtimestamp(seconds).strftime("%Y-%m-%d %H:%M")


@aides_app.command("grant")
@run_async
async def aides_grant(
    aide: Annotated[str, typer.Argument(help="The aide: a contact on your own server.")],
    days: Annotated[float, typer.Option(help="Days the grant lasts.")] = 30.0,
    read_only: Annotated[
        bool, typer.Option("--read-only", help="Let the aide read but not answer.")
    ] = False,
) -> None:
    """Grant AIDE the right to read and answer your conversations for you."""
    rights: tuple[Right, ...] = ("read",) if read_only else ("read", "answer")
    async with opened() as client:
        issued = await grant_aide(client, aide, days=days, rights=rights)
    console.print(
        f"{escape(issued.aide)} may now {' and '.join(issued.rights)} for you until "
        f"{_date(issued.expires_at)} (grant {issued.grant_id}, on the record).",
        highlight=False,
    )


@aides_app.command("revoke")
@run_async
async def aides_revoke(aide: Annotated[str, typer.Argument(help="The aide's handle.")]) -> None:
    """End AIDE's grant at once (their answers are refused from now on)."""
    async with opened() as client:
        issued = await revoke_aide(client, aide)
    console.print(f"Grant {issued.grant_id} to {escape(issued.aide)} revoked.", highlight=False)


@aides_app.command("list")
@run_async
async def aides_list() -> None:
    """List the aides you granted, and the principals you act for."""
    async with opened() as client:
        table = Table("aide", "rights", "until", "state")
        for grant in list_aides(client):
            state = "revoked" if grant.revoked else "active"
            table.add_row(grant.aide, ",".join(grant.rights), _date(grant.expires_at), state)
        console.print(table)
        for held in held_delegations(client):
            console.print(
                f"You act for {escape(held.principal)} ({','.join(held.rights)}) until "
                f"{_date(held.expires_at)}.",
                highlight=False,
            )


@aides_app.command("answer")
@run_async
async def aides_answer(
    principal: Annotated[str, typer.Argument(help="The principal you act for.")],
    counterpart: Annotated[str, typer.Argument(help="Their counterpart to write to.")],
    text: Annotated[str, typer.Argument(help="The message.")],
) -> None:
    """As an aide, write to a principal's counterpart for them (shown as sent by you)."""
    async with opened() as client:
        await client.sync()
        entry = await answer_for(client, principal, counterpart, text)
    console.print(
        f"→ {escape(counterpart)}: sent by {escape(entry.sender)} for {escape(principal)}",
        highlight=False,
    )


__all__ = ["aides_app"]
