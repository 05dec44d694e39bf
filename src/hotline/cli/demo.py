"""``hotline demo``: the whole secure line on loopback, checked step by step.

A home server starts on 127.0.0.1 with a temporary SQLite database; Washington and Ottawa enrol,
exchange cards, compare safety numbers, and message both ways (once while Ottawa is offline).
The demo then looks inside the server's database as an attacker who stole it would, and shows
that it holds ciphertext only. It exits 0 only if every check passed.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from hotline.client.device import HotlineClient
from hotline.crypto.passphrase import ScryptParams
from hotline.crypto.safety_number import format_safety_number
from hotline.custodian.export import export_bag
from hotline.custodian.verify_export import verify_bag
from hotline.custodian.verify_log import verify_log
from hotline.records.custodian_keys import CustodianKeys, write_keys
from hotline.records.sealing import open_record
from hotline.server.admin import issue_enrolment
from hotline.server.config import ServerConfig
from hotline.server.embedded import EmbeddedServer, start_embedded
from hotline.server.records_log import ArchiveSettings
from hotline.wire.errors import HotlineError

DOMAIN = "hotline.test"
CUSTODIAN_PASSPHRASE = "custodian demo passphrase (not for real use)"  # noqa: S105
DEMO_SCRYPT = ScryptParams(log2_n=14, r=8, p=1)
console = Console()


class DemoFailed(Exception):
    """A step of the demo did not check out."""


def check(ok: bool, what: str) -> None:
    if not ok:
        raise DemoFailed(what)
    console.print(f"  [green]✓[/] {what}")


async def _enrol(server: EmbeddedServer, home: Path, name: str, display: str) -> HotlineClient:
    handle = f"{name}@{DOMAIN}"
    token = await issue_enrolment(server.store, handle, time.time())
    client = await HotlineClient.register(
        home / name,
        "demo passphrase (not for real use)",
        server_url=server.url,
        enrolment_token=token,
        handle=handle,
        display_name=display,
        scrypt=ScryptParams(log2_n=14, r=8, p=1),
    )
    console.print(
        f"  [green]✓[/] {display} enrolled as [bold]{handle}[/] "
        f"(identity key + device keys generated on the device)"
    )
    return client


def _stored_rows(db: Path, device_id: str) -> list[tuple[str, int, bytes]]:
    """What a thief of the database file would find queued for one device."""
    with sqlite3.connect(db) as conn:
        return list(
            conn.execute(
                "SELECT kind, length(body), body FROM deliveries WHERE device_id = ? ORDER BY seq",
                (device_id,),
            )
        )


def _db_contains(db: Path, needles: list[str]) -> list[str]:
    files = [db, db.with_name(db.name + "-wal")]
    blob = b"".join(f.read_bytes() for f in files if f.exists())
    return [n for n in needles if n.encode() in blob]


async def _demo(home: Path) -> None:
    db = home / "server.db"
    custodian = CustodianKeys.generate()
    write_keys(home / "custodian", custodian, CUSTODIAN_PASSPHRASE, scrypt=DEMO_SCRYPT)
    archive = ArchiveSettings(
        log_key=Ed25519PrivateKey.generate(), custodian_key=custodian.public.hpke.to_bytes()
    )
    server = await start_embedded(
        ServerConfig(domain=DOMAIN, database_url=f"sqlite+aiosqlite:///{db}", archive=archive)
    )
    console.print(
        Panel.fit(
            f"Home server [bold]{DOMAIN}[/] on {server.url} (SQLite {db.name})\n"
            f"Records archive sealed to the custodian key {custodian.public.fingerprint}\n"
            f"(the custodian's private key is in {home / 'custodian'}, never on the server)"
        )
    )
    try:
        await _conversation(server, home, db)
        console.rule("6. The custodian")
        await _custodian(server, home, custodian)
    finally:
        await server.stop()


async def _conversation(server: EmbeddedServer, home: Path, db: Path) -> None:
    console.rule("1. Enrolment")
    washington = await _enrol(server, home, "potus", "President of the United States")
    ottawa = await _enrol(server, home, "pm", "Prime Minister of Canada")
    try:
        await _exchange(washington, ottawa, db)
    finally:
        await washington.close()
        await ottawa.close()


async def _exchange(washington: HotlineClient, ottawa: HotlineClient, db: Path) -> None:
    console.rule("2. Cards")
    card = await ottawa.my_card()
    console.print(f"  Ottawa's card: [cyan]{card[:48]}…[/] ({len(card)} characters, signed)")
    await washington.add_contact(card)
    added = await ottawa.sync()
    await washington.sync()
    check(
        any(e.kind == "contact_added" for e in added),
        "Ottawa's device accepted the request (valid, unexpired invite)",
    )
    check(
        washington.contact(ottawa.handle).status == "active"
        and ottawa.contact(washington.handle).status == "active",
        "each lists the other as a contact",
    )

    console.rule("3. Safety numbers")
    w_number = washington.safety_number(ottawa.handle)
    o_number = ottawa.safety_number(washington.handle)
    console.print(f"  Washington sees: [bold]{format_safety_number(w_number)}[/]")
    console.print(f"  Ottawa sees:     [bold]{format_safety_number(o_number)}[/]")
    check(w_number == o_number, "both sides show the same 60-digit safety number")
    await washington.mark_verified(ottawa.handle)
    await ottawa.mark_verified(washington.handle)
    for who, me, them in (("Washington", washington, ottawa), ("Ottawa", ottawa, washington)):
        for banner in me.archive_banners(them.handle):
            console.print(f"  {who} is told before the first message: [bold blue]ⓡ {banner}[/]")

    console.rule("4. Messages")
    said: list[tuple[str, str]] = []

    async def say(
        sender: HotlineClient, receiver: HotlineClient, text: str, deliver: bool = True
    ) -> None:
        entry = await sender.send_text(receiver.handle, text)
        said.append((sender.handle, text))
        check(
            entry.record_index >= 0 and not entry.warnings,
            f"{sender.handle} sent it on the record (log #{entry.record_index}, receipt verified)",
        )
        if deliver:
            got = [e.text for e in await receiver.sync() if e.kind == "message"]
            mine = receiver.history(sender.handle)[-1].record_index
            check(
                got == [text] and mine >= 0,
                f"{receiver.handle} decrypted {text!r} and captured it (log #{mine})",
            )

    await say(washington, ottawa, "Prime Minister, do you have a minute on the summit?")
    await say(ottawa, washington, "Of course, Mr President. Go ahead.")
    console.print("  [dim]Ottawa goes offline…[/]")
    offline = ["Can we move the joint statement to Thursday?", "Our drafts cross tonight."]
    for text in offline:
        await say(washington, ottawa, text, deliver=False)
    rows = _stored_rows(db, ottawa.device_id)
    table = Table(
        "kind",
        "bytes",
        "what the server holds (first 32 bytes, hex)",
        title="Queued for Ottawa's device: ciphertext only",
    )
    for kind, size, body in rows:
        table.add_row(kind, str(size), body[:32].hex())
    console.print(table)
    check(
        len(rows) >= len(offline),
        f"the server queued {len(rows)} ciphertexts for Ottawa (messages and receipts)",
    )
    check(
        _db_contains(db, [t for _, t in said]) == [],
        "no message text appears anywhere in the server's database file",
    )
    console.print("  [dim]Ottawa comes back online…[/]")
    got = [e.text for e in await ottawa.sync() if e.kind == "message"]
    check(got == offline, "Ottawa received the queued messages in order, each once")
    check(
        all(m.record_index >= 0 for m in ottawa.history(washington.handle)),
        "and captured its own record of each on receipt",
    )
    check(
        _stored_rows(db, ottawa.device_id) == [],
        "once Ottawa acknowledged them, the server deleted the ciphertexts",
    )
    await say(ottawa, washington, "Thursday works. Talk then.")
    await ottawa.send_read_receipts(washington.handle)
    await washington.sync()

    console.rule("5. Transcript")
    _print_transcript(washington, ottawa.handle, lambda h: h.split("@")[0])
    digests = (
        washington.transcript_digest(ottawa.handle),
        ottawa.transcript_digest(washington.handle),
    )
    check(
        digests[0] == digests[1],
        f"both sides hold the same transcript (digest "
        f"{digests[0][:16]}…): nothing dropped, reordered or replayed",
    )


def _print_transcript(client: HotlineClient, peer: str, short: Callable[[str], str]) -> None:
    table = Table(
        "#",
        "from",
        "to",
        "message",
        "status",
        "log #",
        "protection",
        title=f"Washington's view of the conversation with {peer}",
    )
    for m in client.history(peer):
        to = peer if m.outgoing else client.handle
        table.add_row(
            str(m.seq),
            short(m.sender),
            short(to),
            m.text,
            m.status,
            str(m.record_index),
            "end-to-end (Olm), sealed record",
        )
    console.print(table)


async def _custodian(server: EmbeddedServer, home: Path, custodian: CustodianKeys) -> None:
    size = await server.store.log_size()
    entries = await server.store.log_entries(0, size)
    records = [open_record(custodian.hpke, e.leaf) for e in entries]
    table = Table(
        "log #",
        "kind",
        "side",
        "captured by",
        "body",
        title="The records log, opened with the custodian's private key",
    )
    for entry, record in zip(entries, records, strict=True):
        if record.kind in ("message", "contact_added", "card_issued"):
            table.add_row(
                str(entry.index),
                record.kind,
                record.side,
                record.principal.split("@")[0],
                record.body[:40],
            )
    console.print(table)
    check(
        sum(r.kind == "message" for r in records) == 10,
        f"{size} records in the log: every message twice (sender and recipient side), "
        "contact changes, receipts",
    )
    log_key = server.config.archive.log_key.public_key() if server.config.archive else None
    assert log_key is not None
    report = await verify_log(server.store, log_key)
    check(
        report.ok,
        f"the whole log recomputes: {report.entries_checked} entries, "
        f"{report.heads_checked} signed tree heads, every root matches",
    )
    bag = home / "export"
    summary = await export_bag(server.store, custodian.hpke, log_key, bag)
    console.print(
        f"  The custodian exported a BagIt bag ({summary.entries} records, "
        f"{len(summary.conversations)} conversations as text and MBOX) to {bag.name}/"
    )
    verified = verify_bag(bag, log_key, custodian.hpke)
    check(
        verified.entries == verified.head.size,
        f"the bag verifies offline: {verified.entries} entries, every inclusion proof, "
        "the signed head, every record against its seal",
    )
    tampered = home / "export-tampered"
    shutil.copytree(bag, tampered)
    records_file = tampered / "data" / "records.jsonl"
    records_file.write_text(records_file.read_text().replace("Thursday works", "Thursday worms"))
    try:
        verify_bag(tampered, log_key, custodian.hpke)
        check(False, "a tampered copy of the bag must fail verification")
    except HotlineError as exc:
        check(True, escape(f"a copy with one word altered fails: [{exc.code}] {exc.detail}")[:200])


def run_demo() -> int:
    """Run the demo; 0 when every step checked out, 1 otherwise."""
    with tempfile.TemporaryDirectory(prefix="hotline-demo-") as tmp:
        try:
            asyncio.run(_demo(Path(tmp)))
        except DemoFailed as exc:
            console.print(f"[bold red]DEMO FAILED:[/] {exc}")
            return 1
    console.print(
        Panel.fit(
            "[bold green]All checks passed.[/] The line is end-to-end "
            "encrypted, reachable only by card holders, verifiable,\nand on the record: "
            "every message captured at creation into a log only the custodian can read."
        )
    )
    return 0
