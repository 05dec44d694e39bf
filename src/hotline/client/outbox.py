"""The device's outbox: a message is encrypted and saved before it is sent, and re-sent with
the same message id until the server has it, so a crash or an outage never loses or duplicates
a message (the server deduplicates by ``(device, message id)``).

Order is kept: while anything waits in the outbox, new messages queue behind it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from hotline.client.capture import check_receipt
from hotline.client.state import ClientState, OutboxItem
from hotline.client.transport import ServerApi
from hotline.wire import api
from hotline.wire.codec import decode, encode
from hotline.wire.encoding import b64d, b64e
from hotline.wire.errors import DeviceListMismatch, HotlineError, ServerUnavailable, StorageError

#: failures that mean "try again later", not "this message is refused"
TRANSIENT = (ServerUnavailable, StorageError)

Reencrypt = Callable[[ClientState, OutboxItem], Awaitable[api.SendRequest]]


async def post(server: ServerApi, request: api.SendRequest) -> api.SendResponse:
    reply = await server.call("POST", "/v1/messages", request, api.SendResponse)
    assert reply is not None
    return reply


def enqueue(
    state: ClientState, request: api.SendRequest, plaintext: bytes, leaf: bytes | None
) -> None:
    state.outbox.append(
        OutboxItem(
            message_id=request.message_id,
            to=request.to,
            request=b64e(encode(request)),
            plaintext=b64e(plaintext),
            leaf=b64e(leaf) if leaf else "",
        )
    )
    _set_status(state, request.message_id, "sending")


async def flush(server: ServerApi, state: ClientState, reencrypt: Reencrypt) -> list[str]:
    """Send what waits, oldest first; stop at the first transient failure. Returns warnings."""
    warnings: list[str] = []
    while state.outbox:
        item = state.outbox[0]
        request = decode(b64d(item.request), api.SendRequest)
        try:
            try:
                reply = await post(server, request)
            except DeviceListMismatch:
                reply = await post(server, await reencrypt(state, item))
        except TRANSIENT:
            break
        except HotlineError as exc:
            state.outbox.pop(0)
            _set_status(state, item.message_id, "failed", f"{exc.code}: {exc.detail}")
            warnings.append(f"message {item.message_id} to {item.to} failed: {exc.code}")
            continue
        state.outbox.pop(0)
        index = -1
        if reply.receipt is not None and item.leaf:
            try:
                index = await check_receipt(server, state, reply.receipt, b64d(item.leaf))
            except HotlineError as exc:
                warnings.append(f"{exc.code}: {exc.detail}")
        _set_status(state, item.message_id, "sent", record_index=index)
    return warnings


def _set_status(
    state: ClientState,
    message_id: str,
    status: str,
    warning: str = "",
    record_index: int | None = None,
) -> None:
    for message in reversed(state.messages):
        if message.message_id == message_id:
            message.status = status  # type: ignore[assignment]
            if warning:
                message.warnings.append(warning)
            if record_index is not None:
                message.record_index = record_index
            return
