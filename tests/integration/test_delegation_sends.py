"""An aide's send for a principal, and a principal's send to another server, reach every
reading aide's devices, and cost the server the same store transactions as a direct send: the
grants, device sets and allowlist come from the one ``Store.send_context`` read (no per-aide
queries). Real servers on loopback; transactions counted as ``begin`` events on the engine."""

from __future__ import annotations

from pathlib import Path

from harness import RouteTransactions, connect
from test_federation import governments, principal  # noqa: F401  (fixture)

from hotline.client.delegation import answer_for, grant_aide
from hotline.client.device import HotlineClient
from hotline.client.transcript import conversation_id


def said(client: HotlineClient, a: str, b: str) -> list[str]:
    """Texts in the conversation of ``a`` and ``b`` as ``client`` has them."""
    conversation = conversation_id(a, b)
    return [m.text for m in client.keystore.history() if m.conversation == conversation]


async def synced_until(client: HotlineClient, a: str, b: str, text: str) -> list[str]:
    """Sync ``client`` until ``text`` arrived (a peer server relays with retries)."""
    for _ in range(50):
        await client.sync()
        if text in said(client, a, b):
            break
    return said(client, a, b)


async def staff(
    potus: HotlineClient, chief: HotlineClient, deputy: HotlineClient, pm: HotlineClient
) -> None:
    """The President's chief of staff reads and answers, her deputy only reads; the Prime
    Minister is her contact. The aides take their grants and her pinned counterparts."""
    await connect(potus, chief)
    await connect(potus, deputy)
    await connect(pm, potus)
    await grant_aide(potus, chief.handle)
    await grant_aide(potus, deputy.handle, rights=("read",))
    for aide in (chief, deputy):
        await aide.sync()


async def test_on_behalf_send_reaches_the_aides_in_one_read(make_principal, live_server) -> None:
    potus = await make_principal("potus", "President")
    chief = await make_principal("chief", "Chief of Staff")
    deputy = await make_principal("deputy", "Deputy Chief of Staff")
    pm = await make_principal("pm", "Prime Minister")
    await staff(potus, chief, deputy, pm)
    await answer_for(chief, potus.handle, pm.handle, "Warm-up.")  # sessions and lists known

    counted = RouteTransactions(live_server, chief, "/v1/messages")
    try:
        await chief.send_text(potus.handle, "Direct, for comparison.")
        await answer_for(chief, potus.handle, pm.handle, "The President will call at 9.")
    finally:
        counted.remove()
    direct, on_behalf = counted.counts
    # session lookup, one read for every check, one write (items, record, tail and head)
    assert direct == 3
    assert on_behalf == direct  # was 12: grant, allowlist and device queries per aide

    text = "The President will call at 9."
    for client in (potus, deputy, pm):  # both principals and the other reading aide
        assert text in await synced_until(client, potus.handle, pm.handle, text)


async def test_remote_sends_reach_the_local_aides_in_one_read(governments, tmp_path: Path) -> None:  # noqa: F811
    washington, ottawa = governments
    potus = await principal(washington, "potus", tmp_path / "potus")
    chief = await principal(washington, "chief", tmp_path / "chief")
    deputy = await principal(washington, "deputy", tmp_path / "deputy")
    pm = await principal(ottawa, "pm", tmp_path / "pm")
    clients = (potus, chief, deputy, pm)
    try:
        await staff(potus, chief, deputy, pm)
        await potus.send_text(pm.handle, "Warm-up.")  # sessions and lists known
        await answer_for(chief, potus.handle, pm.handle, "Warm-up too.")

        assert washington.server
        by_potus = RouteTransactions(washington.server, potus, "/v1/messages")
        by_chief = RouteTransactions(washington.server, chief, "/v1/messages")
        try:
            await potus.send_text(pm.handle, "From Washington.")
            await answer_for(chief, potus.handle, pm.handle, "For the President.")
        finally:
            by_potus.remove()
            by_chief.remove()
        # session lookup, one read for every check, the peer's pin, one write (items, the
        # peer's queue, record, tail and head): the same for a principal and for an aide
        # (the aide's was 9: its grant and the principal's devices and aides read apart)
        assert by_potus.counts == by_chief.counts == [4]

        for client in (chief, deputy):  # the principal's reading aides: both messages
            await synced_until(client, potus.handle, pm.handle, "For the President.")
        assert said(deputy, potus.handle, pm.handle)[-2:] == [
            "From Washington.",
            "For the President.",
        ]
        assert "From Washington." in said(chief, potus.handle, pm.handle)
        assert "For the President." in await synced_until(
            potus, potus.handle, pm.handle, "For the President."
        )
        assert "For the President." in await synced_until(
            pm, potus.handle, pm.handle, "For the President."
        )
    finally:
        for client in clients:
            await client.close()
