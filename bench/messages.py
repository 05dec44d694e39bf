"""Messages per second and delivery latency between two Hotline clients, beside the Olm ceiling.

Three measurements, all in this one process:

1. **Ceiling.** Olm encrypt+decrypt round trips per second on an established session, one
   direction, plaintext the size of a real text envelope: raw ``vodozemac``, the
   ``hotline.crypto.olm`` wrappers, the wrappers with the session unpickled and re-pickled
   around every operation (what ``hotline.client.channel`` did before), and
   ``hotline.client.channel`` as it is now (sessions kept open, pickled once per keystore
   transaction): one message per transaction, and a batch of ``BATCH`` per transaction.
2. **Hotline path.** A real home server (``start_embedded``: uvicorn on 127.0.0.1) on a temp
   SQLite file and, when one is reachable, on a scratch PostgreSQL database; two registered
   principals connected by card exchange. Throughput: the sender calls ``send_text`` M times in
   a row while the receiver runs ``listen()`` (websocket push) in the same event loop. Latency:
   one message at a time, from the ``send_text`` call to ``listen()`` yielding it (the next is
   sent once the receiver has sent the last one's delivery receipt and record).
3. **Client-side costs** of one keystore transaction's parts (state load/save, pickles), right
   after the contact exchange and after the run, to show how they grow with history.

Writes ``bench/results/messages.json`` (``--smoke``: a temp dir) for ``bench/report.py``.
Usage: ``python bench/messages.py [--messages M] [--latency-samples K] [--smoke] [--out DIR]``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import gc
import logging
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import asyncpg
import benchlib
import msgspec
import structlog
import vodozemac
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import event as sa_event
from sqlalchemy.engine import URL, make_url

from hotline.client import channel
from hotline.client.device import HotlineClient
from hotline.client.keystore import STATE_FILE
from hotline.client.session_cache import SessionCache
from hotline.client.state import ClientState
from hotline.crypto.hpke import CustodianPrivateKey
from hotline.crypto.olm import DeviceAccount, OlmMessage, OlmSession
from hotline.crypto.passphrase import ScryptParams
from hotline.server.admin import issue_enrolment
from hotline.server.config import ServerConfig
from hotline.server.embedded import EmbeddedServer, start_embedded
from hotline.server.records_log import ArchiveSettings
from hotline.wire.codec import encode
from hotline.wire.envelope import Envelope

DOMAIN = "bench.test"
PASSPHRASE = "benchmark passphrase, not a secret"
BENCH_SCRYPT = ScryptParams(log2_n=14)
TEXT_CHARS = 120  # a typical chat line
BATCH = benchlib.OLM_BATCH
DEFAULT_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
WAIT_TIMEOUT = 60.0
PACKAGES = (
    "vodozemac",
    "cryptography",
    "sqlalchemy",
    "uvicorn",
    "starlette",
    "httpx",
    "websockets",
    "aiosqlite",
    "asyncpg",
    "msgspec",
)
#: The default per-device limit (50 requests/s, burst 200) would cap a sender at ~50 messages/s.
UNLIMITED = 1e9


@dataclass(frozen=True)
class Options:
    messages: int
    latency_samples: int
    olm_rounds: int
    olm_warmup: int
    olm_repeats: int
    warmup_messages: int
    cost_repeats: int
    postgres: bool
    smoke: bool
    out: Path | None


# -- 1. the ceiling: Olm alone --------------------------------------------------------------


def sample_plaintext() -> bytes:
    """An encoded text envelope of the size the Hotline path encrypts."""
    return encode(
        Envelope(
            v=1,
            kind="text",
            message_id=secrets.token_urlsafe(16),
            sender=f"potus@{DOMAIN}",
            sender_device=secrets.token_urlsafe(9),
            recipient=f"pm@{DOMAIN}",
            sent_at_ms=int(time.time() * 1000),
            conversation=f"pm@{DOMAIN}|potus@{DOMAIN}",
            seq=1,
            prev=secrets.token_urlsafe(32),
            text=message_text("throughput", 0),
        )
    )


def raw_pair() -> tuple[vodozemac.Session, vodozemac.Session]:
    """An established raw vodozemac session pair (the peer has replied once)."""
    alice, bob = vodozemac.Account(), vodozemac.Account()
    bob.generate_one_time_keys(1)
    one_time_key = next(iter(bob.one_time_keys.values()))
    outbound = alice.create_outbound_session(bob.curve25519_key, one_time_key)
    first = outbound.encrypt(b"hello").to_pre_key()
    assert first is not None
    inbound, _ = bob.create_inbound_session(alice.curve25519_key, first)
    outbound.decrypt(inbound.encrypt(b"hello back"))
    return outbound, inbound


def wrapped_pair() -> tuple[OlmSession, OlmSession]:
    """The same, through the ``hotline.crypto.olm`` wrappers."""
    alice, bob = DeviceAccount.generate(), DeviceAccount.generate()
    ((_, one_time_key),) = bob.generate_one_time_keys(1)
    outbound = alice.create_outbound_session(bob.curve25519, one_time_key)
    inbound, _ = bob.create_inbound_session(alice.curve25519, outbound.encrypt(b"hello"))
    outbound.decrypt(inbound.encrypt(b"hello back"))
    return outbound, inbound


def pickled_step(plaintext: bytes) -> Callable[[], None]:
    """One round trip as ``client/channel.py`` did before sessions stayed open: unpickle, use,
    re-pickle, each side."""
    key = secrets.token_bytes(32)
    sender, receiver = wrapped_pair()
    pickles = [sender.pickle(key), receiver.pickle(key)]

    def step() -> None:
        outbound = OlmSession.from_pickle(pickles[0], key)
        message = outbound.encrypt(plaintext)
        pickles[0] = outbound.pickle(key)
        inbound = OlmSession.from_pickle(pickles[1], key)
        inbound.decrypt(message)
        pickles[1] = inbound.pickle(key)

    return step


@dataclass
class ChannelSide:
    """One device's client state with its open sessions, as ``HotlineClient`` holds them."""

    account: DeviceAccount
    state: ClientState
    sessions: SessionCache


def channel_side(name: str, key: bytes) -> ChannelSide:
    state = ClientState(
        v=1,
        handle=f"{name}@{DOMAIN}",
        display_name=name,
        server_url="https://bench.test",
        device_id=secrets.token_urlsafe(9),
        identity_key="",
        account_pickle="",
    )
    return ChannelSide(DeviceAccount.generate(), state, SessionCache(key))


def channel_send(sender: ChannelSide, to: ChannelSide, plaintext: bytes) -> OlmMessage:
    return channel.encrypt_for(
        sender.state, sender.sessions, to.state.handle, to.state.device_id, plaintext
    )


def channel_receive(receiver: ChannelSide, sender: ChannelSide, message: OlmMessage) -> bytes:
    return channel.decrypt_from(
        receiver.state,
        receiver.account,
        receiver.sessions,
        sender.state.handle,
        sender.state.device_id,
        sender.account.curve25519,
        message,
    )


def channel_pair() -> tuple[ChannelSide, ChannelSide]:
    """An established session between two client states through ``client.channel``."""
    key = secrets.token_bytes(32)
    alice, bob = channel_side("potus", key), channel_side("pm", key)
    ((_, one_time_key),) = bob.account.generate_one_time_keys(1)
    channel.start_session(
        alice.state,
        alice.account,
        alice.sessions,
        bob.state.handle,
        bob.state.device_id,
        bob.account.curve25519,
        one_time_key,
    )
    channel_receive(bob, alice, channel_send(alice, bob, b"hello"))
    channel_receive(alice, bob, channel_send(bob, alice, b"hello back"))
    return alice, bob


def channel_step(plaintext: bytes, batch: int = 1) -> Callable[[], None]:
    """``batch`` round trips as ``client/channel.py`` does them now, in one keystore
    transaction per side (``SessionCache.begin`` ... ``write_back``, as ``HotlineClient._tx``):
    the sessions stay open; ``batch`` encrypts + one pickle on one side, ``batch`` decrypts +
    one pickle on the other."""
    sender, receiver = channel_pair()

    def step() -> None:
        for side in (sender, receiver):
            side.sessions.begin()
        messages = [channel_send(sender, receiver, plaintext) for _ in range(batch)]
        sender.sessions.write_back(sender.state)
        for message in messages:
            channel_receive(receiver, sender, message)
        receiver.sessions.write_back(receiver.state)
        for side in (sender, receiver):
            side.sessions.end()

    return step


def timed_rate(
    step: Callable[[], None], opts: Options, round_trips_per_step: int = 1
) -> dict[str, float]:
    """Round trips per second of ``step`` (median of the repeats, after a warm-up)."""
    steps = max(1, opts.olm_rounds // round_trips_per_step)
    for _ in range(max(1, opts.olm_warmup // round_trips_per_step)):
        step()
    durations = []
    for _ in range(opts.olm_repeats):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        durations.append(time.perf_counter() - start)
    median = statistics.median(durations)
    round_trips = steps * round_trips_per_step
    return {
        "round_trips_per_s": round_trips / median,
        "us_per_round_trip": median / round_trips * 1e6,
        "best_round_trips_per_s": round_trips / min(durations),
    }


def split_costs(
    encrypt: Callable[[bytes], Any], decrypt: Callable[[Any], bytes], plaintext: bytes, n: int
) -> dict[str, float]:
    """Mean µs of encrypt alone and of decrypt alone (n messages each, one direction)."""
    start = time.perf_counter()
    messages = [encrypt(plaintext) for _ in range(n)]
    middle = time.perf_counter()
    for message in messages:
        decrypt(message)
    end = time.perf_counter()
    return {"encrypt_us": (middle - start) / n * 1e6, "decrypt_us": (end - middle) / n * 1e6}


def measure_ceiling(opts: Options) -> dict[str, Any]:
    plaintext = sample_plaintext()
    raw_out, raw_in = raw_pair()
    wrap_out, wrap_in = wrapped_pair()
    raw = timed_rate(lambda: raw_in.decrypt(raw_out.encrypt(plaintext)), opts)
    raw |= split_costs(raw_out.encrypt, raw_in.decrypt, plaintext, opts.olm_rounds)
    wrapped = timed_rate(lambda: wrap_in.decrypt(wrap_out.encrypt(plaintext)), opts)
    wrapped |= split_costs(wrap_out.encrypt, wrap_in.decrypt, plaintext, opts.olm_rounds)
    pickled = timed_rate(pickled_step(plaintext), opts)
    kept_open = timed_rate(channel_step(plaintext), opts)
    batched = timed_rate(channel_step(plaintext, BATCH), opts, BATCH)
    return {
        "plaintext_bytes": len(plaintext),
        "raw_vodozemac": raw,
        "hotline_wrappers": wrapped,
        "wrappers_with_pickling": pickled,
        "channel_sessions_open": kept_open,
        "channel_batch": batched,
    }


# -- 2. the Hotline path ---------------------------------------------------------------------


def message_text(phase: str, index: int) -> str:
    head = f"{phase} {index:06d} "
    return head + "x" * (TEXT_CHARS - len(head))


@dataclass
class Party:
    server: EmbeddedServer
    sender: HotlineClient
    receiver: HotlineClient
    work: WorkCounter


class WorkCounter:
    """Counts HTTP requests per client and store transactions begun by the server."""

    def __init__(self, server: EmbeddedServer, clients: dict[str, HotlineClient]) -> None:
        self.counts: collections.Counter[str] = collections.Counter()
        self._engine = server.store.engine.sync_engine
        for name, client in clients.items():
            # ServerApi keeps its httpx.AsyncClient in ``_http``; the hook only observes.
            client.server._http.event_hooks = {"request": [self._request_hook(name)]}
        sa_event.listen(self._engine, "begin", self._on_begin)

    def _request_hook(self, name: str) -> Callable[[object], Awaitable[None]]:
        async def hook(_request: object) -> None:
            self.counts[name] += 1

        return hook

    def _on_begin(self, _conn: object) -> None:
        self.counts["db"] += 1

    def snapshot(self) -> collections.Counter[str]:
        return collections.Counter(self.counts)

    def per_message(self, since: collections.Counter[str], messages: int) -> dict[str, float]:
        delta = self.counts - since
        return {f"{key}_per_message": delta[key] / messages for key in ("sender", "receiver", "db")}

    def remove(self) -> None:
        sa_event.remove(self._engine, "begin", self._on_begin)


async def register(server: EmbeddedServer, home: Path, name: str, display: str) -> HotlineClient:
    handle = f"{name}@{DOMAIN}"
    token = await issue_enrolment(server.store, handle, time.time())
    return await HotlineClient.register(
        home / name,
        PASSPHRASE,
        server_url=server.url,
        enrolment_token=token,
        handle=handle,
        display_name=display,
        scrypt=BENCH_SCRYPT,
    )


def bench_config(database_url: str, *, archive: bool = True, **overrides: Any) -> ServerConfig:
    """An embedded server's config for a benchmark: rate limits lifted and, with ``archive``,
    a records log sealed to a custodian key made for the run (its private half is dropped:
    benchmarks never read records back). ``overrides``: further ``ServerConfig`` fields."""
    settings = (
        ArchiveSettings(
            log_key=Ed25519PrivateKey.generate(),
            custodian_key=CustodianPrivateKey.generate().public.to_bytes(),
        )
        if archive
        else None
    )
    return ServerConfig(
        domain=DOMAIN,
        database_url=database_url,
        rate_per_second=UNLIMITED,
        rate_burst=UNLIMITED,
        anon_rate_per_second=UNLIMITED,
        anon_rate_burst=UNLIMITED,
        archive=settings,
        **overrides,
    )


@contextlib.asynccontextmanager
async def party(database_url: str, home: Path, *, archive: bool = False) -> AsyncIterator[Party]:
    """A server and two connected principals; everything is closed on the way out.

    ``archive``: the records archive on (a log key and a custodian key made for the run), so
    every message carries sealed records; off, messages need none."""
    server = await start_embedded(bench_config(database_url, archive=archive))
    clients: list[HotlineClient] = []
    try:
        clients.append(await register(server, home, "potus", "President of the United States"))
        clients.append(await register(server, home, "pm", "Prime Minister of Canada"))
        sender, receiver = clients
        await sender.add_contact(await receiver.my_card())
        await receiver.sync()  # auto-accepts
        await sender.sync()  # learns of the acceptance
        work = WorkCounter(server, {"sender": sender, "receiver": receiver})
        try:
            yield Party(server, sender, receiver, work)
        finally:
            work.remove()
    finally:
        for client in clients:
            await client.close()
        await server.stop()


class GcWatch:
    """Records the pauses of full (generation-2) garbage collections while installed."""

    def __init__(self) -> None:
        self.pauses: list[float] = []
        self._start = 0.0

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if info["generation"] == 2:
            if phase == "start":
                self._start = time.perf_counter()
            else:
                self.pauses.append(time.perf_counter() - self._start)

    def __enter__(self) -> GcWatch:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *_exc: object) -> None:
        gc.callbacks.remove(self._callback)

    def summary(self) -> dict[str, float]:
        return {
            "full_gc_count": len(self.pauses),
            "full_gc_max_ms": max(self.pauses, default=0.0) * 1000,
        }


class Listener:
    """Runs ``client.listen()`` in a task and notes when each text message is yielded."""

    def __init__(self, client: HotlineClient) -> None:
        self.client = client
        self.arrivals: dict[str, float] = {}
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())
        deadline = time.monotonic() + WAIT_TIMEOUT
        # ServerApi sets ``_ws`` once the push websocket is open (after the initial sync).
        while getattr(self.client.server, "_ws", None) is None:
            if self._task.done():
                self._task.result()
            if time.monotonic() > deadline:
                raise TimeoutError("the receiver's websocket did not open")
            await asyncio.sleep(0.005)

    async def _run(self) -> None:
        async for event in self.client.listen():
            if event.kind == "message" and not event.outgoing:
                self.arrivals[event.text] = time.perf_counter()
                self._changed.set()
            elif event.kind == "warning":
                raise RuntimeError(f"receiver warning: {event.text}")

    async def wait_for(self, texts: Iterable[str]) -> float:
        """Wait until every text has arrived; returns the latest arrival time."""
        assert self._task is not None
        missing = set(texts)
        deadline = time.monotonic() + WAIT_TIMEOUT
        while True:
            missing -= self.arrivals.keys()
            if not missing:
                break
            self._changed.clear()
            waiter = asyncio.ensure_future(self._changed.wait())
            await asyncio.wait(
                {waiter, self._task},
                timeout=max(0.0, deadline - time.monotonic()),
                return_when=asyncio.FIRST_COMPLETED,
            )
            waiter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiter
            if self._task.done():
                self._task.result()
                raise RuntimeError("the receiver stopped listening")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(missing)} message(s) never arrived")
        return max(self.arrivals[t] for t in texts)

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def settled(client: HotlineClient) -> None:
    """Wait until the receiver has sent what the last message obliged (its delivery receipt
    and its record), so each message of a one-at-a-time run starts on an idle system."""
    deadline = time.monotonic() + WAIT_TIMEOUT
    while client.unsettled:
        if time.monotonic() > deadline:
            raise TimeoutError("the receiver never sent its receipt and records")
        await asyncio.sleep(0.001)


async def one_by_one(p: Party, listener: Listener, phase: str, count: int) -> dict[str, Any]:
    """Send ``count`` messages one at a time; per message: send_text time and delivery time."""
    to = p.receiver.handle
    delivery, send = [], []
    before = p.work.snapshot()
    with GcWatch() as gcs:
        for i in range(count):
            text = message_text(phase, i)
            start = time.perf_counter()
            await p.sender.send_text(to, text)
            sent = time.perf_counter()
            arrived = await listener.wait_for([text])
            await settled(p.receiver)
            send.append(sent - start)
            delivery.append(arrived - start)
    work = p.work.per_message(before, count) | gcs.summary()
    return {"delivery": delivery, "send_text": send, "work": work}


async def throughput(p: Party, listener: Listener, count: int) -> dict[str, Any]:
    """Send ``count`` messages back to back; messages/s from first send to last receipt."""
    texts = [message_text("throughput", i) for i in range(count)]
    before = p.work.snapshot()
    with GcWatch() as gcs:
        start = time.perf_counter()
        for text in texts:
            await p.sender.send_text(p.receiver.handle, text)
        sent = time.perf_counter()
        last = await listener.wait_for(texts)
    return {
        "messages": count,
        "seconds": last - start,
        "messages_per_s": count / (last - start),
        "send_text_calls_per_s": count / (sent - start),
        "work": p.work.per_message(before, count) | gcs.summary(),
    }


def median_seconds(action: Callable[[], object], repeats: int) -> float:
    durations = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        durations.append(time.perf_counter() - start)
    return statistics.median(durations)


def client_costs(client: HotlineClient, repeats: int) -> dict[str, Any]:
    """What one keystore transaction is made of, on this client's current state."""
    keystore = client.keystore
    state = keystore.load()
    key = keystore.pickle_key
    session_pickle = next(iter(state.sessions.values())).pickles[0]
    load = median_seconds(keystore.load, repeats)
    save = median_seconds(lambda: keystore.save(state), repeats)  # rewrites the same state
    account = median_seconds(
        lambda: DeviceAccount.from_pickle(state.account_pickle, key).pickle(key), repeats
    )
    session = median_seconds(
        lambda: OlmSession.from_pickle(session_pickle, key).pickle(key), repeats
    )
    return {
        "messages_in_state": len(state.messages),
        "state_json_bytes": len(msgspec.json.encode(state)),
        "state_file_bytes": (keystore.home / STATE_FILE).stat().st_size,
        "load_ms": load * 1000,
        "save_ms": save * 1000,
        "account_pickle_round_trip_ms": account * 1000,
        "session_pickle_round_trip_ms": session * 1000,
        "transaction_floor_ms": (load + save + account) * 1000,
    }


async def run_backend(
    label: str, database_url: str, shown_url: str, opts: Options, *, archive: bool = False
) -> dict:
    print(f"[{label}] server + two principals ...", flush=True)
    with tempfile.TemporaryDirectory(prefix="hotline-bench-") as tmp:
        setup_start = time.perf_counter()
        async with party(database_url, Path(tmp), archive=archive) as p:
            setup_s = time.perf_counter() - setup_start
            costs_before = {
                "sender": client_costs(p.sender, opts.cost_repeats),
                "receiver": client_costs(p.receiver, opts.cost_repeats),
            }
            listener = Listener(p.receiver)
            await listener.start()
            try:
                await one_by_one(p, listener, "warmup", opts.warmup_messages)
                await p.sender.sync()  # drain delivery receipts (untimed)
                print(f"[{label}] throughput, {opts.messages} messages ...", flush=True)
                rate = await throughput(p, listener, opts.messages)
                await p.sender.sync()
                print(f"[{label}] latency, {opts.latency_samples} messages ...", flush=True)
                latency = await one_by_one(p, listener, "latency", opts.latency_samples)
            finally:
                await listener.stop()
            await p.sender.sync()
            costs_after = {
                "sender": client_costs(p.sender, opts.cost_repeats),
                "receiver": client_costs(p.receiver, opts.cost_repeats),
            }
    return {
        "backend": label,
        "archive": archive,
        "database_url": shown_url,
        "setup_s": setup_s,
        "throughput": rate,
        "latency": benchlib.summarise_ms(latency["delivery"]),
        "send_text": benchlib.summarise_ms(latency["send_text"]),
        "latency_work": latency["work"],
        "client_costs_after_connect": costs_before,
        "client_costs_after_run": costs_after,
    }


# -- PostgreSQL: a scratch database, dropped afterwards --------------------------------------


def asyncpg_dsn(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


async def find_postgres() -> tuple[URL | None, str]:
    """The admin URL to create scratch databases with, or None and why not."""
    explicit = os.environ.get("HOTLINE_BENCH_POSTGRES_URL")
    url = make_url(explicit or DEFAULT_POSTGRES)
    shown = url.render_as_string(hide_password=True)
    try:
        conn = await asyncpg.connect(asyncpg_dsn(url), timeout=3)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        if explicit:
            raise
        return None, f"no PostgreSQL reachable at {shown} ({type(exc).__name__}): skipped"
    await conn.close()
    return url, f"PostgreSQL run: a fresh database on {shown}, dropped afterwards"


@contextlib.asynccontextmanager
async def scratch_database(admin: URL) -> AsyncIterator[tuple[str, str]]:
    """Create a fresh database; yield its URL (and a password-free form); drop it after."""
    name = f"hotline_bench_{secrets.token_hex(6)}"
    conn = await asyncpg.connect(asyncpg_dsn(admin), timeout=10)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
        try:
            url = admin.set(drivername="postgresql+asyncpg", database=name)
            yield (
                url.render_as_string(hide_password=False),
                url.render_as_string(hide_password=True),
            )
        finally:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


# -- the run and its document ----------------------------------------------------------------


async def hotline_runs(opts: Options) -> tuple[list[dict], str]:
    runs = []
    with tempfile.TemporaryDirectory(prefix="hotline-bench-db-") as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'server.db'}"
        runs.append(await run_backend("SQLite", url, "sqlite+aiosqlite:///<tmp>/server.db", opts))
    # The same on a fresh database with the records archive on: what capture costs.
    with tempfile.TemporaryDirectory(prefix="hotline-bench-db-") as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'server.db'}"
        shown = "sqlite+aiosqlite:///<tmp>/server.db"
        runs.append(await run_backend("SQLite + archive", url, shown, opts, archive=True))
    if not opts.postgres:
        return runs, "PostgreSQL run disabled (--no-postgres)"
    admin, why = await find_postgres()
    if admin is not None:
        async with scratch_database(admin) as (url, shown):
            runs.append(await run_backend("PostgreSQL", url, shown, opts))
    return runs, why


def ceiling_table(ceiling: dict[str, Any]) -> benchlib.Table:
    raw_rate = ceiling["raw_vodozemac"]["round_trips_per_s"]
    rows = []
    for label, fig, ratio in benchlib.olm_ratios(ceiling):
        rows.append(
            [
                label,
                fig["round_trips_per_s"],
                fig["us_per_round_trip"],
                fig.get("encrypt_us"),
                fig.get("decrypt_us"),
                100 * fig["round_trips_per_s"] / raw_rate,
                ratio,
            ]
        )
    return benchlib.table(
        "Ceiling: Olm encrypt+decrypt on an established session",
        [
            "variant",
            "round trips/s",
            "µs/round trip",
            "encrypt µs",
            "decrypt µs",
            "% of raw",
            "x raw time",
        ],
        rows,
        f"One direction, {ceiling['plaintext_bytes']}-byte plaintext (an encoded text envelope);"
        " median of the repeats after a warm-up; one thread. `channel.py` rows call"
        " `channel.encrypt_for` / `channel.decrypt_from` on two client states (session lookup,"
        " the peer-key check and the pickle into the state included). Issue 6 target: the"
        f" client's Olm at most {benchlib.OLM_TARGET_RATIO}x raw.",
    )


def path_tables(runs: list[dict], ceiling: dict[str, Any]) -> list[benchlib.Table]:
    raw = ceiling["raw_vodozemac"]["round_trips_per_s"]
    wrapped = ceiling["hotline_wrappers"]["round_trips_per_s"]
    rates, latency, work, costs = [], [], [], []
    for run in runs:
        tp, lat, send = run["throughput"], run["latency"], run["send_text"]
        for phase, counted in (("throughput", tp["work"]), ("latency", run["latency_work"])):
            work.append(
                [
                    run["backend"],
                    phase,
                    counted["sender_per_message"],
                    counted["receiver_per_message"],
                    counted["db_per_message"],
                    counted["full_gc_count"],
                    counted["full_gc_max_ms"],
                ]
            )
        rates.append(
            [
                run["backend"],
                tp["messages"],
                tp["messages_per_s"],
                tp["send_text_calls_per_s"],
                100 * tp["messages_per_s"] / raw,
                100 * tp["messages_per_s"] / wrapped,
            ]
        )
        latency.append(
            [
                run["backend"],
                lat["n"],
                lat["p50_ms"],
                lat["p95_ms"],
                lat["p99_ms"],
                lat["max_ms"],
                send["p50_ms"],
                send["p99_ms"],
            ]
        )
        for phase in ("after_connect", "after_run"):
            for who in ("sender", "receiver"):
                c = run[f"client_costs_{phase}"][who]
                costs.append(
                    [
                        f"{run['backend']}, {phase.replace('_', ' ')}",
                        who,
                        c["messages_in_state"],
                        c["state_file_bytes"] / 1024,
                        c["load_ms"],
                        c["save_ms"],
                        c["account_pickle_round_trip_ms"],
                        c["session_pickle_round_trip_ms"],
                        c["transaction_floor_ms"],
                    ]
                )
    return [
        benchlib.table(
            "Hotline path: throughput, two clients through the server on loopback",
            [
                "store",
                "messages",
                "messages/s",
                "send_text calls/s",
                "% of raw Olm e+d/s",
                "% of wrapper e+d/s",
            ],
            rates,
            "messages/s = M / (first `send_text` call → `listen()` yields the last message).",
        ),
        benchlib.table(
            "Hotline path: delivery latency, one message at a time (ms)",
            ["store", "samples", "p50", "p95", "p99", "max", "send_text p50", "send_text p99"],
            latency,
            "From the `send_text` call to the receiver's `listen()` yielding the message; "
            "`send_text` columns: the sender's call alone.",
        ),
        benchlib.table(
            "Work per message",
            [
                "store",
                "run",
                "sender HTTP requests",
                "receiver HTTP requests",
                "store transactions",
                "full GCs",
                "longest full GC ms",
            ],
            work,
            "Counted during each run and divided by its message count. The receiver's requests"
            " (delivery receipt, ack, one-time key check) are per pushed batch, so they fall below"
            " 3 per message when pushes carry several messages; store transactions include the"
            " server's reads (token, device, allowlist, device lists, mailbox). Full GCs:"
            " generation-2 collections in the process during the run, and the longest pause.",
        ),
        benchlib.table(
            "Client side: parts of one keystore transaction (ms)",
            [
                "when",
                "client",
                "messages kept",
                "state KiB",
                "load",
                "save",
                "account pickle",
                "session pickle",
                "load+save+account",
            ],
            costs,
            "`keystore.load`/`keystore.save` of the whole state (AEAD + JSON; save writes a temp"
            " file, fsyncs it, renames, fsyncs the directory; no scrypt), and one unpickle +"
            " re-pickle of the Olm account / one session. Medians.",
        ),
    ]


NOTES = [
    "What one Hotline message costs here. Sender, `send_text`: a full keystore load to find the "
    "contact, then one keystore transaction (flock; AEAD-open and JSON-decode the whole state; "
    "the Olm account stays open between transactions and is re-pickled only when its keys "
    "changed; the session of each target device stays open too (`client/session_cache.py`) and "
    "is pickled once, after it encrypts; JSON-encode, "
    "AEAD-seal, write and fsync the state on a thread) around one HTTP POST `/v1/messages` "
    "(server: token lookup, one read for every check, one write transaction with the record, "
    "the signed tree head, a push wake-up). Receiver, per pushed batch (up to 100 items): one "
    "keystore transaction with an Olm decrypt per item (the session open, pickled once per "
    "batch), one delivery-receipt envelope Olm-encrypted and POSTed back to the sender, "
    "a POST `/v1/inbox/ack` and a POST `/v1/keys` (one-time key count). No scrypt: the "
    "passphrase KDF runs only when a keystore is opened.",
    "Sender, server and receiver share one process and one asyncio event loop (SQLite "
    "statements run inline on it, commits on a thread: `store/sqlite_inline.py`), so messages/s "
    "is bounded by the sum of their CPU costs per message, not by the slowest stage.",
    "Batching: the server pushes one websocket frame per wake-up and `listen()` processes frame "
    "by frame, so a back-to-back burst does not coalesce at the receiver; 3 receiver requests "
    "per message in the work table means every push carried one message, and the receiver paid"
    " its full per-batch cost (one keystore transaction, receipt, ack, key check) per message.",
    "Latency includes the receiver's whole `process()`: `listen()` yields a message only after "
    "the state is saved, the delivery receipt is sent and the items are acknowledged. The "
    "sender does not listen during the timed runs; the receipts in its mailbox are drained "
    "between runs, untimed.",
    "The per-device rate limit is lifted for this benchmark (`rate_per_second`/`rate_burst` "
    "= 1e9); with the default (50 requests/s, burst 200) a sending device is capped at about "
    "50 messages/s once its burst is spent.",
    "The keystore state grows with every message (`state.messages` is never pruned; "
    "`seen_message_ids` keeps up to 10,000) and every transaction rewrites it whole, so the "
    "client's cost per message grows with history: compare the client-side rows after the "
    "contact exchange and after the run.",
    "The ceiling is the symmetric chain step of an established session in one direction (no "
    "Diffie-Hellman ratchet step), which is what a one-way burst mostly exercises.",
]


def gc_notes(runs: list[dict]) -> list[str]:
    """Say how full garbage collections bear on the latency tail, from what was measured."""
    notes = []
    for run in runs:
        counted = run["latency_work"]
        if counted["full_gc_count"]:
            notes.append(
                f"{run['backend']} latency tail: {counted['full_gc_count']:.0f} full (generation-2)"
                f" garbage collections of up to {counted['full_gc_max_ms']:.0f} ms ran during the"
                f" {run['latency']['n']} samples (one process holds the server, both clients and "
                "their libraries); a sample that meets one lands in the p99."
            )
    return notes


def archive_summary(runs: list[dict]) -> list[str]:
    """What records capture adds to one message's delivery latency (issue 6: at most 10%)."""
    off = next((r for r in runs if r["backend"] == "SQLite"), None)
    on = next((r for r in runs if r.get("archive")), None)
    if off is None or on is None:
        return []
    lines = []
    for pct in ("p50_ms", "p99_ms"):
        before, after = off["latency"][pct], on["latency"][pct]
        lines.append(
            f"Archive capture adds {after - before:+.1f} ms ({(after / before - 1):+.0%}) to the "
            f"{pct[:3]} delivery latency ({before:.1f} -> {after:.1f} ms, SQLite, one message at "
            "a time; target: at most +10%)."
        )
    return lines


def build_document(
    opts: Options, ceiling: dict[str, Any], runs: list[dict], postgres: str
) -> dict[str, Any]:
    raw = ceiling["raw_vodozemac"]["round_trips_per_s"]
    summary = [
        f"Ceiling: raw vodozemac Olm encrypt+decrypt {raw:,.0f}/s; through Hotline's wrappers "
        f"{ceiling['hotline_wrappers']['round_trips_per_s']:,.0f}/s.",
        *benchlib.olm_target_lines(ceiling),
    ]
    for run in runs:
        tp, lat = run["throughput"], run["latency"]
        summary.append(
            f"{run['backend']}: {tp['messages_per_s']:,.0f} messages/s "
            f"= {tp['messages_per_s'] / raw:.2%} of raw Olm encrypt+decrypt/s "
            f"(1 : {raw / tp['messages_per_s']:,.0f}); delivery latency p50 "
            f"{lat['p50_ms']:.1f} ms, p99 {lat['p99_ms']:.1f} ms."
        )
    summary += archive_summary(runs)
    notes = [*NOTES, *gc_notes(runs), postgres + "."]
    parameters = {
        k: v for k, v in asdict(opts).items() if k not in {"out", "postgres", "cost_repeats"}
    }
    parameters |= {"text_chars": TEXT_CHARS, "scrypt_log2_n": BENCH_SCRYPT.log2_n}
    return benchlib.document(
        name="messages",
        title="Messages: throughput and delivery latency between two clients",
        description=(
            "Two Hotline clients exchange text messages through a real home server (uvicorn on "
            "127.0.0.1, websocket push) in one process; beside them, the raw Olm encrypt+decrypt"
            " rate measured in the same run, the ceiling no message path can exceed."
        ),
        packages=PACKAGES,
        parameters=parameters,
        summary=summary,
        tables=[ceiling_table(ceiling), *path_tables(runs, ceiling)],
        notes=notes,
        results={"ceiling": ceiling, "runs": runs, "postgres": postgres},
    )


def run(opts: Options) -> dict[str, Any]:
    print(f"ceiling: {opts.olm_repeats} x {opts.olm_rounds} Olm round trips ...", flush=True)
    ceiling = measure_ceiling(opts)  # outside the event loop: it blocks
    runs, postgres = asyncio.run(hotline_runs(opts))
    return build_document(opts, ceiling, runs, postgres)


def parse_args(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, help="throughput run size (default 500)")
    parser.add_argument("--latency-samples", type=int, help="latency samples (default 200)")
    parser.add_argument("--olm-rounds", type=int, help="ceiling round trips (default 20000)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes; output to a temp dir")
    parser.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL run")
    parser.add_argument("--out", type=Path, help="results directory (default bench/results)")
    args = parser.parse_args(argv)
    smoke = bool(args.smoke)
    return Options(
        messages=args.messages or (20 if smoke else 500),
        latency_samples=args.latency_samples or (10 if smoke else 200),
        olm_rounds=args.olm_rounds or (500 if smoke else 20_000),
        olm_warmup=100 if smoke else 2_000,
        olm_repeats=1 if smoke else 3,
        warmup_messages=3 if smoke else 20,
        cost_repeats=3 if smoke else 21,
        postgres=not args.no_postgres,
        smoke=smoke,
        out=args.out,
    )


def print_summary(doc: dict[str, Any]) -> None:
    for line in doc["summary"]:
        print("  " + line)


def quiet_logs() -> None:
    """Keep the server's info-level structlog events (e.g. refused requests) off stdout."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    quiet_logs()
    doc = run(opts)
    print_summary(doc)
    if opts.out is not None or not opts.smoke:
        path = benchlib.write(doc, opts.out or benchlib.RESULTS_DIR)
        print(f"wrote {path}")
        return 0
    import report as report_module  # bench/report.py: check the document renders

    with tempfile.TemporaryDirectory(prefix="hotline-bench-smoke-") as tmp:
        benchlib.write(doc, Path(tmp))
        markdown = report_module.render(Path(tmp))
    print(f"smoke run: results not kept ({len(markdown.splitlines())} lines of markdown render)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
