"""The message history log beside the keystore: append-only, encrypted per entry, crash-safe,
tamper-evident, and migrated from keystores that kept the history inside the state."""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.client.history_log import CLEAR, HISTORY_FILE, HistoryOp, apply, diff
from hotline.client.keystore import STATE_FILE, Keystore
from hotline.client.state import ClientState, MessageEntry
from hotline.crypto.passphrase import ScryptParams
from hotline.wire.errors import HistoryDamaged

CHEAP = ScryptParams(log2_n=4, r=8, p=1)
PASSPHRASE = "correct horse battery staple"


def state() -> ClientState:
    return ClientState(
        v=1,
        handle="potus@washington",
        display_name="POTUS",
        server_url="http://127.0.0.1:1",
        device_id="d1",
        identity_key="",
        account_pickle="",
    )


def message(n: int, status: str = "sent") -> MessageEntry:
    return MessageEntry(
        message_id=f"m{n}",
        conversation="pm@ottawa|potus@washington",
        sender="potus@washington",
        sender_device="d1",
        text=f"secret text number {n}",
        sent_at_ms=1000 + n,
        seq=n,
        status=status,  # type: ignore[arg-type]
        outgoing=True,
    )


async def add(keystore: Keystore, *numbers: int) -> None:
    async with keystore.transaction() as s:
        s.messages.extend(message(n) for n in numbers)


def history_file(home: Path) -> Path:
    return home / HISTORY_FILE


async def test_history_lives_in_the_log_and_reopens(tmp_path: Path) -> None:
    keystore = Keystore.create(tmp_path, PASSPHRASE, state(), scrypt=CHEAP)
    await add(keystore, 1, 2)
    async with keystore.transaction() as s:
        s.messages[0].status = "delivered"
        s.messages[1].warnings.append("transcript_gap")
        s.messages.append(message(3))
    expected = [message(1, "delivered"), message(2), message(3)]
    expected[1].warnings.append("transcript_gap")
    assert keystore.history() == expected
    # The state file holds no history: its size does not grow with the messages.
    raw_state = keystore.load()
    assert raw_state.messages == [] and raw_state.history_entries == 5
    assert Keystore.open(tmp_path, PASSPHRASE).history() == expected
    async with Keystore.open(tmp_path, PASSPHRASE).transaction() as s:
        assert s.messages == expected
    # The text is encrypted on disk.
    assert b"secret text" not in history_file(tmp_path).read_bytes()


async def test_state_file_stays_small_as_history_grows(tmp_path: Path) -> None:
    keystore = Keystore.create(tmp_path, PASSPHRASE, state(), scrypt=CHEAP)
    await add(keystore, 0)
    size = (tmp_path / STATE_FILE).stat().st_size
    await add(keystore, *range(1, 200))
    assert (tmp_path / STATE_FILE).stat().st_size <= size + 8  # only the count grew
    assert [m.seq for m in keystore.history()] == list(range(200))


async def test_unchanged_history_appends_nothing(tmp_path: Path) -> None:
    keystore = Keystore.create(tmp_path, PASSPHRASE, state(), scrypt=CHEAP)
    await add(keystore, 1)
    size = history_file(tmp_path).stat().st_size
    async with keystore.transaction() as s:
        s.settings.auto_accept = False
    assert history_file(tmp_path).stat().st_size == size


async def test_failed_transaction_changes_nothing(tmp_path: Path) -> None:
    keystore = Keystore.create(tmp_path, PASSPHRASE, state(), scrypt=CHEAP)
    await add(keystore, 1)
    with pytest.raises(RuntimeError):
        async with keystore.transaction() as s:
            s.messages[0].status = "failed"
            s.messages.append(message(2))
            raise RuntimeError("boom")
    assert keystore.history() == [message(1)]
    async with keystore.transaction() as s:  # the cache was rolled back too
        assert s.messages == [message(1)]
        s.messages.append(message(3))
    assert keystore.history() == [message(1), message(3)]


async def test_clearing_the_history(tmp_path: Path) -> None:
    keystore = Keystore.create(tmp_path, PASSPHRASE, state(), scrypt=CHEAP)
    await add(keystore, 1, 2)
    async with keystore.transaction() as s:
        s.messages = [message(7)]
    assert keystore.history() == [message(7)]
    assert Keystore.open(tmp_path, PASSPHRASE).history() == [message(7)]


async def test_two_openers_see_each_others_entries(tmp_path: Path) -> None:
    """As `hotline listen` and `hotline send` on one device: each reads only what is new."""
    first = Keystore.create(tmp_path, PASSPHRASE, state(), scrypt=CHEAP)
    second = Keystore.open(tmp_path, PASSPHRASE)
    await add(first, 1)
    await add(second, 2)
    async with first.transaction() as s:
        assert [m.seq for m in s.messages] == [1, 2]
        s.messages[1].status = "read"
    await asyncio.gather(add(first, 3), add(second, 4))
    assert first.history() == second.history()
    assert [m.seq for m in first.history()][:2] == [1, 2]
    assert first.history()[1].status == "read"
    assert sorted(m.seq for m in first.history()) == [1, 2, 3, 4]


async def test_torn_final_entry_is_ignored(tmp_path: Path) -> None:
    keystore = Keystore.create(tmp_path, PASSPHRASE, state(), scrypt=CHEAP)
    await add(keystore, 1, 2)
    good = history_file(tmp_path).read_bytes()
    # A crash while appending the next transaction's entry: a partial entry at the end.
    history_file(tmp_path).write_bytes(good + b"\x00\x00\x01\x00" + b"\x17" * 40)
    reopened = Keystore.open(tmp_path, PASSPHRASE)
    assert reopened.history() == [message(1), message(2)]
    await add(reopened, 3)  # overwrites the torn tail
    assert Keystore.open(tmp_path, PASSPHRASE).history() == [message(n) for n in (1, 2, 3)]


async def test_entries_of_an_uncommitted_transaction_are_ignored(tmp_path: Path) -> None:
    """A crash after the log append, before the state was saved: the state is the commit."""
    keystore = Keystore.create(tmp_path, PASSPHRASE, state(), scrypt=CHEAP)
    await add(keystore, 1)
    before = (tmp_path / STATE_FILE).read_bytes()
    await add(keystore, 2)
    (tmp_path / STATE_FILE).write_bytes(before)  # as if the state save never happened
    reopened = Keystore.open(tmp_path, PASSPHRASE)
    assert reopened.history() == [message(1)]
    await add(reopened, 3)
    assert reopened.history() == [message(1), message(3)]


@pytest.mark.parametrize("where", ["first", "last"])
async def test_tampered_entry_is_a_typed_error(tmp_path: Path, where: str) -> None:
    keystore = Keystore.create(tmp_path, PASSPHRASE, state(), scrypt=CHEAP)
    await add(keystore, 1)
    await add(keystore, 2)
    data = bytearray(history_file(tmp_path).read_bytes())
    data[10 if where == "first" else len(data) - 3] ^= 0x01
    history_file(tmp_path).write_bytes(bytes(data))
    with pytest.raises(HistoryDamaged) as caught:
        keystore.history()
    assert caught.value.extra["entry"] == (0 if where == "first" else 1)
    assert caught.value.code == "history_damaged"
    with pytest.raises(HistoryDamaged):
        async with Keystore(tmp_path, keystore._key).transaction():
            pass


async def test_truncated_or_reordered_log_is_a_typed_error(tmp_path: Path) -> None:
    keystore = Keystore.create(tmp_path, PASSPHRASE, state(), scrypt=CHEAP)
    await add(keystore, 1)
    one = history_file(tmp_path).read_bytes()
    await add(keystore, 2)
    both = history_file(tmp_path).read_bytes()
    history_file(tmp_path).write_bytes(one)  # a committed entry cut off
    with pytest.raises(HistoryDamaged):
        keystore.history()
    # The second entry moved to the first position: bound to its number, it does not open.
    history_file(tmp_path).write_bytes(both[len(one) :] + one)
    with pytest.raises(HistoryDamaged):
        keystore.history()
    history_file(tmp_path).unlink()
    with pytest.raises(HistoryDamaged):
        keystore.history()


async def test_history_inside_the_state_migrates_on_open(tmp_path: Path) -> None:
    legacy = state()
    legacy.messages = [message(1, "delivered"), message(2)]
    legacy.messages[0].record_index = 4
    keystore = Keystore.create(tmp_path, PASSPHRASE, state(), scrypt=CHEAP)
    keystore._write(legacy)  # as a keystore written before the log existed
    assert not history_file(tmp_path).exists()  # an empty history writes no log
    assert keystore.history() == legacy.messages  # readable before migration too
    reopened = Keystore.open(tmp_path, PASSPHRASE)
    migrated = reopened.load()
    assert migrated.messages == [] and migrated.history_entries == 2
    assert reopened.history() == legacy.messages
    await add(reopened, 3)
    assert reopened.history() == [*legacy.messages, message(3)]


async def test_migration_interrupted_before_the_state_save_is_redone(tmp_path: Path) -> None:
    legacy = state()
    legacy.messages = [message(1)]
    keystore = Keystore.create(tmp_path, PASSPHRASE, state(), scrypt=CHEAP)
    keystore._write(legacy)
    history_file(tmp_path).write_bytes(b"\x00\x00\x00\x40half an entry")  # crash mid-append
    reopened = Keystore.open(tmp_path, PASSPHRASE)
    assert reopened.load().history_entries == 1
    assert reopened.history() == [message(1)]


def test_state_without_the_new_field_decodes() -> None:
    """A state JSON written before ``history_entries`` existed still loads."""
    old = msgspec.json.encode(state())
    text = old.replace(b',"history_entries":0', b"")
    assert b"history_entries" not in text
    assert msgspec.json.decode(text, type=ClientState).history_entries == 0


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("add"), st.integers(0, 1000)),
            st.tuples(st.just("set"), st.integers(0, 50)),
            st.tuples(st.just("cut"), st.integers(0, 5)),
        ),
        max_size=30,
    )
)
def test_diff_then_replay_reproduces_the_list(steps: list[tuple[str, int]]) -> None:
    committed: list[MessageEntry] = []
    current: list[MessageEntry] = []
    replayed: list[MessageEntry] = []
    for kind, n in steps:
        if kind == "add":
            current.append(message(n))
        elif kind == "set" and current:
            current[n % len(current)] = message(n, "read")
        elif kind == "cut":
            del current[len(current) - min(n, len(current)) :]
        for number, op in enumerate(diff(committed, current)):
            apply(replayed, op, number, number)
        committed = [msgspec.structs.replace(m) for m in current]
        assert replayed == current


def test_replaying_an_op_that_does_not_fit_is_damage() -> None:
    with pytest.raises(HistoryDamaged):
        apply([], HistoryOp(3, message(1)), 0, 1)
    with pytest.raises(HistoryDamaged):
        apply([], HistoryOp(0, None), 0, 1)
    messages = [message(1)]
    apply(messages, HistoryOp(CLEAR), 0, 1)
    assert messages == []


async def test_create_then_save_keeps_the_count_of_the_new_log(tmp_path: Path) -> None:
    """A state copied from elsewhere (a count of another device's log) starts a new log."""
    copied = state()
    copied.history_entries = 7
    keystore = Keystore.create(tmp_path, PASSPHRASE, copied, scrypt=CHEAP)
    copied.account_pickle = "pickled"
    keystore.save(copied)  # as registration does after create
    reopened = Keystore.open(tmp_path, PASSPHRASE)
    assert reopened.history() == [] and reopened.load().history_entries == 0
    await add(reopened, 1)
    assert reopened.history() == [message(1)]
