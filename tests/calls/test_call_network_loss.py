"""A real network loss in the middle of a call: the link under the media is cut.

The callee runs ``hotline answer`` inside a network namespace joined to this one by a veth
pair; the caller runs ``hotline call`` here; the home server listens on both sides. Everything
between the two devices — RTP/RTCP, ICE, DTLS, and the callee's signalling to the server —
crosses the veth, and the test takes it down (``ip link set ... down``) as a Wi-Fi or a cable
would go: packets vanish, nothing is refused. No mocks: real aiortc, server and Olm.

* The link back after 5 s: both sides print "reconnecting…" then "reconnected", the speech
  sent *after* the reconnect arrives (cross-correlated with its source), the call detail
  records show ``active → reconnecting → active`` and the call ends normally.
* The link never back: the call ends ``failed`` with reason "network lost" on both sides.

Creating namespaces needs root (CAP_NET_ADMIN): skipped otherwise, except under CI=true, where
it must run.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from audio_match import THRESHOLD, compare, speak, with_pause
from callkit import cdrs, finish, hotline, read_until
from harness import LiveServer, connect, start_server
from processes import register_principal

from hotline.client.device import HotlineClient

pytestmark = pytest.mark.slow


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI runs as root and must run the network-loss tests")
    pytest.skip(reason)


@dataclass(frozen=True)
class Link:
    """A network namespace joined to this one by a veth pair (``host_if`` on our side)."""

    netns: str
    host_if: str
    host_ip: str
    ns_ip: str

    def down(self) -> None:
        _ip("link", "set", self.host_if, "down")

    def up(self) -> None:
        _ip("link", "set", self.host_if, "up")


@pytest.fixture
def link() -> Iterator[Link]:
    if shutil.which("ip") is None:
        _unavailable("iproute2 (ip) is not installed: no network namespace to cut")
    if os.geteuid() != 0:
        _unavailable("creating a network namespace and a veth pair needs root")
    tag = f"{os.getpid() % 10_000}{random.randrange(100)}"
    net = f"10.{random.randrange(64, 128)}.{random.randrange(256)}"
    lk = Link(f"hotline-{tag}", f"hl{tag}a", f"{net}.1", f"{net}.2")
    inner = f"hl{tag}b"
    try:
        _ip("netns", "add", lk.netns)
        _ip("link", "add", lk.host_if, "type", "veth", "peer", "name", inner)
        _ip("link", "set", inner, "netns", lk.netns)
        _ip("addr", "add", f"{lk.host_ip}/30", "dev", lk.host_if)
        _ip("-n", lk.netns, "addr", "add", f"{lk.ns_ip}/30", "dev", inner)
        for args in (["link", "set", lk.host_if, "up"], ["-n", lk.netns, "link", "set", "lo", "up"],
                     ["-n", lk.netns, "link", "set", inner, "up"],
                     ["-n", lk.netns, "route", "add", "default", "via", lk.host_ip]):  # fmt: skip
            _ip(*args)
    except subprocess.CalledProcessError as exc:
        subprocess.run(["ip", "netns", "del", lk.netns], check=False, capture_output=True)
        _unavailable(f"cannot create a network namespace here: {exc.stderr.strip()}")
    try:
        yield lk
    finally:
        subprocess.run(["ip", "link", "del", lk.host_if], check=False, capture_output=True)
        subprocess.run(["ip", "netns", "del", lk.netns], check=False, capture_output=True)


@dataclass
class Parties:
    server: LiveServer
    washington: HotlineClient  # here
    ottawa: HotlineClient  # its CLI runs inside the namespace
    homes: tuple[Path, Path]


@pytest.fixture
async def parties(link: Link, tmp_path: Path) -> AsyncIterator[Parties]:
    server, stop = await start_server(tmp_path / "server.db", host="0.0.0.0")
    port = server.url.rsplit(":", 1)[1]
    homes = tmp_path / "home-potus", tmp_path / "home-pm"
    db = server.config.database_url
    domain = server.config.domain
    washington = await register_principal(
        db, f"http://127.0.0.1:{port}", f"potus@{domain}", homes[0]
    )
    # the callee reaches the server through the veth, like its media
    ottawa = await register_principal(db, f"http://{link.host_ip}:{port}", f"pm@{domain}", homes[1])
    await connect(washington, ottawa)
    try:
        yield Parties(server, washington, ottawa, homes)
    finally:
        for client in (washington, ottawa):
            await client.close()
        await stop()


def record_states(server: LiveServer, principal: str, call_id: str) -> list[str]:
    return [r["state"] for r in cdrs(server, principal, call_id)]


async def test_link_cut_for_five_seconds_reconnects_and_speech_flows_again(
    link: Link, parties: Parties, tmp_path: Path
) -> None:
    # speech before the loss, then (13 s into the call, well after the reconnect) speech again
    w_after = speak(tmp_path / "w2.wav", "Washington again, after the network came back.")
    o_after = speak(tmp_path / "o2.wav", "Ottawa here, we hear you again after the outage.")
    w_says = with_pause(
        tmp_path / "w.wav", speak(tmp_path / "w1.wav", "Washington, before."), 11.0, w_after
    )
    o_says = with_pause(
        tmp_path / "o.wav", speak(tmp_path / "o1.wav", "Ottawa, before."), 11.0, o_after
    )
    w_heard, o_heard = tmp_path / "w-heard.wav", tmp_path / "o-heard.wav"
    answering = await hotline(
        parties.homes[1], "answer", "--play", str(o_says), "--record", str(o_heard),
        "--wait", "30", netns=link.netns,
    )  # fmt: skip
    calling = await hotline(
        parties.homes[0], "call", "pm", "--play", str(w_says), "--record", str(w_heard),
        "--seconds", "18",
    )  # fmt: skip
    seen = await read_until(calling, "connected")
    await asyncio.sleep(2.5)
    cut_at = time.monotonic()
    link.down()
    await asyncio.sleep(5.0)
    link.up()
    print(f"\nlink down for {time.monotonic() - cut_at:.1f} s")
    out_call = await finish(calling, timeout=40, seen=seen)
    out_answer = await finish(answering, timeout=20)
    print(out_call, out_answer, sep="\n")

    for out, proc in ((out_call, calling), (out_answer, answering)):
        assert proc.returncode == 0, out
        assert "reconnecting…" in out and "reconnected" in out, out
        assert out.index("reconnecting…") < out.index("reconnected") < out.index("call answered")
    call_id = out_call.split("(call ")[1].split(")")[0]
    for principal in (parties.washington.handle, parties.ottawa.handle):
        states = record_states(parties.server, principal, call_id)
        after = states[states.index("active") :]
        assert after[:3] == ["active", "reconnecting", "active"], states
        assert states[-1] == "ended"
        assert cdrs(parties.server, principal, call_id)[-1]["outcome"] == "answered"
    for heard, said in ((o_heard, w_after), (w_heard, o_after)):
        found = compare(heard, said)
        print(f"{heard.name}: speech after the reconnect, correlation {found.correlation:.3f}")
        assert found.correlation > THRESHOLD


async def test_link_never_back_ends_the_call_failed_network_lost(
    link: Link, parties: Parties, tmp_path: Path
) -> None:
    answering = await hotline(
        parties.homes[1], "answer", "--wait", "30", "--reconnect-window", "4", netns=link.netns
    )
    calling = await hotline(
        parties.homes[0], "call", "pm", "--seconds", "60", "--reconnect-window", "4"
    )
    seen = await read_until(calling, "connected")
    await asyncio.sleep(1.0)
    link.down()
    cut = time.monotonic()
    out_call = await finish(calling, timeout=40, seen=seen)
    print(f"\ncaller ended {time.monotonic() - cut:.1f} s after the cut")
    # The callee has given up too by now. Bring the link back before it exits: closing its
    # websocket would otherwise wait out the close handshake's 10 s timeout.
    link.up()
    out_answer = await finish(answering, timeout=40)
    print(f"callee ended {time.monotonic() - cut:.1f} s after the cut")
    print(out_call, out_answer, sep="\n")
    for out, proc in ((out_call, calling), (out_answer, answering)):
        assert proc.returncode == 1, out
        assert "reconnecting…" in out and "reconnected" not in out, out
        assert "call failed" in out and "network lost" in out, out
    # the callee's last records waited on its device for the network: let them through
    for _ in range(20):
        if not await parties.ottawa.flush_records():
            break
        await asyncio.sleep(0.5)
    call_id = out_call.split("(call ")[1].split(")")[0]
    for principal in (parties.washington.handle, parties.ottawa.handle):
        records = cdrs(parties.server, principal, call_id)
        assert [r["state"] for r in records][-2:] == ["reconnecting", "ended"], principal
        assert records[-1]["outcome"] == "failed"
        assert "network lost" in records[-1]["reason"], records[-1]["reason"]
