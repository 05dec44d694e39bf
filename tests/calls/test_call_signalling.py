"""Call signalling between real clients through a real server: ring, answer, hang up, records."""

from __future__ import annotations

from callkit import cdrs, flows, pump, state_of

from hotline.calls.state import CallState

S = CallState


async def answered_call(washington, ottawa) -> str:
    call_id = await flows(washington).start_call(ottawa.handle)
    await pump(washington, ottawa, until=lambda: state_of(ottawa, call_id) is S.RINGING_IN)
    await pump(washington, ottawa, until=lambda: flows(washington).get(call_id).call.ring_at > 0)
    await flows(ottawa).accept(call_id)
    await pump(
        washington,
        ottawa,
        until=lambda: (
            state_of(washington, call_id) is S.ACTIVE and state_of(ottawa, call_id) is S.ACTIVE
        ),
    )
    return call_id


async def test_answered_call_leaves_records_on_both_sides(connected_pair, live_server) -> None:
    washington, ottawa = connected_pair
    call_id = await answered_call(washington, ottawa)
    await flows(washington).hangup(call_id)
    await pump(washington, ottawa, until=lambda: state_of(ottawa, call_id) is S.ENDED)
    assert flows(washington).get(call_id).call.outcome == "answered"
    assert flows(ottawa).get(call_id).call.outcome == "answered"

    w = cdrs(live_server, washington.handle, call_id)
    o = cdrs(live_server, ottawa.handle, call_id)
    assert [d["state"] for d in w] == [
        "ringing_out",
        "ringing_out",
        "connecting",
        "active",
        "ended",
    ]
    assert [d["state"] for d in o] == ["ringing_in", "connecting", "active", "ended"]
    for final in (w[-1], o[-1]):
        assert final["outcome"] == "answered"
        assert final["caller"] == washington.handle and final["callee"] == ottawa.handle
        assert int(final["end_at"]) >= int(final["answer_at"]) >= int(final["started_at"]) > 0
        assert int(final["duration_ms"]) == int(final["end_at"]) - int(final["answer_at"])
        assert final["devices"] == f"caller={washington.device_id} callee={ottawa.device_id}"
    assert int(w[1]["ring_at"]) > 0  # the callee's "ringing" reached the caller
