"""The receiving side of a device: fetch the mailbox, hand items over, settle what they oblige.

``Mailbox`` hangs off :class:`~hotline.client.device.HotlineClient` (``client.mailbox``) the way
``client.groups`` does. Receiving is two keystore transactions: :meth:`Mailbox.receive` handles
the items (``client.inbox``), saves and acknowledges them; :meth:`Mailbox.settle` sends the
delivery receipts and records they oblige, and tops up one-time keys a pre-key message used.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from hotline.client.capture import flush_records
from hotline.client.events import ClientEvent
from hotline.client.inbox import handle_item
from hotline.client.sending import send_envelope
from hotline.client.state import ClientState
from hotline.crypto.olm import DeviceAccount
from hotline.wire import api
from hotline.wire.envelope import Receipt
from hotline.wire.errors import HotlineError, ServerUnavailable

if TYPE_CHECKING:
    from hotline.client.device import HotlineClient

#: message ids per receipt envelope (the wire limit of ``Receipt.message_ids``)
MAX_RECEIPT_IDS = 500


class Mailbox:
    """What arrives for one device, and what it owes in return."""

    def __init__(self, client: HotlineClient) -> None:
        self.client = client
        #: receipts or records may wait to be sent (``settle``); true at first, for what a
        #: previous run left behind
        self._unsettled = True
        self._top_up_due = False

    async def sync(self) -> list[ClientEvent]:
        """Send what waits in the outbox, then fetch, process and acknowledge the mailbox."""
        await self.client._ensure_login()
        events = [
            ClientEvent("warning", self.client.handle, w) for w in await self.client.flush_outbox()
        ]
        events += await self.client.refresh_policy()
        while True:
            reply = await self.client.server.call(
                "GET", "/v1/inbox", response=api.InboxResponse, params={"limit": "100"}
            )
            assert reply is not None
            if not reply.items:
                break
            events += await self.receive(reply.items)
        return events + await self.settle()

    async def process(self, items: list[api.InboxItem]) -> list[ClientEvent]:
        """Receive mailbox items (:meth:`receive`), then :meth:`settle` what they oblige."""
        events = await self.receive(items)
        return events + await self.settle()

    async def receive(self, items: list[api.InboxItem]) -> list[ClientEvent]:
        """Process mailbox items in order, save, then acknowledge them (deleting them on the
        server). Dedup by message id makes a re-delivery after a crash harmless.

        What the items oblige — delivery receipts to their senders, this device's own records
        of them for the archive — is saved in the same keystore write (``owed_receipts``,
        ``pending_records``) and sent by :meth:`settle`, so a message is handed over without
        waiting for two more round trips, and a crash in between loses neither.
        """
        events: list[ClientEvent] = []
        receipts: dict[str, list[str]] = {}
        async with self.client._tx() as (state, account):
            for item in items:
                events += await handle_item(self.client, state, account, item, receipts)
            for to, ids in receipts.items():
                state.owed_receipts.setdefault(to, []).extend(ids)
            self._unsettled = bool(state.owed_receipts or state.pending_records)
        await self.client.server.ack_over_websocket([i.seq for i in items])
        if any(i.kind.startswith("olm") and i.body[:2] == "AA" for i in items):
            # "AA" is base64url for a leading 0x00 byte: an Olm pre-key message (type 0)
            self._top_up_due = True  # a pre-key message used up one of our one-time keys
        return events

    @property
    def unsettled(self) -> bool:
        """Whether delivery receipts or records received here may still wait to be sent."""
        return self._unsettled or self._top_up_due

    async def settle(self) -> list[ClientEvent]:
        """Send the delivery receipts owed and the records pending, and top up one-time keys
        if a pre-key message used one. Returns warnings for what could not be sent."""
        events: list[ClientEvent] = []
        if self._unsettled:
            await self.client._ensure_login()
            async with self.client._tx() as (state, account):
                events += await self._send_owed_receipts(state, account)
                for warning in await flush_records(self.client.server, state):
                    events.append(ClientEvent("warning", state.handle, warning))
                self._unsettled = bool(state.owed_receipts or state.pending_records)
        if self._top_up_due:
            self._top_up_due = False
            await self.client._top_up_keys()
        return events

    async def _send_owed_receipts(
        self, state: ClientState, account: DeviceAccount
    ) -> list[ClientEvent]:
        events = []
        for to, ids in list(state.owed_receipts.items()):
            for start in range(0, len(ids), MAX_RECEIPT_IDS):
                chunk = ids[start : start + MAX_RECEIPT_IDS]
                receipt = Receipt(kind="delivered", message_ids=chunk)
                try:
                    await send_envelope(self.client, state, account, to, "receipt", receipt=receipt)
                except HotlineError as exc:
                    # Not retryable (a server that cannot take it now queues it in the outbox).
                    events.append(ClientEvent("warning", to, f"delivery receipt not sent: {exc}"))
            del state.owed_receipts[to]
        return events

    async def listen(self, *, reconnect: bool = False) -> AsyncIterator[ClientEvent]:
        """Yield events as items are pushed over the websocket (after draining the mailbox).

        With ``reconnect`` (as ``hotline listen`` does), a dropped connection (network, server
        restart, expired token) is re-opened with backoff; whatever arrived meanwhile waits in
        the mailbox and comes on reconnection. Without it, iteration ends with the connection.
        """
        delay = 0.5
        while True:
            try:
                for event in await self.sync():
                    yield event
                async for batch in self.client.server.websocket():
                    delay = 0.5
                    # Hand the messages over first; receipts and records follow at once.
                    for event in await self.receive(batch):
                        yield event
                    for event in await self.settle():
                        yield event
            except ServerUnavailable:
                pass
            if not reconnect:
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)
            self.client.server.token = None  # the server may have closed us for an expired token
