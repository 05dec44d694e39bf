"""N pairs of real Hotline clients through one home server process, with the records archive on.

The load shape of ``bench/synapse.py``: for each (N, M) of the plan, N senders each send M text
messages back to back (``HotlineClient.send_text``: Olm per device, a sealed record, one POST)
while N receivers sit in ``HotlineClient.listen()`` (websocket push; each receiver decrypts,
seals its own record, sends a delivery receipt and acknowledges). Latency per message: from when
its sender wanted to send it (its previous send answered) to the receiver's ``listen()``
yielding it; messages/s: delivered messages / (first send → last arrival). At most
``benchlib.SEND_WINDOW`` (100) sends are in flight at once across all senders, as in
``bench/synapse.py``: one per sender up to 100 pairs, so only the 1,000-pair level is held by
it (its 1,000 first messages are all due at once; a message waiting for a free slot has its
wait counted in its latency). A send that fails (e.g. a client timeout) or a message not
delivered within ``RUN_TIMEOUT`` marks the level incomplete, with the reason, in the results.

Set-up is untimed and runs phase by phase, ``SETUP_PARALLEL`` clients at a time (16; the
environment variable ``HOTLINE_BENCH_SETUP_PARALLEL`` overrides it, for both benches), each phase's
wall time recorded (``setup_phases_s``): register both clients of every pair (keystore,
registration, login, 50 signed one-time keys, policy pin), card exchange, the receiver's sync
(accepts), the sender's sync (sees the acceptance), receivers' websockets open. The untimed
warm-up sends ``--warmup`` (``--large-warmup`` above 100 pairs) messages per pair the same way.

The server runs as its own process (``bench/hotline_server.py``: uvicorn, SQLite, archive sealed
to a custodian key generated here, rate limits lifted) so its CPU and memory are measured alone
from ``/proc``; all 2xN clients run in this process, one event loop, as one load generator.

Then the offered-load sweep (``--sweep 10:4,8,16``): the same pairs, each sender sending on a
fixed schedule so that together they offer each rate in turn for ``benchlib.SWEEP_SECONDS``
(open loop: latency counts from when a message was due), the same as ``bench/synapse.py``, for
messages/s at equal p99.

Writes ``bench/results/hotline_pairs.json``. Usage: ``python bench/hotline_load.py
[--plan 1x200,10x40] [--sweep 10:4,8,16] [--smoke] [--out DIR]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import benchlib
import httpx
from messages import Listener

from hotline.client.device import HotlineClient
from hotline.crypto.hpke import CustodianPrivateKey
from hotline.crypto.passphrase import ScryptParams

DOMAIN = "bench.test"
PASSPHRASE = "benchmark passphrase, not a secret"
BENCH_SCRYPT = ScryptParams(log2_n=14)
#: keystore passphrase cost for the clients of levels above OWN_SERVER_ABOVE pairs: scrypt runs
#: only when a keystore is created or opened (never per message), and 2,000 of them at
#: 2^14 would take minutes of the 20-minute budget
LARGE_SCRYPT = ScryptParams(log2_n=10)
START_TIMEOUT = 60.0
RUN_TIMEOUT = 300.0
#: levels with more pairs than this get a server of their own (fresh database, only their
#: clients connected), so the smaller levels are measured as before with N websockets open
OWN_SERVER_ABOVE = 100
#: clients set up at once (each set-up step is a few requests and a keystore write): enough to
#: keep the server and this process busy while each waits on the other (4 left both half idle;
#: bench/synapse.py uses the same)
SETUP_PARALLEL = int(os.environ.get("HOTLINE_BENCH_SETUP_PARALLEL", "16"))
#: descriptors per client in this process (HTTP connection, websocket, keystore files)
FDS_PER_CLIENT = 4
PACKAGES = ("hotline", "vodozemac", "cryptography", "uvicorn", "starlette", "httpx", "websockets")


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    stats: benchlib.ProcStats
    tokens: dict[str, str]


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@contextlib.asynccontextmanager
async def hotline_server(
    handles: list[str],
    profile: Path | None = None,
    *,
    database_url: str | None = None,
    workers: int = 1,
) -> AsyncIterator[Server]:
    """Start ``hotline_server.py`` on a free loopback port; stopped and deleted on the way out.

    ``database_url`` (default: SQLite in the data dir) and ``workers`` (uvicorn worker
    processes behind the one port; more than one needs PostgreSQL) are passed through.
    """
    benchlib.BENCH_DIR.joinpath(".work").mkdir(exist_ok=True)
    data = benchlib.BENCH_DIR / ".work" / f"hotline-{secrets.token_hex(4)}"
    data.mkdir()
    process: subprocess.Popen[bytes] | None = None
    try:
        custodian = CustodianPrivateKey.generate()  # the private half is simply discarded
        (data / "custodian.pub").write_bytes(custodian.public.to_bytes())
        (data / "handles.json").write_text(json.dumps(handles))
        port = benchlib.free_port()
        log = (data / "server.out").open("wb")
        process = subprocess.Popen(
            [
                sys.executable,
                str(benchlib.BENCH_DIR / "hotline_server.py"),
                "--data-dir",
                str(data),
                "--port",
                str(port),
                "--domain",
                DOMAIN,
                "--custodian-pub",
                str(data / "custodian.pub"),
                "--enrol",
                str(data / "handles.json"),
                *(["--profile", str(profile.resolve())] if profile else []),
                *(["--database-url", database_url] if database_url else []),
                *(["--workers", str(workers)] if workers != 1 else []),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + START_TIMEOUT
        async with httpx.AsyncClient(timeout=5) as probe:
            while True:
                if process.poll() is not None:
                    tail = (data / "server.out").read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"the server exited with {process.returncode}:\n{tail}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await probe.get(f"{url}/v1/server")).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise TimeoutError("the Hotline server did not answer /v1/server")
                await asyncio.sleep(0.1)
        tokens = json.loads((data / "tokens.json").read_text())
        yield Server(url, process, benchlib.ProcStats(process.pid), tokens)
    finally:
        if process is not None:
            stop_process(process)
        shutil.rmtree(data, ignore_errors=True)


@dataclass
class Pair:
    index: int
    sender: HotlineClient
    receiver: HotlineClient
    listener: Listener | None = None


async def register(
    server: Server, home: Path, handle: str, scrypt: ScryptParams = BENCH_SCRYPT
) -> HotlineClient:
    return await HotlineClient.register(
        home / handle,
        PASSPHRASE,
        server_url=server.url,
        enrolment_token=server.tokens[handle],
        handle=handle,
        display_name=handle,
        scrypt=scrypt,
    )


async def make_pair(
    server: Server, home: Path, index: int, scrypt: ScryptParams = BENCH_SCRYPT
) -> Pair:
    sender = await register(server, home, f"s{index}@{DOMAIN}", scrypt)
    receiver = await register(server, home, f"r{index}@{DOMAIN}", scrypt)
    return Pair(index, sender, receiver)


async def befriend(pair: Pair) -> None:
    await pair.sender.add_contact(await pair.receiver.my_card())


async def open_websocket(pair: Pair) -> None:
    pair.listener = Listener(pair.receiver)
    await pair.listener.start()


async def set_up(
    server: Server,
    home: Path,
    count: int,
    scrypt: ScryptParams,
    phases: dict[str, float],
    pairs: list[Pair],
) -> None:
    """``count`` pairs into ``pairs``, phase by phase (each phase's wall time into ``phases``):
    register both clients of each pair, the sender adds the receiver's card, the receiver
    syncs (auto-accepts), the sender syncs (learns of it), then each receiver's websocket
    opens. Once registration is done, ``pairs`` holds every pair, to be closed even if a later
    phase fails."""
    pairs += await benchlib.timed_phase(
        "hotline",
        phases,
        "register (keystore, register, login, one-time keys, policy pin)",
        [make_pair(server, home, i, scrypt) for i in range(count)],
        SETUP_PARALLEL,
    )
    steps: list[tuple[str, Callable[[Pair], Awaitable[object]]]] = [
        ("card exchange", befriend),
        ("receivers accept", lambda pair: pair.receiver.sync()),
        ("senders see acceptance", lambda pair: pair.sender.sync()),
        ("websockets open", open_websocket),
    ]
    for name, step in steps:
        await benchlib.timed_phase(
            "hotline", phases, name, [step(p) for p in pairs], SETUP_PARALLEL
        )


def fire(pair: Pair) -> Callable[[str], Awaitable[object]]:
    async def one(text: str) -> object:
        return await pair.sender.send_text(pair.receiver.handle, text)

    return one


async def wait_all(
    pairs: list[Pair], plans: list[list[str]], failed: dict[str, str], deadline: float
) -> bool:
    """Until every receiver has yielded its texts (less those whose send ``failed``), a
    listener failed, or the deadline; False if the deadline came first."""
    waiting = list(zip(pairs, plans, strict=True))
    while waiting:
        if time.monotonic() >= deadline:
            return False
        still = []
        for pair, texts in waiting:
            listener = pair.listener
            assert listener is not None and listener._task is not None
            if listener._task.done():
                listener._task.result()
                raise RuntimeError(f"receiver {pair.index} stopped listening")
            if any(t not in listener.arrivals and t not in failed for t in texts):
                still.append((pair, texts))
        waiting = still
        await asyncio.sleep(0.01)
    return True


async def run_level(
    server: Server,
    pairs: list[Pair],
    messages: int,
    phase: str,
    extra: dict[str, Any] | None = None,
    interval: float | None = None,
) -> dict[str, Any]:
    """One timed level. ``extra``: more processes to measure, name -> an object with
    ``cpu_seconds()`` and ``memory_kib()`` like :class:`benchlib.ProcStats` (e.g. PostgreSQL).
    ``interval``: open loop, each sender sends every ``interval`` seconds (senders staggered
    evenly) instead of back to back."""
    # Drain delivery receipts of earlier runs (untimed).
    await benchlib.bounded_all([pair.sender.sync() for pair in pairs], SETUP_PARALLEL)
    for pair in pairs:
        assert pair.listener is not None
        pair.listener.arrivals.clear()
    plans = [
        [f"{phase} " + benchlib.message_body(p.index, i) for i in range(messages)] for p in pairs
    ]
    starts: dict[str, float] = {}
    window = benchlib.Window(server.stats)
    client = benchlib.Window(benchlib.ProcStats(os.getpid(), children=False))
    others = {name: benchlib.Window(stats) for name, stats in (extra or {}).items()}
    overflows = benchlib.listen_overflows()
    window.start()
    client.start()
    for other in others.values():
        other.start()
    deadline = time.monotonic() + RUN_TIMEOUT
    failed: dict[str, str] = {}
    if interval is None:
        slots = asyncio.Semaphore(benchlib.SEND_WINDOW)
        await asyncio.gather(
            *(
                benchlib.send_closed(texts, benchlib.guarded(fire(p), failed), starts, slots)
                for p, texts in zip(pairs, plans, strict=True)
            )
        )
    else:
        await asyncio.gather(
            *(
                benchlib.send_paced(
                    texts,
                    interval,
                    n * interval / len(pairs),
                    benchlib.guarded(fire(p), failed),
                    starts,
                )
                for n, (p, texts) in enumerate(zip(pairs, plans, strict=True))
            )
        )
    in_time = await wait_all(pairs, plans, failed, deadline)
    server_use, client_use = window.stop(), client.stop()
    other_use = {name: other.stop() for name, other in others.items()}
    arrivals: dict[str, float] = {}
    for pair in pairs:
        assert pair.listener is not None
        arrivals |= pair.listener.arrivals
    run = (
        benchlib.rate_and_latency(starts, arrivals)
        | {
            "pairs": len(pairs),
            "messages_per_sender": messages,
            "server": server_use,
            "load_generator": client_use,
            "listen_overflows": benchlib.listen_overflows() - overflows,
        }
        | other_use
    )
    return benchlib.outcome(run, failed, not in_time)


async def measure(
    plan: list[tuple[int, int]],
    warmup: int,
    profile: Path | None = None,
    *,
    database_url: str | None = None,
    workers: int = 1,
    extra: dict[str, Any] | None = None,
    scrypt: ScryptParams = BENCH_SCRYPT,
    sweep: tuple[int, list[float]] = (0, []),
    sweep_runs: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """The closed-loop levels of ``plan``; then, into ``sweep_runs``, the offered-load sweep
    (``benchlib.parse_sweep``) on the same server and clients."""
    most = max([n for n, _ in plan] + [sweep[0]])
    handles = [f"{side}{i}@{DOMAIN}" for i in range(most) for side in "sr"]
    runs = []
    home = benchlib.BENCH_DIR / ".work" / f"clients-{secrets.token_hex(4)}"
    try:
        async with hotline_server(
            handles, profile, database_url=database_url, workers=workers
        ) as server:
            print(f"[hotline] server at {server.url}; {2 * most} clients ...", flush=True)
            setup = time.perf_counter()
            pairs: list[Pair] = []
            phases: dict[str, float] = {}
            try:
                await set_up(server, home, most, scrypt, phases, pairs)
                setup_s = time.perf_counter() - setup
                print(f"[hotline] set up in {setup_s:.0f} s", flush=True)
                warm = await run_level(server, pairs, warmup, "warmup")
                warm_up = {k: warm[k] for k in ("messages", "delivered", "incomplete") if k in warm}
                print(f"[hotline] warm-up: {warm_up}", flush=True)
                for n, m in plan:
                    print(f"[hotline] {n} pair(s) x {m} messages ...", flush=True)
                    run = await run_level(server, pairs[:n], m, f"n{n}", extra)
                    run["setup_s_all_pairs"] = setup_s
                    run["setup_phases_s"] = phases
                    run["clients_connected"] = 2 * most
                    run["warmup_per_pair"] = warmup
                    run["warmup"] = warm_up
                    print(
                        f"[hotline]   {run.get('messages_per_s', 0):.1f} msg/s, "
                        f"p99 {run.get('latency', {}).get('p99_ms', float('nan')):.1f} ms",
                        flush=True,
                    )
                    runs.append(run)
                sweep_pairs, rates = sweep
                for rate in rates:
                    m, interval = benchlib.sweep_step(sweep_pairs, rate, benchlib.SWEEP_SECONDS)
                    print(
                        f"[hotline] sweep: {sweep_pairs} pairs offering {rate:g} msg/s", flush=True
                    )
                    run = await run_level(
                        server, pairs[:sweep_pairs], m, f"r{rate:g}", extra, interval
                    )
                    run["offered_per_s"] = rate
                    print(
                        f"[hotline]   {run.get('messages_per_s', 0):.1f} msg/s, "
                        f"p99 {run.get('latency', {}).get('p99_ms', float('nan')):.1f} ms",
                        flush=True,
                    )
                    if sweep_runs is not None:
                        sweep_runs.append(run)
            finally:
                for pair in pairs:
                    if pair.listener is not None:
                        await pair.listener.stop()
                    await pair.sender.close()
                    await pair.receiver.close()
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return runs


async def measure_plan(
    plan: list[tuple[int, int]],
    warmup: int,
    large_warmup: int,
    profile: Path | None = None,
    sweep: tuple[int, list[float]] = (0, []),
    sweep_runs: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """The plan's levels up to OWN_SERVER_ABOVE pairs on one server, then the sweep there;
    each larger level on a server of its own (with ``large_warmup`` untimed messages per
    pair)."""
    shared = [level for level in plan if level[0] <= OWN_SERVER_ABOVE]
    runs: list[dict[str, Any]] = []
    if shared or sweep[1]:
        runs = await measure(shared, warmup, profile, sweep=sweep, sweep_runs=sweep_runs)
    for n, m in plan:
        if n > OWN_SERVER_ABOVE:
            try:
                runs += await measure([(n, m)], large_warmup, profile, scrypt=LARGE_SCRYPT)
            except Exception as exc:  # recorded as the level's result
                print(f"[hotline] {n} pairs: INCOMPLETE: {type(exc).__name__}: {exc}", flush=True)
                runs.append(benchlib.incomplete_level(n, m, exc))
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plan", default=benchlib.LOAD_PLAN, help="pairs x messages, ...")
    parser.add_argument("--warmup", type=int, default=5, help="messages per pair, untimed")
    parser.add_argument(
        "--large-warmup",
        type=int,
        default=1,
        help=f"untimed messages per pair at levels above {OWN_SERVER_ABOVE} pairs",
    )
    parser.add_argument(
        "--sweep",
        default=benchlib.SWEEP,
        help="offered-load sweep 'PAIRS:RATE,RATE,...' in messages/s ('' for none)",
    )
    parser.add_argument("--smoke", action="store_true", help="tiny plan, results to a temp dir")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--quiet-load", type=float, default=-1, help="wait for load < this")
    parser.add_argument("--quiet-wait", type=float, default=600)
    parser.add_argument("--profile-server", type=Path, help="cProfile the server into this file")
    parser.add_argument(
        "--profile-client", type=Path, help="cProfile this process (the clients) into this file"
    )
    args = parser.parse_args()
    plan_text = benchlib.SMOKE_PLAN if args.smoke else args.plan
    quiet = benchlib.wait_until_quiet(args.quiet_load, args.quiet_wait)
    # SIGTERM unwinds like Ctrl-C, so the server subprocess is stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    plan = benchlib.parse_plan(plan_text)
    limits = benchlib.raise_fd_limit(2 * max(n for n, _ in plan) * FDS_PER_CLIENT + 256)
    sweep_text = benchlib.SMOKE_SWEEP if args.smoke else args.sweep
    sweep_runs: list[dict[str, Any]] = []
    job = measure_plan(
        plan,
        1 if args.smoke else args.warmup,
        args.large_warmup,
        args.profile_server,
        benchlib.parse_sweep(sweep_text),
        sweep_runs,
    )
    if args.profile_client is None:
        runs = asyncio.run(job)
    else:
        profiler = cProfile.Profile()
        try:
            runs = profiler.runcall(asyncio.run, job)
        finally:
            profiler.dump_stats(args.profile_client)
    doc = benchlib.document(
        name="hotline_pairs",
        title="Hotline: N pairs through one home server, archive on",
        description=(
            "N sender/receiver pairs of real `HotlineClient`s (Olm end to end, a sealed record "
            "per message on both sides) through one home server process on 127.0.0.1 with "
            "SQLite and the records archive on; receivers on `listen()` (websocket push). The "
            "same plan as the Synapse benchmark."
        ),
        packages=PACKAGES,
        parameters={
            "plan": plan_text,
            "sweep": sweep_text,
            "sweep_seconds": benchlib.SWEEP_SECONDS,
            "warmup_per_pair": args.warmup,
            "large_warmup_per_pair": args.large_warmup,
            "smoke": args.smoke,
        },
        summary=[
            "; ".join(
                f"N={r['pairs']}: {r.get('messages_per_s', 0):.1f} msg/s, "
                f"p99 {r.get('latency', {}).get('p99_ms', 0):.0f} ms"
                for r in runs
            )
        ],
        tables=[
            benchlib.table(
                "Hotline: throughput and latency per number of pairs",
                benchlib.RUN_COLUMNS,
                list(benchlib.run_rows(runs)),
                "messages/s = delivered / (first `send_text` call → last message yielded by a "
                "receiver's `listen()`). Server CPU: the server process over the run, in cores "
                "(2 = both); load generator: this process, holding all 2xN clients.",
            ),
            benchlib.sweep_table(
                "Hotline: rising offered load (open loop)",
                sweep_runs,
                "Each sender sends on a fixed schedule (senders staggered) whatever the server "
                "does; latency counts from when a message was due, so queueing behind a "
                "saturated server is measured.",
            ),
        ],
        notes=[
            "Server: `bench/hotline_server.py` (the app of `hotline server`, uvicorn with "
            "websockets-sansio, log level warning) with the per-device and per-address rate "
            "limits LIFTED (1e9/s) for the benchmark; records archive ON, sealed to a custodian "
            "key generated for the run (ML-KEM-768+X25519 HPKE).",
            "Per message the sender seals a record (HPKE to the custodian) and Olm-encrypts for "
            "each of the recipient's devices (and its own other devices: none here); the server "
            "appends the record to its Merkle log and returns a signed receipt; the receiver "
            "decrypts, seals and submits its own record of receipt, and sends an Olm-encrypted "
            "delivery receipt back (itself a sealed record). Each keystore transaction of a "
            "client rewrites and fsyncs its small state file and appends (and fsyncs) only the "
            "history entries it changed to the history log.",
            "All 2xN clients share this one process and event loop, so at N ≥ 10 the load "
            "generator's CPU (Hotline's client-side cost) can be the bottleneck rather than the "
            "server: compare the two CPU columns.",
            f"Levels above {OWN_SERVER_ABOVE} pairs (1,000 pairs: 1,000 receivers' websockets "
            "open) run on a server of their own (fresh database, only their clients connected) "
            "with a reduced message count per pair and `--large-warmup` untimed messages per "
            "pair, and their clients' keystores use scrypt 2^10 instead of 2^14 (scrypt runs "
            "only when a keystore is created or opened, never per message): setting up 2,000 "
            "clients is most of such a level's time. The descriptor limit is raised for them.",
            f"At most {benchlib.SEND_WINDOW} sends are in flight at once across all senders (as "
            "on Synapse): one per sender up to 100 pairs, so only the 1,000-pair level is held "
            "by it. Its 1,000 first messages are all due when the level starts and a message's "
            "latency counts from then, including its wait for a free slot: at N=1,000, M=1 the "
            "latency percentiles measure how long the server and clients take to drain a "
            "backlog of 1,000 messages, and messages/s the rate at which they drain it.",
            "Latency here is mostly queueing: each sender sends back to back (one request in "
            "flight) and a Hotline sender is faster than its receiver (which decrypts, seals a "
            "record, submits it, sends a delivery receipt and acks per push), so messages wait "
            "in the receiver's mailbox and p50 grows with M. Synapse's receiver only parses JSON.",
            "Where the clients' time goes (py-spy `--gil` on this process, session 3): httpx "
            "and httpcore about half (request building, connection pool, h11), then sealing "
            "records (HPKE ML-KEM-768+X25519 ~5%), keystore transactions (their fsyncs run on "
            "a thread), Olm and msgspec. The server spends its time in SQLAlchemy execution, "
            "starlette/uvicorn and the event loop, not in cryptography (see the scale-out "
            "section's profile notes).",
            *benchlib.setup_notes(runs, SETUP_PARALLEL),
            *benchlib.incomplete_notes("Hotline", runs),
        ],
        results={"quiet": quiet, "runs": runs, "sweep": sweep_runs, "fd_limit": limits},
    )
    out = args.out or (Path(os.environ.get("TMPDIR", "/tmp")) if args.smoke else None)
    path = benchlib.write(doc, out or benchlib.RESULTS_DIR)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
