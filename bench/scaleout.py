"""Scale-out: the N-pairs message benchmark on PostgreSQL with 1, 2 and 4 server workers.

The same load as ``bench/hotline_load.py`` (its machinery: real ``HotlineClient`` pairs, archive
on, receivers on websocket push), but the server is ``bench/hotline_server.py --workers W
--database-url <PostgreSQL>``: W uvicorn worker processes behind one port, sharing state only
through PostgreSQL (cross-worker push by LISTEN/NOTIFY, the records log sequenced by the
``log_state`` row). A fresh database per worker count. Besides the server processes, the
PostgreSQL processes' CPU (every ``postgres`` process on the machine, from ``/proc``) and the
load generator's are measured, so the table shows where the machine's cores went.

Writes ``bench/results/scaleout.json``. Usage: ``python bench/scaleout.py [--workers 1,2,4]
[--plan 1x100,10x30] [--smoke] [--out DIR]``. PostgreSQL from ``HOTLINE_BENCH_POSTGRES_URL``
(else ``HOTLINE_TEST_POSTGRES_URL``, else postgres@127.0.0.1:5432), a role that may
``CREATE DATABASE``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import benchlib
import hotline_load

DEFAULT_PLAN = "1x100,10x30"
SMOKE_PLAN = "2x3"
ADMIN_URL = (
    os.environ.get("HOTLINE_BENCH_POSTGRES_URL")
    or os.environ.get("HOTLINE_TEST_POSTGRES_URL")
    or "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
PACKAGES = (*hotline_load.PACKAGES, "asyncpg", "sqlalchemy")
HOTPATH_NOTES = [
    "Hot path (issue 6 item 6). cProfile of the server under `hotline_load.py --plan 10x30 "
    "--profile-server` (SQLite): apart from waiting in epoll, self time is dominated by "
    "SQLAlchemy (statement caching, compilation, result processing: ~8.4 s of ~26 s busy), "
    "then starlette/uvicorn/h11 and aiosqlite's thread hand-off (`SimpleQueue.put_nowait`, "
    "~2.4 s); Hotline's own code and the cryptography (Ed25519 sign/verify, hashing) are each "
    "under 1 s. The cost per request is the number of database transactions. Counted with "
    "an SQLAlchemy `begin` listener on an embedded server, a send with its record took 11 "
    "transactions; the records log's part of that was 4 (catch-up: `log_size`, then "
    "`leaf_hashes`; signing a head: `put_tree_head`, then re-reading the stored head).",
    "Fix, in server/store code only: catch-up reads the new leaf hashes in one query "
    "(entries commit in index order behind the sequencer row, so the committed ones are a "
    "gap-free prefix), and `put_tree_head` returns the authoritative stored head in the same "
    "transaction (ours if inserted, else the one another worker stored first). A send now "
    "takes 9 transactions (-18%); each record submitted by a receiver saves two as well.",
    "Left after that fix per send: `count_undelivered`, `is_allowed` and two `list_devices` "
    "reads were four transactions that one read could answer, and `record_index` after "
    "`enqueue` could come back from `enqueue`.",
    "Profile fix 2 (send path in fewer transactions). A send is now the session lookup, "
    "`Store.send_context` (undelivered count, allowlist, both device sets: one read "
    "transaction), `Store.enqueue_message` (mailbox items and the sender's record, answering "
    "with the record's index and the new leaf hashes read in the same transaction, so the "
    "server's tree needs no catch-up read) and `put_tree_head`: 4 transactions instead of 9. "
    "A receiver's record submission: 3 instead of 4 (`append_records_tail`). Counted with "
    "`bench/messages.py` (SQLite, `begin` listener, whole delivery: send, receiver's record, "
    "delivery receipt, pushes, acks): 15.0 -> 9.0 store transactions per delivered message.",
    "Profile fix 2, before/after with `bench/hotline_load.py` (SQLite, archive on; "
    "`before` = PYTHONPATH to a copy of src/ at 366c615, alternated with `after` on the "
    "same bench script). The machine was shared and loaded throughout (1-minute load "
    "average 7-11 on 2 cores), so messages/s and latency moved with other engineers' jobs "
    "more than with the code; server CPU per delivered message is the steadier figure. "
    "N=10, `--plan 10x30`-shaped levels: before 99.1, 94.2 and 104.0 ms of server CPU per "
    "message (6.1, 7.6 and 5.8 msg/s, p99 23.8, 17.2 and 24.8 s; loads 7.0, 9.6, 7.3), "
    "after 76.2 ms (5.5 msg/s, p99 19.8 s; load 9.2) and 76.7 ms in a 10x3 run: about "
    "-23% server CPU per message. N=1 (`1x100`/`1x60`): before 2.3 and 3.2 msg/s (p99 "
    "11.3 and 5.2 s; server 122.6 and 121.7 ms/msg), after 3.0 and 4.6 msg/s (p99 11.1 "
    "and 6.3 s). Commands: `.venv/bin/python bench/hotline_load.py --plan 1x100,10x30 "
    "--out DIR`, `--plan 10x30 --warmup 2`, `--plan 1x60,10x30 --warmup 2`. The "
    "quiet-machine figures (tables above) were not regenerated in this change.",
    "Profile fix 2, found on the way: with fewer reads between writes, ~40 concurrent SQLite "
    "writers made SQLite's busy handler (sleep-polling, unfair) starve one past busy_timeout "
    "(`database is locked`, answered as `storage_error`) on a loaded machine; the store's "
    "writers of one process now queue FIFO on an asyncio lock before `BEGIN IMMEDIATE`.",
    "Profile fix 2, client side: the message history moved out of the keystore state into an "
    "append-only encrypted log (`keystore.history`), so a keystore transaction rewrites only "
    "the small state and appends the history entries it changed. One transaction appending a "
    "message (median of 40): history of 0 messages 1.6 -> ~5 ms (one more fsync, the log's, "
    "before the state's two), 1,000: 17.5 -> 10-12 ms, 10,000: 328 -> 20-32 ms. The clients "
    "of this benchmark keep short histories (at most a few hundred messages), so it gains "
    "little here; it bounds the cost for a long-lived device.",
    "Profile fix 2, load generator: each `HotlineClient` built its own TLS context (httpx "
    "loads the CA bundle: ~65 ms of CPU, 0.3 s of wall time at load 9; even for http://), "
    "which dominated setting up 2,000 clients; `hotline.client.transport.tls_context()` is "
    "now built once per process.",
    "Profile fix 3 (session 3). py-spy on the server (`--gil`) under `hotline_load.py --plan "
    "10x30`: aiosqlite's thread was a third of the GIL samples and its hand-offs most of the "
    "rest of the database time: a three-query read transaction took 11 ms of wall time and "
    "6.3 ms of CPU for 0.04 ms of SQL (about 20 thread hops, each waking the event loop). "
    "Fixes: (1) `store/sqlite_inline.py`: statements run inline on the loop, a writer's "
    "COMMIT (the WAL fsync) and busy retries on threads — that transaction: 2.9 ms wall, "
    "2.35 ms CPU; (2) the grants of aides, read by two extra transactions on every send since "
    "delegation landed, folded into `send_context` — 13.55 -> 9.55 store transactions per "
    "delivered message (embedded server, `begin` counted per store method); (3) the "
    "statements every message runs built once (`store/prepared.py`: no per-call "
    "construction or cache-key computation; a two-query read: 2.9 -> 1.45 ms CPU); (4) no "
    "second mailbox read after a short push batch; (5) clients keep their Olm account open "
    "between keystore transactions (~1.5 ms of unpickle+pickle each).",
    "Profile fix 3, before/after: `bench/hotline_load.py --plan 10x30` back to back on the "
    "same loaded machine (load average ~6 on 2 cores; `before` = PYTHONPATH to a checkout of "
    "a5a41fc): before 99.4 ms of server CPU per delivered message (4.2 msg/s), after fixes "
    "1-3 38.3 ms (9.5 msg/s): -61%. The rest is spread thin (SQLAlchemy execution and result "
    "objects, starlette/uvicorn, greenlet switches, the commit thread hand-off); no single "
    "function is above 5% of the server's samples.",
    "Profile fix 4 (session 4). cProfile of the server under `hotline_load.py --plan 10x40`: "
    "every send counted its sender's undelivered items with two COUNT queries on unindexed "
    "columns (a scan of the whole mailbox and peer queue per send, growing with the backlog: "
    "0.6 ms per send with a small mailbox); every append (a send's record, a receiver's "
    "record upload) was two write transactions, the second storing the receipt's signed tree "
    "head; every websocket ack frame was a write transaction of its own; and a receiver "
    "sent its delivery receipt and uploaded its record before `listen()` yielded the message. "
    "Fixes: (1) migration 0008 indexes `deliveries` and `outbound` by sender device; (2) the "
    "head is signed over the tail the appending transaction read and stored in it "
    "(`RecordsLog.head_signer`, `MerkleTree.root_extended`): one write per append; (3) acks "
    "of all sockets are written together (`server/ack_batcher.py`); (4) the client hands a "
    "message over after one keystore write, then sends the receipt and the record "
    "(`HotlineClient.receive` / `settle`; both are saved with the message); (5) clients keep "
    "Olm sessions open and pickle each once per keystore transaction.",
    "Profile fix 4, before/after: `bench/hotline_load.py --plan 10x40 --sweep 10:16,32` back "
    "to back on the same loaded machine (load average ~3.5 on 2 cores; `before` = PYTHONPATH "
    "to a checkout of 8f2e0a7): closed loop 57.7 -> 73.1 msg/s, server CPU per delivered "
    "message 12.4 -> 10.1 ms (-19%); offered 16 msg/s: p99 50.8 -> 21.5 ms; offered 32 "
    "msg/s: p99 221.8 -> 18.4 ms.",
]


class PostgresStats:
    """CPU and memory of every ``postgres`` process (postmaster, backends, writers)."""

    def _pids(self) -> list[int]:
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    if (entry / "comm").read_text().strip() == "postgres":
                        pids.append(int(entry.name))
        return pids

    def cpu_seconds(self) -> float:
        """Live processes' CPU, plus what the postmaster collected from backends that exited
        (its ``cutime + cstime``), so a backend closing mid-run does not lower the sum."""
        pids = set(self._pids())
        total = 0.0
        for pid in pids:
            with contextlib.suppress(OSError):
                fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
                total += (int(fields[11]) + int(fields[12])) / benchlib.CLOCK_TICKS
                if int(fields[1]) not in pids:  # the postmaster: add its reaped children
                    total += (int(fields[13]) + int(fields[14])) / benchlib.CLOCK_TICKS
        return total

    def memory_kib(self) -> dict[str, int]:
        # Not summed: shared buffers would count once per process that touched them.
        return {}


@contextlib.asynccontextmanager
async def database() -> AsyncIterator[str]:
    admin = await asyncpg.connect(ADMIN_URL.replace("postgresql+asyncpg://", "postgresql://"))
    name = f"hotline_bench_{secrets.token_hex(4)}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def measure(workers: list[int], plan: list[tuple[int, int]], warmup: int) -> list[Any]:
    runs: list[dict[str, Any]] = []
    for count in workers:
        print(f"[scaleout] {count} worker(s) on PostgreSQL ...", flush=True)
        async with database() as url:
            for run in await hotline_load.measure(
                plan, warmup, database_url=url, workers=count, extra={"postgres": PostgresStats()}
            ):
                runs.append(run | {"workers": count})
    return runs


def cores(run: dict[str, Any], part: str) -> float:
    return float(run.get(part, {}).get("cpu_cores", 0.0))


def rows(runs: list[dict[str, Any]]) -> list[list[Any]]:
    base = {r["pairs"]: r.get("messages_per_s", 0.0) for r in runs if r["workers"] == 1}
    out = []
    for run in runs:
        lat = run.get("latency", {})
        rate = run.get("messages_per_s", 0.0)
        total = sum(cores(run, p) for p in ("server", "postgres", "load_generator"))
        out.append(
            [
                run["workers"],
                run["pairs"],
                run["messages_per_sender"],
                f"{run['delivered']}/{run['messages']}",
                rate,
                rate / base[run["pairs"]] if base.get(run["pairs"]) else None,
                lat.get("p50_ms"),
                lat.get("p99_ms"),
                cores(run, "server"),
                cores(run, "postgres"),
                cores(run, "load_generator"),
                total,
            ]
        )
    return out


def verdict(runs: list[dict[str, Any]], machine_cores: int) -> list[str]:
    """Where it stops scaling, from the figures."""
    lines = []
    for pairs in sorted({r["pairs"] for r in runs}):
        level = sorted((r for r in runs if r["pairs"] == pairs), key=lambda r: r["workers"])
        best = max(level, key=lambda r: r.get("messages_per_s", 0.0))
        parts = ", ".join(
            f"{r['workers']} worker(s) {r.get('messages_per_s', 0):.0f} msg/s "
            f"(p99 {r.get('latency', {}).get('p99_ms', 0):.0f} ms; machine "
            f"{sum(cores(r, p) for p in ('server', 'postgres', 'load_generator')):.2f}"
            f"/{machine_cores} cores busy)"
            for r in level
        )
        lines.append(f"N={pairs}: {parts}; best at {best['workers']} worker(s).")
    return lines


def hotpath_table(before: Path, after: Path) -> tuple[benchlib.Table, dict[str, Any]]:
    """Before/after of the hot-path fix, from two ``hotline_load.py`` result files."""
    docs = {"before": json.loads(before.read_text()), "after": json.loads(after.read_text())}
    table_rows = []
    for label, doc in docs.items():
        for run in doc["results"]["runs"]:
            lat = run.get("latency", {})
            delivered = max(1, run["delivered"])
            table_rows.append(
                [
                    label,
                    run["pairs"],
                    run["messages_per_sender"],
                    run.get("messages_per_s"),
                    lat.get("p50_ms"),
                    lat.get("p99_ms"),
                    run["server"]["cpu_s"] * 1000 / delivered,
                    run["server"]["cpu_cores"],
                ]
            )
    table = benchlib.table(
        "Hot path (issue 6 item 6): SQLite, 1 worker, before and after the fix",
        [
            "code",
            "pairs",
            "msgs/sender",
            "messages/s",
            "p50 ms",
            "p99 ms",
            "server CPU ms per message",
            "server CPU cores",
        ],
        table_rows,
        "Two runs of `bench/hotline_load.py` with the same plan on a quiet machine: `before` with "
        "the records log of the previous commit (PYTHONPATH to a copy of src/ with "
        "records_log.py and sql_log.py as committed), `after` with the fix.",
    )
    raw = {
        label: {"command": doc["command"], "quiet": doc["results"]["quiet"]}
        for label, doc in docs.items()
    }
    return table, raw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2,4", help="worker counts, comma-separated")
    parser.add_argument("--plan", default=DEFAULT_PLAN, help="pairs x messages, ...")
    parser.add_argument("--warmup", type=int, default=5, help="messages per pair, untimed")
    parser.add_argument("--smoke", action="store_true", help="tiny plan, results to a temp dir")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--quiet-load", type=float, default=-1, help="wait for load < this")
    parser.add_argument("--quiet-wait", type=float, default=600)
    parser.add_argument("--hotpath-before", type=Path, help="hotline_pairs.json before the fix")
    parser.add_argument("--hotpath-after", type=Path, help="hotline_pairs.json after the fix")
    args = parser.parse_args()
    plan_text = SMOKE_PLAN if args.smoke else args.plan
    workers = [1, 2] if args.smoke else [int(w) for w in args.workers.split(",")]
    quiet = benchlib.wait_until_quiet(args.quiet_load, args.quiet_wait)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    runs = asyncio.run(
        measure(workers, benchlib.parse_plan(plan_text), 1 if args.smoke else args.warmup)
    )
    machine_cores = os.cpu_count() or 1
    extra_tables: list[benchlib.Table] = []
    hotpath: dict[str, Any] = {}
    if args.hotpath_before and args.hotpath_after:
        table, hotpath = hotpath_table(args.hotpath_before, args.hotpath_after)
        extra_tables.append(table)
    doc = benchlib.document(
        name="scaleout",
        title="Scale-out: 1, 2 and 4 server workers on PostgreSQL",
        description=(
            "The message benchmark of `hotline_load.py` (N pairs of real `HotlineClient`s, archive "
            "on, receivers on websocket push) against W uvicorn worker processes behind one port "
            "(`bench/hotline_server.py --workers W`, the multiprocess mode of `hotline server "
            "--workers W`), sharing one PostgreSQL database: cross-worker push by LISTEN/NOTIFY, "
            "the records log sequenced in the database, federation queue leased per peer."
        ),
        packages=PACKAGES,
        parameters={
            "workers": workers,
            "plan": plan_text,
            "warmup_per_pair": args.warmup,
            "smoke": args.smoke,
            "postgres": ADMIN_URL.rsplit("@", 1)[-1].rsplit("/", 1)[0],
        },
        summary=verdict(runs, machine_cores),
        tables=[
            benchlib.table(
                "Scale-out: throughput, latency and where the cores went",
                [
                    "workers",
                    "pairs",
                    "msgs/sender",
                    "delivered",
                    "messages/s",
                    "speed-up vs 1 worker",
                    "p50 ms",
                    "p99 ms",
                    "server CPU cores (all workers)",
                    "PostgreSQL CPU cores",
                    "load generator CPU cores",
                    f"total cores busy (of {machine_cores})",
                ],
                rows(runs),
                "messages/s = delivered / (first send → last arrival), as in hotline_load.py. "
                "PostgreSQL CPU: every `postgres` process on the machine over the run.",
            ),
            *extra_tables,
        ],
        notes=[
            f"This machine has {machine_cores} cores, and the load generator (all 2xN clients in "
            "one process: Olm, HPKE sealing, keystore writes), every server worker and "
            "PostgreSQL share them. Once the total-cores column reaches the machine's cores, "
            "more workers cannot help: they only add processes competing for the same cores "
            "(and context switches). Scaling out pays on a machine with spare cores for the "
            "extra workers and a database on its own host.",
            "With one pair (N=1) the sender has one request in flight, so the rate is set by "
            "round-trip latency, not by server capacity; more workers cannot raise it and "
            "cross-process push (a NOTIFY round trip through PostgreSQL when the receiver's "
            "socket is on another worker) can add to the latency.",
            "Found by this benchmark: with uvicorn's `--workers N` every keep-alive request "
            "after the first took ~44 ms more (GET /v1/server: 0.7 ms with one worker, 44 ms "
            "with two), because uvicorn binds the shared listening socket with `proto` 0, so "
            "asyncio never sets TCP_NODELAY on accepted connections and Nagle waits for the "
            "client's delayed ACK (Kludex/uvicorn#3149, open). `hotline server --workers N` and "
            "this benchmark now bind through `hotline.server.factory.TcpNoDelayConfig` "
            "(`proto = IPPROTO_TCP`); a first run without it measured 1 pair at 34 msg/s on "
            "1 worker and 9 msg/s on 2.",
            "Single runs on a shared 2-core machine: repeating the same plan moved single "
            "figures by up to ~15-20% (an earlier run of this script measured N=10 at 30 "
            "msg/s on 1 worker and 35 on 2), so read differences smaller than that as noise. "
            "What repeats: at N=1 the worker count changes nothing (latency-bound); at N=10 "
            "one worker leaves cores idle and a second adds roughly a third to a half; a "
            "fourth adds nothing, because the machine is then ~1.85 of 2 cores busy (server "
            "workers ~0.95, PostgreSQL ~0.5, load generator ~0.4).",
            "Workers share state only through PostgreSQL: each runs its own outbound worker "
            "(peers leased in the store), its own LISTEN connection, and catches its in-memory "
            "Merkle tree up from the store before signing a head (one head per size, the "
            "stored one authoritative).",
            "Server: rate limits lifted as in hotline_load.py; each worker count gets a fresh "
            "database; the same plan runs at each worker count.",
            *HOTPATH_NOTES,
        ],
        results={"quiet": quiet, "runs": runs, "hotpath": hotpath},
    )
    out = args.out or (Path(os.environ.get("TMPDIR", "/tmp")) if args.smoke else None)
    path = benchlib.write(doc, out or benchlib.RESULTS_DIR)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
