"""A man in the middle of the media: the DTLS certificate must be the one the end-to-end SDP names.

The SDP travels inside Olm, so nobody outside the two devices can alter it. These tests play
the attacker who could anyway (as if the signalling went around the end-to-end channel): the
callee is fed an offer whose ``a=fingerprint`` lines belong to a third party's certificate.
The call must fail, and say why with the evidence.
"""

from __future__ import annotations

import pytest
from callkit import connect_media, flows, forge_fingerprints, mallory_fingerprints, pump, state_of

from hotline.calls.errors import DtlsFingerprintMismatch
from hotline.calls.fingerprint import check_certificate, sdp_fingerprints
from hotline.calls.media import CallMedia
from hotline.calls.state import CallState

S = CallState


async def test_rewritten_sdp_fingerprint_fails_the_call(connected_pair, monkeypatch) -> None:
    washington, ottawa = connected_pair
    callee = flows(ottawa)
    forge_fingerprints(monkeypatch, callee, "offer")
    call_id = await flows(washington).start_call(ottawa.handle)
    await pump(washington, ottawa, until=lambda: state_of(ottawa, call_id) is S.RINGING_IN)
    await callee.accept(call_id)
    await pump(
        washington,
        ottawa,
        until=lambda: (
            state_of(washington, call_id) is S.ENDED and state_of(ottawa, call_id) is S.ENDED
        ),
    )
    victim = callee.get(call_id)
    assert victim.call.outcome == "failed"
    assert isinstance(victim.error, DtlsFingerprintMismatch)
    assert victim.error.code == "dtls_fingerprint_mismatch"
    assert victim.error.extra["presented"] != victim.error.extra["expected"]
    assert "man in the middle" in victim.call.reason
    caller = flows(washington).get(call_id)
    assert caller.call.outcome == "failed"
    assert "dtls_fingerprint_mismatch" in caller.call.reason  # the callee told the caller why
    print(f"\ncallee: {victim.call.reason}\ncaller: {caller.call.reason}")


async def test_fingerprint_check_against_the_e2e_sdp() -> None:
    """Our own check, independent of aiortc's: after a genuine DTLS handshake, the peer's
    certificate matches the genuine SDP and is refused against a forged one."""
    a, b = CallMedia(), CallMedia()
    try:
        offer, answer = await connect_media(a, b)
        a.check_fingerprint(answer)
        b.check_fingerprint(offer)
        forged = mallory_fingerprints(answer)
        with pytest.raises(DtlsFingerprintMismatch) as info:
            a.check_fingerprint(forged)
        assert info.value.extra["expected"] == sdp_fingerprints(forged)[0][1]
        assert info.value.extra["presented"] == sdp_fingerprints(answer)[0][1]
    finally:
        await a.close()
        await b.close()


def test_sdp_without_fingerprint_is_refused() -> None:
    with pytest.raises(DtlsFingerprintMismatch, match="no usable DTLS fingerprint"):
        check_certificate(None, "v=0\r\na=fingerprint:md5 AA:BB\r\n")
