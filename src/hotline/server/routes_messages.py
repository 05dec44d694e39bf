"""Relaying ciphertext: send, mailbox, acknowledgements, contact requests, push websocket."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
from typing import Annotated

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket, WebSocketDisconnect

from hotline.server import delegation
from hotline.server.context import Caller, ServerState, authenticate, read_struct, state_of
from hotline.server.delegation import readers
from hotline.server.federation_client import domain_of
from hotline.server.policy_gate import check_content
from hotline.server.responses import ok
from hotline.server.routes_account import check_invite
from hotline.store import DeliveryItem, DeliveryRow, LogLeaf, OutboundItem, SendContext
from hotline.wire import api
from hotline.wire.codec import Counter, decode, encode
from hotline.wire.encoding import b64d, b64e
from hotline.wire.errors import (
    DeviceListMismatch,
    HotlineError,
    MalformedInput,
    NotAContact,
    QueueFull,
    RecordRequired,
    UnknownPeer,
)
from hotline.wire.federation import RemoteContactRequest, RemoteMessage
from hotline.wire.groups import GroupSendRequest
from hotline.wire.records import MAX_LEAF, RecordReceipt

#: most items pushed to one connection and not yet acknowledged: one frame. The next frame goes
#: when the client has acknowledged the last, so what arrived meanwhile goes in one frame: a
#: busy client gets fewer, larger batches (one keystore write and one receipt for many
#: messages, where it fell behind at one frame per message); an idle one gets each at once.
PUSH_WINDOW = 100
#: a push that cannot be written for this long closes the connection
SEND_TIMEOUT = 30.0
ACK_POLL = 5.0


def delivery_kind(content: str) -> str:
    """Mailbox item kind of an Olm message: ``olm`` for a message, ``olm:call`` and
    ``olm:control`` for the other declared classes (the recipient checks the declaration)."""
    return "olm" if content == "message" else f"olm:{content}"


class _Accepted(msgspec.Struct, frozen=True):
    accepted: bool


class ContactRequestNotice(msgspec.Struct, frozen=True):
    """What the card owner's devices receive for a contact request (server-authored)."""

    sender: str
    card: str
    invite_id: str


async def _targets(
    state: ServerState,
    caller: Caller,
    to: str,
    context: SendContext,
    on_behalf_of: str | None = None,
) -> set[str]:
    """Devices a message from ``caller`` to ``to`` must address: all of the recipient's and
    the sender's own other devices (an aide's: the principal's too), and the devices of the
    aides reading either side (``server.delegation``), all from ``context``.

    Raises:
        NotAContact: ``to`` does not allow the caller (on its allowlist, or a co-member of one
            of its groups: asked only when not a contact). An aide's message was checked
            before (``check_on_behalf``).
    """
    if (
        on_behalf_of is None
        and not context.allowed
        and not await state.store.shares_group(to, caller.handle)
    ):
        raise NotAContact(f"{to} does not accept messages from you")
    devices = set(context.recipient_devices) | set(context.sender_devices)
    devices |= set(context.principal_devices)
    devices |= readers(context.grants, {to, on_behalf_of or caller.handle})
    devices.discard(caller.device_id)
    return devices


async def send(request: Request) -> Response:
    """Relay one message: one read transaction for every check, one write transaction that
    stores the mailbox items and the sender's record and reads back the log tail, then (with
    the archive on) one more to store the signed tree head of the receipt."""
    caller = await authenticate(request)
    state = state_of(request)
    body = await read_struct(request, api.SendRequest)
    cap = state.config.max_pending_per_device
    remote = domain_of(body.to) != state.config.domain
    to = caller.handle if remote else body.to  # remote: my side only, the peer checks its own
    context = await state.store.send_context(
        caller.device_id, caller.handle, to, state.now(), body.on_behalf_of
    )
    if context.undelivered >= cap:
        raise QueueFull(f"{cap} of your messages still wait for their recipients")
    addressed = [c.device_id for c in body.ciphertexts]
    if len(set(addressed)) != len(addressed):
        raise MalformedInput("a device is addressed twice")
    if body.on_behalf_of is not None:
        delegation.check_on_behalf(  # via the module: a test stands in a bypassed server
            context, caller, body.to, body.on_behalf_of, local=not remote, now=state.now()
        )
    if remote:
        local, queued = await _split_remote(state, caller, body, context)
    else:
        local, queued = list(body.ciphertexts), []
        expected = await _targets(state, caller, body.to, context, body.on_behalf_of)
        if set(addressed) != expected:
            raise DeviceListMismatch(
                "the message must be encrypted for exactly the current devices; refresh them",
                expected=sorted(expected),
            )
    await check_content(state, caller, body.content_class)
    kind = delivery_kind(body.content_class)
    items = [
        DeliveryItem(c.device_id, kind, bytes([c.type]) + b64d(c.body, field="body")) for c in local
    ]
    record = sender_record(state, caller, body.record)
    now = state.now()
    stored, receipt = await store_message(state, caller, body, items, queued, record, now)
    return ok(
        api.SendResponse(message_id=body.message_id, stored=stored, receipt=receipt), status=201
    )


async def store_message(
    state: ServerState,
    caller: Caller,
    body: api.SendRequest | GroupSendRequest,
    items: list[DeliveryItem],
    queued: list[OutboundItem],
    record: LogLeaf | None,
    now: float,
) -> tuple[bool, RecordReceipt | None]:
    """Enqueue (with the record and the log tail when the archive is on), wake the
    recipients' sockets and the peer queue, then the receipt: the recipients need not wait
    for the tree head to be signed and stored."""
    records = state.records
    done = await state.store.enqueue_message(
        message_id=body.message_id,
        sender_handle=caller.handle,
        sender_device=caller.device_id,
        items=items,
        now=now,
        record=record,
        outbound=queued,
        tail_from=records.tree.size if records is not None else 0,
        sign_head=records.head_signer(now) if records is not None else None,
    )
    state.hub.notify([item.device_id for item in items])
    if queued:
        state.outbound_wakeup.set()
    if records is None or record is None:
        return done.stored, None
    head = records.adopt(done.tail, done.head)
    if done.record_index is None:
        return done.stored, None
    receipt = await records.receipt(
        state.store, record.record_id, done.record_index, now, body.known_tree_size, head
    )
    return done.stored, receipt


async def _split_remote(
    state: ServerState, caller: Caller, body: api.SendRequest, context: SendContext
) -> tuple[list[api.DeviceCiphertext], list[OutboundItem]]:
    """For a recipient on a peer server: my other devices get theirs now; the rest waits in
    the durable queue for the peer (which checks its allowlist and device list on arrival).

    Raises:
        UnknownPeer: the recipient's server is not a pinned peer.
        DeviceListMismatch: one of my own devices is missing.
    """
    destination = domain_of(body.to)
    if await state.store.get_peer(destination) is None:
        raise UnknownPeer(f"{destination} is not a pinned peer of {state.config.domain}")
    # context was read for a message to myself: my devices and my aides' (an aide's: the
    # principal's side too, which reads along)
    own = set(context.sender_devices) | set(context.principal_devices)
    own |= readers(context.grants, {caller.handle, body.on_behalf_of or caller.handle})
    own.discard(caller.device_id)
    local = [c for c in body.ciphertexts if c.device_id in own]
    others = [c for c in body.ciphertexts if c.device_id not in own]
    if {c.device_id for c in local} != own:
        raise DeviceListMismatch("encrypt for all of your own devices too", expected=sorted(own))
    if not others:
        raise MalformedInput(f"no ciphertext for any device of {body.to}")
    message = RemoteMessage(
        content_class=body.content_class,
        message_id=body.message_id,
        sender=caller.handle,
        sender_device=caller.device_id,
        to=body.to,
        ciphertexts=others,
        on_behalf_of=body.on_behalf_of,
    )
    item = OutboundItem(destination, body.message_id, caller.device_id, encode(message))
    return local, [item]


def sender_record(state: ServerState, caller: Caller, leaf_text: str | None) -> LogLeaf | None:
    """The sender's sealed record, required when this server keeps an archive.

    Raises:
        RecordRequired: the archive is on and the message came without its record.
        MalformedInput: the record is not a sealed record of this log.
    """
    if state.records is None:
        return None
    if not leaf_text:
        raise RecordRequired(
            "this server relays a message only with its sealed record (capture at creation)"
        )
    leaf = state.records.check_leaf(b64d(leaf_text, field="record", max_len=MAX_LEAF))
    return LogLeaf(leaf.record_id, leaf.leaf, leaf.leaf_hash, caller.device_id)


async def contact_request(request: Request) -> Response:
    caller = await authenticate(request)
    state = state_of(request)
    body = await read_struct(request, api.ContactRequest)
    if domain_of(body.to) != state.config.domain:
        forward = RemoteContactRequest(
            sender=caller.handle,
            to=body.to,
            invite_id=body.invite_id,
            invite_secret=body.invite_secret,
            card=body.card,
        )
        await state.peers.call(state, domain_of(body.to), "contact_request", forward, _Accepted)
        return ok({"forwarded": True}, status=201)
    invite = await state.store.get_invite(body.invite_id)
    secret_hash = hashlib.sha256(b64d(body.invite_secret, field="invite_secret")).digest()
    check_invite(invite, body.to, secret_hash, state.now())
    devices = [d.device_id for d in await state.store.list_devices(body.to)]
    notice = encode(ContactRequestNotice(caller.handle, body.card, body.invite_id))
    message_id = secrets.token_urlsafe(16)
    await state.store.enqueue(
        message_id=message_id,
        sender_handle=caller.handle,
        sender_device=caller.device_id,
        items=[DeliveryItem(d, "contact_request", notice) for d in devices],
        now=state.now(),
    )
    state.hub.notify(devices)
    return ok({"message_id": message_id}, status=201)


def _item(row: DeliveryRow) -> api.InboxItem:
    return api.InboxItem(
        seq=row.seq,
        message_id=row.message_id,
        kind=row.kind,
        sender_handle=row.sender_handle,
        sender_device=row.sender_device,
        body=b64e(row.body),
        created_at=row.created_at,
    )


async def inbox(request: Request) -> Response:
    caller = await authenticate(request)
    try:
        after = int(request.query_params.get("after", "0"))
        limit = min(max(int(request.query_params.get("limit", "100")), 1), 500)
    except ValueError as exc:
        raise MalformedInput("after and limit must be integers") from exc
    rows = await state_of(request).store.pending(caller.device_id, after, limit)
    return ok(api.InboxResponse(items=[_item(r) for r in rows]))


async def ack(request: Request) -> Response:
    caller = await authenticate(request)
    body = await read_struct(request, api.AckRequest)
    deleted = await state_of(request).store.ack(caller.device_id, list(body.seqs))
    return ok(api.AckResponse(deleted=deleted))


class _WsAck(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    ack: Annotated[list[Counter], msgspec.Meta(max_length=1000)]


class _InFlight:
    """Items pushed to one connection and not yet acknowledged (the push window)."""

    def __init__(self) -> None:
        self.seqs: set[int] = set()
        self.acked = asyncio.Event()

    def ack(self, seqs: list[int]) -> None:
        self.seqs.difference_update(seqs)
        self.acked.set()


async def websocket(ws: WebSocket) -> None:
    """Push mailbox items as they arrive; the client acks with ``{"ack": [seq, ...]}``.

    The store is the truth: after every wake-up the server reads the mailbox from the last seq
    it pushed, so nothing is lost if a notification is missed. A client that does not read or
    does not acknowledge cannot grow the server's memory: one frame of at most ``PUSH_WINDOW``
    items is in flight per connection (the next goes when it is acknowledged), and a send
    that stalls for ``SEND_TIMEOUT`` closes the socket (the items stay in the mailbox for the
    next connection).
    """
    try:
        caller = await authenticate(ws)
    except HotlineError as exc:
        await ws.close(code=4401, reason=exc.code)
        return
    state = state_of(ws)
    await ws.accept()
    event = state.hub.subscribe(caller.device_id)
    flight = _InFlight()
    reader = asyncio.create_task(_read_acks(ws, state, caller, flight))
    try:
        last = 0
        while not reader.done():
            event.clear()
            if flight.seqs:  # a frame is not acknowledged yet
                await _wait_for_acks(state, caller, flight, reader)
                continue
            rows = await state.store.pending(caller.device_id, last, PUSH_WINDOW)
            if rows:
                last = rows[-1].seq
                flight.seqs.update(r.seq for r in rows)
                frame = encode({"items": [_item(r) for r in rows]})
                await asyncio.wait_for(ws.send_bytes(frame), SEND_TIMEOUT)
                if len(rows) == PUSH_WINDOW or event.is_set():
                    continue
                # Fewer rows than asked for: the mailbox held no more when it was read, and
                # anything stored since was notified after the clear() above (a sender
                # notifies after its commit), so wait instead of reading it again.
            waiter = asyncio.create_task(event.wait())
            await asyncio.wait({waiter, reader}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
    except (WebSocketDisconnect, RuntimeError, TimeoutError):
        pass
    finally:
        state.hub.unsubscribe(caller.device_id, event)
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
            await reader
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await ws.close()


async def _wait_for_acks(
    state: ServerState, caller: Caller, flight: _InFlight, reader: asyncio.Task[None]
) -> None:
    """The window is full: wait for acks over the socket, or notice HTTP acks in the store."""
    flight.acked.clear()
    waiter = asyncio.create_task(flight.acked.wait())
    await asyncio.wait({waiter, reader}, timeout=ACK_POLL, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    if not flight.acked.is_set():
        still = {r.seq for r in await state.store.pending(caller.device_id, 0, PUSH_WINDOW)}
        flight.seqs &= still


async def _read_acks(ws: WebSocket, state: ServerState, caller: Caller, flight: _InFlight) -> None:
    try:
        while True:
            frame = await ws.receive()
            if frame["type"] == "websocket.disconnect":
                return
            data = frame.get("bytes") or (frame.get("text") or "").encode("utf-8")
            try:
                message = decode(data, _WsAck, max_size=64 * 1024)
            except HotlineError as exc:
                await ws.send_bytes(encode({"error": exc.to_problem()}))
                continue
            await state.acks.ack(caller.device_id, message.ack)
            flight.ack(message.ack)
    except WebSocketDisconnect:
        return
