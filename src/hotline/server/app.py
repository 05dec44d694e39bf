"""The home server ASGI application (Starlette)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute

from hotline import __version__
from hotline.server import routes_account as acct
from hotline.server import routes_delegation as deleg
from hotline.server import routes_enrolment as links
from hotline.server import routes_federation
from hotline.server import routes_groups as groups
from hotline.server import routes_messages as msgs
from hotline.server import routes_records as recs
from hotline.server.config import ServerConfig
from hotline.server.context import ServerState, authenticate, state_of
from hotline.server.logs import configure_logging
from hotline.server.openapi import build_openapi
from hotline.server.outbound import OutboundWorker
from hotline.server.pg_notify import PgNotifier, asyncpg_dsn
from hotline.server.policy_gate import load_policy, record_policy
from hotline.server.problems import handle_hotline_error, handle_http_error, handle_unexpected
from hotline.server.responses import ok
from hotline.store import SqlStore, Store, open_store
from hotline.wire import api
from hotline.wire.calls import CallsConfig, IceServerEntry, turn_rest_credentials
from hotline.wire.encoding import b64e
from hotline.wire.errors import HotlineError, NotFound


async def health(request: Request) -> Response:
    await state_of(request).store.get_device("-")  # proves the database answers
    return ok(api.Health(status="ok"))


async def server_info(request: Request) -> Response:
    return ok(api.ServerInfo(domain=state_of(request).config.domain, version=__version__))


async def calls_config(request: Request) -> Response:
    """The STUN/TURN servers devices should use, with short-lived TURN credentials, and the
    call recording policy (with the archive's law when calls must be recorded)."""
    caller = await authenticate(request)
    config = state_of(request).config
    entries = []
    if config.turn_urls:
        username, credential = "", ""
        if config.turn_secret:
            username, credential = turn_rest_credentials(
                config.turn_secret, caller.handle, state_of(request).now()
            )
        entries.append(
            IceServerEntry(urls=list(config.turn_urls), username=username, credential=credential)
        )
    if config.call_recording == "required" and config.archive is not None:
        return ok(
            CallsConfig(v=1, ice_servers=entries, recording="required", law=config.archive.law)
        )
    return ok(CallsConfig(v=1, ice_servers=entries))


async def policy(request: Request) -> Response:
    """The organisation's signed policy and the key it verifies under."""
    config = state_of(request).config
    if config.policy is None or config.org_key is None:
        raise NotFound("this server publishes no organisation policy")
    return ok({"policy": config.policy, "org_key": b64e(config.org_key)})


async def openapi(request: Request) -> Response:
    return JSONResponse(request.app.state.openapi)


def create_app(config: ServerConfig, store: Store | None = None) -> Starlette:
    """Build the app. Without ``store`` it opens (and migrates) ``config.database_url``."""
    configure_logging()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        opened = store if store is not None else await open_store(config.database_url)
        state = ServerState(config=config, store=opened)
        if state.records is not None:
            await state.records.load(opened)
        state.policy = load_policy(state)
        await record_policy(state)
        app.state.hotline = state
        notifier = None
        if isinstance(opened, SqlStore) and opened.engine.dialect.name == "postgresql":
            # Workers share PostgreSQL: tell each other about new mail (LISTEN/NOTIFY).
            notifier = PgNotifier(asyncpg_dsn(opened.engine.url), state.hub)
            await notifier.start()
        worker = OutboundWorker(state)
        if config.server_key is not None:
            worker.start()
        try:
            yield
        finally:
            await worker.stop()
            await state.acks.close()
            if notifier is not None:
                await notifier.stop()
            await state.peers.close()
            if store is None:
                await opened.close()

    routes = [
        Route("/health", health),
        Route("/openapi.json", openapi),
        Route("/v1/server", server_info),
        Route("/v1/register", acct.register, methods=["POST"]),
        Route("/v1/auth/challenge", acct.challenge, methods=["POST"]),
        Route("/v1/auth/token", acct.token, methods=["POST"]),
        Route("/v1/keys", acct.upload_keys, methods=["POST"]),
        Route("/v1/keys/claim", acct.claim_keys, methods=["POST"]),
        Route("/v1/principals/{handle}/devices", acct.get_devices),
        Route("/v1/device-list", acct.put_device_list, methods=["PUT"]),
        Route("/v1/allowlist", acct.put_allowlist, methods=["PUT"]),
        Route("/v1/delegations", deleg.grant, methods=["POST"]),
        Route("/v1/delegations/revoke", deleg.revoke, methods=["POST"]),
        Route("/v1/principals/{handle}/delegations", deleg.get_delegations),
        Route("/v1/device-links", links.create_link, methods=["POST"]),
        Route("/v1/device-links/{link_id}/open", links.open_link, methods=["POST"]),
        Route("/v1/device-links/{link_id}/approve", links.approve_link, methods=["POST"]),
        Route("/v1/device-links/{link_id}/collect", links.collect_link, methods=["POST"]),
        Route("/v1/invites", acct.create_invite, methods=["POST"]),
        Route("/v1/invites/{invite_id}", acct.revoke_invite, methods=["DELETE"]),
        Route("/v1/contact-requests", msgs.contact_request, methods=["POST"]),
        Route("/v1/messages", msgs.send, methods=["POST"]),
        Route("/v1/inbox", msgs.inbox),
        Route("/v1/inbox/ack", msgs.ack, methods=["POST"]),
        WebSocketRoute("/v1/ws", msgs.websocket),
        Route("/v1/records/policy", recs.policy),
        Route("/v1/records", recs.submit, methods=["POST"]),
        Route("/v1/records/tree-head", recs.tree_head),
        Route("/v1/records/consistency", recs.consistency),
        Route("/v1/records/inclusion", recs.inclusion),
        Route("/v1/calls/config", calls_config),
        Route("/v1/policy", policy),
        Route("/v1/federation", routes_federation.federation, methods=["POST"]),
        Route("/v1/groups", groups.put_membership, methods=["PUT"]),
        Route("/v1/groups/messages", groups.send_group, methods=["POST"]),
        Route("/v1/groups/{group_id}", groups.drop_membership, methods=["DELETE"]),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            HotlineError: handle_hotline_error,
            HTTPException: handle_http_error,
            Exception: handle_unexpected,
        },
    )
    app.state.openapi = build_openapi()
    return app
