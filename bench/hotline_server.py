"""A Hotline home server for the benchmarks, run as its own process by ``hotline_load.py``.

Like ``hotline server`` (uvicorn, websockets-sansio, log level warning, SQLite in the data dir,
records archive on), except that the per-device and per-address rate limits are lifted (a
benchmark sender would otherwise be capped at 50 requests/s) and that it first issues the
enrolment tokens the benchmark asks for, so the load generator never opens the database.

Usage: ``python bench/hotline_server.py --data-dir DIR --port P --domain D
--custodian-pub FILE --enrol HANDLES.json [--database-url URL] [--workers N]`` (writes
``tokens.json`` in DIR, then serves). With ``--workers N`` uvicorn runs N worker processes
behind the one port (its multiprocess mode), each building the app with :func:`bench_app` from
the settings in ``HOTLINE_BENCH_SERVER``; they share the log key (``log.key`` in DIR) and, for
N > 1, must share a PostgreSQL database.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import signal
import sys
import time
from pathlib import Path

import uvicorn
from starlette.applications import Starlette

from hotline.server.admin import issue_enrolment, load_log_key
from hotline.server.app import create_app
from hotline.server.config import ServerConfig
from hotline.server.factory import serve_workers
from hotline.server.records_log import ArchiveSettings
from hotline.store import open_store

UNLIMITED = 1e9
LAW = "Presidential Records Act, 44 U.S.C. 2209"
SETTINGS_ENV = "HOTLINE_BENCH_SERVER"


async def enrol(database_url: str, handles: list[str]) -> dict[str, str]:
    store = await open_store(database_url)
    try:
        return {h: await issue_enrolment(store, h, time.time()) for h in handles}
    finally:
        await store.close()


def bench_config(
    data_dir: Path, domain: str, database_url: str, custodian_pub: Path
) -> ServerConfig:
    return ServerConfig(
        domain=domain,
        database_url=database_url,
        rate_per_second=UNLIMITED,
        rate_burst=UNLIMITED,
        anon_rate_per_second=UNLIMITED,
        anon_rate_burst=UNLIMITED,
        archive=ArchiveSettings(
            log_key=load_log_key(data_dir), custodian_key=custodian_pub.read_bytes(), law=LAW
        ),
    )


def bench_app() -> Starlette:
    """The app of one worker process (uvicorn factory), from ``HOTLINE_BENCH_SERVER``."""
    settings = json.loads(os.environ[SETTINGS_ENV])
    return create_app(
        bench_config(
            Path(settings["data_dir"]),
            settings["domain"],
            settings["database_url"],
            Path(settings["custodian_pub"]),
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--domain", required=True)
    parser.add_argument("--custodian-pub", type=Path, required=True, help="raw public key bytes")
    parser.add_argument("--enrol", type=Path, required=True, help="JSON list of handles")
    parser.add_argument("--profile", type=Path, help="write cProfile stats here on exit")
    parser.add_argument("--database-url", help="default: SQLite in the data dir")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    args = parser.parse_args()
    database_url = args.database_url or f"sqlite+aiosqlite:///{args.data_dir / 'server.db'}"
    if args.workers > 1 and database_url.startswith("sqlite"):
        parser.error("--workers > 1 needs a PostgreSQL --database-url")
    tokens = asyncio.run(enrol(database_url, json.loads(args.enrol.read_text())))
    (args.data_dir / "tokens.json").write_text(json.dumps(tokens))
    load_log_key(args.data_dir)  # created once, before any worker starts

    def serve() -> None:
        if args.workers == 1:
            app = create_app(
                bench_config(args.data_dir, args.domain, database_url, args.custodian_pub)
            )
            uvicorn.run(
                app, host="127.0.0.1", port=args.port, ws="websockets-sansio", log_level="warning"
            )
            return
        os.environ[SETTINGS_ENV] = json.dumps(
            {
                "data_dir": str(args.data_dir.resolve()),
                "domain": args.domain,
                "database_url": database_url,
                "custodian_pub": str(args.custodian_pub.resolve()),
            }
        )
        # hotline_server.py's own folder is on sys.path (it is the script's), and spawned
        # workers inherit it; serve_workers is `hotline server --workers N`'s supervisor.
        serve_workers("hotline_server:bench_app", args.workers, "127.0.0.1", args.port, "warning")

    if args.profile is None:
        serve()
        return
    # uvicorn re-raises the SIGTERM it caught once it has shut down: exit cleanly instead.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    profiler = cProfile.Profile()
    try:
        profiler.runcall(serve)
    finally:
        profiler.dump_stats(args.profile)


if __name__ == "__main__":
    main()
