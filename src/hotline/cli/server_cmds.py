"""``hotline server``: run the home server, and the operator's commands."""

from __future__ import annotations

import json
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

from hotline.cli.common import console, run_async
from hotline.records.custodian_keys import fingerprint
from hotline.server.admin import (
    archive_settings,
    issue_enrolment,
    load_server_key,
    policy_settings,
)
from hotline.server.app import create_app
from hotline.server.config import ServerConfig, default_database_url
from hotline.store import open_store
from hotline.wire.encoding import b64d, b64e
from hotline.wire.errors import HotlineError, MalformedInput

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


CALL_RECORDING_FILE = "call-recording.txt"


def call_recording_policy(data_dir: Path, value: str | None) -> str:
    """The call recording policy kept in the data dir (``call-recording.txt``), first replaced
    by ``value`` when given; "off" when never set.

    Raises:
        MalformedInput: not "required" or "off".
    """
    path = data_dir / CALL_RECORDING_FILE
    if value is not None:
        if value not in ("required", "off"):
            raise MalformedInput(f"--call-recording is 'required' or 'off', not {value!r}")
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.write_text(value + "\n")
    policy = path.read_text().strip() if path.exists() else "off"
    if policy not in ("required", "off"):
        raise MalformedInput(f"{path} says {policy!r}; it must be 'required' or 'off'")
    return policy


def resolve_domain(data_dir: Path, domain: str | None) -> str:
    """The domain recorded in ``server.json`` (written on first use), checked against ``domain``.

    Raises:
        MalformedInput: no domain known yet, or a different one than recorded.
    """
    settings = data_dir / "server.json"
    if settings.exists():
        recorded = str(json.loads(settings.read_text())["domain"])
        if domain and domain != recorded:
            raise MalformedInput(f"this server's domain is {recorded}, not {domain}")
        return recorded
    if not domain:
        raise MalformedInput("first start needs --domain (e.g. --domain washington.example)")
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    settings.write_text(json.dumps({"domain": domain}))
    return domain


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
) -> None:
    """Run the home server (HTTP API + websocket push) until interrupted."""
    if ctx.invoked_subcommand is not None:
        return
    try:
        resolved = resolve_domain(data_dir, domain)
        archive = archive_settings(data_dir, custodian_key, records_law)
        signed_policy, org = policy_settings(data_dir, policy, org_key)
        recording = call_recording_policy(data_dir, call_recording)
        if recording == "required" and archive is None:
            raise MalformedInput(
                "--call-recording required needs a records archive (--custodian-key) to record into"
            )
    except HotlineError as exc:
        raise typer.BadParameter(f"[{exc.code}] {exc.detail}") from None
    config = ServerConfig(
        domain=resolved,
        database_url=default_database_url(data_dir),
        archive=archive,
        server_key=load_server_key(data_dir),
        policy=signed_policy,
        org_key=org,
        call_recording=recording,
    )
    console.print(f"Hotline home server for [bold]{resolved}[/] on http://{host}:{port}")
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
    uvicorn.run(
        create_app(config),
        host=host,
        port=port,
        ws="websockets-sansio",
        log_level=os.environ.get("HOTLINE_LOG_LEVEL", "warning"),
    )


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
