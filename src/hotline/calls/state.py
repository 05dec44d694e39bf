"""The call state machine of one device in one call (sans I/O).

A :class:`Call` takes events — local operations (:meth:`Call.start`, :meth:`Call.accept`,
:meth:`Call.decline`, :meth:`Call.hangup`), signals from the peer (:meth:`Call.receive`),
media transport news (:meth:`Call.media_connected`, ...) and the passing of time
(:meth:`Call.tick`) — each with an explicit ``now`` in milliseconds, and returns a
:class:`CallOutput`: the :class:`~hotline.wire.envelope.CallSignal` values to send to the peer
principal (the client layer encrypts them end to end to every device) and a
:class:`CallRecordUpdate` for every change of the call detail record (each state change, and the
first ``ringing``), so the archive holds the call's story even if the process dies mid-call.

The caller's ``offer`` rings every device of the callee; the first callee device to ``accept``
answers with its SDP, and the caller tells all of them ``answered_elsewhere`` so the others stop
ringing. A local operation in the wrong state raises :class:`WrongState`; a peer's signal that
does not fit the state (a duplicate, a late answer from a slower device) is ignored — a peer
cannot crash a call, only end it.

Recording with consent (issue 4 item 5): a side whose home server requires call recording says
so before the call connects, with a ``recording_notice`` naming the law, sent just *before* its
``offer`` (caller) or its ``answer`` (callee), so the other party knows before it rings or before
the media comes up. :attr:`Call.recorded_under` is this side's law (it records), and
:attr:`Call.peer_recorded_under` the law the other side announced; both go into every call
detail record.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Literal

from hotline.wire.envelope import CallEvent, CallSignal
from hotline.wire.errors import WrongState


class CallState(enum.Enum):
    IDLE = "idle"
    RINGING_OUT = "ringing_out"
    RINGING_IN = "ringing_in"
    CONNECTING = "connecting"
    ACTIVE = "active"
    RECONNECTING = "reconnecting"
    ENDED = "ended"


S = CallState
#: Every legal state change; :meth:`Call._set_state` refuses any other.
TRANSITIONS: dict[CallState, frozenset[CallState]] = {
    S.IDLE: frozenset({S.RINGING_OUT, S.RINGING_IN, S.ENDED}),  # ENDED: an offer while busy
    S.RINGING_OUT: frozenset({S.CONNECTING, S.ENDED}),
    S.RINGING_IN: frozenset({S.CONNECTING, S.ENDED}),
    S.CONNECTING: frozenset({S.ACTIVE, S.ENDED}),
    S.ACTIVE: frozenset({S.RECONNECTING, S.ENDED}),
    S.RECONNECTING: frozenset({S.ACTIVE, S.ENDED}),
    S.ENDED: frozenset(),
}

Outcome = Literal["answered", "declined", "missed", "busy", "failed", "cancelled"]
Role = Literal["caller", "callee"]
_OUTCOMES: frozenset[str] = frozenset(
    {"answered", "declined", "missed", "busy", "failed", "cancelled"}
)
_LIVE = frozenset({S.CONNECTING, S.ACTIVE, S.RECONNECTING})


@dataclass(frozen=True)
class CallTimeouts:
    """How long each waiting state may last, in milliseconds (issue 4: missed after 45 s).

    ``silence_ms``: no audio frame for this long in an ACTIVE call means the network is lost
    (the other side sends silence when there is nothing to say). ``reconnect_ms``: how long a
    reconnect may take before the call fails; ``retry_ms``: the least time between two
    attempts of the caller.
    """

    ring_ms: int = 45_000
    connect_ms: int = 15_000
    reconnect_ms: int = 20_000
    silence_ms: int = 3_000
    retry_ms: int = 2_000

    def __post_init__(self) -> None:
        for name in ("ring_ms", "connect_ms", "reconnect_ms", "silence_ms", "retry_ms"):
            value = getattr(self, name)
            if not 0 < value <= 3_600_000:
                raise ValueError(f"{name} must be between 1 ms and one hour, not {value}")


@dataclass(frozen=True)
class CallRecordUpdate:
    """The call detail record as it stands after one change (timestamps in ms; 0 = not yet)."""

    call_id: str
    caller: str
    callee: str
    local_device: str
    remote_device: str
    role: Role
    state: CallState
    outcome: Outcome | None
    started_at: int
    ring_at: int
    answer_at: int
    end_at: int
    reason: str
    #: the law under which this side records the call ("" = not recorded here)
    recorded_under: str = ""
    #: the law the other side announced it records under ("" = no notice)
    peer_recorded_under: str = ""

    @property
    def duration_ms(self) -> int:
        return self.end_at - self.answer_at if self.answer_at and self.end_at else 0

    def detail(self) -> dict[str, str]:
        """The record's ``detail`` map, as sealed to the custodian."""
        caller_dev, callee_dev = (
            (self.local_device, self.remote_device)
            if self.role == "caller"
            else (self.remote_device, self.local_device)
        )
        return {
            "call_id": self.call_id,
            "caller": self.caller,
            "callee": self.callee,
            "devices": f"caller={caller_dev or '-'} callee={callee_dev or '*'}",
            "role": self.role,
            "state": self.state.value,
            "outcome": self.outcome or "",
            "started_at": str(self.started_at),
            "ring_at": str(self.ring_at),
            "answer_at": str(self.answer_at),
            "end_at": str(self.end_at),
            "duration_ms": str(self.duration_ms),
            "reason": self.reason,
            "recorded_under": self.recorded_under,
            "peer_recorded_under": self.peer_recorded_under,
        }


@dataclass
class CallOutput:
    """What one event produced: signals for the peer, record updates, an SDP to apply."""

    signals: list[CallSignal] = field(default_factory=list)
    records: list[CallRecordUpdate] = field(default_factory=list)
    #: the winning callee's answer SDP (caller side): hand it to the media layer
    remote_sdp: str = ""
    #: the peer announced it records the call under this law (show it to the user)
    notice: str = ""
    #: caller, reconnecting: make a new peer connection and pass its offer to Call.reoffer
    renegotiate: bool = False
    #: callee, reconnecting: answer this offer (end to end) on a new peer connection and pass
    #: the answer to Call.reanswer
    reoffer_sdp: str = ""


class Call:
    """One device's view of one call. Create with :meth:`outgoing` or :meth:`incoming`."""

    def __init__(
        self,
        call_id: str,
        *,
        role: Role,
        caller: str,
        callee: str,
        local_device: str,
        timeouts: CallTimeouts | None = None,
    ) -> None:
        self.call_id = call_id
        self.role: Role = role
        self.caller = caller
        self.callee = callee
        self.local_device = local_device
        self.remote_device = ""
        self.timeouts = timeouts or CallTimeouts()
        self.state = S.IDLE
        self.outcome: Outcome | None = None
        self.reason = ""
        self.started_at = self.ring_at = self.answer_at = self.end_at = 0
        self._lost_at = 0
        #: reconnect attempts of the caller: when the last began, when the next is due (0: none)
        self._attempt_at = 0
        self._retry_at = 0
        self._awaiting_reanswer = False
        #: how many times the media was lost during this call
        self.losses = 0
        self.recorded_under = ""
        self.peer_recorded_under = ""
        #: recording notices from the callee's devices, by device (the answering one counts)
        self._device_notices: dict[str, str] = {}

    @classmethod
    def outgoing(
        cls, call_id: str, caller: str, callee: str, device: str, timeouts: CallTimeouts | None
    ) -> Call:
        return cls(
            call_id,
            role="caller",
            caller=caller,
            callee=callee,
            local_device=device,
            timeouts=timeouts,
        )

    @classmethod
    def incoming(
        cls, call_id: str, caller: str, callee: str, device: str, timeouts: CallTimeouts | None
    ) -> Call:
        return cls(
            call_id,
            role="callee",
            caller=caller,
            callee=callee,
            local_device=device,
            timeouts=timeouts,
        )

    @property
    def ended(self) -> bool:
        return self.state is S.ENDED

    @property
    def duration_ms(self) -> int:
        return self.snapshot().duration_ms

    def snapshot(self) -> CallRecordUpdate:
        return CallRecordUpdate(
            call_id=self.call_id,
            caller=self.caller,
            callee=self.callee,
            local_device=self.local_device,
            remote_device=self.remote_device,
            role=self.role,
            state=self.state,
            outcome=self.outcome,
            started_at=self.started_at,
            ring_at=self.ring_at,
            answer_at=self.answer_at,
            end_at=self.end_at,
            reason=self.reason,
            recorded_under=self.recorded_under,
            peer_recorded_under=self.peer_recorded_under,
        )

    # -- local operations (raise WrongState) -----------------------------------------------
    def start(self, now: int, sdp: str, *, recorded_under: str = "") -> CallOutput:
        """Caller: ring every device of the callee with our SDP offer (preceded by a recording
        notice when ``recorded_under`` names the law this side records under)."""
        self._require("start", S.IDLE, role="caller")
        self.started_at = now
        self.recorded_under = recorded_under[:512]
        out = self._set_state(S.RINGING_OUT, now)
        if self.recorded_under:
            out.signals.append(self._signal("recording_notice", reason=self.recorded_under))
        out.signals.append(self._signal("offer", sdp=sdp))
        return out

    def receive_offer(
        self,
        now: int,
        from_device: str,
        *,
        busy: bool = False,
        sent_at: int = 0,
        peer_recorded_under: str = "",
    ) -> CallOutput:
        """Callee: an offer arrived; ring (or answer ``busy`` when already in a call).
        ``peer_recorded_under``: the caller's recording notice, which came just before.

        ``sent_at`` (the caller's clock) starts the ring timeout when the offer was sent, so
        an offer delivered late (queued while a server was down) rings only for what is left
        of it, and :meth:`tick` makes a stale one a missed call at once.
        """
        self._require("receive_offer", S.IDLE, role="callee")
        self.started_at = min(now, sent_at) if sent_at > 0 else now
        self.remote_device = from_device
        self.peer_recorded_under = peer_recorded_under[:512]
        if busy:
            out = self._end(now, "busy", "already in a call")
            out.signals.append(self._signal("busy"))
            return out
        self.ring_at = now
        out = self._set_state(S.RINGING_IN, now)
        out.signals.append(self._signal("ringing"))
        return out

    def accept(self, now: int, sdp: str, *, recorded_under: str = "") -> CallOutput:
        """Callee: the user answered on this device; send our SDP answer (preceded by a
        recording notice when ``recorded_under`` names the law this side records under)."""
        self._require("accept", S.RINGING_IN)
        self.answer_at = now
        self.recorded_under = recorded_under[:512]
        out = self._set_state(S.CONNECTING, now)
        if self.recorded_under:
            out.signals.append(
                self._signal(
                    "recording_notice", reason=self.recorded_under, device=self.local_device
                )
            )
        out.signals.append(self._signal("answer", sdp=sdp, device=self.local_device))
        return out

    def decline(self, now: int) -> CallOutput:
        """Callee: the user refused the call."""
        self._require("decline", S.RINGING_IN)
        out = self._end(now, "declined", "declined by the callee")
        out.signals.append(self._signal("decline", device=self.local_device))
        return out

    def hangup(self, now: int, reason: str = "") -> CallOutput:
        """Either side: stop ringing, or end the conversation."""
        if self.state is S.RINGING_IN:
            return self.decline(now)
        if self.state is S.RINGING_OUT:
            out = self._end(now, "cancelled", reason or "cancelled by the caller")
        elif self.state in _LIVE:
            out = self._end(now, "answered", reason or "hung up")
        else:
            raise WrongState(
                f"cannot hang up a call that is {self.state.value}", state=self.state.value
            )
        out.signals.append(self._signal("hangup", reason=reason, device=self.local_device))
        return out

    # -- the peer's signals (never raise: a misfit is ignored) -----------------------------
    def receive(
        self, now: int, signal: CallSignal, from_device: str, *, own: bool = False
    ) -> CallOutput:
        """A signal from the peer principal, or (``own``) a copy of one sent by another device
        of my own principal (how my other devices learn I answered or declined)."""
        if signal.call_id != self.call_id or self.ended:
            return CallOutput()
        if own:
            return self._own_device_signal(now, signal, from_device)
        if self.role == "caller":
            return self._caller_receives(now, signal, from_device)
        return self._callee_receives(now, signal, from_device)

    def _caller_receives(self, now: int, signal: CallSignal, from_device: str) -> CallOutput:
        event, state = signal.event, self.state
        if event == "recording_notice" and signal.reason:
            if state is S.RINGING_OUT:  # counts once this device's answer comes
                self._device_notices[from_device] = signal.reason
                return CallOutput(notice=signal.reason)
            if state in _LIVE and from_device == self.remote_device:
                return self._late_notice(signal.reason)
            return CallOutput()
        if state is S.RINGING_OUT:
            if event == "ringing" and not self.ring_at:
                self.ring_at = now
                return CallOutput(records=[self.snapshot()])
            if event == "answer" and signal.sdp:
                self.remote_device = from_device
                self.answer_at = now
                self.peer_recorded_under = self._device_notices.get(from_device, "")
                out = self._set_state(S.CONNECTING, now)
                out.remote_sdp = signal.sdp
                out.signals.append(self._signal("answered_elsewhere", device=from_device))
                return out
            if event in ("decline", "busy"):
                outcome: Outcome = "declined" if event == "decline" else "busy"
                out = self._end(now, outcome, signal.reason or f"{outcome} by the callee")
                # Stop the callee's other devices ringing.
                out.signals.append(self._signal("hangup", reason=outcome))
                return out
        elif state in _LIVE and from_device == self.remote_device:
            if event == "hangup":
                return self._remote_hangup(now, signal.reason)
            if event == "reconnect" and state is S.ACTIVE:
                return self.media_lost(now)  # the callee lost us first
            if event == "reanswer" and signal.sdp and self._awaiting_reanswer:
                self._awaiting_reanswer = False
                return CallOutput(remote_sdp=signal.sdp)
        return CallOutput()

    def _callee_receives(self, now: int, signal: CallSignal, from_device: str) -> CallOutput:
        event, state = signal.event, self.state
        if from_device != self.remote_device:
            return CallOutput()  # only the caller's device that offered speaks for the call
        if event == "recording_notice" and signal.reason:
            if state is S.RINGING_IN:
                self.peer_recorded_under = signal.reason
                return CallOutput(records=[self.snapshot()], notice=signal.reason)
            if state in _LIVE:
                return self._late_notice(signal.reason)
        elif event == "answered_elsewhere" and signal.device != self.local_device:
            if state in (S.RINGING_IN, S.CONNECTING):
                return self._end(now, "answered", f"answered on device {signal.device}")
        elif event == "hangup" and state is S.RINGING_IN:
            reason = signal.reason
            outcome: Outcome = reason if reason in _OUTCOMES else "cancelled"  # type: ignore[assignment]
            return self._end(now, outcome, reason or "the caller hung up")
        elif event == "hangup" and state in _LIVE:
            return self._remote_hangup(now, signal.reason)
        elif event == "reoffer" and signal.sdp and state in (S.ACTIVE, S.RECONNECTING):
            out = self._lose(now) if state is S.ACTIVE else CallOutput()
            out.reoffer_sdp = signal.sdp
            return out
        return CallOutput()

    def _own_device_signal(self, now: int, signal: CallSignal, from_device: str) -> CallOutput:
        if self.role != "callee" or self.state is not S.RINGING_IN:
            return CallOutput()
        if signal.event == "answer":
            return self._end(now, "answered", f"answered on device {from_device}")
        if signal.event == "decline":
            return self._end(now, "declined", f"declined on device {from_device}")
        return CallOutput()

    def _late_notice(self, law: str) -> CallOutput:
        """A notice once the call is up: too late for consent before connecting, but the user
        and the record must still know (an honest peer never sends one this late)."""
        if law == self.peer_recorded_under:
            return CallOutput()
        self.peer_recorded_under = law
        return CallOutput(records=[self.snapshot()], notice=law)

    def _remote_hangup(self, now: int, reason: str) -> CallOutput:
        if reason.startswith("failed"):
            return self._end(now, "failed", f"the other side reports {reason}")
        return self._end(now, "answered", reason or "the other side hung up")

    # -- media transport news --------------------------------------------------------------
    def media_connected(self, now: int) -> CallOutput:
        """ICE and DTLS are up (and the DTLS fingerprint checked): audio flows."""
        if self.state not in (S.CONNECTING, S.RECONNECTING):
            return CallOutput()  # a late or repeated report: nothing changes
        self._retry_at = 0
        self._awaiting_reanswer = False
        return self._set_state(S.ACTIVE, now)

    def media_lost(self, now: int) -> CallOutput:
        """The media path went quiet, or a reconnect attempt failed: try to get it back until
        ``reconnect_ms`` passes (see the module docstring)."""
        if self.state is S.ACTIVE:
            out = self._lose(now)
            if self.role == "caller":
                return self._renegotiate(now, out)
            out.signals.append(self._signal("reconnect", device=self.local_device))
            return out
        if self.state is S.RECONNECTING and now - self._lost_at >= self.timeouts.reconnect_ms:
            return self.tick(now)  # the window is over: no more attempts
        if self.state is S.RECONNECTING and self.role == "caller":
            # this attempt failed: the next one once retry_ms has passed since it began
            self._awaiting_reanswer = False
            self._retry_at = max(now, self._attempt_at + self.timeouts.retry_ms)
            return self._renegotiate(now, CallOutput()) if self._retry_at <= now else CallOutput()
        return CallOutput()

    def reoffer(self, now: int, sdp: str) -> CallOutput:
        """Caller, reconnecting: the new peer connection's offer, for the callee's device."""
        self._require("reoffer", S.RECONNECTING, role="caller")
        self._awaiting_reanswer = True
        return CallOutput(signals=[self._signal("reoffer", sdp=sdp)])

    def reanswer(self, now: int, sdp: str) -> CallOutput:
        """Callee, reconnecting: the answer of its new peer connection to the ``reoffer``."""
        self._require("reanswer", S.RECONNECTING, role="callee")
        return CallOutput(signals=[self._signal("reanswer", sdp=sdp, device=self.local_device)])

    def _lose(self, now: int) -> CallOutput:
        self._lost_at = now
        self.losses += 1
        return self._set_state(S.RECONNECTING, now)

    def _renegotiate(self, now: int, out: CallOutput) -> CallOutput:
        self._attempt_at = now
        self._retry_at = 0
        out.renegotiate = True
        return out

    def media_failed(self, now: int, reason: str) -> CallOutput:
        """The media path failed for good (ICE failure, DTLS fingerprint mismatch, ...)."""
        if self.state not in _LIVE:
            return CallOutput()
        return self.fail(now, reason)

    def fail(self, now: int, reason: str) -> CallOutput:
        """End the call as failed for a local reason (media, a signal that could not be sent);
        the peer is told unless it never heard of the call."""
        if self.ended:
            return CallOutput()
        told = self.state is not S.IDLE
        out = self._end(now, "failed", reason)
        if told:
            out.signals.append(self._signal("hangup", reason=f"failed: {reason}"[:512]))
        return out

    def deadline(self) -> int | None:
        """When :meth:`tick` next has something to do (ms), or None: no timer running."""
        t = self.timeouts
        if self.state in (S.RINGING_OUT, S.RINGING_IN):
            return self.started_at + t.ring_ms
        if self.state is S.CONNECTING:
            return self.answer_at + t.connect_ms
        if self.state is S.RECONNECTING:
            give_up = self._lost_at + t.reconnect_ms
            return min(give_up, self._retry_at) if self._retry_at else give_up
        return None

    def tick(self, now: int) -> CallOutput:
        """Apply the timeouts: missed after ``ring_ms``; failed if media never (re)connects."""
        t = self.timeouts
        if self.state is S.RINGING_OUT and now - self.started_at >= t.ring_ms:
            out = self._end(now, "missed", f"no answer within {t.ring_ms} ms")
            out.signals.append(self._signal("hangup", reason="missed"))
            return out
        if self.state is S.RINGING_IN and now - self.started_at >= t.ring_ms:
            return self._end(now, "missed", f"not answered within {t.ring_ms} ms")
        if self.state is S.CONNECTING and now - self.answer_at >= t.connect_ms:
            return self.media_failed(now, f"media did not connect within {t.connect_ms} ms")
        if self.state is S.RECONNECTING and now - self._lost_at >= t.reconnect_ms:
            return self.media_failed(
                now, f"network lost: the media did not come back within {t.reconnect_ms} ms"
            )
        if self.state is S.RECONNECTING and self._retry_at and now >= self._retry_at:
            return self._renegotiate(now, CallOutput())
        return CallOutput()

    # -- internals -------------------------------------------------------------------------
    def _require(self, operation: str, state: CallState, *, role: Role | None = None) -> None:
        if self.state is not state or (role is not None and self.role != role):
            raise WrongState(
                f"cannot {operation.replace('_', ' ')} as {self.role} of a call that is "
                f"{self.state.value}",
                state=self.state.value,
            )

    def _set_state(self, new: CallState, now: int) -> CallOutput:
        if new not in TRANSITIONS[self.state]:
            raise WrongState(
                f"illegal call transition {self.state.value} -> {new.value}",
                state=self.state.value,
            )
        self.state = new
        return CallOutput(records=[self.snapshot()])

    def _end(self, now: int, outcome: Outcome, reason: str) -> CallOutput:
        self.outcome = outcome
        self.reason = reason[:512]
        self.end_at = max(now, self.started_at)
        return self._set_state(S.ENDED, now)

    def _signal(
        self, event: CallEvent, *, sdp: str = "", reason: str = "", device: str = ""
    ) -> CallSignal:
        return CallSignal(call_id=self.call_id, event=event, sdp=sdp, reason=reason, device=device)


__all__ = [
    "TRANSITIONS",
    "Call",
    "CallOutput",
    "CallRecordUpdate",
    "CallState",
    "CallTimeouts",
    "Outcome",
]
