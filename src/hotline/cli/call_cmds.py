"""``hotline call`` and ``hotline answer``: end-to-end encrypted voice calls from a terminal.

Audio comes from ``--play FILE`` and goes to ``--record FILE`` (any format FFmpeg reads; the
recording's format follows its extension: ``.wav``, ``.ogg``, ...). The call runs while this
process runs: it keeps the mailbox open (websocket) for the signalling and applies the
timeouts; Ctrl-C hangs up. When the network drops mid-call it prints "reconnecting…", and
"reconnected" once a new media connection is up (or the call ends "failed": network lost).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from hotline.calls.config import MediaOptions
from hotline.calls.state import CallState
from hotline.cli.client_cmds import opened
from hotline.cli.common import console, run_async
from hotline.client.call_flow import CallFlows, LiveCall, call_flows
from hotline.client.device import HotlineClient
from hotline.wire.errors import HotlineError

PlayOption = Annotated[
    Path | None,
    typer.Option(
        "--play",
        help="Send this audio file (WAV, Ogg, MP3...) as your voice.",
        exists=True,
        dir_okay=False,
    ),
]
RecordOption = Annotated[
    Path | None,
    typer.Option("--record", help="Write what the other side says to this file (.wav, .ogg)."),
]
WindowOption = Annotated[
    float,
    typer.Option(
        "--reconnect-window",
        help="After a network loss, try this many seconds to reconnect before the call fails.",
        min=1,
        max=3600,
    ),
]
SecondsOption = Annotated[
    float | None,
    typer.Option("--seconds", help="Hang up after this many seconds of conversation.", min=0),
]


@asynccontextmanager
async def _call_session(window: float) -> AsyncIterator[tuple[HotlineClient, CallFlows]]:
    """An open client whose mailbox and call timers are pumped in the background."""
    async with opened() as client:
        flows = call_flows(client)
        flows.timeouts = dataclasses.replace(flows.timeouts, reconnect_ms=round(window * 1000))
        pumps = [
            asyncio.create_task(_print_events(client)),
            asyncio.create_task(flows.run_timers()),
        ]
        try:
            yield client, flows
        finally:
            for live in list(flows.calls.values()):
                if not live.call.ended:
                    with contextlib.suppress(HotlineError):
                        await flows.hangup(live.call_id)
            for task in pumps:
                task.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            await flows.shutdown()


async def _print_events(client: HotlineClient) -> None:
    # reconnect: a network loss must not end the signalling the call's reconnect needs
    async for event in client.listen(reconnect=True):
        if event.kind == "warning":
            console.print(f"[bold yellow]⚠ {escape(event.text)}[/]", highlight=False)
        elif event.kind == "message":
            console.print(f"[dim]message from {escape(event.contact)}:[/] {escape(event.text)}")
        elif event.kind == "call" and "recording notice" in event.text:
            # Told before the call connects: who records it and under which law.
            console.print(f"[bold blue]ⓡ {escape(event.text)}[/]", highlight=False)


async def _converse(flows: CallFlows, live: LiveCall, seconds: float | None) -> None:
    """Wait for the media to come up, talk, then hang up (after ``seconds``) or be hung up."""
    timeout = (flows.timeouts.ring_ms + flows.timeouts.connect_ms) / 1000 + 5
    state = await flows.wait_for(live.call_id, CallState.ACTIVE, CallState.ENDED, timeout=timeout)
    if state is CallState.ACTIVE:
        console.print(
            f"[green]connected[/] to {escape(live.peer)} (end-to-end encrypted; Ctrl-C hangs up)"
        )
        talk = 10.0**9 if seconds is None else seconds  # None: until someone hangs up
        end = asyncio.get_running_loop().time() + talk
        with contextlib.suppress(TimeoutError):
            while state is not CallState.ENDED:
                left = end - asyncio.get_running_loop().time()
                state = await flows.wait_for(live.call_id, *_NEXT[state], timeout=max(left, 0))
                _show_reconnect(state, flows)
        if not live.call.ended:
            await flows.hangup(live.call_id)


#: what the conversation waits for next: the network lost, or back
_NEXT = {
    CallState.ACTIVE: (CallState.RECONNECTING, CallState.ENDED),
    CallState.RECONNECTING: (CallState.ACTIVE, CallState.ENDED),
}


def _show_reconnect(state: CallState, flows: CallFlows) -> None:
    if state is CallState.RECONNECTING:
        window = flows.timeouts.reconnect_ms / 1000
        console.print(f"[yellow]reconnecting…[/] (media lost; trying for up to {window:g} s)")
    elif state is CallState.ACTIVE:
        console.print("[green]reconnected[/]")


def _report(live: LiveCall) -> None:
    call = live.call
    seconds = call.duration_ms / 1000
    colour = "green" if call.outcome == "answered" else "red"
    console.print(
        f"[{colour}]call {call.outcome}[/] with {escape(live.peer)}: {escape(call.reason)}"
        + (f" — {seconds:.1f} s" if call.answer_at else ""),
        highlight=False,
    )
    if live.error is not None:
        console.print(f"[bold red]{escape(f'[{live.error.code}]')}[/] {escape(live.error.detail)}")
    if call.outcome != "answered":
        raise typer.Exit(1)


def _media_warnings(live: LiveCall) -> None:
    for warning in live.media.warnings if live.media is not None else []:
        console.print(f"[yellow]{escape(warning)}[/]")


def _media(play: Path | None, record: Path | None) -> MediaOptions:
    """Files where given; the sound card (default microphone/speaker) for the rest."""
    return MediaOptions(play=play, record=record, sound_card=True)


@run_async
async def call(
    contact: Annotated[str, typer.Argument(help="Who to call: a handle or a unique prefix.")],
    play: PlayOption = None,
    record: RecordOption = None,
    seconds: SecondsOption = None,
    reconnect_window: WindowOption = 20.0,
) -> None:
    """Call CONTACT: ring all their devices, talk until one side hangs up (or --seconds)."""
    media = _media(play, record)
    async with _call_session(reconnect_window) as (_client, flows):
        call_id = await flows.start_call(contact, media)
        _media_warnings(flows.get(call_id))
        live = flows.get(call_id)
        console.print(f"calling {escape(live.peer)} … [dim](call {call_id})[/]")
        await _converse(flows, live, seconds)
    _report(live)


@run_async
async def answer(
    play: PlayOption = None,
    record: RecordOption = None,
    seconds: SecondsOption = None,
    wait: Annotated[
        float, typer.Option("--wait", help="How long to wait for a call to ring.", min=0)
    ] = 60.0,
    reconnect_window: WindowOption = 20.0,
) -> None:
    """Wait for an incoming call and answer it on this device."""
    media = _media(play, record)
    async with _call_session(reconnect_window) as (client, flows):
        console.print(f"[dim]waiting for a call to {escape(client.handle)} …[/]")
        try:
            live = await flows.wait_for_incoming(wait)
        except TimeoutError:
            console.print(f"no call within {wait:g} s")
            raise typer.Exit(1) from None
        console.print(f"answering {escape(live.peer)} [dim](call {live.call_id})[/]")
        await flows.accept(live.call_id, media)
        _media_warnings(live)
        await _converse(flows, live, seconds)
    _report(live)
