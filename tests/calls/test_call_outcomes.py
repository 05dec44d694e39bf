"""Call outcomes through a real server: decline, missed, busy, cancelled, a second callee
device that stops ringing, and a crash mid-call that still leaves the call on the record."""

from __future__ import annotations

import pytest
from callkit import cdrs, flows, pump, state_of
from harness import FAST_SCRYPT, PASSPHRASE, connect

from hotline.calls.errors import NoSuchCall
from hotline.calls.state import CallState, CallTimeouts
from hotline.client.linked_devices import provision_device
from hotline.wire.errors import WrongState

S = CallState


def ended(*clients, call_id: str):
    return lambda: all(state_of(c, call_id) is S.ENDED for c in clients)


async def ring(washington, *callees) -> str:
    call_id = await flows(washington).start_call(callees[0].handle)
    await pump(
        washington,
        *callees,
        until=lambda: all(state_of(c, call_id) is S.RINGING_IN for c in callees),
    )
    return call_id


async def test_decline(connected_pair, live_server) -> None:
    washington, ottawa = connected_pair
    call_id = await ring(washington, ottawa)
    await flows(ottawa).decline(call_id)
    await pump(washington, ottawa, until=ended(washington, call_id=call_id))
    assert flows(washington).get(call_id).call.outcome == "declined"
    assert cdrs(live_server, washington.handle, call_id)[-1]["outcome"] == "declined"
    assert cdrs(live_server, ottawa.handle, call_id)[-1]["outcome"] == "declined"
    with pytest.raises(WrongState):
        await flows(ottawa).accept(call_id)  # too late


async def test_missed_after_a_short_timeout(connected_pair, live_server) -> None:
    washington, ottawa = connected_pair
    for client in (washington, ottawa):
        flows(client).timeouts = CallTimeouts(ring_ms=300)
    call_id = await flows(washington).start_call(ottawa.handle)  # it may be over before it rings
    await pump(washington, ottawa, until=ended(washington, ottawa, call_id=call_id))
    for client in (washington, ottawa):
        assert flows(client).get(call_id).call.outcome == "missed"
        final = cdrs(live_server, client.handle, call_id)[-1]
        assert final["outcome"] == "missed" and final["answer_at"] == "0"


async def test_hangup_while_ringing_is_cancelled(connected_pair, live_server) -> None:
    washington, ottawa = connected_pair
    call_id = await ring(washington, ottawa)
    await flows(washington).hangup(call_id)
    await pump(washington, ottawa, until=ended(ottawa, call_id=call_id))
    assert flows(ottawa).get(call_id).call.outcome == "cancelled"
    assert [d["state"] for d in cdrs(live_server, ottawa.handle, call_id)] == [
        "ringing_in",
        "ended",
    ]


async def test_busy_when_already_in_a_call(connected_pair, make_principal, live_server) -> None:
    washington, ottawa = connected_pair
    london = await make_principal("pm-uk", "Prime Minister of the United Kingdom")
    await connect(london, ottawa)
    first = await ring(washington, ottawa)
    await flows(ottawa).accept(first)
    await pump(washington, ottawa, until=lambda: state_of(ottawa, first) is S.ACTIVE)
    with pytest.raises(WrongState, match="already in a call"):
        await flows(ottawa).start_call(london.handle)
    second = await flows(london).start_call(ottawa.handle)
    await pump(london, ottawa, until=ended(london, call_id=second))
    assert flows(london).get(second).call.outcome == "busy"
    assert cdrs(live_server, ottawa.handle, second)[-1]["outcome"] == "busy"
    assert state_of(ottawa, first) is S.ACTIVE  # the call in progress is untouched


async def test_second_device_stops_ringing_when_the_first_answers(
    connected_pair, clients, tmp_path, live_server
) -> None:
    washington, ottawa = connected_pair
    phone = await provision_device(ottawa, tmp_path / "pm-phone", PASSPHRASE, scrypt=FAST_SCRYPT)
    clients.append(phone)
    call_id = await ring(washington, ottawa, phone)
    await flows(ottawa).accept(call_id)
    await pump(
        washington,
        ottawa,
        phone,
        until=lambda: (
            state_of(phone, call_id) is S.ENDED
            and state_of(washington, call_id) is S.ACTIVE
            and state_of(ottawa, call_id) is S.ACTIVE
        ),
    )
    stopped = flows(phone).get(call_id).call
    assert stopped.outcome == "answered" and ottawa.device_id in stopped.reason
    assert flows(washington).get(call_id).call.remote_device == ottawa.device_id
    phone_records = [
        d
        for d in cdrs(live_server, ottawa.handle, call_id)
        if f"callee={phone.device_id}" in d["devices"]
    ]
    assert [d["state"] for d in phone_records] == ["ringing_in", "ended"]
    with pytest.raises(WrongState):
        await flows(phone).accept(call_id)


async def test_crash_mid_call_leaves_the_start_on_record(connected_pair, live_server) -> None:
    washington, ottawa = connected_pair
    call_id = await ring(washington, ottawa)
    await flows(ottawa).accept(call_id)
    await pump(washington, ottawa, until=lambda: state_of(washington, call_id) is S.ACTIVE)
    # "crash": the processes vanish without a hangup (media released, nothing signalled)
    for client in (washington, ottawa):
        await flows(client).shutdown()
    w = [d["state"] for d in cdrs(live_server, washington.handle, call_id)]
    o = [d["state"] for d in cdrs(live_server, ottawa.handle, call_id)]
    assert w[:2] == ["ringing_out", "ringing_out"] and "ended" not in w
    assert o[:2] == ["ringing_in", "connecting"] and "ended" not in o


async def test_unknown_call(connected_pair) -> None:
    washington, _ = connected_pair
    with pytest.raises(NoSuchCall):
        await flows(washington).hangup("nope")
