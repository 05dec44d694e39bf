"""Interactive SAS verification (vodozemac Sas) between two devices, through the server."""

from __future__ import annotations

from hotline.client.device import HotlineClient


def codes(events: list, kind: str = "sas") -> list[str]:
    return [e.text for e in events if e.kind == kind]


async def test_sas_round_trip_marks_both_verified(connected_pair) -> None:
    washington, ottawa = connected_pair
    flow = await washington.start_sas(ottawa.handle)
    assert codes(await ottawa.sync()) == ["verification requested"]
    w_codes = codes(await washington.sync())
    o_codes = codes(await ottawa.sync())
    assert len(w_codes) == 1 and w_codes == o_codes and w_codes[0].startswith("compare: ")
    w_flow = washington.sas.flows[flow.flow_id]
    o_flow = ottawa.sas.flows[flow.flow_id]
    assert w_flow.emoji == o_flow.emoji and len(w_flow.emoji) == 7
    await washington.confirm_sas(flow.flow_id)
    await ottawa.confirm_sas(flow.flow_id)
    assert codes(await washington.sync()) == ["verified"]
    assert codes(await ottawa.sync()) == ["verified"]
    assert washington.contact(ottawa.handle).verified
    assert ottawa.contact(washington.handle).verified


async def test_sas_cancel_leaves_contact_unverified(connected_pair) -> None:
    washington, ottawa = connected_pair
    flow = await washington.start_sas(ottawa.handle)
    await ottawa.sync()
    await washington.sync()
    await ottawa.sync()
    await ottawa.cancel_sas(flow.flow_id)  # "the codes differ"
    events = await washington.sync()
    assert [e.kind for e in events if e.kind == "warning"] == ["warning"]
    assert not washington.contact(ottawa.handle).verified
    assert not ottawa.contact(washington.handle).verified


async def test_sas_with_wrong_pinned_key_fails(connected_pair) -> None:
    """If the responder pinned another identity key for the starter (an impostor's card),
    the starter's MAC does not verify and the contact stays unverified."""
    washington, ottawa = connected_pair
    from hotline.crypto.identity import IdentityKey
    from hotline.wire.encoding import b64e

    async with ottawa.keystore.transaction() as state:
        state.contacts[washington.handle].identity_key = b64e(
            IdentityKey.generate().public.to_bytes()
        )
    flow = await washington.start_sas(ottawa.handle)
    await ottawa.sync()
    await washington.sync()
    await ottawa.sync()
    await washington.confirm_sas(flow.flow_id)
    events = await ottawa.sync()
    assert any(e.kind == "warning" and "verification failed" in e.text for e in events)
    assert not ottawa.contact(washington.handle).verified
    _: HotlineClient = washington
