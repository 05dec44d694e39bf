"""Run the home server inside the current event loop (demo, tests, benchmarks)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import uvicorn

from hotline.server.app import create_app
from hotline.server.config import ServerConfig
from hotline.store import Store, open_store


@dataclass
class EmbeddedServer:
    """A real uvicorn server on a loopback port; stop it with :meth:`stop`."""

    url: str
    config: ServerConfig
    store: Store
    _server: uvicorn.Server
    _task: asyncio.Task[None]

    async def stop(self) -> None:
        self._server.should_exit = True
        await self._task
        await self.store.close()


async def start_embedded(
    config: ServerConfig, host: str = "127.0.0.1", port: int = 0
) -> EmbeddedServer:
    """Open the store, start uvicorn on ``host:port`` (0 = ephemeral) and wait until it listens."""
    store = await open_store(config.database_url)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config, store=store),
            host=host,
            port=port,
            ws="websockets-sansio",
            log_level="warning",
            lifespan="on",
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            await store.close()
            task.result()
            raise RuntimeError("server stopped during start-up")
        await asyncio.sleep(0.005)
    bound = server.servers[0].sockets[0].getsockname()[1]
    return EmbeddedServer(f"http://{host}:{bound}", config, store, server, task)
