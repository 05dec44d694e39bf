"""The sans-I/O call state machine: scenarios, timeouts, and property tests over random events."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.calls.state import TRANSITIONS, Call, CallOutput, CallState, CallTimeouts
from hotline.wire.envelope import CallSignal
from hotline.wire.errors import WrongState

S = CallState
CALLER, CALLEE = "potus@washington.test", "pm@ottawa.test"


def caller(timeouts: CallTimeouts | None = None) -> Call:
    return Call.outgoing("c1", CALLER, CALLEE, "wdev", timeouts)


def callee(device: str = "odev", timeouts: CallTimeouts | None = None) -> Call:
    return Call.incoming("c1", CALLER, CALLEE, device, timeouts)


def sig(event: str, **kw: str) -> CallSignal:
    return CallSignal(call_id="c1", event=event, **kw)  # type: ignore[arg-type]


def test_answered_call_story_on_both_sides() -> None:
    a, b = caller(), callee()
    out = a.start(1000, "v=0 offer")
    assert a.state is S.RINGING_OUT and [s.event for s in out.signals] == ["offer"]
    out = b.receive_offer(1010, "wdev")
    assert b.state is S.RINGING_IN and [s.event for s in out.signals] == ["ringing"]
    assert a.receive(1020, out.signals[0], "odev").records[0].ring_at == 1020
    out = b.accept(2000, "v=0 answer")
    answer = out.signals[0]
    assert answer.event == "answer" and answer.device == "odev"
    out = a.receive(2010, answer, "odev")
    assert a.state is S.CONNECTING and out.remote_sdp == "v=0 answer"
    assert [(s.event, s.device) for s in out.signals] == [("answered_elsewhere", "odev")]
    assert b.receive(2020, out.signals[0], "wdev").records == []  # it is me: stay connecting
    a.media_connected(2050)
    b.media_connected(2050)
    assert a.state is b.state is S.ACTIVE
    out = a.hangup(7000)
    b.receive(7010, out.signals[0], "wdev")
    assert a.outcome == b.outcome == "answered"
    assert a.duration_ms == 4990 and b.duration_ms == 5010
    record = a.snapshot().detail()
    assert record["outcome"] == "answered" and record["devices"] == "caller=wdev callee=odev"


def test_second_device_stops_ringing_when_first_answers() -> None:
    a, b1, b2 = caller(), callee("d1"), callee("d2")
    a.start(0, "offer")
    b1.receive_offer(1, "wdev")
    b2.receive_offer(1, "wdev")
    answer = b1.accept(5, "answer").signals[0]
    # b2 learns it from its own principal's copy of the answer, and from the caller
    assert b2.receive(6, answer, "d1", own=True).records[0].state is S.ENDED
    assert b2.outcome == "answered" and "d1" in b2.reason
    elsewhere = a.receive(7, answer, "d1").signals[0]
    assert b1.receive(8, elsewhere, "wdev").records == []
    assert b1.state is S.CONNECTING


def test_late_accept_loses_the_race() -> None:
    a, b1, b2 = caller(), callee("d1"), callee("d2")
    a.start(0, "offer")
    b1.receive_offer(1, "wdev")
    b2.receive_offer(1, "wdev")
    first = b1.accept(5, "answer1").signals[0]
    b2.accept(6, "answer2")
    elsewhere = a.receive(7, first, "d1").signals[0]
    assert a.receive(8, sig("answer", sdp="answer2"), "d2").signals == []
    b2.receive(9, elsewhere, "wdev")
    assert b2.state is S.ENDED and b2.outcome == "answered"


@pytest.mark.parametrize(("event", "outcome"), [("decline", "declined"), ("busy", "busy")])
def test_decline_and_busy_end_the_caller_and_stop_other_devices(event: str, outcome: str) -> None:
    a = caller()
    a.start(0, "offer")
    out = a.receive(10, sig(event), "d1")
    assert a.state is S.ENDED and a.outcome == outcome
    assert [(s.event, s.reason) for s in out.signals] == [("hangup", outcome)]
    b2 = callee("d2")
    b2.receive_offer(1, "wdev")
    b2.receive(11, out.signals[0], "wdev")
    assert b2.outcome == outcome


def test_busy_callee_records_and_answers_busy() -> None:
    b = callee()
    out = b.receive_offer(5, "wdev", busy=True)
    assert b.state is S.ENDED and b.outcome == "busy"
    assert [s.event for s in out.signals] == ["busy"]
    assert out.records[0].outcome == "busy"


def test_missed_after_ring_timeout() -> None:
    t = CallTimeouts(ring_ms=45_000)
    a, b = caller(t), callee(timeouts=t)
    a.start(0, "offer")
    b.receive_offer(100, "wdev")
    assert a.tick(44_999).records == [] and a.state is S.RINGING_OUT
    out = a.tick(45_000)
    assert a.outcome == "missed" and out.signals[0].reason == "missed"
    b.receive(45_010, out.signals[0], "wdev")
    assert b.outcome == "missed"
    b2 = callee(timeouts=t)
    b2.receive_offer(0, "wdev")
    b2.tick(45_000)
    assert b2.outcome == "missed"


def test_hangup_during_ringing_is_cancelled() -> None:
    a, b = caller(), callee()
    a.start(0, "offer")
    b.receive_offer(1, "wdev")
    out = a.hangup(3)
    assert a.outcome == "cancelled"
    b.receive(4, out.signals[0], "wdev")
    assert b.outcome == "cancelled" and b.state is S.ENDED


def test_connect_and_reconnect_timeouts_fail_the_call() -> None:
    t = CallTimeouts(connect_ms=100, reconnect_ms=50)
    b = callee(timeouts=t)
    b.receive_offer(0, "wdev")
    b.accept(10, "answer")
    out = b.tick(110)
    assert b.outcome == "failed" and out.signals[0].reason.startswith("failed")
    a = caller(t)
    a.start(0, "offer")
    a.receive(5, sig("answer", sdp="x", device="d"), "d")
    a.media_connected(6)
    a.media_lost(10)
    assert a.state is S.RECONNECTING
    a.media_connected(20)
    assert a.state is S.ACTIVE
    a.media_lost(30)
    a.tick(80)
    assert a.outcome == "failed"


def active_pair(t: CallTimeouts | None = None) -> tuple[Call, Call]:
    a, b = caller(t), callee(timeouts=t)
    a.start(0, "offer")
    b.receive_offer(1, "wdev")
    a.receive(3, b.accept(2, "answer").signals[0], "odev")
    a.media_connected(4)
    b.media_connected(4)
    return a, b


def test_network_loss_renegotiates_end_to_end_and_comes_back() -> None:
    a, b = active_pair()
    out = a.media_lost(5_000)  # the caller noticed: it re-offers on a new connection
    assert a.state is S.RECONNECTING and out.renegotiate and not out.signals
    assert out.records[-1].state is S.RECONNECTING  # a CDR at this state change too
    reoffer = a.reoffer(5_010, "offer2").signals[0]
    assert (reoffer.event, reoffer.sdp) == ("reoffer", "offer2")
    out = b.receive(5_020, reoffer, "wdev")  # the callee had not noticed yet
    assert b.state is S.RECONNECTING and out.reoffer_sdp == "offer2"
    assert out.records[-1].state is S.RECONNECTING
    reanswer = b.reanswer(5_030, "answer2").signals[0]
    assert (reanswer.event, reanswer.sdp, reanswer.device) == ("reanswer", "answer2", "odev")
    assert a.receive(5_040, reanswer, "odev").remote_sdp == "answer2"
    assert a.receive(5_041, reanswer, "odev").remote_sdp == ""  # a duplicate: ignored
    assert a.media_connected(5_100).records[-1].state is S.ACTIVE
    assert b.media_connected(5_100).records[-1].state is S.ACTIVE
    out = a.hangup(9_000)
    b.receive(9_010, out.signals[0], "wdev")
    assert a.outcome == b.outcome == "answered" and a.losses == b.losses == 1


def test_the_callee_noticing_first_asks_the_caller_to_reoffer() -> None:
    a, b = active_pair()
    out = b.media_lost(5_000)
    assert b.state is S.RECONNECTING and not out.renegotiate
    assert [s.event for s in out.signals] == ["reconnect"]
    out = a.receive(5_010, out.signals[0], "odev")
    assert a.state is S.RECONNECTING and out.renegotiate
    assert a.receive(5_020, sig("reconnect"), "odev").renegotiate is False  # already on it
    assert a.receive(5_030, sig("reconnect"), "mallory").records == []


def test_failed_attempts_are_retried_then_the_call_ends_network_lost() -> None:
    t = CallTimeouts(reconnect_ms=20_000, retry_ms=2_000)
    a, b = active_pair(t)
    a.media_lost(10_000)
    a.reoffer(10_000, "offer2")
    assert a.media_lost(10_500).renegotiate is False  # the attempt failed fast: wait
    assert a.deadline() == 12_000
    assert a.tick(11_999).renegotiate is False
    assert a.tick(12_000).renegotiate is True
    a.reoffer(12_000, "offer3")
    assert a.media_lost(15_000).renegotiate is True  # failed after retry_ms: at once
    assert a.deadline() == 30_000
    out = a.tick(30_000)
    assert a.outcome == "failed" and a.reason.startswith("network lost")
    assert out.records[-1].outcome == "failed"
    assert out.signals[0].event == "hangup" and "network lost" in out.signals[0].reason
    b.media_lost(10_000)
    b.receive(30_010, out.signals[0], "wdev")
    assert b.outcome == "failed" and "network lost" in b.reason


def test_reconnect_signals_in_the_wrong_state_or_from_others_are_ignored() -> None:
    a, b = active_pair()
    assert a.receive(10, sig("reanswer", sdp="x"), "odev").remote_sdp == ""  # not asked
    assert b.receive(10, sig("reoffer", sdp="x"), "mallory").records == []
    assert b.receive(10, sig("reoffer"), "wdev").records == []  # no SDP
    assert a.state is b.state is S.ACTIVE
    ringing = callee()
    ringing.receive_offer(0, "wdev")
    assert ringing.receive(1, sig("reoffer", sdp="x"), "wdev").reoffer_sdp == ""
    with pytest.raises(WrongState, match="reoffer"):
        a.reoffer(11, "sdp")
    with pytest.raises(WrongState, match="reanswer"):
        b.reanswer(11, "sdp")
    b.media_lost(12)
    with pytest.raises(WrongState, match="reoffer"):
        b.reoffer(13, "sdp")  # only the caller re-offers


def test_peer_failure_report_makes_outcome_failed() -> None:
    a = caller()
    a.start(0, "offer")
    a.receive(5, sig("answer", sdp="x"), "d")
    a.receive(9, sig("hangup", reason="failed: dtls_fingerprint_mismatch"), "d")
    assert a.outcome == "failed" and "dtls_fingerprint_mismatch" in a.reason


def test_wrong_state_names_the_state() -> None:
    b = callee()
    with pytest.raises(WrongState) as info:
        b.accept(0, "answer")
    assert info.value.extra["state"] == "idle" and info.value.code == "wrong_state"
    with pytest.raises(WrongState):
        caller().hangup(0)
    with pytest.raises(WrongState):
        callee().start(0, "offer")  # a callee does not offer


def test_signals_from_strangers_and_other_calls_are_ignored() -> None:
    b = callee()
    b.receive_offer(0, "wdev")
    assert b.receive(1, sig("hangup"), "mallory-dev").records == []
    other = CallSignal(call_id="c2", event="hangup")
    assert b.receive(1, other, "wdev").records == []
    assert b.state is S.RINGING_IN


def test_timeouts_are_validated() -> None:
    with pytest.raises(ValueError, match="ring_ms"):
        CallTimeouts(ring_ms=0)


# -- properties ------------------------------------------------------------------------------
EVENTS = [
    "offer", "answer", "ringing", "decline", "busy", "hangup", "answered_elsewhere", "accept",
    "reconnect", "reoffer", "reanswer",
]  # fmt: skip
LOCAL = [
    "start", "receive_offer", "busy_offer", "accept", "decline", "hangup", "reoffer", "reanswer",
]  # fmt: skip
MEDIA = ["connected", "lost", "failed", "abort", "tick"]

step = st.one_of(
    st.tuples(st.just("local"), st.sampled_from(LOCAL)),
    st.tuples(
        st.just("remote"),
        st.sampled_from(EVENTS),
        st.sampled_from(["wdev", "odev", "d2"]),
        st.sampled_from(["", "odev", "d2"]),
        st.booleans(),
        st.sampled_from(["", "missed", "failed: x", "busy"]),
    ),
    st.tuples(st.just("media"), st.sampled_from(MEDIA)),
)


def apply_step(call: Call, now: int, item: tuple) -> CallOutput | None:  # type: ignore[type-arg]
    kind = item[0]
    if kind == "remote":
        _, event, dev, target, own, reason = item
        s = CallSignal(call_id="c1", event=event, sdp="sdp", device=target, reason=reason)
        return call.receive(now, s, dev, own=own)
    ops = {
        "start": lambda: call.start(now, "offer"),
        "receive_offer": lambda: call.receive_offer(now, "wdev"),
        "busy_offer": lambda: call.receive_offer(now, "wdev", busy=True),
        "accept": lambda: call.accept(now, "answer"),
        "decline": lambda: call.decline(now),
        "hangup": lambda: call.hangup(now),
        "reoffer": lambda: call.reoffer(now, "offer2"),
        "reanswer": lambda: call.reanswer(now, "answer2"),
        "connected": lambda: call.media_connected(now),
        "lost": lambda: call.media_lost(now),
        "failed": lambda: call.media_failed(now, "ice failed"),
        "abort": lambda: call.fail(now, "could not send"),
        "tick": lambda: call.tick(now),
    }
    try:
        return ops[item[1]]()
    except WrongState as exc:
        assert kind == "local", "only local operations may raise"
        assert exc.extra["state"] == call.state.value
        return None


@settings(max_examples=300, deadline=None)
@given(
    role=st.sampled_from(["caller", "callee"]),
    steps=st.lists(st.tuples(st.integers(0, 60_000), step), max_size=30),
)
def test_random_event_sequences_only_take_legal_transitions(role: str, steps: list) -> None:  # type: ignore[type-arg]
    t = CallTimeouts(ring_ms=45_000, connect_ms=5_000, reconnect_ms=3_000)
    call = caller(t) if role == "caller" else callee(timeouts=t)
    now = 0
    for delta, item in steps:
        now += delta
        before = call.state
        deadline = call.deadline()
        out = apply_step(call, now, item)
        after = call.state
        if item == ("media", "tick") and (deadline is None or now < deadline):
            assert after is before  # a timer acts only once due
        assert after is before or after in TRANSITIONS[before]
        if before is S.ENDED:
            assert after is S.ENDED
            assert out is None or (not out.signals and not out.records)
        if after is not before:
            # every state change produces a record update showing the new state
            assert out is not None and out.records and out.records[-1].state is after
        if after is S.ENDED:
            assert call.outcome is not None and call.end_at >= call.started_at
            assert call.duration_ms >= 0
        else:
            assert call.outcome is None


def test_an_offer_delivered_late_rings_only_for_what_is_left() -> None:
    b = callee(timeouts=CallTimeouts(ring_ms=45_000))
    b.receive_offer(100_000, "wdev", sent_at=50_000)  # queued for 50 s somewhere
    assert b.state is S.RINGING_IN and b.deadline() == 95_000
    b.tick(100_000)
    assert b.outcome == "missed"
    fresh = callee()
    fresh.receive_offer(100_000, "wdev", sent_at=100_500)  # the caller's clock is ahead
    assert fresh.started_at == 100_000
