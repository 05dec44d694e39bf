"""A client keeps its Olm account open between keystore transactions (``HotlineClient._tx``):
it must never act on, or write back, an account older than the one in the keystore — as when
another process on the same device (``hotline listen`` beside a ``hotline send``) changed it."""

from __future__ import annotations

from pathlib import Path

from harness import PASSPHRASE

from conftest import MakePrincipal
from hotline.client.device import HotlineClient


def _unpublished(account: object) -> set[str]:
    return set(account._account.one_time_keys)  # type: ignore[attr-defined]


async def test_account_changed_by_another_process_is_reloaded(
    make_principal: MakePrincipal, tmp_path: Path
) -> None:
    first = await make_principal("pm")
    async with first._tx() as (_, account):
        kept = account  # the account first keeps open from now on
    second = await HotlineClient.open(tmp_path / "home-pm", PASSPHRASE)
    try:
        async with second._tx() as (_, account):
            fresh = {key_id for key_id, _ in account.generate_one_time_keys(3)}
        async with first._tx() as (_, account):
            assert account is not kept  # reopened from the keystore, not the stale one
            assert fresh <= _unpublished(account)
            account.mark_keys_as_published()
        # what first wrote back is its reloaded account: second sees the keys published
        async with second._tx() as (_, account):
            assert not fresh & _unpublished(account)
    finally:
        await second.close()


async def test_account_kept_open_while_the_keystore_holds_it(
    make_principal: MakePrincipal,
) -> None:
    client = await make_principal("potus")
    async with client._tx() as (_, account):
        kept = account
    async with client._tx() as (_, account):
        assert account is kept  # no unpickling: the keystore still holds its pickle
        account.generate_one_time_keys(1)
    async with client._tx() as (_, account):
        assert account is kept  # its new pickle was written, and it stays open


async def test_failed_transaction_drops_the_open_account(make_principal: MakePrincipal) -> None:
    client = await make_principal("potus")
    async with client._tx() as (_, account):
        kept = account
    try:
        async with client._tx() as (_, account):
            account.generate_one_time_keys(2)  # changed in memory, never committed
            raise RuntimeError("the transaction fails")
    except RuntimeError:
        pass
    async with client._tx() as (_, account):
        assert account is not kept  # reopened from the keystore, without the two keys
