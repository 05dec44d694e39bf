"""Helpers of the call tests: pumping mailboxes until a condition holds, reading the records."""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
from aiortc import RTCCertificate
from harness import CUSTODIAN, PASSPHRASE, LiveServer

from hotline.calls.media import CallMedia
from hotline.calls.state import CallState
from hotline.client.call_flow import CallFlows, call_flows
from hotline.client.device import HotlineClient
from hotline.client.events import ClientEvent
from hotline.client.state import ClientState
from hotline.crypto.olm import DeviceAccount
from hotline.records.sealing import open_record
from hotline.wire.envelope import Envelope
from hotline.wire.records import Record


async def pump(*clients: HotlineClient, until: Callable[[], bool], timeout: float = 10.0) -> None:
    """Sync every client's mailbox (and tick its calls) until ``until()`` holds."""
    deadline = time.monotonic() + timeout
    while not until():
        if time.monotonic() > deadline:
            states = {
                c.handle + "/" + c.device_id: {
                    k: v.call.state.value for k, v in flows(c).calls.items()
                }
                for c in clients
            }
            raise TimeoutError(f"condition not reached; calls: {states}")
        for client in clients:
            await client.sync()
            await flows(client).tick()
        await asyncio.sleep(0.02)


async def connect_media(a: CallMedia, b: CallMedia, timeout: float = 5) -> tuple[str, str]:
    """Offer from ``a``, answer from ``b``, until both are connected; returns both SDPs."""
    offer = await a.create_offer()
    answer = await b.create_answer(offer)
    await a.accept_answer(answer)
    await pump(until=lambda: a.state == "connected" and b.state == "connected", timeout=timeout)
    return offer, answer


def mallory_fingerprints(sdp: str) -> str:
    """``sdp`` with its fingerprints replaced by those of a fresh third-party certificate."""
    mallory = RTCCertificate.generateCertificate().getFingerprints()
    lines = "".join(f"a=fingerprint:{f.algorithm} {f.value}\r\n" for f in mallory)
    stripped = re.sub(r"a=fingerprint:[^\r\n]*\r\n", "", sdp)
    return stripped.replace("a=setup:", lines + "a=setup:", 1)


def forge_fingerprints(monkeypatch: Any, target: CallFlows, event: str) -> None:
    """Make ``target`` receive every ``event`` signal with a third party's fingerprints."""
    genuine_handle = target.handle

    async def tampering_handle(
        state: ClientState, account: DeviceAccount, envelope: Envelope
    ) -> list[ClientEvent]:
        if envelope.call is not None and envelope.call.event == event:
            forged = msgspec.structs.replace(
                envelope.call, sdp=mallory_fingerprints(envelope.call.sdp)
            )
            envelope = msgspec.structs.replace(envelope, call=forged)
        return await genuine_handle(state, account, envelope)

    monkeypatch.setattr(target, "handle", tampering_handle)


async def hotline(home: Path, *args: str, netns: str | None = None) -> asyncio.subprocess.Process:
    """Run the ``hotline`` CLI on ``home`` (inside network namespace ``netns`` if given)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    env.update(HOTLINE_HOME=str(home), HOTLINE_PASSPHRASE=PASSPHRASE, COLUMNS="200", NO_COLOR="1")
    prefix = ["ip", "netns", "exec", netns] if netns else []
    return await asyncio.create_subprocess_exec(
        *prefix, sys.executable, "-m", "hotline.cli.main", *args,
        env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip


async def finish(proc: asyncio.subprocess.Process, timeout: float = 30, seen: str = "") -> str:
    """The rest of ``proc``'s output once it exits (after ``seen``, what was read already)."""
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        out, _ = await proc.communicate()
        pytest.fail(f"timed out:\n{seen}{out.decode()}")
    return seen + out.decode()


async def read_until(proc: asyncio.subprocess.Process, text: str, timeout: float = 30) -> str:
    """``proc``'s output up to and including the line containing ``text``."""
    seen = ""
    async with asyncio.timeout(timeout):
        while text not in seen:
            line = await proc.stdout.readline()  # type: ignore[union-attr]
            if not line:
                pytest.fail(f"exited before printing {text!r}:\n{seen}")
            seen += line.decode()
    return seen


def flows(client: HotlineClient) -> CallFlows:
    return call_flows(client)


def state_of(client: HotlineClient, call_id: str) -> CallState | None:
    live = flows(client).calls.get(call_id)
    return live.call.state if live else None


def call_records(server: LiveServer, principal: str | None = None) -> list[Record]:
    """Every record of kind ``call`` in the server's log, opened with the custodian key."""
    with sqlite3.connect(server.db_path) as db:
        leaves = [row[0] for row in db.execute("SELECT leaf FROM log_entries ORDER BY idx")]
    records = [open_record(CUSTODIAN, bytes(leaf)) for leaf in leaves]
    return [
        r for r in records if r.kind == "call" and (principal is None or r.principal == principal)
    ]


def cdrs(server: LiveServer, principal: str, call_id: str) -> list[dict[str, str]]:
    """The call detail records (side ``local``) one principal's devices captured for a call."""
    return [
        r.detail
        for r in call_records(server, principal)
        if r.side == "local" and r.detail.get("call_id") == call_id
    ]
