"""``hotline policy``: the organisation's signed device policy."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from hotline.cli.client_cmds import opened
from hotline.cli.common import console, run_async
from hotline.client import policy_pin
from hotline.policy.document import parse_toml, sign_policy
from hotline.policy.keys import fingerprint, read_org_key, read_org_public, write_org_key
from hotline.wire.codec import encode
from hotline.wire.encoding import b64d

policy_app = typer.Typer(help="Create the organisation key, sign a policy, show the one in force.")

ENV = "HOTLINE_ORG_PASSPHRASE"


def _passphrase() -> str:
    value = os.environ.get(ENV)
    if value:
        return value
    return str(typer.prompt("Organisation key passphrase", hide_input=True))


@policy_app.command("init")
def init(out: Annotated[Path, typer.Option(help="Folder for org.key and org.pub.")]) -> None:
    """Create the organisation's Ed25519 key (keep org.key offline, like the custodian's)."""
    _, public = write_org_key(out, _passphrase())
    key = read_org_public(public)
    console.print(f"Organisation key created in {out}; fingerprint [bold]{fingerprint(key)}[/]")
    console.print(
        f"[dim]Next: hotline policy sign policy.toml --key {out}/org.key --out "
        "policy.signed, then hotline server --policy policy.signed "
        f"--org-key {public}[/]"
    )


@policy_app.command("sign")
def sign(
    file: Annotated[Path, typer.Argument(help="The policy in TOML (see docs/policy.md).")],
    key: Annotated[Path, typer.Option(help="org.key from 'hotline policy init'.")],
    out: Annotated[Path, typer.Option(help="Where to write the signed policy.")],
) -> None:
    """Validate a policy and sign it with the organisation key."""
    policy = parse_toml(file.read_text())
    signed = sign_policy(policy, read_org_key(key, _passphrase()))
    out.write_bytes(encode(signed) + b"\n")
    console.print(
        f"Signed policy version {policy.version} of {escape(policy.organisation)} to {out}"
    )


@policy_app.command("show")
@run_async
async def show() -> None:
    """Show the policy in force on this device (verified against the pinned organisation key)."""
    async with opened() as client:
        for event in await client.refresh_policy(force=True):
            console.print(f"[bold yellow]warning[/] {escape(event.text)}")
        state = client.keystore.load()
        policy = policy_pin.current(state)
    if policy is None or state.policy is None:
        console.print("No organisation policy (the home server publishes none).")
        return
    org_key = fingerprint(b64d(state.policy.org_key))
    console.print(
        f"{escape(policy.organisation)} policy version {policy.version} "
        f"(organisation key {org_key})"
    )
    console.print_json(encode(policy).decode())
