"""What one group message costs the home server and the sender: store transactions and requests.

A real home server (``start_embedded``, SQLite in a temp dir, records archive on) and N
registered principals; the first creates a group of all of them (the others are its contacts)
and every member takes the roster. Then the creator sends M group messages in a row. Counted
per message, as ``bench/messages.py`` counts direct messages (a SQLAlchemy ``begin`` listener
on the server's engine, an httpx request hook on the sender):

* ``route_db``: store transactions begun while ``POST /v1/groups/messages`` was in flight (the
  group send route itself: session lookup, checks, enqueue, tree head);
* ``db``: every store transaction of the whole ``groups.send`` call (the federation worker's
  idle polls left out);
* ``device_lists``: signed device lists the sender fetched (``GET .../devices``);
* ``requests``: every HTTP request the sender made.

The first message (session key shared over Olm to every member device) is reported apart from
the steady state. Usage: ``python bench/group_send.py [--members N] [--messages M]``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import sys
import tempfile
from pathlib import Path

from messages import bench_config, quiet_logs, register
from sqlalchemy import event as sa_event

from hotline.client.device import HotlineClient
from hotline.server.embedded import EmbeddedServer, start_embedded

GROUP_SEND = "/v1/groups/messages"


class Counter:
    """Store transactions (all, and those inside the group send route) and sender requests."""

    def __init__(self, server: EmbeddedServer, sender: HotlineClient) -> None:
        self.counts: collections.Counter[str] = collections.Counter()
        self._in_route = False
        self._engine = server.store.engine.sync_engine
        # ServerApi keeps its httpx.AsyncClient in ``_http``; the hooks only observe.
        sender.server._http.event_hooks = {
            "request": [self._on_request],
            "response": [self._on_response],
        }
        sa_event.listen(self._engine, "begin", self._on_begin)

    async def _on_request(self, request: object) -> None:
        path = str(getattr(request, "url", ""))
        self.counts["requests"] += 1
        self.counts["device_lists"] += path.endswith("/devices")
        self._in_route = path.endswith(GROUP_SEND)

    async def _on_response(self, _response: object) -> None:
        self._in_route = False

    def _on_begin(self, _conn: object) -> None:
        task = asyncio.current_task()
        if task is not None and task.get_name() == "hotline-outbound":
            return  # the federation worker's idle polls are no part of a send
        self.counts["db"] += 1
        self.counts["route_db"] += self._in_route

    def remove(self) -> None:
        sa_event.remove(self._engine, "begin", self._on_begin)


async def measure(members: int, messages: int, home: Path) -> dict[str, dict[str, float]]:
    server = await start_embedded(bench_config(f"sqlite+aiosqlite:///{home / 'server.db'}"))
    clients: list[HotlineClient] = []
    try:
        for i in range(members):
            clients.append(await register(server, home, f"m{i:03d}", f"Member {i}"))
        sender, others = clients[0], clients[1:]
        for other in others:
            await sender.add_contact(await other.my_card())
            await other.sync()
        await sender.sync()
        group = await sender.groups.create("Bench", [o.handle for o in others])
        for other in others:
            await other.sync()
        counter = Counter(server, sender)
        try:
            results: dict[str, dict[str, float]] = {}
            for phase, count in (("first", 1), ("steady", messages)):
                before = collections.Counter(counter.counts)
                for n in range(count):
                    await sender.groups.send(group.group_id, f"{phase} {n}")
                delta = counter.counts - before
                keys = ("route_db", "db", "device_lists", "requests")
                results[phase] = {k: delta[k] / count for k in keys}
            return results
        finally:
            counter.remove()
    finally:
        for client in clients:
            await client.close()
        await server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=50, help="group size (default 50)")
    parser.add_argument("--messages", type=int, default=5, help="steady-state sends (default 5)")
    args = parser.parse_args(argv)
    quiet_logs()
    with tempfile.TemporaryDirectory(prefix="hotline-bench-group-") as tmp:
        results = asyncio.run(measure(args.members, args.messages, Path(tmp)))
    print(f"group of {args.members}, per message sent by one member:")
    for phase, counts in results.items():
        shown = ", ".join(f"{k} {v:g}" for k, v in counts.items())
        print(f"  {phase:6}: {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
