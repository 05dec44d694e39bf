"""Store conformance suite: every backend must pass the same tests (STYLE.md §10).

Each test gets a fresh, migrated store from the ``store`` fixture (tests/conftest.py), once
per backend: ``[sqlite]`` and ``[postgres]``.
"""

from __future__ import annotations

import asyncio

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from hotline.store import (
    DeliveryItem,
    DeviceRow,
    InviteRow,
    SignedBlob,
    SqlStore,
    Store,
    open_store,
)
from hotline.store.schema import metadata
from hotline.wire.errors import (
    AlreadyExists,
    ChallengeInvalid,
    EnrolmentInvalid,
    InviteInvalid,
    MalformedInput,
    NoKeysAvailable,
    OneTimeKeyReused,
    StaleVersion,
    StorageError,
    UnknownDevice,
    UnknownPrincipal,
)

T0 = 1_700_000_000.0
HOUR = 3600.0


def device(device_id: str, handle: str = "pm", *, tag: bytes = b"") -> DeviceRow:
    return DeviceRow(
        device_id=device_id,
        handle=handle,
        curve25519=b"c:" + device_id.encode() + tag,
        ed25519=b"e:" + device_id.encode() + tag,
        created_at=T0,
    )


def blob(version: int, what: bytes = b"list") -> SignedBlob:
    return SignedBlob(
        version=version, payload=what + b"/%d" % version, signature=b"sig%d" % version
    )


async def enrol(store: Store, handle: str = "pm", *device_ids: str) -> None:
    """Register ``handle`` with its first device (``<handle>-1`` unless named)."""
    first, *more = device_ids or (f"{handle}-1",)
    token = b"token-" + handle.encode()
    await store.create_enrolment(token, handle, T0 + HOUR)
    await store.create_principal(
        token_hash=token,
        handle=handle,
        display_name=handle.upper(),
        identity_key=b"id:" + handle.encode(),
        device=device(first, handle),
        device_list=blob(1),
        now=T0,
    )
    if more:
        rows = [device(d, handle) for d in (first, *more)]
        await store.set_device_list(handle, blob(2), rows)


def otks(*key_ids: str) -> list[tuple[str, bytes, bytes]]:
    return [(k, b"key:" + k.encode(), b"sig:" + k.encode()) for k in key_ids]


def item(device_id: str, body: bytes = b"ciphertext", kind: str = "olm") -> DeliveryItem:
    return DeliveryItem(device_id=device_id, kind=kind, body=body)


# -- migrations and opening ----------------------------------------------------------------
async def test_migrations_match_metadata(store_url: str) -> None:
    for _ in range(2):  # opening an already migrated database is a no-op
        store = await open_store(store_url)
        try:
            async with store.engine.connect() as conn:
                diffs = await conn.run_sync(
                    lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
                )
                head = await conn.scalar(text("SELECT version_num FROM alembic_version"))
        finally:
            await store.close()
        assert diffs == []
        assert head == _script_head()


def _script_head() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", "hotline.store:migrations")
    heads = ScriptDirectory.from_config(config).get_heads()
    assert len(heads) == 1
    return heads[0]


async def test_open_store_bad_url_is_a_storage_error() -> None:
    with pytest.raises(StorageError):
        await open_store("no-such-scheme://x")


async def test_open_store_unreachable_database_is_a_storage_error() -> None:
    with pytest.raises(StorageError) as caught:
        await open_store("postgresql://nobody:secret-pw@127.0.0.1:1/none")
    assert "secret-pw" not in str(caught.value)


async def test_sqlite_connection_settings(tmp_path: object) -> None:
    store = await open_store(f"sqlite:///{tmp_path}/s.db")
    try:
        async with store.engine.connect() as conn:
            assert await conn.scalar(text("PRAGMA journal_mode")) == "wal"
            assert await conn.scalar(text("PRAGMA foreign_keys")) == 1
            # zero inline: a busy statement is retried on a thread (tests/store/test_sqlite_inline)
            assert await conn.scalar(text("PRAGMA busy_timeout")) == 0
    finally:
        await store.close()


async def test_database_failure_is_a_storage_error(store_url: str) -> None:
    store = await open_store(store_url)
    try:
        async with store.engine.begin() as conn:
            await conn.execute(text("DROP TABLE allow_entries"))
        with pytest.raises(StorageError) as caught:
            await store.is_allowed("pm", "potus")
    finally:
        await store.close()
    assert caught.value.code == "storage_error"
    assert caught.value.status == 503
    assert isinstance(caught.value.__cause__, SQLAlchemyError)


# -- enrolment and principals --------------------------------------------------------------
async def test_create_principal_and_read_back(store: Store) -> None:
    await enrol(store, "pm")
    principal = await store.get_principal("pm")
    assert principal is not None
    assert principal.handle == "pm"
    assert principal.display_name == "PM"
    assert principal.identity_key == b"id:pm"
    assert principal.created_at == T0
    assert principal.device_list == blob(1)
    assert principal.allowlist is None
    assert await store.get_device("pm-1") == device("pm-1")
    assert await store.list_devices("pm") == [device("pm-1")]


async def test_unknown_lookups_are_empty(store: Store) -> None:
    assert await store.get_principal("nobody") is None
    assert await store.get_device("nothing") is None
    assert await store.list_devices("nobody") == []


async def test_enrolment_token_is_single_use(store: Store) -> None:
    await enrol(store, "pm")
    with pytest.raises(EnrolmentInvalid):
        await store.create_principal(
            token_hash=b"token-pm",
            handle="other",
            display_name="Other",
            identity_key=b"id:other",
            device=device("o-1", "other"),
            device_list=blob(1),
            now=T0,
        )
    assert await store.get_principal("other") is None


@pytest.mark.parametrize(
    ("token", "now"),
    [(b"unknown", T0), (b"t", T0 + HOUR), (b"t", T0 + 2 * HOUR)],
    ids=["unknown", "expires-now", "expired"],
)
async def test_enrolment_invalid(store: Store, token: bytes, now: float) -> None:
    await store.create_enrolment(b"t", "pm", T0 + HOUR)
    with pytest.raises(EnrolmentInvalid):
        await store.create_principal(
            token_hash=token,
            handle="pm",
            display_name="PM",
            identity_key=b"id:pm",
            device=device("pm-1"),
            device_list=blob(1),
            now=now,
        )
    assert await store.get_principal("pm") is None
    assert await store.get_device("pm-1") is None


async def test_enrolment_token_only_enrols_its_handle(store: Store) -> None:
    await store.create_enrolment(b"t", "alice", T0 + HOUR)
    attempt = {
        "token_hash": b"t",
        "display_name": "M",
        "identity_key": b"id:m",
        "device_list": blob(1),
        "now": T0,
    }
    with pytest.raises(EnrolmentInvalid):
        await store.create_principal(handle="mallory", device=device("m-1", "mallory"), **attempt)  # type: ignore[arg-type]
    assert await store.get_principal("mallory") is None
    # The refused attempt did not burn the token.
    await store.create_principal(handle="alice", device=device("a-1", "alice"), **attempt)  # type: ignore[arg-type]
    assert await store.get_device("a-1") == device("a-1", "alice")


async def test_enrolment_token_recorded_once(store: Store) -> None:
    await store.create_enrolment(b"t", "pm", T0 + HOUR)
    with pytest.raises(AlreadyExists):
        await store.create_enrolment(b"t", "pm", T0 + 2 * HOUR)


@pytest.mark.parametrize("clash", ["handle", "identity_key", "device_id"])
async def test_create_principal_already_exists_consumes_nothing(store: Store, clash: str) -> None:
    await enrol(store, "pm")
    handle = "pm" if clash == "handle" else "potus"
    await store.create_enrolment(b"t2", handle, T0 + HOUR)
    attempt = {
        "token_hash": b"t2",
        "handle": handle,
        "display_name": "POTUS",
        "identity_key": b"id:pm" if clash == "identity_key" else b"id:potus",
        "device": device("pm-1" if clash == "device_id" else "potus-1", handle),
        "device_list": blob(1),
        "now": T0,
    }
    with pytest.raises(AlreadyExists):
        await store.create_principal(**attempt)  # type: ignore[arg-type]
    assert await store.list_devices("pm") == [device("pm-1")]
    if clash == "handle":
        return  # a token for a taken handle can never succeed
    # The failed attempt rolled back entirely, so the token still works.
    await store.create_principal(
        token_hash=b"t2",
        handle="potus",
        display_name="POTUS",
        identity_key=b"id:potus",
        device=device("potus-1", "potus"),
        device_list=blob(1),
        now=T0,
    )
    assert await store.list_devices("potus") == [device("potus-1", "potus")]


async def test_create_principal_device_of_another_handle(store: Store) -> None:
    await store.create_enrolment(b"t", "pm", T0 + HOUR)
    with pytest.raises(MalformedInput):
        await store.create_principal(
            token_hash=b"t",
            handle="pm",
            display_name="PM",
            identity_key=b"id:pm",
            device=device("pm-1", "someone-else"),
            device_list=blob(1),
            now=T0,
        )


# -- device lists --------------------------------------------------------------------------
async def test_set_device_list_adds_and_orders(store: Store) -> None:
    await enrol(store, "pm")
    await store.set_device_list("pm", blob(2), [device("pm-b"), device("pm-1"), device("pm-a")])
    ids = [d.device_id for d in await store.list_devices("pm")]
    assert ids == ["pm-1", "pm-a", "pm-b"]
    principal = await store.get_principal("pm")
    assert principal is not None
    assert principal.device_list == blob(2)


@pytest.mark.parametrize("version", [1, 0])
async def test_set_device_list_stale_version_changes_nothing(store: Store, version: int) -> None:
    await enrol(store, "pm", "pm-1", "pm-2")
    with pytest.raises(StaleVersion):
        await store.set_device_list("pm", blob(version, b"evil"), [device("pm-9")])
    with pytest.raises(StaleVersion):
        await store.set_device_list("pm", blob(2, b"evil"), [device("pm-9")])
    principal = await store.get_principal("pm")
    assert principal is not None
    assert principal.device_list == blob(2)
    assert await store.list_devices("pm") == [device("pm-1"), device("pm-2")]


async def test_set_device_list_unknown_principal(store: Store) -> None:
    with pytest.raises(UnknownPrincipal):
        await store.set_device_list("nobody", blob(2), [device("x", "nobody")])


async def test_set_device_list_device_of_another_principal(store: Store) -> None:
    await enrol(store, "pm")
    await enrol(store, "potus")
    with pytest.raises(AlreadyExists):
        await store.set_device_list("pm", blob(2), [device("pm-1"), device("potus-1", "pm")])
    assert await store.list_devices("pm") == [device("pm-1")]
    assert await store.list_devices("potus") == [device("potus-1", "potus")]
    principal = await store.get_principal("pm")
    assert principal is not None
    assert principal.device_list == blob(1)


async def test_set_device_list_same_id_other_keys_refused(store: Store) -> None:
    await enrol(store, "pm")
    with pytest.raises(AlreadyExists):
        await store.set_device_list("pm", blob(2), [device("pm-1", tag=b"!")])
    assert await store.get_device("pm-1") == device("pm-1")


async def test_set_device_list_malformed_rows(store: Store) -> None:
    await enrol(store, "pm")
    with pytest.raises(MalformedInput):
        await store.set_device_list("pm", blob(2), [device("pm-1"), device("pm-1")])
    with pytest.raises(MalformedInput):
        await store.set_device_list("pm", blob(2), [device("pm-2", "potus")])


async def test_set_device_list_removes_dropped_device_and_its_data(store: Store) -> None:
    await enrol(store, "pm", "pm-1", "pm-2")
    for dev in ("pm-1", "pm-2"):
        await store.put_one_time_keys(dev, otks("a", "b"))
        await store.set_fallback_key(dev, "fb", b"fbkey", b"fbsig")
        await store.create_session(b"session-" + dev.encode(), dev, T0 + HOUR)
        await store.create_challenge(b"chal-" + dev.encode(), dev, T0 + HOUR)
    await store.enqueue(
        message_id="m1",
        sender_handle="potus",
        sender_device="potus-1",
        items=[item("pm-1"), item("pm-2")],
        now=T0,
    )
    await store.set_device_list("pm", blob(3), [device("pm-1")])

    assert await store.list_devices("pm") == [device("pm-1")]
    assert await store.get_device("pm-2") is None
    assert await store.count_one_time_keys("pm-2") == 0
    with pytest.raises(NoKeysAvailable):
        await store.claim_key("pm-2")
    assert await store.session_device(b"session-pm-2", T0) is None
    with pytest.raises(ChallengeInvalid):
        await store.consume_challenge(b"chal-pm-2", "pm-2", T0)
    assert await store.pending("pm-2") == []
    # The device that stays keeps everything.
    assert await store.count_one_time_keys("pm-1") == 2
    assert await store.session_device(b"session-pm-1", T0) == "pm-1"
    await store.consume_challenge(b"chal-pm-1", "pm-1", T0)
    assert len(await store.pending("pm-1")) == 1
    # A re-added device starts empty, and its old key ids may not come back.
    await store.set_device_list("pm", blob(4), [device("pm-1"), device("pm-2")])
    assert await store.count_one_time_keys("pm-2") == 0
    assert await store.put_one_time_keys("pm-2", otks("a")) == 1


async def test_concurrent_device_list_updates_one_wins(store: Store) -> None:
    await enrol(store, "pm")
    results = await asyncio.gather(
        *(
            store.set_device_list("pm", blob(2), [device("pm-1"), device(f"pm-x{i}")])
            for i in range(5)
        ),
        return_exceptions=True,
    )
    assert sum(r is None for r in results) == 1
    assert all(isinstance(r, StaleVersion) for r in results if r is not None)
    assert len(await store.list_devices("pm")) == 2


# -- one-time and fallback keys ------------------------------------------------------------
async def test_put_one_time_keys_counts(store: Store) -> None:
    await enrol(store, "pm")
    assert await store.count_one_time_keys("pm-1") == 0
    assert await store.put_one_time_keys("pm-1", otks("a", "b")) == 2
    assert await store.put_one_time_keys("pm-1", otks("c")) == 3
    assert await store.put_one_time_keys("pm-1", []) == 3
    await store.claim_key("pm-1")
    assert await store.count_one_time_keys("pm-1") == 2
    assert await store.count_one_time_keys("unknown") == 0


async def test_one_time_key_reuse_refused_nothing_stored(store: Store) -> None:
    await enrol(store, "pm")
    await store.put_one_time_keys("pm-1", otks("a", "b"))
    with pytest.raises(OneTimeKeyReused):
        await store.put_one_time_keys("pm-1", otks("c", "b"))  # b unclaimed
    assert await store.count_one_time_keys("pm-1") == 2
    claimed = await store.claim_key("pm-1")
    assert claimed.key_id == "a"
    with pytest.raises(OneTimeKeyReused):
        await store.put_one_time_keys("pm-1", otks("a"))  # a claimed
    with pytest.raises(OneTimeKeyReused):
        await store.put_one_time_keys("pm-1", otks("d", "d"))  # twice in one upload
    assert await store.count_one_time_keys("pm-1") == 1
    assert (await store.claim_key("pm-1")).key_id == "b"
    with pytest.raises(NoKeysAvailable):
        await store.claim_key("pm-1")  # c and d were never stored


async def test_key_ids_are_per_device(store: Store) -> None:
    await enrol(store, "pm", "pm-1", "pm-2")
    await store.put_one_time_keys("pm-1", otks("a"))
    assert await store.put_one_time_keys("pm-2", otks("a")) == 1


async def test_keys_for_unknown_device(store: Store) -> None:
    with pytest.raises(UnknownDevice):
        await store.put_one_time_keys("ghost", otks("a"))
    with pytest.raises(UnknownDevice):
        await store.set_fallback_key("ghost", "fb", b"k", b"s")
    with pytest.raises(NoKeysAvailable):
        await store.claim_key("ghost")


async def test_claim_order_then_fallback(store: Store) -> None:
    await enrol(store, "pm")
    await store.put_one_time_keys("pm-1", otks("z", "y"))
    await store.put_one_time_keys("pm-1", otks("a"))
    await store.set_fallback_key("pm-1", "fb1", b"fbkey1", b"fbsig1")

    claimed = [await store.claim_key("pm-1") for _ in range(3)]
    assert [c.key_id for c in claimed] == ["z", "y", "a"]  # publication order
    assert claimed[0].key == b"key:z"
    assert claimed[0].signature == b"sig:z"
    assert claimed[0].device_id == "pm-1"
    assert not any(c.fallback for c in claimed)

    for _ in range(2):  # the fallback key is not consumed
        fallback = await store.claim_key("pm-1")
        assert (fallback.key_id, fallback.key, fallback.signature) == ("fb1", b"fbkey1", b"fbsig1")
        assert fallback.fallback
    await store.set_fallback_key("pm-1", "fb2", b"fbkey2", b"fbsig2")
    assert (await store.claim_key("pm-1")).key_id == "fb2"
    # New one-time keys take precedence again.
    await store.put_one_time_keys("pm-1", otks("b"))
    assert (await store.claim_key("pm-1")).key_id == "b"


async def test_no_keys_available(store: Store) -> None:
    await enrol(store, "pm")
    with pytest.raises(NoKeysAvailable):
        await store.claim_key("pm-1")


async def test_concurrent_claims_never_hand_out_a_key_twice(store: Store) -> None:
    await enrol(store, "pm")
    await store.put_one_time_keys("pm-1", otks(*(f"k{i:02d}" for i in range(10))))
    await store.set_fallback_key("pm-1", "fb", b"fbkey", b"fbsig")
    claims = await asyncio.gather(*(store.claim_key("pm-1") for _ in range(20)))
    one_time = [c.key_id for c in claims if not c.fallback]
    assert sorted(one_time) == [f"k{i:02d}" for i in range(10)]
    assert [c.key_id for c in claims if c.fallback] == ["fb"] * 10
    assert await store.count_one_time_keys("pm-1") == 0


# -- authentication ------------------------------------------------------------------------
async def test_challenge_single_use(store: Store) -> None:
    await enrol(store, "pm", "pm-1", "pm-2")
    await store.create_challenge(b"c1", "pm-1", T0 + 60)
    with pytest.raises(ChallengeInvalid):
        await store.consume_challenge(b"c1", "pm-2", T0)  # another device's
    await store.consume_challenge(b"c1", "pm-1", T0)  # still usable by its own device
    with pytest.raises(ChallengeInvalid):
        await store.consume_challenge(b"c1", "pm-1", T0)  # replay
    with pytest.raises(ChallengeInvalid):
        await store.consume_challenge(b"never", "pm-1", T0)


async def test_challenge_expiry(store: Store) -> None:
    await enrol(store, "pm")
    await store.create_challenge(b"c1", "pm-1", T0 + 60)
    with pytest.raises(ChallengeInvalid):
        await store.consume_challenge(b"c1", "pm-1", T0 + 60)
    with pytest.raises(ChallengeInvalid):  # the expired challenge is gone for good
        await store.consume_challenge(b"c1", "pm-1", T0)


async def test_challenge_errors(store: Store) -> None:
    await enrol(store, "pm")
    with pytest.raises(UnknownDevice):
        await store.create_challenge(b"c1", "ghost", T0 + 60)
    await store.create_challenge(b"c1", "pm-1", T0 + 60)
    with pytest.raises(AlreadyExists):
        await store.create_challenge(b"c1", "pm-1", T0 + 60)


async def test_session_expiry(store: Store) -> None:
    await enrol(store, "pm")
    await store.create_session(b"tok", "pm-1", T0 + HOUR)
    assert await store.session_device(b"tok", T0) == "pm-1"
    assert await store.session_device(b"tok", T0 + HOUR - 1) == "pm-1"
    assert await store.session_device(b"tok", T0 + HOUR) is None
    assert await store.session_device(b"other", T0) is None


async def test_session_errors(store: Store) -> None:
    await enrol(store, "pm")
    with pytest.raises(UnknownDevice):
        await store.create_session(b"tok", "ghost", T0 + HOUR)
    await store.create_session(b"tok", "pm-1", T0 + HOUR)
    with pytest.raises(AlreadyExists):
        await store.create_session(b"tok", "pm-1", T0 + 2 * HOUR)
    assert await store.session_device(b"tok", T0 + HOUR + 1) is None  # first expiry kept


# -- allowlist and invites -----------------------------------------------------------------
async def test_allowlist_replace_and_query(store: Store) -> None:
    await enrol(store, "pm")
    assert not await store.is_allowed("pm", "potus")
    await store.set_allowlist("pm", blob(5, b"allow"), ["potus", "potus", "chancellor@berlin"])
    assert await store.is_allowed("pm", "potus")
    assert await store.is_allowed("pm", "chancellor@berlin")
    assert not await store.is_allowed("potus", "pm")  # not symmetric
    principal = await store.get_principal("pm")
    assert principal is not None
    assert principal.allowlist == blob(5, b"allow")
    await store.set_allowlist("pm", blob(6, b"allow"), ["chancellor@berlin"])
    assert not await store.is_allowed("pm", "potus")
    await store.set_allowlist("pm", blob(7, b"allow"), [])
    assert not await store.is_allowed("pm", "chancellor@berlin")


async def test_allowlist_stale_version_changes_nothing(store: Store) -> None:
    await enrol(store, "pm")
    await store.set_allowlist("pm", blob(3, b"allow"), ["potus"])
    for version in (3, 2):
        with pytest.raises(StaleVersion):
            await store.set_allowlist("pm", blob(version, b"evil"), ["spy"])
    assert await store.is_allowed("pm", "potus")
    assert not await store.is_allowed("pm", "spy")
    principal = await store.get_principal("pm")
    assert principal is not None
    assert principal.allowlist == blob(3, b"allow")


async def test_allowlist_unknown_principal(store: Store) -> None:
    with pytest.raises(UnknownPrincipal):
        await store.set_allowlist("nobody", blob(1), ["pm"])


async def test_invites(store: Store) -> None:
    await enrol(store, "pm")
    await enrol(store, "potus")
    invite = InviteRow(
        invite_id="inv1", handle="pm", verifier=b"v", expires_at=T0 + HOUR, revoked=False
    )
    await store.put_invite(invite)
    assert await store.get_invite("inv1") == invite
    assert await store.get_invite("nope") is None
    with pytest.raises(AlreadyExists):
        await store.put_invite(InviteRow("inv1", "potus", b"w", T0, revoked=False))
    with pytest.raises(InviteInvalid):
        await store.revoke_invite("potus", "inv1")  # not potus's invite
    with pytest.raises(InviteInvalid):
        await store.revoke_invite("pm", "nope")
    assert await store.get_invite("inv1") == invite
    await store.revoke_invite("pm", "inv1")
    await store.revoke_invite("pm", "inv1")  # idempotent
    revoked = await store.get_invite("inv1")
    assert revoked is not None
    assert revoked.revoked


async def test_invite_for_unknown_principal(store: Store) -> None:
    with pytest.raises(UnknownPrincipal):
        await store.put_invite(InviteRow("inv1", "nobody", b"v", T0, revoked=False))


# -- mailbox -------------------------------------------------------------------------------
async def test_enqueue_pending_order(store: Store) -> None:
    await enrol(store, "pm", "pm-1", "pm-2")
    for n in range(3):
        assert await store.enqueue(
            message_id=f"m{n}",
            sender_handle="potus",
            sender_device="potus-1",
            items=[item("pm-1", b"one%d" % n), item("pm-2", b"two%d" % n, kind="call")],
            now=T0 + n,
        )
    rows = await store.pending("pm-1")
    assert [(r.message_id, r.body) for r in rows] == [
        ("m0", b"one0"),
        ("m1", b"one1"),
        ("m2", b"one2"),
    ]
    assert [r.seq for r in rows] == sorted(r.seq for r in rows)
    first = rows[0]
    assert (first.device_id, first.kind, first.created_at) == ("pm-1", "olm", T0)
    assert (first.sender_handle, first.sender_device) == ("potus", "potus-1")
    two = await store.pending("pm-2")
    assert [r.kind for r in two] == ["call"] * 3
    # Global order: each message's items were stored before the next message's.
    assert rows[0].seq < two[0].seq < rows[1].seq
    assert await store.pending("pm-1", after_seq=rows[0].seq) == rows[1:]
    assert await store.pending("pm-1", limit=2) == rows[:2]
    assert await store.pending("pm-1", after_seq=rows[0].seq, limit=1) == rows[1:2]
    assert await store.pending("pm-1", limit=0) == []
    assert await store.pending("ghost") == []


async def test_enqueue_is_idempotent(store: Store) -> None:
    await enrol(store, "pm")
    send = {
        "message_id": "m1",
        "sender_handle": "potus",
        "sender_device": "potus-1",
        "items": [item("pm-1")],
        "now": T0,
    }
    assert await store.enqueue(**send)  # type: ignore[arg-type]
    assert not await store.enqueue(**send)  # type: ignore[arg-type]
    assert len(await store.pending("pm-1")) == 1
    # Same message id from another device is another message.
    assert await store.enqueue(**{**send, "sender_device": "potus-2"})  # type: ignore[arg-type]
    assert len(await store.pending("pm-1")) == 2
    # The id is remembered after delivery, so a late retry is still a duplicate.
    rows = await store.pending("pm-1")
    assert await store.ack("pm-1", [r.seq for r in rows]) == 2
    assert not await store.enqueue(**send)  # type: ignore[arg-type]
    assert await store.pending("pm-1") == []


async def test_concurrent_duplicate_enqueue_stores_once(store: Store) -> None:
    await enrol(store, "pm")
    results = await asyncio.gather(
        *(
            store.enqueue(
                message_id="m1",
                sender_handle="potus",
                sender_device="potus-1",
                items=[item("pm-1")],
                now=T0,
            )
            for _ in range(10)
        )
    )
    assert sorted(results) == [False] * 9 + [True]
    assert len(await store.pending("pm-1")) == 1


async def test_enqueue_unknown_device_stores_nothing(store: Store) -> None:
    await enrol(store, "pm")
    with pytest.raises(UnknownDevice):
        await store.enqueue(
            message_id="m1",
            sender_handle="potus",
            sender_device="potus-1",
            items=[item("pm-1"), item("ghost")],
            now=T0,
        )
    assert await store.pending("pm-1") == []
    # The message id was not remembered: a corrected retry goes through.
    assert await store.enqueue(
        message_id="m1",
        sender_handle="potus",
        sender_device="potus-1",
        items=[item("pm-1")],
        now=T0,
    )


async def test_ack_deletes_ciphertext(store: SqlStore) -> None:
    await enrol(store, "pm", "pm-1", "pm-2")
    for n in range(3):
        await store.enqueue(
            message_id=f"m{n}",
            sender_handle="potus",
            sender_device="potus-1",
            items=[item("pm-1", b"secret%d" % n), item("pm-2")],
            now=T0,
        )
    rows = await store.pending("pm-1")
    other = await store.pending("pm-2")
    assert await store.ack("pm-1", []) == 0
    assert await store.ack("pm-1", [other[0].seq]) == 0  # not this device's row
    assert await store.ack("pm-1", [rows[0].seq, rows[2].seq, rows[0].seq]) == 2
    assert await store.ack("pm-1", [rows[0].seq]) == 0  # already gone
    assert await store.pending("pm-1") == [rows[1]]
    assert await store.pending("pm-2") == other
    async with store.engine.connect() as conn:
        left = await conn.scalar(text("SELECT count(*) FROM deliveries WHERE device_id = 'pm-1'"))
    assert left == 1


async def test_seq_never_reused_after_ack(store: Store) -> None:
    await enrol(store, "pm")
    await store.enqueue(
        message_id="m1", sender_handle="potus", sender_device="p", items=[item("pm-1")], now=T0
    )
    (first,) = await store.pending("pm-1")
    assert await store.ack("pm-1", [first.seq]) == 1
    await store.enqueue(
        message_id="m2", sender_handle="potus", sender_device="p", items=[item("pm-1")], now=T0
    )
    (second,) = await store.pending("pm-1", after_seq=first.seq)
    assert second.seq > first.seq


async def test_session_caller_joins_device(store: Store) -> None:
    await enrol(store, "pm", "d1")
    await store.create_session(b"tok", "d1", T0 + HOUR)
    caller = await store.session_caller(b"tok", T0)
    assert caller is not None and caller.device_id == "d1" and caller.handle == "pm"
    assert await store.session_caller(b"tok", T0 + 2 * HOUR) is None
    assert await store.session_caller(b"other", T0) is None
