"""``hotline server``: run the home server, and the operator's commands."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from hotline.cli import admin_device_cmds
from hotline.cli.common import console, run_async
from hotline.records.custodian_keys import fingerprint
from hotline.server.admin import issue_enrolment, load_server_key
from hotline.server.app import create_app
from hotline.server.config import default_database_url
from hotline.server.factory import (
    call_recording_policy,
    config_from_data_dir,
    is_postgres,
    resolve_domain,
    serve_workers,
)
from hotline.store import open_store
from hotline.wire.encoding import b64d, b64e
from hotline.wire.errors import HotlineError, MalformedInput

__all__ = ["call_recording_policy", "server_app"]

server_app = typer.Typer(
    help="Run the home server (no subcommand) or administer it.", no_args_is_help=False
)

DataDir = Annotated[
    Path,
    typer.Option(
        "--data-dir",
        envvar="HOTLINE_SERVER_DATA",
        help="Folder of the server's database and settings.",
    ),
]
Domain = Annotated[
    str | None,
    typer.Option(
        "--domain",
        envvar="HOTLINE_DOMAIN",
        help="This server's domain: handles are name@domain. Fixed at first start.",
    ),
]


@server_app.callback(invoke_without_command=True)
def serve(
    ctx: typer.Context,
    data_dir: DataDir = Path("hotline-server"),
    domain: Domain = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8448,
    custodian_key: Annotated[
        Path | None,
        typer.Option(help="custodian.pub from 'hotline archive init' (kept in the data dir)."),
    ] = None,
    records_law: Annotated[
        str | None, typer.Option(help="The records law shown to users (kept in the data dir).")
    ] = None,
    policy: Annotated[
        Path | None, typer.Option(help="Signed policy from 'hotline policy sign' (kept).")
    ] = None,
    org_key: Annotated[
        Path | None, typer.Option(help="org.pub the policy must be signed with (kept).")
    ] = None,
    call_recording: Annotated[
        str | None,
        typer.Option(
            "--call-recording",
            help="required|off: record calls into the archive, both parties told before they "
            "connect (kept in the data dir; default off).",
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Worker processes sharing the port (uvicorn multiprocess). More than one "
            "needs PostgreSQL (HOTLINE_DATABASE_URL): workers share state only through it.",
        ),
    ] = 1,
) -> None:
    """Run the home server (HTTP API + websocket push) until interrupted."""
    if ctx.invoked_subcommand is not None:
        return
    if workers > 1 and not is_postgres(default_database_url(data_dir)):
        raise typer.BadParameter(
            f"--workers {workers} needs PostgreSQL: SQLite allows one process only. Set "
            "HOTLINE_DATABASE_URL=postgresql://USER@HOST/DB, or run with --workers 1.",
            param_hint="--workers",
        )
    try:
        config = config_from_data_dir(
            data_dir,
            domain,
            custodian_key=custodian_key,
            records_law=records_law,
            policy=policy,
            org_key=org_key,
            call_recording=call_recording,
        )
    except HotlineError as exc:
        raise typer.BadParameter(f"[{exc.code}] {exc.detail}") from None
    resolved, archive, recording = config.domain, config.archive, config.call_recording
    shown = f" ({workers} workers)" if workers > 1 else ""
    console.print(f"Hotline home server for [bold]{resolved}[/] on http://{host}:{port}{shown}")
    if archive is None:
        console.print(
            "[bold yellow]No records archive:[/] messages are not captured. "
            "Configure one with --custodian-key custodian.pub."
        )
    else:
        console.print(
            f"Records archive on, sealed to custodian {fingerprint(archive.custodian_key)}"
            f" under the {archive.law}."
        )
        console.print(
            "Calls are recorded into the archive (both parties are told before they connect)."
            if recording == "required"
            else "Calls are not recorded (call detail records are)."
        )
    log_level = os.environ.get("HOTLINE_LOG_LEVEL", "warning")
    if workers == 1:
        uvicorn.run(
            create_app(config), host=host, port=port, ws="websockets-sansio", log_level=log_level
        )
        return
    # Each worker builds its app from the data dir (the keys now exist there, so all sign
    # with the same ones) and shares everything else through PostgreSQL.
    os.environ["HOTLINE_SERVER_DATA"] = str(data_dir.resolve())
    os.environ["HOTLINE_DOMAIN"] = resolved
    serve_workers("hotline.server.factory:app_from_env", workers, host, port, log_level)


@server_app.command("enrol")
@run_async
async def enrol(
    name: Annotated[str, typer.Argument(help="Local part of the new handle, e.g. 'pm'.")],
    data_dir: DataDir = Path("hotline-server"),
    domain: Domain = None,
    days: Annotated[float, typer.Option(help="Days the token stays valid.")] = 7.0,
) -> None:
    """Issue a single-use enrolment token for a new principal NAME@domain."""
    resolved = resolve_domain(data_dir, domain)
    handle = f"{name.lower()}@{resolved}"
    store = await open_store(default_database_url(data_dir))
    try:
        token = await issue_enrolment(store, handle, time.time(), ttl=days * 86400)
    finally:
        await store.close()
    console.print(f"Enrolment token for [bold]{handle}[/] (single use, {days:g} days):")
    console.print(token, highlight=False, soft_wrap=True)
    console.print(
        f"[dim]On the new device: hotline register --server <this server's URL> "
        f"--handle {handle} --token <the token above> --name '<display name>'[/]"
    )


server_app.command("device-remove")(run_async(admin_device_cmds.device_remove))

peer_app = typer.Typer(help="Pin, list and remove peer servers (federation is closed by default).")
server_app.add_typer(peer_app, name="peer")


def _raw_public(key: Ed25519PrivateKey) -> str:
    return b64e(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))


@server_app.command("key")
def server_key(data_dir: DataDir = Path("hotline-server")) -> None:
    """Print this server's federation public key, to give to peer operators."""
    console.print(_raw_public(load_server_key(data_dir)), highlight=False)


@peer_app.command("add")
@run_async
async def peer_add(
    domain: Annotated[str, typer.Argument(help="The peer's domain, e.g. ottawa.example.")],
    key: Annotated[str, typer.Option(help="The peer's key (from 'hotline server key' there).")],
    url: Annotated[str, typer.Option(help="The peer's base URL.")],
    data_dir: DataDir = Path("hotline-server"),
    overlap_hours: Annotated[
        float, typer.Option(help="When replacing a key: hours the old key stays valid.")
    ] = 24.0,
) -> None:
    """Pin a peer server (or rotate its key, keeping the old one valid for an overlap)."""
    raw = b64d(key.strip(), field="key")
    if len(raw) != 32:
        raise MalformedInput("a server key is 32 bytes of base64url")
    Ed25519PublicKey.from_public_bytes(raw)
    store = await open_store(default_database_url(data_dir))
    try:
        now = time.time()
        await store.put_peer(domain.lower(), url, raw, now, now + overlap_hours * 3600)
    finally:
        await store.close()
    console.print(f"Pinned peer [bold]{domain}[/] at {url}.")


@peer_app.command("list")
@run_async
async def peer_list(data_dir: DataDir = Path("hotline-server")) -> None:
    """List pinned peers."""
    store = await open_store(default_database_url(data_dir))
    try:
        for peer in await store.list_peers():
            console.print(f"{peer.domain}  {peer.url}  {b64e(peer.key)}", highlight=False)
    finally:
        await store.close()


@peer_app.command("remove")
@run_async
async def peer_remove(domain: str, data_dir: DataDir = Path("hotline-server")) -> None:
    """Unpin a peer: its requests are refused from now on."""
    store = await open_store(default_database_url(data_dir))
    try:
        removed = await store.remove_peer(domain.lower())
    finally:
        await store.close()
    console.print(f"Removed {domain}." if removed else f"{domain} was not pinned.")
