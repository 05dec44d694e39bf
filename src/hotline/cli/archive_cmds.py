"""``hotline archive``: the records custodian's commands (keys, verify, search, export, ...).

They run offline against the home server's storage (``--data-dir`` or ``--database-url``) with
the custodian's private key (``custodian.key``; passphrase from
``HOTLINE_CUSTODIAN_PASSPHRASE`` or asked). Records are never deleted by any of them. Every
export, search and attestation is appended to the custodian's signed action log.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from hotline.cli.common import console, err_console, run_async
from hotline.custodian.actions import (
    actions_path,
    append_action,
    holds_in_force,
    retention_years,
    verify_actions,
)
from hotline.custodian.attestation import attest, check_attestation, open_attestation
from hotline.custodian.completeness import collect_chains
from hotline.custodian.errors import RecordsGap
from hotline.custodian.export import export_bag
from hotline.custodian.pending import pending_deliveries
from hotline.custodian.rendering import utc
from hotline.custodian.search import RecordFilter, SearchStats, search_records
from hotline.custodian.source import (
    custodian_passphrase,
    load_custodian,
    log_public_key,
    open_log,
)
from hotline.custodian.verify_export import verify_bag
from hotline.custodian.verify_log import verify_log
from hotline.records.custodian_keys import (
    PUBLIC_FILE,
    CustodianKeys,
    read_public,
    write_keys,
)
from hotline.store.sql import SqlStore
from hotline.wire.errors import HotlineError, NotFound

archive_app = typer.Typer(
    help="The records custodian's tools: keys, log verification, search, BagIt export, "
    "completeness, attestations and the 20-day rule. Records are never deleted.\n\n"
    "The passphrase of custodian.key comes from HOTLINE_CUSTODIAN_PASSPHRASE (or is asked).",
    no_args_is_help=True,
)
hold_app = typer.Typer(
    help="Legal holds, recorded in the custodian's signed action log. Records are never "
    "deleted, held or not: a hold documents that a conversation must be preserved.",
    no_args_is_help=True,
)
retention_app = typer.Typer(
    help="The retention schedule, recorded in the custodian's signed action log only. "
    "Records are never deleted by Hotline; the schedule informs the archive's own disposal.",
    no_args_is_help=True,
)
archive_app.add_typer(hold_app, name="hold")
archive_app.add_typer(retention_app, name="retention")

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        envvar="HOTLINE_SERVER_DATA",
        help="The home server's folder (its SQLite database and log.key), or a copy of it.",
    ),
]
DatabaseUrl = Annotated[
    str | None,
    typer.Option("--database-url", help="Store URL instead of --data-dir (e.g. PostgreSQL)."),
]
LogKey = Annotated[
    str | None,
    typer.Option(
        "--log-key",
        help="The log's public key (base64url, 'log_key' of GET /v1/records/policy); "
        "default: from --data-dir's log.key.",
    ),
]
KeyFile = Annotated[
    Path,
    typer.Option("--key", help="custodian.key from 'hotline archive init' (kept offline)."),
]


P = ParamSpec("P")
T = TypeVar("T")


def _guard(func: Callable[P, T]) -> Callable[P, T]:
    """Show Hotline errors of a synchronous command as ``[code] detail``, exit 1."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return func(*args, **kwargs)
        except HotlineError as exc:
            _show(exc)
            raise typer.Exit(1) from None

    return wrapper


def _show(exc: HotlineError) -> None:
    # The code is escaped: rich would otherwise take "[code]" for a style tag and drop it.
    err_console.print(f"[bold red]error[/] {escape(f'[{exc.code}]')} {escape(exc.detail)}")


def _async_guard(func: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Show Hotline errors of an async command as ``[code] detail``, exit 1."""

    @functools.wraps(func)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await func(*args, **kwargs)
        except HotlineError as exc:
            _show(exc)
            raise typer.Exit(1) from None

    return wrapper


def _now_ms() -> int:
    return int(time.time() * 1000)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    )


@asynccontextmanager
async def _store(data_dir: Path | None, url: str | None) -> AsyncIterator[SqlStore]:
    store = await open_log(data_dir, url)
    try:
        yield store
    finally:
        await store.close()


def _log(key_file: Path, keys: CustodianKeys, action: str, **detail: str) -> None:
    append_action(actions_path(key_file), keys.signing, action, _now_ms(), **detail)


# -- keys --------------------------------------------------------------------------------------
@archive_app.command("init")
@_guard
def init(
    out: Annotated[Path, typer.Option("--out", help="Folder for custodian.key and .pub.")],
) -> None:
    """Create the custodian's key pair: custodian.key (passphrase-sealed, keep it offline)
    and custodian.pub (give it to the home server operator)."""
    passphrase = custodian_passphrase()
    if len(passphrase) < 8:
        raise typer.BadParameter("use a passphrase of at least 8 characters")
    keys = CustodianKeys.generate()
    private, public = write_keys(out, keys, passphrase)
    console.print(f"Custodian key written: [bold]{private}[/] (sealed; keep it offline)")
    console.print(f"Public key: [bold]{public}[/]")
    console.print(f"Fingerprint: [bold cyan]{keys.public.fingerprint}[/]")
    console.print(f"[dim]Next, on the home server: hotline server --custodian-key {public}[/]")


# -- verification ------------------------------------------------------------------------------
@archive_app.command("verify")
@run_async
@_async_guard
async def verify(
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    log_key: LogKey = None,
) -> None:
    """Recompute the whole log from storage and check every signed tree head.

    Detects a changed entry (by index), deleted/reordered/inserted entries (the first failing
    head and the leaves it implicates), index gaps, and heads the log key did not sign.
    Exit 0 only if everything verifies."""
    key = log_public_key(data_dir, log_key)
    async with _store(data_dir, database_url) as store:
        with _progress() as bar:
            task = bar.add_task("Verifying log", total=None)
            report = await verify_log(
                store,
                key,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    for problem in report.problems:
        err_console.print(f"[bold red]✗[/] {escape(f'[{problem.code}]')} {escape(problem.detail)}")
    if report.problem_count > len(report.problems):
        err_console.print(f"… and {report.problem_count - len(report.problems)} more")
    failing = report.first_failing_head
    if failing is not None:
        err_console.print(f"[bold red]First failing tree head:[/] {escape(failing.detail)}")
    console.print(
        f"Log {report.log_id or '?'}: {report.entries_checked} of {report.log_size} entries, "
        f"{report.heads_checked} signed tree heads checked; latest head size "
        f"{report.latest_head_size}, root {report.latest_root.hex() or '-'}"
    )
    if not report.ok:
        raise typer.Exit(1)
    console.print(
        "[bold green]✓ log verified[/]: every head matches storage, so each head is "
        "consistent with every earlier one (RFC 9162 §2.1.4)"
    )


# -- search ------------------------------------------------------------------------------------
def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"not an ISO 8601 time: {value}") from exc
    return parsed if parsed.tzinfo else parsed.astimezone()


@archive_app.command("search")
@run_async
@_async_guard
async def search(
    key: KeyFile,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    participant: Annotated[
        str | None, typer.Option(help="Sender, recipient or capturing principal (handle).")
    ] = None,
    since: Annotated[str | None, typer.Option(help="From this ISO 8601 time.")] = None,
    until: Annotated[str | None, typer.Option(help="Before this ISO 8601 time.")] = None,
    text: Annotated[str | None, typer.Option(help="Words that must all be in the body.")] = None,
    kind: Annotated[str | None, typer.Option(help="Record kind, e.g. message, call.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table.")] = False,
) -> None:
    """Decrypt the archive with the custodian key and list matching records (logged)."""
    keys = load_custodian(key)
    where = RecordFilter(
        participant=participant or "",
        since=_parse_time(since),
        until=_parse_time(until),
        text=text or "",
        kind=kind or "",
    )
    table = Table("#", "time (UTC)", "kind", "side", "from", "to", "body")
    stats = SearchStats()
    async with _store(data_dir, database_url) as store:
        async for opened in search_records(store, keys.hpke, where, stats):
            record = opened.record
            assert record is not None
            if as_json:
                line = {"index": opened.entry.index, "record_id": record.record_id}
                line.update(kind=record.kind, side=record.side, sender=record.sender)
                line.update(body=record.body, conversation=record.conversation)
                console.print_json(json.dumps(line))
                continue
            table.add_row(
                str(opened.entry.index),
                utc(record.created_at_ms).strftime("%Y-%m-%d %H:%M:%S"),
                record.kind,
                record.side,
                record.sender,
                ", ".join(record.recipients),
                escape(record.body),
            )
    if not as_json:
        console.print(table)
    console.print(
        f"{stats.matched} of {stats.read} records matched ({stats.unreadable} unreadable)"
    )
    criteria = {
        k: v
        for k, v in (
            ("participant", participant),
            ("since", since),
            ("until", until),
            ("text", text),
            ("kind", kind),
        )
        if v
    }
    _log(key, keys, "search", matched=str(stats.matched), **criteria)


# -- export ------------------------------------------------------------------------------------
@archive_app.command("export")
@run_async
@_async_guard
async def export(
    key: KeyFile,
    out: Annotated[Path, typer.Option("--out", help="New folder for the BagIt bag.")],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    log_key: LogKey = None,
) -> None:
    """Export the log up to its latest signed head as a BagIt bag (RFC 8493): decrypted
    records (JSON Lines), a transcript and an mbox per conversation, the log entries, the
    signed head and every inclusion proof. Verify it with 'hotline archive verify-export'."""
    keys = load_custodian(key)
    public = log_public_key(data_dir, log_key)
    async with _store(data_dir, database_url) as store:
        with _progress() as bar:
            tasks: dict[str, TaskID] = {}

            def progress(stage: str, done: int, total: int) -> None:
                if stage not in tasks:
                    tasks[stage] = bar.add_task(f"Exporting {stage}", total=total)
                bar.update(tasks[stage], completed=done)

            summary = await export_bag(store, keys.hpke, public, out, progress=progress)
    assert summary.head is not None
    console.print(
        f"[bold green]✓ bag written[/] {out}: {summary.entries} entries "
        f"({summary.unreadable} unreadable with this key), "
        f"{len(summary.conversations)} conversations, root {summary.head.root.hex()}"
    )
    if summary.left_for_later:
        console.print(
            f"[yellow]{summary.left_for_later} newer entries have no signed head yet; "
            "they go in the next export[/]"
        )
    _log(
        key, keys, "export", out=str(out), size=str(summary.head.size), root=summary.head.root.hex()
    )


@archive_app.command("verify-export")
@_guard
def verify_export(
    bag: Annotated[Path, typer.Argument(help="The bag folder written by 'archive export'.")],
    log_key: LogKey = None,
    key: Annotated[
        Path | None,
        typer.Option("--key", help="Also compare every record with its sealed entry."),
    ] = None,
) -> None:
    """Verify an exported bag offline: manifests, the signed head, every entry's leaf hash
    and inclusion proof, and that records.jsonl matches the entries."""
    public = log_public_key(None, log_key) if log_key else None
    custodian = load_custodian(key).hpke if key is not None else None
    report = verify_bag(bag, public, custodian)
    for warning in report.warnings:
        err_console.print(f"[yellow]warning:[/] {warning}")
    sealed = (
        f", {report.records_checked_against_seal} records checked against their seals"
        if custodian
        else ""
    )
    console.print(
        f"[bold green]✓ bag verified[/]: {report.entries} entries in log {report.head.log_id} "
        f"at size {report.head.size}, root {report.head.root.hex()}{sealed}"
    )


# -- completeness ------------------------------------------------------------------------------
@archive_app.command("gaps")
@run_async
@_async_guard
async def gaps(
    key: KeyFile,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Prove no record is missing: rebuild every conversation's hash chains from the records
    and list missing messages, chain breaks, forks and one-sided captures (exit 1 if any).
    Also prints each conversation's transcript digest, as the devices show it."""
    keys = load_custodian(key)
    async with _store(data_dir, database_url) as store:
        report = await collect_chains(store, keys.hpke)
    table = Table("conversation", "messages", "streams", "transcript digest")
    for conversation, chains in sorted(report.conversations.items()):
        table.add_row(conversation, str(chains.messages), str(len(chains.streams())), chains.digest)
    console.print(table)
    for gap in report.gaps:
        where = escape(f"{gap.conversation} {gap.stream}: {gap.detail}")
        err_console.print(f"[bold red]✗ {gap.kind}[/] {where}")
    if not report.ok:
        raise RecordsGap(f"{len(report.gaps)} gap(s) found", problems=len(report.gaps))
    console.print("[bold green]✓ no gaps[/]: every chained message has its records")


# -- attestations ------------------------------------------------------------------------------
@archive_app.command("attest")
@run_async
@_async_guard
async def attest_cmd(
    conversation: Annotated[str, typer.Argument(help="Conversation id, e.g. 'a@x|b@y'.")],
    key: KeyFile,
    out: Annotated[Path, typer.Option("--out", help="Where to write the signed statement.")],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Sign a content-free statement of CONVERSATION's transcript digest (per-stream sequence
    numbers and chain heads) for the other government's custodian."""
    keys = load_custodian(key)
    async with _store(data_dir, database_url) as store:
        report = await collect_chains(store, keys.hpke)
        size = await store.log_size()
        latest = await store.latest_tree_head()
    chains = report.conversations.get(conversation)
    if chains is None:
        raise NotFound(f"no messages of conversation {conversation} in this archive")
    log_id = _log_id(latest.head if latest else b"")
    out.write_bytes(
        attest(chains, log_id=log_id, tree_size=size, now_ms=_now_ms(), signing=keys.signing)
    )
    console.print(f"Attestation of {conversation} written to {out}: digest {chains.digest}")
    _log(key, keys, "attest", conversation=conversation, digest=chains.digest)


def _log_id(head_bytes: bytes) -> str:
    try:
        return str(json.loads(head_bytes)["log_id"]) if head_bytes else ""
    except (ValueError, KeyError):
        return ""


@archive_app.command("check-attestation")
@run_async
@_async_guard
async def check_attestation_cmd(
    file: Annotated[Path, typer.Argument(help="An attestation from the other custodian.")],
    key: KeyFile,
    their_custodian: Annotated[
        Path, typer.Option("--their-custodian", help="The other custodian's custodian.pub.")
    ],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Verify another custodian's attestation and compare it with our own archive's
    transcript of the same conversation (exit 1, naming the streams, if they differ)."""
    statement = open_attestation(file.read_bytes(), read_public(their_custodian).signing)
    keys = load_custodian(key)
    async with _store(data_dir, database_url) as store:
        report = await collect_chains(store, keys.hpke)
    check_attestation(statement, report.conversations.get(statement.conversation))
    console.print(
        f"[bold green]✓ identical transcript[/] of {statement.conversation}: {statement.digest}"
    )
    _log(key, keys, "check_attestation", conversation=statement.conversation, result="identical")


# -- the 20-day rule ---------------------------------------------------------------------------
@archive_app.command("pending")
@run_async
@_async_guard
async def pending(
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    warn_days: Annotated[float, typer.Option(help="Warn when fewer days than this remain.")] = 5.0,
) -> None:
    """List messages not yet captured by their receiving device, with the hours left before
    the 20-day deadline of 44 U.S.C. 2209. Exit 2 if any deadline has passed."""
    async with _store(data_dir, database_url) as store:
        items = await pending_deliveries(store, time.time())
    table = Table("waiting since (UTC)", "device", "kind", "from", "message", "hours left")
    for item in items:
        style = "red" if item.overdue or item.hours_left < 24 else ""
        if not style and item.hours_left < warn_days * 24:
            style = "yellow"
        table.add_row(
            utc(int(item.created_at * 1000)).strftime("%Y-%m-%d %H:%M"),
            item.device_id,
            item.kind,
            item.sender,
            item.message_id,
            f"[{style}]{item.hours_left:.1f}[/]" if style else f"{item.hours_left:.1f}",
        )
    console.print(table)
    overdue = [i for i in items if i.overdue]
    console.print(f"{len(items)} pending capture, {len(overdue)} past the 20-day deadline")
    if overdue:
        raise typer.Exit(2)


# -- the action log, holds, retention ----------------------------------------------------------
def _public_for(key_file: Path) -> Path:
    return key_file.parent / PUBLIC_FILE


@archive_app.command("actions")
@_guard
def actions(key: KeyFile) -> None:
    """Verify and print the custodian's action log (signed, hash-chained, append-only)."""
    entries = verify_actions(actions_path(key), read_public(_public_for(key)).signing)
    table = Table("#", "time (UTC)", "action", "detail")
    for entry in entries:
        detail = ", ".join(f"{k}={v}" for k, v in sorted(entry.detail.items()))
        table.add_row(
            str(entry.seq), utc(entry.at_ms).strftime("%Y-%m-%d %H:%M:%S"), entry.action, detail
        )
    console.print(table)
    console.print(f"[bold green]✓ {len(entries)} actions, chain and signatures verified[/]")


@hold_app.command("add")
@_guard
def hold_add(
    name: Annotated[str, typer.Argument(help="A name for the hold.")],
    key: KeyFile,
    conversation: Annotated[str, typer.Option(help="The conversation under hold.")],
    reason: Annotated[str, typer.Option(help="Why (case, request, order).")],
) -> None:
    """Place a legal hold (recorded in the action log; records are never deleted anyway)."""
    keys = load_custodian(key)
    _log(key, keys, "hold_added", name=name, conversation=conversation, reason=reason)
    console.print(f"Hold [bold]{name}[/] on {conversation} recorded.")


@hold_app.command("remove")
@_guard
def hold_remove(
    name: Annotated[str, typer.Argument(help="The hold's name.")],
    key: KeyFile,
    reason: Annotated[str, typer.Option(help="Why it is lifted.")] = "",
) -> None:
    """Lift a legal hold (recorded; nothing is deleted)."""
    keys = load_custodian(key)
    _log(key, keys, "hold_removed", name=name, reason=reason)
    console.print(f"Hold [bold]{name}[/] lifted (recorded).")


@hold_app.command("list")
@_guard
def hold_list(key: KeyFile) -> None:
    """List the holds in force, from the verified action log."""
    entries = verify_actions(actions_path(key), read_public(_public_for(key)).signing)
    table = Table("hold", "conversation", "reason")
    for hold in holds_in_force(entries):
        table.add_row(hold.name, hold.conversation, hold.reason)
    console.print(table)


@retention_app.command("set")
@_guard
def retention_set(
    key: KeyFile,
    years: Annotated[int, typer.Option("--years", min=1, help="Years to retain records.")],
) -> None:
    """Record the retention schedule (an action only: Hotline never deletes records)."""
    keys = load_custodian(key)
    previous = retention_years(verify_actions(actions_path(key), keys.signing.public_key()))
    _log(key, keys, "retention_set", years=str(years), previous=str(previous or ""))
    console.print(f"Retention schedule recorded: {years} years.")
