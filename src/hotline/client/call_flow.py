"""Voice calls of this device: signalling over the end-to-end channel, media with aiortc.

Every signal (``offer``, ``ringing``, ``answer``, ``answered_elsewhere``, ``decline``, ``busy``,
``hangup``) is a ``call`` envelope, Olm-encrypted to every device of the contact and to my other
devices; the server sees only that something passed. The SDP inside carries the DTLS
fingerprints, so they are authenticated by that channel, and once DTLS is up the certificate
the peer presented is checked against the SDP *as received end to end*
(:mod:`hotline.calls.fingerprint`): a man in the middle fails the call with
``dtls_fingerprint_mismatch``.

Each call's logic is a sans-I/O :class:`~hotline.calls.state.Call`; this module pumps it: local
operations and incoming envelopes go in, signals are sent and every call-detail-record update is
sealed to the custodian and flushed at once, so a crash mid-call leaves the record of what
happened until then. Like SAS flows, calls live in the memory of the process running them
(``hotline call`` / ``hotline answer``), which must keep processing its mailbox
(:meth:`HotlineClient.listen` or ``sync``) and call :meth:`CallFlows.tick` for the timeouts.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hotline.calls.config import CallsConfig, IceServer, MediaOptions, ice_servers_of
from hotline.calls.errors import CallFailed, DtlsFingerprintMismatch, NoSuchCall
from hotline.calls.state import Call, CallOutput, CallState, CallTimeouts
from hotline.client.capture import flush_records, queue_record
from hotline.client.events import ClientEvent, EventKind
from hotline.client.state import ClientState
from hotline.client.transcript import conversation_id
from hotline.crypto.olm import DeviceAccount
from hotline.wire.envelope import Envelope
from hotline.wire.errors import HotlineError, MethodNotAllowed, NotAContact, NotFound, WrongState

if TYPE_CHECKING:
    from hotline.calls.media import CallMedia
    from hotline.client.device import HotlineClient

#: ``ClientEvent.kind`` of call news (until ``events.EventKind`` lists "call" itself)
CALL_EVENT: EventKind = "call"


@dataclass
class LiveCall:
    """A call this process takes part in: its state machine, peer, media and evidence."""

    call: Call
    peer: str
    #: the peer's SDP exactly as it arrived over the end-to-end channel
    e2e_sdp: str = ""
    media: CallMedia | None = None
    #: why the call failed, when it did (e.g. DtlsFingerprintMismatch with its evidence)
    error: HotlineError | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def call_id(self) -> str:
        return self.call.call_id


class CallFlows:
    """The calls of this device, by call id; ``client.calls`` hands it ``call`` envelopes."""

    def __init__(
        self,
        client: HotlineClient,
        *,
        timeouts: CallTimeouts | None = None,
        ice_servers: list[IceServer] | None = None,
    ) -> None:
        self.client = client
        self.timeouts = timeouts or CallTimeouts()
        #: STUN/TURN servers; None: ask the home server at each call (GET /v1/calls/config)
        self.ice_servers = None if ice_servers is None else list(ice_servers)
        #: the media an incoming call is answered with when ``accept`` is not told otherwise
        self.answer_media = MediaOptions()
        self.calls: dict[str, LiveCall] = {}
        self._changed = asyncio.Condition()
        self._tasks: set[asyncio.Task[None]] = set()

    # -- reading -----------------------------------------------------------------------------
    def get(self, call_id: str) -> LiveCall:
        """Raises: NoSuchCall."""
        live = self.calls.get(call_id)
        if live is None:
            raise NoSuchCall(f"no call {call_id} on this device", call_id=call_id)
        return live

    def state(self, call_id: str) -> CallState:
        return self.get(call_id).call.state

    def ringing(self) -> list[LiveCall]:
        """Incoming calls ringing on this device, oldest first."""
        return [c for c in self.calls.values() if c.call.state is CallState.RINGING_IN]

    def in_call(self) -> bool:
        return any(not c.call.ended for c in self.calls.values())

    async def wait_for(self, call_id: str, *states: CallState, timeout: float = 10.0) -> CallState:
        """Wait until the call is in one of ``states`` (someone must keep syncing).

        Raises: TimeoutError, NoSuchCall.
        """
        live = self.get(call_id)
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: live.call.state in states)
        return live.call.state

    async def wait_for_incoming(self, timeout: float = 60.0) -> LiveCall:
        """Wait until a call rings on this device (someone must keep syncing).

        Raises: TimeoutError.
        """
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: bool(self.ringing()))
        return self.ringing()[0]

    # -- local operations --------------------------------------------------------------------
    async def start_call(self, name: str, media: MediaOptions | None = None) -> str:
        """Ring every device of the contact; returns the call id.

        Raises:
            UnknownContact, NotAContact: who cannot be called.
            WrongState: this device is already in a call.
            CallFailed: the media could not be prepared.
        """
        client = self.client
        await client._ensure_login()
        contact = client.contact(name)
        if contact.status != "active":
            raise NotAContact(f"{contact.handle} has not accepted you as a contact (yet)")
        if self.in_call():
            raise WrongState("already in a call; hang up first", state="busy")
        call_media = self._media(media, await self._ice_servers())
        try:
            sdp = await call_media.create_offer()
        except BaseException:
            await call_media.close()
            raise
        call = Call.outgoing(
            secrets.token_urlsafe(12), client.handle, contact.handle, client.device_id,
            self.timeouts,
        )  # fmt: skip
        live = LiveCall(call, contact.handle, media=call_media)
        self.calls[call.call_id] = live
        self._watch(live)
        await self._transition(live, lambda now: call.start(now, sdp), raise_errors=True)
        return call.call_id

    async def accept(self, call_id: str, media: MediaOptions | None = None) -> None:
        """Answer a ringing call on this device (the first device to answer wins).

        Raises: NoSuchCall, WrongState (not ringing any more), CallFailed.
        """
        live = self.get(call_id)
        if live.call.state is not CallState.RINGING_IN:
            raise WrongState(
                f"call {call_id} is {live.call.state.value}, not ringing",
                state=live.call.state.value,
            )
        call_media = self._media(media or self.answer_media, await self._ice_servers())
        try:
            sdp = await call_media.create_answer(live.e2e_sdp)
        except BaseException:
            await call_media.close()
            raise
        live.media = call_media
        self._watch(live)
        await self._transition(live, lambda now: live.call.accept(now, sdp), raise_errors=True)

    async def decline(self, call_id: str) -> None:
        """Refuse a ringing call. Raises: NoSuchCall, WrongState."""
        live = self.get(call_id)
        await self._transition(live, live.call.decline, raise_errors=True)

    async def hangup(self, call_id: str, reason: str = "") -> None:
        """Stop ringing or end the conversation. Raises: NoSuchCall, WrongState."""
        live = self.get(call_id)
        await self._transition(live, lambda now: live.call.hangup(now, reason), raise_errors=True)

    async def tick(self, now_ms: int | None = None) -> None:
        """Apply the timeouts that are due (missed, connect and reconnect timeouts)."""
        now = self.client.now_ms() if now_ms is None else now_ms
        for live in list(self.calls.values()):
            deadline = live.call.deadline()
            if deadline is not None and now >= deadline:
                await self._transition(live, _at(live.call.tick, now))

    async def run_timers(self, interval: float = 0.2) -> None:
        """Call :meth:`tick` forever (run it beside ``listen()`` in a long-lived process)."""
        while True:
            await self.tick()
            await asyncio.sleep(interval)

    async def shutdown(self) -> None:
        """Release every call's media without signalling (process exit; records stay as they
        are, so an interrupted call reads as such in the archive)."""
        for live in self.calls.values():
            if live.media is not None:
                await live.media.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- the end-to-end channel (EnvelopeHandler) --------------------------------------------
    async def handle(
        self, state: ClientState, account: DeviceAccount, envelope: Envelope
    ) -> list[ClientEvent]:
        signal = envelope.call
        if signal is None:
            return []
        now = self.client.now_ms()
        sender, device = envelope.sender, envelope.sender_device
        live = self.calls.get(signal.call_id)
        if sender == state.handle:  # a copy of what another device of mine sent
            if live is None:
                return []
            return await self._apply(
                state, account, live, live.call.receive(now, signal, device, own=True)
            )
        contact = state.contacts.get(sender)
        if contact is None or contact.status != "active" or envelope.recipient != state.handle:
            return [ClientEvent("warning", sender, "call signal from a non-contact: dropped")]
        if signal.event == "offer":
            if live is not None:
                return []  # a duplicate offer
            busy = self.in_call()
            call = Call.incoming(
                signal.call_id, sender, state.handle, state.device_id, self.timeouts
            )
            live = LiveCall(call, sender, e2e_sdp=signal.sdp)
            self.calls[call.call_id] = live
            out = call.receive_offer(now, device, busy=busy, sent_at=envelope.sent_at_ms)
            events = await self._apply(state, account, live, out)
            return events + await self._apply(state, account, live, call.tick(now))
        if live is None or live.peer != sender:
            return []
        return await self._apply(state, account, live, live.call.receive(now, signal, device))

    # -- pumping -----------------------------------------------------------------------------
    async def _transition(
        self, live: LiveCall, step: Callable[[int], CallOutput], *, raise_errors: bool = False
    ) -> list[ClientEvent]:
        """Run one event through the call inside a keystore transaction and apply its output.

        With ``raise_errors`` (a user's operation) a refused operation (WrongState) or a
        failure to reach the peer is raised after the call's record says so.
        """
        before = live.error
        async with self.client._tx() as (state, account):
            try:
                events = await self._apply(state, account, live, step(self.client.now_ms()))
            except HotlineError as exc:
                if raise_errors:
                    raise
                live.warnings.append(f"{exc.code}: {exc.detail}")
                return []
        if raise_errors and live.error is not None and live.error is not before:
            raise live.error
        return events

    async def _apply(
        self, state: ClientState, account: DeviceAccount, live: LiveCall, out: CallOutput
    ) -> list[ClientEvent]:
        """Seal the record updates, send the signals, feed the media, release it at the end.

        Never raises for the peer's sake: a signal that cannot be sent fails the call (and
        ``live.error`` says why).
        """
        for update in out.records:
            queue_record(
                state,
                kind="call",
                side="local",
                now_ms=self.client.now_ms(),
                sender=update.caller,
                recipients=[update.callee],
                conversation=conversation_id(update.caller, update.callee),
                body=f"call {update.call_id}: {update.state.value}",
                detail=update.detail(),
            )
        events = [self._event(live, r.state, r.outcome) for r in out.records]
        failure: HotlineError | None = None
        try:
            for signal in out.signals:
                await self.client._send_envelope(state, account, live.peer, "call", call=signal)
            if out.remote_sdp and live.media is not None:
                live.e2e_sdp = out.remote_sdp
                await live.media.accept_answer(out.remote_sdp)
        except HotlineError as exc:
            failure = exc
        for warning in await flush_records(self.client.server, state):
            events.append(ClientEvent("warning", live.peer, warning))
        if failure is not None and not live.call.ended:
            live.error = failure
            failed = live.call.fail(self.client.now_ms(), f"{failure.code}: {failure.detail}")
            events += await self._apply(state, account, live, failed)
        if live.call.ended and live.media is not None:
            await live.media.close()
        await self._notify()
        return events

    def _event(self, live: LiveCall, state: CallState, outcome: str | None) -> ClientEvent:
        text = state.value if outcome is None else f"ended: {outcome} ({live.call.reason})"
        if state is CallState.RINGING_IN:
            text = "incoming call"
        return ClientEvent(CALL_EVENT, live.peer, text, message_id=live.call_id)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # -- media news --------------------------------------------------------------------------
    def _media(self, options: MediaOptions | None, ice: list[IceServer]) -> CallMedia:
        from hotline.calls.media import CallMedia  # aiortc loads only when a call starts

        return CallMedia(options, ice)

    async def _ice_servers(self) -> list[IceServer]:
        """The configured ICE servers, else those the home server advertises (fresh TURN
        credentials each call); none if it advertises none: direct ICE, as on loopback."""
        if self.ice_servers is not None:
            return self.ice_servers
        try:
            config = await self.client.server.call("GET", "/v1/calls/config", response=CallsConfig)
        except (NotFound, MethodNotAllowed):
            return []
        return ice_servers_of(config) if config is not None else []

    def _watch(self, live: LiveCall) -> None:
        assert live.media is not None
        live.media.on_state = lambda s: self._spawn(self._media_state(live, s))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _media_state(self, live: LiveCall, connection_state: str) -> None:
        media = live.media
        if media is None or live.call.ended:
            return
        if connection_state == "connected":
            try:
                media.check_fingerprint(live.e2e_sdp)
            except DtlsFingerprintMismatch as exc:
                await self._media_failure(live, exc)
                return
            await self._transition(live, live.call.media_connected)
        elif connection_state == "failed":
            error: HotlineError = CallFailed("the media path failed (ICE or DTLS)")
            if media.peer_certificate() is not None:
                try:
                    media.check_fingerprint(live.e2e_sdp)
                except DtlsFingerprintMismatch as exc:
                    error = exc
            await self._media_failure(live, error)

    async def _media_failure(self, live: LiveCall, error: HotlineError) -> None:
        live.error = error
        reason = f"{error.code}: {error.detail}"
        await self._transition(live, lambda now: live.call.media_failed(now, reason))


def _at(step: Callable[[int], CallOutput], now: int) -> Callable[[int], CallOutput]:
    """``step`` run at the given ``now`` rather than the clock's."""
    return lambda _clock_now: step(now)


def call_flows(client: HotlineClient) -> CallFlows:
    """The client's :class:`CallFlows`. Raises: CallFailed if calls are not enabled."""
    if not isinstance(client.calls, CallFlows):
        raise CallFailed("calls are not enabled on this client")
    return client.calls


__all__ = ["CALL_EVENT", "CallFlows", "LiveCall", "call_flows"]
