"""A Hotline home server for the benchmarks, run as its own process by ``hotline_load.py``.

Like ``hotline server`` (uvicorn, websockets-sansio, log level warning, SQLite in the data dir,
records archive on), except that the per-device and per-address rate limits are lifted (a
benchmark sender would otherwise be capped at 50 requests/s) and that it first issues the
enrolment tokens the benchmark asks for, so the load generator never opens the database.

Usage: ``python bench/hotline_server.py --data-dir DIR --port P --domain D
--custodian-pub FILE --enrol HANDLES.json`` (writes ``tokens.json`` in DIR, then serves).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import signal
import sys
import time
from pathlib import Path

import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hotline.server.admin import issue_enrolment
from hotline.server.app import create_app
from hotline.server.config import ServerConfig
from hotline.server.records_log import ArchiveSettings
from hotline.store import open_store

UNLIMITED = 1e9
LAW = "Presidential Records Act, 44 U.S.C. 2209"


async def enrol(database_url: str, handles: list[str]) -> dict[str, str]:
    store = await open_store(database_url)
    try:
        return {h: await issue_enrolment(store, h, time.time()) for h in handles}
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--domain", required=True)
    parser.add_argument("--custodian-pub", type=Path, required=True, help="raw public key bytes")
    parser.add_argument("--enrol", type=Path, required=True, help="JSON list of handles")
    parser.add_argument("--profile", type=Path, help="write cProfile stats here on exit")
    args = parser.parse_args()
    database_url = f"sqlite+aiosqlite:///{args.data_dir / 'server.db'}"
    tokens = asyncio.run(enrol(database_url, json.loads(args.enrol.read_text())))
    (args.data_dir / "tokens.json").write_text(json.dumps(tokens))
    config = ServerConfig(
        domain=args.domain,
        database_url=database_url,
        rate_per_second=UNLIMITED,
        rate_burst=UNLIMITED,
        anon_rate_per_second=UNLIMITED,
        anon_rate_burst=UNLIMITED,
        archive=ArchiveSettings(
            log_key=Ed25519PrivateKey.generate(),
            custodian_key=args.custodian_pub.read_bytes(),
            law=LAW,
        ),
    )
    app = create_app(config)

    def serve() -> None:
        uvicorn.run(
            app, host="127.0.0.1", port=args.port, ws="websockets-sansio", log_level="warning"
        )

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
