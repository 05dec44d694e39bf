"""The demo's call: Washington calls Ottawa across the two servers, each side plays a few
seconds of synthetic speech (espeak-ng when installed, else a spoken-range tone), records what
it hears, hangs up; both custodians then show the call detail records in their archives."""

from __future__ import annotations

import array
import asyncio
import math
import shutil
import subprocess
import wave
from collections.abc import Callable
from pathlib import Path

from hotline.calls.config import MediaOptions
from hotline.calls.state import CallState
from hotline.cli.demo_setup import DemoFailed, Government, check, console
from hotline.client.call_flow import call_flows
from hotline.client.device import HotlineClient
from hotline.records.sealing import open_record


def speech(path: Path, text: str, pitch_hz: float) -> Path:
    """``text`` spoken by espeak-ng, or (without it) three seconds of a tone at ``pitch_hz``."""
    espeak = shutil.which("espeak-ng")
    if espeak is not None:
        subprocess.run([espeak, "-w", str(path), text], check=True, capture_output=True)  # noqa: S603
        return path
    rate = 48_000
    samples = array.array(
        "h",
        (
            int(
                8000
                * math.sin(2 * math.pi * pitch_hz * n / rate)
                * (0.5 + 0.5 * math.sin(n / 4000))
            )
            for n in range(3 * rate)
        ),
    )
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())
    return path


def seconds_heard(path: Path) -> float:
    """Seconds of the recording louder than near-silence (what actually came through)."""
    with wave.open(str(path), "rb") as wav:
        rate, width, channels = wav.getframerate(), wav.getsampwidth(), wav.getnchannels()
        frames = wav.readframes(wav.getnframes())
    if width != 2:
        return 0.0
    samples = array.array("h", frames)
    window = rate * channels // 50  # 20 ms
    loud = 0
    for start in range(0, len(samples) - window, window):
        chunk = samples[start : start + window]
        if math.sqrt(sum(s * s for s in chunk) / window) > 300:
            loud += 1
    return loud * 0.02


async def _pump(
    clients: tuple[HotlineClient, ...], until: Callable[[], bool], timeout: float = 20.0
) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not until():
        if asyncio.get_running_loop().time() > deadline:
            raise DemoFailed("the call did not reach the expected state")
        for client in clients:
            await client.sync()
            await call_flows(client).tick()
        await asyncio.sleep(0.02)


async def demo_call(
    home: Path, washington: Government, ottawa: Government, potus: HotlineClient, pm: HotlineClient
) -> None:
    tool = "espeak-ng" if shutil.which("espeak-ng") else "a generated tone (no espeak-ng here)"
    w_says = speech(home / "washington-says.wav", "Washington calling Ottawa on the hotline.", 180)
    o_says = speech(home / "ottawa-says.wav", "Ottawa here. We hear you loud and clear.", 220)
    w_hears, o_hears = home / "washington-hears.wav", home / "ottawa-hears.wav"
    console.print(f"  speech for both sides made with {tool}")
    calls = (potus, pm)

    def state(client: HotlineClient, call_id: str) -> CallState | None:
        live = call_flows(client).calls.get(call_id)
        return live.call.state if live else None

    call_id = await call_flows(potus).start_call(
        pm.handle, MediaOptions(play=w_says, record=w_hears)
    )
    await _pump(calls, lambda: state(pm, call_id) is CallState.RINGING_IN)
    check(True, "Ottawa's device rings (offer and ringing crossed both servers end to end)")
    await call_flows(pm).accept(call_id, MediaOptions(play=o_says, record=o_hears))
    await _pump(calls, lambda: all(state(c, call_id) is CallState.ACTIVE for c in calls))
    check(
        True,
        "answered: DTLS-SRTP media flows, the DTLS fingerprint matched the one "
        "signalled end to end",
    )
    told = call_flows(pm).get(call_id).notices
    check(
        bool(told),
        "before it connected, Ottawa's device was told the call is recorded, and under which law",
    )
    await asyncio.sleep(4.0)
    await call_flows(potus).hangup(call_id)
    await _pump(calls, lambda: state(pm, call_id) is CallState.ENDED)
    for client in calls:
        await call_flows(client).shutdown()
    heard = (seconds_heard(o_hears), seconds_heard(w_hears))
    check(
        min(heard) > 0.5,
        f"each side heard the other: Ottawa {heard[0]:.1f} s of audio, Washington {heard[1]:.1f} s",
    )
    for gov in (washington, ottawa):
        size = await gov.server.store.log_size()
        entries = await gov.server.store.log_entries(0, size)
        records = [open_record(gov.custodian.hpke, e.leaf) for e in entries]
        cdrs = [
            r.detail
            for r in records
            if r.kind == "call" and r.side == "local" and r.detail.get("call_id") == call_id
        ]
        chunks = [d for d in cdrs if "chunk" in d]
        cdrs = [d for d in cdrs if "chunk" not in d]
        states = " → ".join(dict.fromkeys(d.get("state", "?") for d in cdrs))
        check(
            bool(cdrs) and cdrs[-1].get("outcome") == "answered" and bool(chunks),
            f"{gov.domain}'s archive holds {len(cdrs)} call records ({states}), outcome "
            f"answered, and {len(chunks)} sealed recording chunk(s) (Opus in Ogg)",
        )
