"""Soak: hundreds of real clients on websockets for a bounded time, joining, dropping, returning.

One home server process (``bench/hotline_server.py``: uvicorn, SQLite, records archive ON, rate
limits lifted) on 127.0.0.1 and, in this process, ``2 x --pairs`` real ``HotlineClient``s, each
with its own keystore directory, each a contact of exactly one other (its pair). Every client
sits in ``HotlineClient.listen()`` (its push websocket open) and sends numbered end-to-end text
messages to its pair at random (exponential gaps, mean ``--interval`` s): both directions of a
pair carry a numbered stream. The full end-to-end path for every client: Olm per message, a
sealed record per message on both sides, a delivery receipt back, acks over the websocket.

For ``--seconds`` (the soak phase), seeded at random per client:

* **joining**: ``--join-fraction`` of the pairs register, exchange cards and start listening
  during the first half of the phase (the rest are set up before it starts);
* **dropping**: a client online for an exponential time (mean ``--session`` s) loses its
  websocket: a clean close, a reset (the TCP transport aborted, as on a network loss), or it
  *leaves* (socket closed and the client object closed, like the app being quit);
* **reconnecting**: after ``--offline`` seconds it comes back: ``listen()`` again (sync, then a
  new websocket) or, after leaving, ``HotlineClient.open`` on its keystore (a new login) and
  ``listen()``. A websocket that ends without being dropped on purpose is counted as an
  *unplanned* drop and reconnected after 1 s. A client sends only while it is online.

Then the **drain**: churn and sending stop, every client comes back, outboxes are flushed, and
the run waits until every receiver has every message its pair sent and the server's mailbox
(``deliveries``) is empty. The check: per direction, the numbers ``listen()`` yielded are each
confirmed-sent number exactly once, in order. Meanwhile a thread samples the server process
every second from ``/proc``: RSS, CPU seconds, open file descriptors (plus this process's RSS and
CPU, the open websockets and the mailbox size), the curve written to the JSON and plotted in
``plots/soak_rss.png``. Finally every client closes and the server's descriptors are counted
again (a leaked socket would stay).

Writes ``bench/results/soak.json`` (``--smoke``: a temp dir or ``--out``). Usage:
``python bench/soak.py [--pairs 320] [--seconds 300] [--interval 60] [--smoke] [--out DIR]``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import itertools
import json
import os
import random
import re
import secrets
import shutil
import signal
import sqlite3
import statistics
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import benchlib
from hotline_load import Server, hotline_server

from hotline.client.device import HotlineClient
from hotline.client.events import ClientEvent
from hotline.crypto.passphrase import ScryptParams

DOMAIN = "bench.test"  # what hotline_load.hotline_server serves
PASSPHRASE = "soak passphrase, not a secret"
#: Cheap keystore key derivation: hundreds of registrations and re-opens in one run.
SOAK_SCRYPT = ScryptParams(log2_n=4)
TEXT_CHARS = 120
TEXT_RE = re.compile(r"^soak (\d+)>(\d+) #(\d+) ")
PACKAGES = ("hotline", "vodozemac", "uvicorn", "starlette", "httpx", "websockets", "aiosqlite")
#: Descriptors this process may need: a websocket and an HTTP connection or two per client.
FDS_PER_CLIENT = 4
WS_WAIT = 60.0  # for a websocket to open (its listen() first syncs)
DROP_WAIT = 120.0  # for a dropped listen() to return


@dataclass(frozen=True)
class Knobs:
    pairs: int
    seconds: float
    interval: float
    session: float
    offline_min: float
    offline_max: float
    join_fraction: float
    leave_share: float
    abort_share: float
    warmup: float
    settle: float  # drain: seconds with no arrival and an empty mailbox before giving up
    pause: float  # idle seconds before the clients come and after they all closed
    drain_timeout: float
    setup_parallel: int
    seed: int


FULL = Knobs(
    pairs=320,
    seconds=300.0,
    interval=60.0,
    session=150.0,
    offline_min=2.0,
    offline_max=30.0,
    join_fraction=0.1,
    leave_share=0.3,
    abort_share=0.35,
    warmup=60.0,
    settle=20.0,
    pause=5.0,
    drain_timeout=600.0,
    setup_parallel=8,
    seed=7,
)
SMOKE = Knobs(
    pairs=10,
    seconds=10.0,
    interval=1.0,
    session=5.0,
    offline_min=0.5,
    offline_max=2.0,
    join_fraction=0.2,
    leave_share=0.3,
    abort_share=0.35,
    warmup=3.0,
    settle=4.0,
    pause=2.0,
    drain_timeout=90.0,
    setup_parallel=4,
    seed=7,
)


def text_of(sender: int, receiver: int, n: int) -> str:
    head = f"soak {sender}>{receiver} #{n:06d} "
    return head + "x" * (TEXT_CHARS - len(head))


def slash(*values: object) -> str:
    return " / ".join(str(v) for v in values)


def short(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc)[:120]}"


class Peer:
    """One principal with one device: its client, its listen() task and what it saw."""

    def __init__(self, index: int, handle: str, home: Path) -> None:
        self.index = index
        self.handle = handle
        self.home = home
        self.other: Peer = self
        self.client: HotlineClient | None = None
        self.task: asyncio.Task[None] | None = None
        self.joined = False
        self.next_n = 0
        self.confirmed: list[int] = []  # numbers send_text returned for
        self.uncertain: set[int] = set()  # send_text raised: may or may not arrive
        self.queued = 0  # send_text returned status "sending" (kept in the outbox)
        self.started: dict[int, float] = {}
        self.received: list[int] = []  # numbers from the pair, in the order listen() yielded them
        self.stored: list[int] = []  # numbers from the pair in the keystore's history, at the end
        self.arrived: dict[int, float] = {}
        self.strays = 0  # message events that are not the pair's numbered stream
        self.warnings: collections.Counter[str] = collections.Counter()
        self.errors: collections.Counter[str] = collections.Counter()  # escaping listen()/send
        self.sessions = 0
        self.drops: collections.Counter[str] = collections.Counter()
        self.reopens = 0

    # -- the websocket ----------------------------------------------------------------------
    def ws_open(self) -> bool:
        client = self.client
        return client is not None and getattr(client.server, "_ws", None) is not None

    def listening(self) -> bool:
        return self.task is not None and not self.task.done()

    async def connect(self) -> None:
        """Come (back) online: open the keystore if the client left, then listen()."""
        if self.client is None:
            self.client = await HotlineClient.open(self.home, PASSPHRASE)
            self.reopens += 1
        self.sessions += 1
        self.task = asyncio.create_task(self._listen(self.client))

    async def _listen(self, client: HotlineClient) -> None:
        try:
            async for event in client.listen():
                self._on_event(event)
        except Exception as exc:
            self.errors[f"listen: {short(exc)}"] += 1

    def _on_event(self, event: ClientEvent) -> None:
        if event.kind == "message" and not event.outgoing:
            match = TEXT_RE.match(event.text)
            if match and int(match[1]) == self.other.index and int(match[2]) == self.index:
                n = int(match[3])
                self.received.append(n)
                self.arrived.setdefault(n, time.perf_counter())
            else:
                self.strays += 1
        elif event.kind == "warning":
            self.warnings[event.text[:100]] += 1
        for warning in event.warnings:
            self.warnings[warning[:100]] += 1

    async def wait_ws(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not self.ws_open():
            if not self.listening() or time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    async def drop(self, how: str, *, count: bool = True) -> bool:
        """Lose the websocket (``close``, ``abort``) or quit (``leave``); False if not online."""
        client, task = self.client, self.task
        if client is None or task is None or not await self.wait_ws(10.0):
            return False
        ws = getattr(client.server, "_ws", None)
        if ws is None:
            return False
        if count:
            self.drops[how] += 1
        if how == "abort":
            ws.transport.abort()
        else:
            await ws.close()
        done, _ = await asyncio.wait({task}, timeout=DROP_WAIT)
        if not done:
            self.errors["listen() still running 120 s after its websocket was dropped"] += 1
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.task = None
        if how == "leave":
            await client.close()
            self.client = None
        return True

    # -- sending ----------------------------------------------------------------------------
    async def send_next(self) -> None:
        assert self.client is not None
        n = self.next_n
        self.next_n += 1
        self.started[n] = time.perf_counter()
        try:
            entry = await self.client.send_text(
                self.other.handle, text_of(self.index, self.other.index, n)
            )
        except Exception as exc:
            self.uncertain.add(n)
            self.errors[f"send_text: {short(exc)}"] += 1
            return
        self.confirmed.append(n)
        if entry.status != "sent":
            self.queued += 1


class Soak:
    """The run: server, peers, their schedule, the sampler and the check."""

    def __init__(self, knobs: Knobs, server: Server, home: Path) -> None:
        self.knobs = knobs
        self.server = server
        self.home = home
        argv = [str(a) for a in server.process.args]  # type: ignore[union-attr]
        self.data_dir = Path(argv[argv.index("--data-dir") + 1])
        self.peers = [Peer(i, f"c{i}@{DOMAIN}", home / f"c{i}") for i in range(2 * knobs.pairs)]
        for a, b in zip(self.peers[0::2], self.peers[1::2], strict=True):
            a.other, b.other = b, a
        self.phase = "setup"
        self.marks: dict[str, float] = {}
        self.t0 = time.monotonic()
        self.samples: list[dict[str, Any]] = []
        self.join_failures: list[str] = []
        self.fds_at_start: dict[str, int] = {}
        self.fds_at_end: dict[str, int] = {}
        self._setup = asyncio.Semaphore(knobs.setup_parallel)
        self._stop_sampling = threading.Event()

    def mark(self, phase: str) -> None:
        self.phase = phase
        self.marks[phase] = round(time.monotonic() - self.t0, 1)
        print(f"[soak] {self.marks[phase]:7.1f} s  {phase}", flush=True)

    # -- the server's side, read from outside ------------------------------------------------
    def db_counts(self) -> dict[str, int]:
        """Mailbox rows and records log size, read-only from the server's SQLite file (WAL)."""
        uri = f"file:{self.data_dir / 'server.db'}?mode=ro"
        try:
            with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=5)) as db:
                mailbox = db.execute("SELECT count(*) FROM deliveries").fetchone()[0]
                row = db.execute("SELECT size FROM log_state").fetchone()
        except sqlite3.Error:
            return {"mailbox": -1, "records": -1}
        return {"mailbox": int(mailbox), "records": int(row[0]) if row else 0}

    def server_fds(self) -> tuple[int, int]:
        """The server's open descriptors: all, and how many of them are sockets."""
        fd_dir = f"/proc/{self.server.process.pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            return -1, -1
        sockets = 0
        for fd in fds:
            with contextlib.suppress(OSError):
                sockets += os.readlink(f"{fd_dir}/{fd}").startswith("socket:")
        return len(fds), sockets

    def sample(self) -> dict[str, Any]:
        server = self.server.stats.memory_kib()
        me = benchlib.ProcStats(os.getpid())
        peers = list(self.peers)
        fds, sockets = self.server_fds()
        return {
            "t": round(time.monotonic() - self.t0, 1),
            "phase": self.phase,
            "server_rss_mib": round(server["rss_kib"] / 1024, 2),
            "server_cpu_s": round(self.server.stats.cpu_seconds(), 2),
            "server_fds": fds,
            "server_sockets": sockets,
            "loadgen_rss_mib": round(me.memory_kib()["rss_kib"] / 1024, 2),
            "loadgen_cpu_s": round(me.cpu_seconds(), 2),
            "websockets": sum(p.ws_open() for p in peers),
            "sent": sum(len(p.confirmed) for p in peers),
            "received": sum(len(p.received) for p in peers),
            **self.db_counts(),
        }

    def _sampler(self) -> None:
        next_at = time.monotonic()
        while not self._stop_sampling.is_set():
            self.samples.append(self.sample())
            next_at += 1.0
            self._stop_sampling.wait(max(0.0, next_at - time.monotonic()))

    # -- setting up a pair -------------------------------------------------------------------
    async def register(self, peer: Peer) -> None:
        peer.client = await HotlineClient.register(
            peer.home,
            PASSPHRASE,
            server_url=self.server.url,
            enrolment_token=self.server.tokens[peer.handle],
            handle=peer.handle,
            display_name=f"Client {peer.index}",
            scrypt=SOAK_SCRYPT,
        )

    async def join(self, a: Peer, b: Peer) -> bool:
        """Register both, exchange cards (a adds b; b auto-accepts), both start listening."""
        try:
            async with self._setup:
                await self.register(a)
                await self.register(b)
                assert a.client is not None and b.client is not None
                await a.client.add_contact(await b.client.my_card())
                await b.client.sync()
                await a.client.sync()
                a.joined = b.joined = True
                await a.connect()
                await b.connect()
        except Exception as exc:
            self.join_failures.append(f"pair {a.index}/{b.index}: {short(exc)}")
            return False
        return True

    # -- the schedule of one client ----------------------------------------------------------
    async def live(self, peer: Peer, stop_at: float) -> None:
        knobs = self.knobs
        rng = random.Random(f"{knobs.seed}/{peer.index}")
        now = time.monotonic()
        next_send = now + rng.expovariate(1 / knobs.interval)
        next_drop = now + rng.expovariate(1 / knobs.session)
        while (now := time.monotonic()) < stop_at:
            task = peer.task
            if task is None or task.done():
                # Not dropped on purpose: the socket ended by itself; a real client reconnects.
                peer.drops["unplanned"] += 1
                await asyncio.sleep(1.0)
                await peer.connect()
                continue
            wake = min(next_send, next_drop, stop_at)
            await asyncio.wait({task}, timeout=max(0.0, wake - now))
            now = time.monotonic()
            if now >= stop_at or task.done():
                continue
            if now >= next_send:
                await peer.send_next()
                next_send = time.monotonic() + rng.expovariate(1 / knobs.interval)
            if now >= next_drop:
                draw = rng.random()
                how = (
                    "leave"
                    if draw < knobs.leave_share
                    else "abort"
                    if draw < knobs.leave_share + knobs.abort_share
                    else "close"
                )
                offline = rng.uniform(knobs.offline_min, knobs.offline_max)
                if await peer.drop(how):
                    await asyncio.sleep(max(0.0, min(offline, stop_at - time.monotonic())))
                    await peer.connect()
                next_drop = time.monotonic() + rng.expovariate(1 / knobs.session)
                next_send = max(next_send, time.monotonic())

    async def pair_life(self, a: Peer, b: Peer, join_at: float, stop_at: float) -> None:
        if join_at > 0:
            await asyncio.sleep(join_at)
            if not await self.join(a, b):
                return
        await asyncio.gather(self.live(a, stop_at), self.live(b, stop_at))

    # -- the run -----------------------------------------------------------------------------
    async def run(self) -> dict[str, Any]:
        knobs = self.knobs
        pairs = list(zip(self.peers[0::2], self.peers[1::2], strict=True))
        rng = random.Random(knobs.seed)
        joiners = set(rng.sample(range(len(pairs)), round(knobs.join_fraction * len(pairs))))
        sampler = threading.Thread(target=self._sampler, name="soak-sampler", daemon=True)
        sampler.start()
        try:
            await asyncio.sleep(self.knobs.pause)  # a baseline of the idle server
            self.fds_at_start = fd_kinds(self.server.process.pid)
            self.mark("setup")
            initial = [p for i, p in enumerate(pairs) if i not in joiners]
            await asyncio.gather(*(self.join(a, b) for a, b in initial))
            await asyncio.gather(*(p.wait_ws(WS_WAIT) for pair in initial for p in pair))
            self.mark("soak")
            start = time.monotonic()
            stop_at = start + knobs.seconds
            lives = []
            for i, (a, b) in enumerate(pairs):
                join_at = rng.uniform(0, knobs.seconds / 2) if i in joiners else 0.0
                if i in joiners or a.joined:
                    lives.append(self.pair_life(a, b, join_at, stop_at))
            await asyncio.gather(*lives)
            self.mark("drain")
            drained = await self.drain()
            self.mark("close")
            for peer in self.peers:
                if peer.client is not None:
                    with contextlib.suppress(Exception):
                        await peer.drop("leave", count=False)
                    if peer.client is not None:
                        await peer.client.close()
                        peer.client = None
            await asyncio.sleep(self.knobs.pause)  # let the server notice every closed socket
            self.mark("end")
            await asyncio.sleep(2.0)
            self.fds_at_end = fd_kinds(self.server.process.pid)
        finally:
            self._stop_sampling.set()
            sampler.join(timeout=10)
            for peer in self.peers:
                if peer.task is not None:
                    peer.task.cancel()
                if peer.client is not None:
                    with contextlib.suppress(Exception):
                        await peer.client.close()
        return self.results(drained)

    async def drain(self) -> dict[str, Any]:
        """Everyone back online, outboxes flushed; wait for every message and an empty mailbox."""
        started = time.monotonic()
        deadline = started + self.knobs.drain_timeout
        joined = [p for p in self.peers if p.joined]
        for peer in joined:
            if not peer.listening():
                await peer.connect()
        await asyncio.gather(*(p.wait_ws(WS_WAIT) for p in joined))
        for peer in joined:
            assert peer.client is not None
            try:
                for warning in await peer.client.flush_outbox():
                    peer.warnings[warning[:100]] += 1
            except Exception as exc:
                peer.errors[f"flush_outbox: {short(exc)}"] += 1

        def missing() -> int:
            return sum(len(set(p.other.confirmed) - set(p.received)) for p in joined)

        # Until every message was yielded; or, if some never are, until the mailbox is empty
        # and nothing has arrived for SETTLE seconds (the check then says what is missing).
        progress, last_change = -1, time.monotonic()
        while missing() and time.monotonic() < deadline:
            for peer in joined:  # a socket that dropped by itself during the drain
                if not peer.listening():
                    peer.drops["unplanned"] += 1
                    await peer.connect()
            await asyncio.sleep(0.5)
            received = sum(len(p.received) for p in joined)
            if received != progress:
                progress, last_change = received, time.monotonic()
            elif (
                time.monotonic() - last_change > self.knobs.settle
                and self.db_counts()["mailbox"] == 0
            ):
                break
        delivered_s = time.monotonic() - started
        counts = self.db_counts()
        while counts["mailbox"] != 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            counts = self.db_counts()
        for peer in joined:
            assert peer.client is not None
            for entry in peer.client.history(peer.other.handle):
                match = TEXT_RE.match(entry.text)
                if not entry.outgoing and match and int(match[1]) == peer.other.index:
                    peer.stored.append(int(match[3]))
        return {
            "seconds_to_deliver": round(delivered_s, 1),
            "seconds_to_empty_mailbox": round(time.monotonic() - started, 1),
            "missing_at_end": missing(),
            "mailbox_at_end": counts["mailbox"],
            "records": counts["records"],
            "server_fds": fd_kinds(self.server.process.pid),
        }

    # -- the check and the figures -----------------------------------------------------------
    def check(self) -> dict[str, Any]:
        totals = collections.Counter[str]()
        bad: list[str] = []
        for receiver in self.peers:
            sender = receiver.other
            confirmed = set(sender.confirmed)
            got = receiver.received
            seen = set(got)
            dup = len(got) - len(seen)
            miss = len(confirmed - seen)
            extra = len(seen - confirmed - sender.uncertain)
            late_uncertain = len(seen & sender.uncertain)
            disorder = sum(1 for x, y in itertools.pairwise(got) if y <= x)
            totals["directions"] += 1
            totals["sent_confirmed"] += len(confirmed)
            totals["sent_uncertain"] += len(sender.uncertain)
            totals["received_events"] += len(got)
            totals["duplicates"] += dup
            totals["missing"] += miss
            totals["unexpected"] += extra
            totals["uncertain_delivered"] += late_uncertain
            totals["out_of_order"] += disorder
            totals["strays"] += receiver.strays
            stored = receiver.stored
            stored_dup = len(stored) - len(set(stored))
            stored_miss = len(confirmed - set(stored))
            stored_disorder = sum(1 for x, y in itertools.pairwise(stored) if y <= x)
            totals["stored_duplicates"] += stored_dup
            totals["stored_missing"] += stored_miss
            totals["stored_out_of_order"] += stored_disorder
            totals["stored_but_not_yielded"] += len(set(stored) - seen)
            if stored_dup or stored_miss or stored_disorder:
                bad.append(
                    f"history of {receiver.handle}: {stored_miss} of {sender.handle}'s missing, "
                    f"{stored_dup} duplicate(s), {stored_disorder} out of order"
                )
            if dup or miss or extra or disorder:
                bad.append(
                    f"{sender.handle} -> {receiver.handle}: {len(confirmed)} sent, {len(got)} "
                    f"received, {dup} duplicate(s), {miss} missing, {extra} unexpected, "
                    f"{disorder} out of order"
                )
        result: dict[str, Any] = dict(totals)
        result["exactly_once_in_order"] = not (
            totals["duplicates"]
            or totals["missing"]
            or totals["unexpected"]
            or totals["out_of_order"]
        )
        result["history_exactly_once_in_order"] = not (
            totals["stored_duplicates"] or totals["stored_missing"] or totals["stored_out_of_order"]
        )
        result["failures"] = bad[:50]
        return result

    def memory(self) -> dict[str, Any]:
        samples = self.samples
        marks = self.marks

        def at(t: float) -> dict[str, Any]:
            return min(samples, key=lambda s: abs(s["t"] - t))

        def phase(name: str) -> list[dict[str, Any]]:
            return [s for s in samples if s["phase"] == name]

        soak = phase("soak")
        soak_start = marks.get("soak", 0.0)
        warm = at(soak_start + min(self.knobs.warmup, self.knobs.seconds / 2))
        after = phase("drain")[-1] if phase("drain") else samples[-1]
        later = [s for s in soak if s["t"] >= warm["t"]]
        slope = 0.0
        if len(later) >= 3:
            xs = [s["t"] / 60 for s in later]
            ys = [s["server_rss_mib"] for s in later]
            slope = statistics.linear_regression(xs, ys).slope
        peak = max(samples, key=lambda s: s["server_rss_mib"])
        return {
            "baseline_mib": samples[0]["server_rss_mib"],
            "after_setup_mib": at(soak_start)["server_rss_mib"],
            "after_warmup_mib": warm["server_rss_mib"],
            "warmup_at_s": warm["t"],
            "peak_mib": peak["server_rss_mib"],
            "peak_at_s": peak["t"],
            "end_of_soak_mib": soak[-1]["server_rss_mib"] if soak else None,
            "after_drain_mib": after["server_rss_mib"],
            "after_close_mib": samples[-1]["server_rss_mib"],
            "ratio_after_drain_to_warmup": after["server_rss_mib"] / warm["server_rss_mib"],
            "slope_after_warmup_mib_per_min": slope,
            "per_minute_of_soak": [
                {
                    "minute": m,
                    "server_rss_mib": at(soak_start + 60 * m)["server_rss_mib"],
                    "records": at(soak_start + 60 * m)["records"],
                    "websockets": at(soak_start + 60 * m)["websockets"],
                }
                for m in range(int(self.knobs.seconds // 60) + 1)
            ],
            "fds_baseline": samples[0]["server_fds"],
            "fds_peak": max(s["server_fds"] for s in samples),
            "fds_after_close": samples[-1]["server_fds"],
            "sockets_baseline": samples[0]["server_sockets"],
            "sockets_peak": max(s["server_sockets"] for s in samples),
            "sockets_after_close": samples[-1]["server_sockets"],
            "server_cpu_s": samples[-1]["server_cpu_s"] - samples[0]["server_cpu_s"],
            "loadgen_cpu_s": samples[-1]["loadgen_cpu_s"] - samples[0]["loadgen_cpu_s"],
            "loadgen_peak_rss_mib": max(s["loadgen_rss_mib"] for s in samples),
        }

    def results(self, drained: dict[str, Any]) -> dict[str, Any]:
        joined = [p for p in self.peers if p.joined]
        soak = [s for s in self.samples if s["phase"] == "soak"]
        latencies = [
            p.other.arrived[n] - p.started[n]
            for p in joined
            for n in p.confirmed
            if n in p.other.arrived
        ]
        drops = collections.Counter(dict.fromkeys(("close", "abort", "leave", "unplanned"), 0))
        for peer in self.peers:
            drops.update(peer.drops)
        warnings = sum((p.warnings for p in self.peers), collections.Counter[str]())
        errors = sum((p.errors for p in self.peers), collections.Counter[str]())
        soak_s = self.marks["drain"] - self.marks["soak"]
        return {
            "knobs": asdict(self.knobs),
            "marks_s": self.marks,
            "clients": len(joined),
            "clients_planned": len(self.peers),
            "join_failures": self.join_failures,
            "websockets_peak": max((s["websockets"] for s in self.samples), default=0),
            "websockets_min_in_soak": min((s["websockets"] for s in soak), default=0),
            "websockets_mean_in_soak": statistics.fmean(s["websockets"] for s in soak)
            if soak
            else 0,
            "websocket_sessions": sum(p.sessions for p in self.peers),
            "reopens": sum(p.reopens for p in self.peers),
            "drops": dict(drops),
            "queued_in_outbox": sum(p.queued for p in self.peers),
            "soak_seconds": soak_s,
            "messages_per_s_in_soak": sum(1 for p in joined for n in p.confirmed if n in p.started)
            / max(soak_s + drained["seconds_to_deliver"], 1e-9),
            "latency": benchlib.summarise_ms(latencies) if latencies else {},
            "drain": drained,
            "check": self.check(),
            "warnings": dict(warnings.most_common(20)),
            "errors": dict(errors.most_common(20)),
            "memory": self.memory(),
            "server_log": self.server_log(),
            "server_fds_at_start": self.fds_at_start,
            "server_fds_at_end": self.fds_at_end,
            "samples": self.samples,
        }

    def server_log(self) -> dict[str, Any]:
        try:
            text = (self.data_dir / "server.out").read_text(errors="replace")
        except OSError:
            return {"lines": 0}
        lines = text.splitlines()
        return {
            "lines": len(lines),
            "tracebacks": text.count("Traceback (most recent call last)"),
            "errors": sum(1 for line in lines if "ERROR" in line),
            "tail": lines[-40:],
        }


TCP_STATES = {
    "01": "established",
    "02": "syn_sent",
    "03": "syn_recv",
    "04": "fin_wait1",
    "05": "fin_wait2",
    "06": "time_wait",
    "07": "close",
    "08": "close_wait",
    "09": "last_ack",
    "0A": "listen",
    "0B": "closing",
}


def fd_kinds(pid: int) -> dict[str, int]:
    """A process's open descriptors by kind; TCP sockets by state (from /proc/net/tcp*)."""
    states: dict[str, str] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                states[fields[9]] = TCP_STATES.get(fields[3], fields[3])
    kinds: collections.Counter[str] = collections.Counter()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return {}
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inode = target[len("socket:[") : -1]
            kinds[f"tcp {states[inode]}" if inode in states else "socket (not tcp)"] += 1
        elif target.startswith(("pipe:", "anon_inode:")):
            kinds[target.split(":")[0] + ":" + target.split(":")[1].strip("[]")] += 1
        else:
            kinds["file"] += 1
    return dict(kinds)


async def measure(knobs: Knobs) -> dict[str, Any]:
    handles = [f"c{i}@{DOMAIN}" for i in range(2 * knobs.pairs)]
    benchlib.BENCH_DIR.joinpath(".work").mkdir(exist_ok=True)
    home = benchlib.BENCH_DIR / ".work" / f"soak-{secrets.token_hex(4)}"
    try:
        async with hotline_server(handles) as server:
            print(f"[soak] server at {server.url}; {len(handles)} clients", flush=True)
            return await Soak(knobs, server, home).run()
    finally:
        shutil.rmtree(home, ignore_errors=True)


def plot(results: dict[str, Any], path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot")
        return None
    samples = results["samples"]
    t = [s["t"] for s in samples]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6.5), sharex=True)
    top.plot(t, [s["server_rss_mib"] for s in samples], label="server RSS", color="C0")
    top.set_ylabel("server RSS (MiB)")
    top.set_ylim(0, max(s["server_rss_mib"] for s in samples) * 1.15)
    gen = top.twinx()
    gen.plot(t, [s["loadgen_rss_mib"] for s in samples], label="load generator RSS", color="C1")
    gen.set_ylabel("load generator RSS (MiB)")
    gen.set_ylim(bottom=0)
    lines = [top.get_legend_handles_labels(), gen.get_legend_handles_labels()]
    top.legend(lines[0][0] + lines[1][0], lines[0][1] + lines[1][1], loc="lower right")
    bottom.plot(t, [s["websockets"] for s in samples], label="open websockets", color="C2")
    bottom.plot(t, [s["server_fds"] for s in samples], label="server open fds", color="C3")
    bottom.plot(t, [s["server_sockets"] for s in samples], label="server sockets", color="C5")
    bottom.set_ylabel("count")
    bottom.set_xlabel("seconds since start")
    right = bottom.twinx()
    right.plot(t, [s["mailbox"] for s in samples], label="mailbox rows", color="C4", lw=0.8)
    right.set_ylabel("mailbox rows")
    handles = bottom.get_legend_handles_labels()
    extra = right.get_legend_handles_labels()
    bottom.legend(handles[0] + extra[0], handles[1] + extra[1], loc="upper left")
    for name, when in results["marks_s"].items():
        for ax in (top, bottom):
            ax.axvline(when, color="grey", lw=0.6, ls="--")
        if name != "end":
            top.text(when, top.get_ylim()[1] * 0.97, f" {name}", fontsize=8, va="top")
    check = results["check"]
    fig.suptitle(
        f"Soak: {results['clients']} clients, peak {results['websockets_peak']} websockets, "
        f"{check['sent_confirmed']} messages; stored exactly once in order: "
        f"{check['history_exactly_once_in_order']}; not yielded by listen(): {check['missing']}",
        fontsize=10,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def document(results: dict[str, Any], knobs: Knobs, smoke: bool, extra: dict[str, Any]) -> Any:
    mem = results["memory"]
    check = results["check"]
    drops = results["drops"]
    lat = results.get("latency", {})
    return benchlib.document(
        name="soak",
        title="Soak: hundreds of clients on websockets, joining, dropping and reconnecting",
        description=(
            f"{results['clients']} real `HotlineClient`s ({knobs.pairs} pairs, end to end: Olm, "
            "sealed records on both sides, delivery receipts) on one home server process on "
            "127.0.0.1 (SQLite, records archive on, rate limits lifted), every client in "
            "`listen()` (its push websocket open) and sending numbered messages to its pair, "
            f"for {knobs.seconds:.0f} s of joining, dropping and reconnecting; then a drain and "
            "an exactly-once check per direction. Server RSS, CPU and descriptors sampled "
            "every second from /proc."
        ),
        packages=PACKAGES,
        parameters=asdict(knobs) | {"smoke": smoke},
        summary=[
            f"{results['clients']} clients, peak {results['websockets_peak']} websockets open at "
            f"once (min {results['websockets_min_in_soak']} during the soak), "
            f"{results['websocket_sessions']} websocket sessions in all",
            f"{check['sent_confirmed']} numbered messages sent; in every receiver's stored "
            f"history exactly once and in order: **{check['history_exactly_once_in_order']}**; "
            f"yielded by `listen()` exactly once and in order: "
            f"**{check['exactly_once_in_order']}** ({check['duplicates']} duplicates, "
            f"{check['missing']} never yielded, {check['out_of_order']} out of order); mailbox "
            f"empty at the end: {results['drain']['mailbox_at_end'] == 0}",
            f"server RSS {mem['baseline_mib']:.0f} MiB idle, {mem['after_warmup_mib']:.0f} MiB "
            f"after warm-up, peak {mem['peak_mib']:.0f} MiB, {mem['after_drain_mib']:.0f} MiB "
            f"after the drain (x{mem['ratio_after_drain_to_warmup']:.2f}); "
            f"{mem['slope_after_warmup_mib_per_min']:+.2f} MiB/min after warm-up",
        ],
        tables=[
            benchlib.table(
                "Clients, websockets and delivery",
                ["figure", "value"],
                [
                    [
                        "clients (joined / planned)",
                        f"{results['clients']}/{results['clients_planned']}",
                    ],
                    ["websockets open, peak", results["websockets_peak"]],
                    [
                        "websockets open, min / mean during the soak",
                        slash(
                            results["websockets_min_in_soak"],
                            round(results["websockets_mean_in_soak"]),
                        ),
                    ],
                    ["websocket sessions (listen() calls)", results["websocket_sessions"]],
                    [
                        "drops: clean close / reset / leave / unplanned",
                        slash(*(drops.get(k, 0) for k in ("close", "abort", "leave", "unplanned"))),
                    ],
                    ["keystores re-opened (new login) after leaving", results["reopens"]],
                    ["messages sent (confirmed by send_text)", check["sent_confirmed"]],
                    ["send_text raised (uncertain)", check["sent_uncertain"]],
                    ["went to the outbox (status sending)", results["queued_in_outbox"]],
                    ["message events received", check["received_events"]],
                    [
                        "listen(): duplicates / missing / unexpected / out of order",
                        slash(
                            *(
                                check[k]
                                for k in ("duplicates", "missing", "unexpected", "out_of_order")
                            )
                        ),
                    ],
                    [
                        "listen(): exactly once, in order, every direction",
                        check["exactly_once_in_order"],
                    ],
                    [
                        "stored history: duplicates / missing / out of order",
                        slash(
                            *(
                                check[k]
                                for k in (
                                    "stored_duplicates",
                                    "stored_missing",
                                    "stored_out_of_order",
                                )
                            )
                        ),
                    ],
                    [
                        "stored history: exactly once, in order, every direction",
                        check["history_exactly_once_in_order"],
                    ],
                    [
                        "in the history but never yielded by listen()",
                        check["stored_but_not_yielded"],
                    ],
                    ["mailbox rows at the end", results["drain"]["mailbox_at_end"]],
                    ["records in the server's log", results["drain"]["records"]],
                    ["drain: all delivered after (s)", results["drain"]["seconds_to_deliver"]],
                    [
                        "latency send → listen() p50 / p99 (ms), offline time included",
                        f"{lat.get('p50_ms', 0):.0f} / {lat.get('p99_ms', 0):.0f}",
                    ],
                    [
                        "client warnings / errors escaping listen() or send_text",
                        f"{sum(results['warnings'].values())} / {sum(results['errors'].values())}",
                    ],
                    [
                        "server log: tracebacks / ERROR lines",
                        slash(*(results["server_log"].get(k, 0) for k in ("tracebacks", "errors"))),
                    ],
                ],
            ),
            benchlib.table(
                "Server process (from /proc, sampled every second)",
                ["figure", "value"],
                [
                    ["RSS idle, before any client (MiB)", mem["baseline_mib"]],
                    ["RSS after setup (MiB)", mem["after_setup_mib"]],
                    [
                        f"RSS after warm-up, t={mem['warmup_at_s']:.0f} s (MiB)",
                        mem["after_warmup_mib"],
                    ],
                    [f"RSS peak, t={mem['peak_at_s']:.0f} s (MiB)", mem["peak_mib"]],
                    ["RSS at the end of the soak (MiB)", mem["end_of_soak_mib"]],
                    ["RSS after the drain (MiB)", mem["after_drain_mib"]],
                    ["RSS after every client closed (MiB)", mem["after_close_mib"]],
                    ["RSS after drain / after warm-up", mem["ratio_after_drain_to_warmup"]],
                    ["RSS slope after warm-up (MiB/min)", mem["slope_after_warmup_mib_per_min"]],
                    [
                        "open sockets idle / peak / after close",
                        slash(
                            mem["sockets_baseline"], mem["sockets_peak"], mem["sockets_after_close"]
                        ),
                    ],
                    [
                        "open fds idle / peak / after close",
                        f"{mem['fds_baseline']} / {mem['fds_peak']} / {mem['fds_after_close']}",
                    ],
                    ["server CPU (s) over the whole run", mem["server_cpu_s"]],
                    [
                        "load generator CPU (s) / peak RSS (MiB)",
                        f"{mem['loadgen_cpu_s']:.0f} / {mem['loadgen_peak_rss_mib']:.0f}",
                    ],
                ],
                "The whole curve (one sample per second) is `results.samples`; the plot is "
                "`plots/soak_rss.png`.",
            ),
            benchlib.table(
                "Server RSS at each minute of the soak",
                ["minute", "server RSS MiB", "records in the log", "websockets open"],
                [
                    [m["minute"], m["server_rss_mib"], m["records"], m["websockets"]]
                    for m in mem["per_minute_of_soak"]
                ],
            ),
        ],
        notes=[
            "Every client takes the full end-to-end path (no raw websocket stand-ins): the "
            "point is that what is delivered exactly once is what a user sees, i.e. the "
            "numbers `HotlineClient.listen()` yields, after Olm, dedup by message id and the "
            "transcript chain. The rate per client is low (exponential gaps, mean "
            f"{knobs.interval:.0f} s) because 2 cores carry the server and all clients: the "
            "soak is about holding connections and churn, not throughput (hotline_pairs.json).",
            "Drops: `close` = the client closes its websocket cleanly; `abort` = its TCP "
            "transport is aborted (a reset, as on a network loss, mid-frame or mid-batch); "
            "`leave` = socket closed and the client object closed, later re-opened from its "
            "keystore (new login). `unplanned` = a websocket that ended without being dropped "
            "on purpose (e.g. a missed keepalive ping); the client reconnects after 1 s.",
            "Two levels of exactly-once are checked per direction: the numbers in the "
            "receiver's stored history (`HotlineClient.history`, its keystore) and the numbers "
            "its `listen()` yielded. A message can be stored but not yielded: when the socket "
            "drops after `process()` committed a batch but before its ack went out, the ack "
            "raises `websockets`' ConnectionClosed out of `listen()` and that batch's events are "
            "lost; the re-pushed items then fail to decrypt (their Olm keys are spent) and "
            "surface as `decryption_failed` warnings (see docs/hardening.md, Soak).",
            "Server memory is expected to grow a little with the number of records: the "
            "in-memory Merkle tree keeps ~64 bytes per leaf (`records/proof.py`), and SQLite's "
            "page cache fills. 'Without bound' would show as a slope that does not flatten.",
            "RSS after the clients closed is not expected to fall back: CPython's allocator "
            "keeps freed arenas; the server's open sockets are the leak check there (its other "
            "descriptors include SQLite's pooled connections, three files each, a pool that "
            "grows with concurrency and stays).",
        ],
        results=results | {"environment": extra},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--smoke", action="store_true", help="10 pairs, 10 s; results to a temp dir"
    )
    parser.add_argument("--pairs", type=int, help=f"pairs of clients ({FULL.pairs})")
    parser.add_argument("--seconds", type=float, help=f"soak phase ({FULL.seconds:.0f} s)")
    parser.add_argument("--interval", type=float, help="mean seconds between a client's sends")
    parser.add_argument("--session", type=float, help="mean seconds online between drops")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--out", type=Path, default=None, help="results dir")
    parser.add_argument("--quiet-load", type=float, default=-1, help="wait for load < this")
    parser.add_argument("--quiet-wait", type=float, default=600)
    args = parser.parse_args()
    knobs = SMOKE if args.smoke else FULL
    overrides = {
        k: v
        for k, v in {
            "pairs": args.pairs,
            "seconds": args.seconds,
            "interval": args.interval,
            "session": args.session,
            "seed": args.seed,
        }.items()
        if v is not None
    }
    knobs = Knobs(**(asdict(knobs) | overrides))
    limits = benchlib.raise_fd_limit(2 * knobs.pairs * FDS_PER_CLIENT + 256)
    quiet = benchlib.wait_until_quiet(args.quiet_load, args.quiet_wait)
    # SIGTERM unwinds like Ctrl-C, so the server subprocess is stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    results = asyncio.run(measure(knobs))
    out = args.out or (Path(os.environ.get("TMPDIR", "/tmp")) if args.smoke else None)
    out = out or benchlib.RESULTS_DIR
    png = plot(results, out / "plots" / "soak_rss.png")
    import hotline

    where = str(Path(hotline.__file__).parent)
    doc = document(
        results, knobs, args.smoke, {"fd_limit": limits, "quiet": quiet, "hotline": where}
    )
    path = benchlib.write(doc, out)
    check = results["check"]
    print(
        f"[soak] {results['clients']} clients, peak {results['websockets_peak']} websockets, "
        f"{check['sent_confirmed']} messages, exactly once in order: "
        f"{check['exactly_once_in_order']}; server RSS x"
        f"{results['memory']['ratio_after_drain_to_warmup']:.2f} after warm-up"
    )
    print(f"wrote {path}" + (f" and {png}" if png else ""))
    print(json.dumps({"check": check, "drain": results["drain"]}, indent=1))


if __name__ == "__main__":
    main()
