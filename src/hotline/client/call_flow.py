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

Network loss: :meth:`CallFlows.tick` watches every ACTIVE call's incoming audio; no frame for
``CallTimeouts.silence_ms`` (the peer sends silence when quiet, so this is the network), or the
peer connection failing, makes the call RECONNECTING. Then a brand-new peer connection is
negotiated end to end (``reoffer``/``reanswer``, see :mod:`hotline.calls.state`) under the same
audio streams and recording; its DTLS certificate is checked against the new SDP exactly like
the first. While reconnecting, a signal that cannot reach the server only costs that attempt;
the call fails ("network lost") when ``reconnect_ms`` runs out.

Recording with consent (issue 4 item 5): when the home server's ``GET /v1/calls/config`` says
``recording: required``, this device announces it (a ``recording_notice`` naming the law, sent
just before its offer or answer, so the other party is told before the call connects; the other
device shows it as a ``call`` event and in :attr:`LiveCall.notices`) and, from acceptance on,
records what it receives and what it sends (:mod:`hotline.calls.recording`: two Opus tracks in
one Ogg stream). Every :attr:`CallFlows.recording_interval_s` seconds the new Ogg pages are
sealed to the custodian as a ``call`` record (``detail["audio"]``, base64url) and submitted at
once; the rest is sealed when the call ends. A crash loses at most one interval. Without that
policy nothing is recorded. A device that must record but has no records archive pinned refuses
to make or answer the call (it could not honour the law it would announce).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from hotline.calls.config import CallsConfig, IceServer, MediaOptions, ice_servers_of
from hotline.calls.errors import CallFailed, DtlsFingerprintMismatch, NoSuchCall
from hotline.calls.state import Call, CallOutput, CallState, CallTimeouts
from hotline.client.capture import flush_records, queue_record
from hotline.client.events import ClientEvent, EventKind
from hotline.client.sending import send_envelope
from hotline.client.state import ClientState
from hotline.client.transcript import conversation_id
from hotline.crypto.olm import DeviceAccount
from hotline.wire.encoding import b64e
from hotline.wire.envelope import Envelope
from hotline.wire.errors import (
    HotlineError,
    MethodNotAllowed,
    NotAContact,
    NotFound,
    ServerUnavailable,
    WrongState,
)

T = TypeVar("T")

if TYPE_CHECKING:
    from hotline.calls.media import CallMedia
    from hotline.calls.recording import CallRecorder
    from hotline.client.device import HotlineClient

#: ``ClientEvent.kind`` of call news (until ``events.EventKind`` lists "call" itself)
CALL_EVENT: EventKind = "call"
#: seal the call recording's new audio this often (seconds); see hotline.calls.recording
RECORDING_INTERVAL_S = 5.0
#: recording notices kept for calls whose offer has not arrived yet
MAX_EARLY_NOTICES = 32
#: seconds a signal or a records upload may take while the network is known to be down (the
#: call is reconnecting, or failed for it): an attempt, not the transport's 15 s, so the call's
#: timers and the other signals are not held up behind it
LOST_NETWORK_STEP_S = 3.0


@dataclass(frozen=True)
class RecordingNotice:
    """Someone records this call: ``by`` (a handle: the peer, or this device's own principal)
    under ``law``, known to this device while the call was in ``state``."""

    by: str
    law: str
    state: CallState
    at_ms: int


@dataclass
class LiveRecording:
    """This device's recording of a call, and what has been sealed of it."""

    recorder: CallRecorder
    law: str
    chunks: int = 0
    sealed_bytes: int = 0
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


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
    #: who records this call under which law, as this device learnt it (before connecting)
    notices: list[RecordingNotice] = field(default_factory=list)
    recording: LiveRecording | None = None
    #: when the media (re)connected (monotonic s): quiet is counted from here at the earliest
    heard_since: float = 0.0

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
        #: seconds between sealed chunks of a call recording (a crash loses at most this)
        self.recording_interval_s = RECORDING_INTERVAL_S
        #: recording notices that came before their call's offer: call id -> (sender, device, law)
        self._early_notices: dict[str, tuple[str, str, str]] = {}
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
        config = await self._call_config()
        law = self._recording_law(config)
        call_media = self._media(media, self._ice_of(config))
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
        if law:
            live.notices.append(RecordingNotice(client.handle, law, call.state, client.now_ms()))
        self.calls[call.call_id] = live
        self._watch(live)
        await self._transition(
            live, lambda now: call.start(now, sdp, recorded_under=law), raise_errors=True
        )
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
        config = await self._call_config()
        law = self._recording_law(config)
        call_media = self._media(media or self.answer_media, self._ice_of(config))
        try:
            sdp = await call_media.create_answer(live.e2e_sdp)
        except BaseException:
            await call_media.close()
            raise
        live.media = call_media
        if law:
            live.notices.append(
                RecordingNotice(self.client.handle, law, live.call.state, self.client.now_ms())
            )
        self._watch(live)
        await self._transition(
            live, lambda now: live.call.accept(now, sdp, recorded_under=law), raise_errors=True
        )

    async def decline(self, call_id: str) -> None:
        """Refuse a ringing call. Raises: NoSuchCall, WrongState."""
        live = self.get(call_id)
        await self._transition(live, live.call.decline, raise_errors=True)

    async def hangup(self, call_id: str, reason: str = "") -> None:
        """Stop ringing or end the conversation. Raises: NoSuchCall, WrongState."""
        live = self.get(call_id)
        await self._transition(live, lambda now: live.call.hangup(now, reason), raise_errors=True)

    async def reconnect(self, call_id: str) -> None:
        """Treat the media as lost now and renegotiate it (e.g. the system reports that the
        network changed); what the loss detector does after ``silence_ms`` of quiet.

        Raises: NoSuchCall.
        """
        live = self.get(call_id)
        await self._transition(live, live.call.media_lost)

    async def tick(self, now_ms: int | None = None) -> None:
        """Apply the timeouts that are due (missed, connect and reconnect timeouts, reconnect
        retries) and detect a lost network: no audio for ``silence_ms`` in an ACTIVE call."""
        now = self.client.now_ms() if now_ms is None else now_ms
        for live in list(self.calls.values()):
            deadline = live.call.deadline()
            if deadline is not None and now >= deadline:
                await self._transition(live, _at(live.call.tick, now))
            media = live.media
            if live.call.state is CallState.ACTIVE and media is not None:
                quiet_ms = 1000 * media.quiet_for(live.heard_since)
                if quiet_ms >= live.call.timeouts.silence_ms:
                    await self._transition(live, _at(live.call.media_lost, now))

    async def run_timers(self, interval: float = 0.2) -> None:
        """Call :meth:`tick` forever (run it beside ``listen()`` in a long-lived process)."""
        while True:
            await self.tick()
            await asyncio.sleep(interval)

    async def shutdown(self) -> None:
        """Release every call's media without signalling (process exit; records stay as they
        are, so an interrupted call reads as such in the archive). A recording in progress gets
        what it has so far sealed (without its end-of-stream pages), as far as time allows."""
        sealing = []
        for live in self.calls.values():
            rec = live.recording
            if rec is not None and rec.task is not None and not rec.task.done():
                rec.recorder.closed = True
                rec.stop.set()
                sealing.append(rec.task)
            if live.media is not None:
                await live.media.close()
        if sealing:
            await asyncio.wait(sealing, timeout=5.0)
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
        if signal.event == "recording_notice" and live is None and signal.reason:
            # the caller's notice comes just before its offer: keep it for the offer
            while len(self._early_notices) >= MAX_EARLY_NOTICES:
                self._early_notices.pop(next(iter(self._early_notices)))
            self._early_notices[signal.call_id] = (sender, device, signal.reason)
            return []
        if signal.event == "offer":
            if live is not None:
                return []  # a duplicate offer
            busy = self.in_call()
            call = Call.incoming(
                signal.call_id, sender, state.handle, state.device_id, self.timeouts
            )
            live = LiveCall(call, sender, e2e_sdp=signal.sdp)
            self.calls[call.call_id] = live
            early = self._early_notices.pop(signal.call_id, None)
            law = early[2] if early is not None and early[:2] == (sender, device) else ""
            out = call.receive_offer(
                now, device, busy=busy, sent_at=envelope.sent_at_ms, peer_recorded_under=law
            )
            events = self._notice(live, law) if law else []
            events += await self._apply(state, account, live, out)
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
        if live.call.ended and live.recording is not None:
            self._seal_rest(state, live, live.recording)  # before the "ended" record
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
        events = self._notice(live, out.notice) if out.notice else []
        events += [self._event(live, r.state, r.outcome) for r in out.records]
        if out.records and not live.call.ended:
            await self._notify()  # show "reconnecting" now, not after the network steps
        failure: HotlineError | None = None
        try:
            for signal in out.signals:
                await self._bounded(
                    live,
                    send_envelope(self.client, state, account, live.peer, "call", call=signal),
                )
            if out.remote_sdp and live.media is not None:
                live.e2e_sdp = out.remote_sdp
                await live.media.accept_answer(out.remote_sdp)
        except HotlineError as exc:
            failure = exc
        if failure is None:
            self._start_recording(live)
        events += await self._flush_records(state, live, failure)
        if failure is None:
            try:
                events += await self._reconnect_media(state, account, live, out)
            except HotlineError as exc:
                failure = exc
        if failure is not None and not live.call.ended:
            events += await self._failed(state, account, live, failure)
        if live.call.ended and live.media is not None:
            await live.media.close()
        await self._notify()
        return events

    async def _flush_records(
        self, state: ClientState, live: LiveCall, failure: HotlineError | None
    ) -> list[ClientEvent]:
        """Submit the queued records now; a warning for each problem (they wait if need be)."""
        if isinstance(failure, ServerUnavailable):  # no server now: the records wait for it
            warnings = [f"{len(state.pending_records)} record(s) not on the record yet"]
        else:
            try:
                warnings = await self._bounded(live, flush_records(self.client.server, state))
            except ServerUnavailable as exc:
                warnings = [f"records not on the record yet: {exc.code}"]
        return [ClientEvent("warning", live.peer, w) for w in warnings]

    async def _bounded(self, live: LiveCall, step: Coroutine[Any, Any, T]) -> T:
        """Run a network step; within :data:`LOST_NETWORK_STEP_S` if the network is down.

        Raises: ServerUnavailable (also when that time ran out).
        """
        call = live.call
        gave_up = call.ended and call.outcome == "failed" and call.losses > 0
        lost = call.state is CallState.RECONNECTING or gave_up
        if not lost:
            return await step
        try:
            async with asyncio.timeout(LOST_NETWORK_STEP_S):
                return await step
        except TimeoutError as exc:
            raise ServerUnavailable(
                f"the home server did not answer within {LOST_NETWORK_STEP_S:g} s "
                "while the network is lost"
            ) from exc

    async def _failed(
        self, state: ClientState, account: DeviceAccount, live: LiveCall, failure: HotlineError
    ) -> list[ClientEvent]:
        """Something could not be done for the call: it fails, unless the network is down while
        reconnecting — then this attempt failed and the reconnect window decides."""
        now = self.client.now_ms()
        if live.call.state is CallState.RECONNECTING and isinstance(failure, ServerUnavailable):
            live.warnings.append(f"{failure.code}: {failure.detail}")
            return await self._apply(state, account, live, live.call.media_lost(now))
        live.error = failure
        failed = live.call.fail(now, f"{failure.code}: {failure.detail}")
        return await self._apply(state, account, live, failed)

    async def _reconnect_media(
        self, state: ClientState, account: DeviceAccount, live: LiveCall, out: CallOutput
    ) -> list[ClientEvent]:
        """Reconnecting: a new peer connection (new DTLS certificate) and its offer (caller) or
        its answer to the caller's re-offer (callee), end to end like the first ones.

        Raises: CallFailed (an unusable SDP), ServerUnavailable (the signal was not sent).
        """
        media, call = live.media, live.call
        if media is None or call.state is not CallState.RECONNECTING:
            return []
        if out.renegotiate:
            await media.renew()
            sdp = await media.create_offer()
            return await self._apply(state, account, live, call.reoffer(self.client.now_ms(), sdp))
        if out.reoffer_sdp:
            live.e2e_sdp = out.reoffer_sdp  # what the new connection's certificate must match
            await media.renew()
            sdp = await media.create_answer(out.reoffer_sdp)
            answer = call.reanswer(self.client.now_ms(), sdp)
            return await self._apply(state, account, live, answer)
        return []

    def _notice(self, live: LiveCall, law: str) -> list[ClientEvent]:
        """The peer records this call under ``law``: note it and tell the user."""
        live.notices.append(RecordingNotice(live.peer, law, live.call.state, self.client.now_ms()))
        text = f"recording notice: {live.peer} records this call under {law}"
        return [ClientEvent(CALL_EVENT, live.peer, text, message_id=live.call_id)]

    def _event(self, live: LiveCall, state: CallState, outcome: str | None) -> ClientEvent:
        text = state.value if outcome is None else f"ended: {outcome} ({live.call.reason})"
        if state is CallState.RINGING_IN:
            text = "incoming call"
        return ClientEvent(CALL_EVENT, live.peer, text, message_id=live.call_id)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # -- recording (with consent) -----------------------------------------------------------
    def _recording_law(self, config: CallsConfig) -> str:
        """The law this device records calls under ("" = policy off).

        Raises: CallFailed when the policy requires recording but no archive is pinned.
        """
        if config.recording != "required":
            return ""
        archive = self.client.keystore.load().archive
        if archive is None:
            raise CallFailed(
                "the home server requires calls to be recorded, but this device has no records "
                "archive pinned: it could not record, so it does not make or answer the call"
            )
        return config.law or archive.law or "the home server's records policy"

    def _start_recording(self, live: LiveCall) -> None:
        """From acceptance on (CONNECTING), record what is received and what is sent."""
        media, call = live.media, live.call
        live_states = (CallState.CONNECTING, CallState.ACTIVE, CallState.RECONNECTING)
        if not call.recorded_under or live.recording is not None or media is None:
            return
        if call.state not in live_states:
            return
        from hotline.calls.recording import CallRecorder, Track

        tracks = [Track("received", live.peer)]
        if media.sent is not None:
            tracks.append(Track("sent", self.client.handle))
        recorder = CallRecorder(call.call_id, tracks)
        media.set_taps(
            received=lambda frame: recorder.feed("received", frame),
            sent=(lambda frame: recorder.feed("sent", frame)) if media.sent is not None else None,
        )
        rec = LiveRecording(recorder, call.recorded_under)
        live.recording = rec
        rec.task = asyncio.ensure_future(self._seal_loop(live, rec))
        self._tasks.add(rec.task)
        rec.task.add_done_callback(self._tasks.discard)

    async def _seal_loop(self, live: LiveCall, rec: LiveRecording) -> None:
        """Seal the new audio every interval until the call ends (then :meth:`_seal_rest`
        has sealed the rest) or the process shuts down (then what is there is sealed)."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(rec.stop.wait(), self.recording_interval_s)
            stopping = rec.stop.is_set()
            try:
                async with self.client._tx() as (state, _account):
                    if self._queue_chunks(state, live, rec, final=False):
                        live.warnings += await flush_records(self.client.server, state)
            except HotlineError as exc:
                live.warnings.append(f"recording not sealed yet: {exc.code}: {exc.detail}")
            except OSError as exc:  # the keystore could not be saved: retried next interval
                live.warnings.append(f"recording not sealed yet: {exc}")
            if stopping:
                return

    def _seal_rest(self, state: ClientState, live: LiveCall, rec: LiveRecording) -> None:
        """The call ended: close the recording and queue the rest (flushed by the caller)."""
        if rec.stop.is_set():
            return
        rec.stop.set()
        if live.media is not None:
            live.media.set_taps(received=None, sent=None)
        rec.recorder.finish()
        self._queue_chunks(state, live, rec, final=True)
        for error in rec.recorder.errors:
            live.warnings.append(f"recording: {error}")

    def _queue_chunks(
        self, state: ClientState, live: LiveCall, rec: LiveRecording, *, final: bool
    ) -> int:
        """Seal the recording's unsealed pages as records (each under MAX_CHUNK_BYTES)."""
        from hotline.calls.recording import CODEC, MEDIA_TYPE

        call, recorder, queued = live.call, rec.recorder, 0
        while data := recorder.cut():
            offset = recorder.offset - len(data)
            rec.chunks += 1
            queued += 1
            last = final and not recorder.pending
            queue_record(
                state,
                kind="call",
                side="local",
                now_ms=self.client.now_ms(),
                sender=call.caller,
                recipients=[call.callee],
                conversation=conversation_id(call.caller, call.callee),
                body=f"call {call.call_id}: recording chunk {rec.chunks}"
                + (" (last)" if last else ""),
                detail={
                    "call_id": call.call_id,
                    "chunk": str(rec.chunks),
                    "codec": CODEC,
                    "media_type": MEDIA_TYPE,
                    "tracks": ",".join(f"{t.name}={t.speaker}" for t in recorder.tracks),
                    "offset": str(offset),
                    "size": str(len(data)),
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "final": "1" if last else "0",
                    "recorded_under": rec.law,
                    "audio": b64e(data),
                },
            )
            rec.sealed_bytes += len(data)
        return queued

    # -- media news --------------------------------------------------------------------------
    def _media(self, options: MediaOptions | None, ice: list[IceServer]) -> CallMedia:
        from hotline.calls.media import CallMedia  # aiortc loads only when a call starts

        return CallMedia(options, ice)

    async def _call_config(self) -> CallsConfig:
        """What the home server says about calls (ICE servers with fresh TURN credentials,
        the recording policy); the defaults (direct ICE, no recording) without that route."""
        try:
            config = await self.client.server.call("GET", "/v1/calls/config", response=CallsConfig)
        except (NotFound, MethodNotAllowed):
            return CallsConfig(v=1)
        return config if config is not None else CallsConfig(v=1)

    def _ice_of(self, config: CallsConfig) -> list[IceServer]:
        """The configured ICE servers, else those advertised; none: direct ICE (loopback)."""
        return self.ice_servers if self.ice_servers is not None else ice_servers_of(config)

    async def _ice_servers(self) -> list[IceServer]:
        """The ICE servers a call made now would use."""
        if self.ice_servers is not None:
            return self.ice_servers
        return self._ice_of(await self._call_config())

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
            live.heard_since = time.monotonic()
            await self._transition(live, live.call.media_connected)
        elif connection_state == "failed":
            error: HotlineError = CallFailed("the media path failed (ICE or DTLS)")
            if media.peer_certificate() is not None:
                try:
                    media.check_fingerprint(live.e2e_sdp)
                except DtlsFingerprintMismatch as exc:
                    error = exc
            established = (CallState.ACTIVE, CallState.RECONNECTING)
            if live.call.state in established and not isinstance(error, DtlsFingerprintMismatch):
                await self._transition(live, live.call.media_lost)  # the network, not the peer
                return
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


__all__ = [
    "CALL_EVENT",
    "RECORDING_INTERVAL_S",
    "CallFlows",
    "LiveCall",
    "LiveRecording",
    "RecordingNotice",
    "call_flows",
]
