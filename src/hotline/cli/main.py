"""The ``hotline`` command."""

from __future__ import annotations

import typer

from hotline.cli import call_cmds
from hotline.cli import client_cmds as c
from hotline.cli.aides_cmds import aides_app
from hotline.cli.archive_cmds import archive_app
from hotline.cli.device_cmds import devices_app
from hotline.cli.group_cmds import group_app
from hotline.cli.policy_cmds import policy_app
from hotline.cli.server_cmds import server_app

app = typer.Typer(
    help="Hotline: an end-to-end encrypted, records-compliant direct line between leaders.\n\n"
    "Device commands use HOTLINE_HOME (keystore folder) and HOTLINE_PASSPHRASE (or ask).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(server_app, name="server")
app.add_typer(policy_app, name="policy")
app.add_typer(c.contacts_app, name="contacts")
app.add_typer(devices_app, name="devices")
app.add_typer(archive_app, name="archive")
app.add_typer(group_app, name="group")
app.add_typer(aides_app, name="aides")
app.command()(c.register)
app.command()(c.card)
app.command()(c.send)
app.command()(c.listen)
app.command()(c.sync)
app.command()(c.history)
app.command()(c.verify)
app.command()(call_cmds.call)
app.command()(call_cmds.answer)


@app.command()
def demo() -> None:
    """Run the end-to-end demo: a server, Washington and Ottawa, cards, messages."""
    from hotline.cli.demo import run_demo

    raise typer.Exit(run_demo())


if __name__ == "__main__":
    app()
