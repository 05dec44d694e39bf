"""Reconnect after a network loss, in one process: real clients, server and aiortc on loopback.

The loss itself is made real (a cut network link) in ``test_call_network_loss``, which needs
root; here the reconnect is started the way the loss detector starts it
(``CallFlows.reconnect``), so every machine runs the renegotiation: a brand-new peer connection
whose offer and answer travel end to end, the DTLS fingerprint checked again, media back, the
call detail records at each step — and a man in the middle of the *re*-offer refused.
"""

from __future__ import annotations

import pytest
from callkit import cdrs, flows, forge_fingerprints, pump, state_of

from hotline.calls.errors import DtlsFingerprintMismatch
from hotline.calls.fingerprint import sdp_fingerprints
from hotline.calls.state import CallState
from hotline.client.device import HotlineClient

S = CallState
pytestmark = pytest.mark.slow


async def active_call(washington: HotlineClient, ottawa: HotlineClient) -> str:
    call_id = await flows(washington).start_call(ottawa.handle)
    await pump(washington, ottawa, until=lambda: state_of(ottawa, call_id) is S.RINGING_IN)
    await flows(ottawa).accept(call_id)
    both = lambda: all(state_of(c, call_id) is S.ACTIVE for c in (washington, ottawa))  # noqa: E731
    await pump(washington, ottawa, until=both)
    return call_id


async def test_reconnect_renegotiates_a_new_connection_end_to_end(
    connected_pair, live_server
) -> None:
    washington, ottawa = connected_pair
    call_id = await active_call(washington, ottawa)
    w, o = flows(washington).get(call_id), flows(ottawa).get(call_id)
    assert w.media is not None and o.media is not None
    first = sdp_fingerprints(o.e2e_sdp), sdp_fingerprints(w.e2e_sdp)

    await flows(ottawa).reconnect(call_id)  # the callee noticed: it asks the caller
    assert o.call.state is S.RECONNECTING
    renewed = lambda: w.media.connections == o.media.connections == 2  # type: ignore[union-attr]  # noqa: E731
    both = lambda: all(state_of(c, call_id) is S.ACTIVE for c in (washington, ottawa))  # noqa: E731
    await pump(washington, ottawa, until=lambda: renewed() and both())
    # new certificates on both sides, checked against the new end-to-end SDPs
    assert sdp_fingerprints(o.e2e_sdp) != first[0] and sdp_fingerprints(w.e2e_sdp) != first[1]
    o.media.check_fingerprint(o.e2e_sdp)
    w.media.check_fingerprint(w.e2e_sdp)
    heard = o.media.incoming.frames, w.media.incoming.frames
    await pump(  # audio (silence: nobody plays anything) flows both ways again
        washington, ottawa,
        until=lambda: o.media.incoming.frames > heard[0] + 25  # type: ignore[union-attr]
        and w.media.incoming.frames > heard[1] + 25,  # type: ignore[union-attr]
    )  # fmt: skip
    await flows(washington).hangup(call_id)
    await pump(washington, ottawa, until=lambda: state_of(ottawa, call_id) is S.ENDED)

    for client in (washington, ottawa):
        records = cdrs(live_server, client.handle, call_id)
        states = [r["state"] for r in records]
        assert states[-4:] == ["active", "reconnecting", "active", "ended"], states
        assert records[-1]["outcome"] == "answered"


async def test_a_tampered_reoffer_fails_the_reconnect(
    connected_pair, live_server, monkeypatch
) -> None:
    """Someone able to alter the re-offer (as if it went around the end-to-end channel) puts
    a third party's fingerprint in it: the new connection is refused like the first would be."""
    washington, ottawa = connected_pair
    call_id = await active_call(washington, ottawa)
    callee = flows(ottawa)
    forge_fingerprints(monkeypatch, callee, "reoffer")
    await flows(washington).reconnect(call_id)
    ended = lambda: all(state_of(c, call_id) is S.ENDED for c in (washington, ottawa))  # noqa: E731
    await pump(washington, ottawa, until=ended)

    victim = callee.get(call_id)
    assert victim.call.outcome == "failed"
    assert isinstance(victim.error, DtlsFingerprintMismatch)
    assert "man in the middle" in victim.call.reason
    caller = flows(washington).get(call_id)
    assert caller.call.outcome == "failed"
    assert "dtls_fingerprint_mismatch" in caller.call.reason  # the callee told the caller why
    for client in (washington, ottawa):
        records = cdrs(live_server, client.handle, call_id)
        states = [r["state"] for r in records]
        # (the caller's side of the DTLS handshake may complete before the callee refuses)
        assert "reconnecting" in states and states[-1] == "ended", states
        assert records[-1]["outcome"] == "failed"
        assert "dtls_fingerprint_mismatch" in records[-1]["reason"] or (
            "man in the middle" in records[-1]["reason"]
        )
    assert [r["state"] for r in cdrs(live_server, ottawa.handle, call_id)][-2:] == [
        "reconnecting",
        "ended",
    ]
