"""``hotline call`` and ``hotline answer`` as real processes against a real server."""

from __future__ import annotations

import pytest
from audio_match import THRESHOLD, compare, speak
from callkit import cdrs, finish, hotline

pytestmark = pytest.mark.slow


async def test_call_and_answer_commands(connected_pair, live_server, tmp_path) -> None:
    washington, ottawa = connected_pair
    w_home, o_home = tmp_path / "home-potus", tmp_path / "home-pm"
    speech = speak(tmp_path / "speech.wav", "Hotline test from the command line.")
    heard = tmp_path / "heard.wav"
    answering = await hotline(o_home, "answer", "--record", str(heard), "--wait", "20")
    # No need to wait for it to start: the offer waits in its mailbox until it listens.
    calling = await hotline(w_home, "call", "pm", "--play", str(speech), "--seconds", "3")
    out_call = await finish(calling)
    out_answer = await finish(answering)
    print(out_call, out_answer, sep="\n")
    assert calling.returncode == 0, out_call
    assert answering.returncode == 0, out_answer
    assert "connected" in out_call and "call answered" in out_call
    assert "answering potus@" in out_answer and "call answered" in out_answer
    assert compare(heard, speech).correlation > THRESHOLD
    call_id = out_call.split("(call ")[1].split(")")[0]
    assert cdrs(live_server, washington.handle, call_id)[-1]["outcome"] == "answered"
    assert cdrs(live_server, ottawa.handle, call_id)[-1]["outcome"] == "answered"


async def test_answer_without_a_call_times_out(connected_pair, tmp_path) -> None:
    proc = await hotline(tmp_path / "home-pm", "answer", "--wait", "0.5")
    out = await finish(proc)
    assert proc.returncode == 1 and "no call within 0.5 s" in out
