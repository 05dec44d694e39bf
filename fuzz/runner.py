"""The engine behind every ``fuzz/fuzz_*.py`` harness: atheris when installed, else a fallback.

A harness defines ``test_one_input(data: bytes) -> None`` that feeds ``data`` to one decoder.
The contract under test is Hotline's error tree: a decoder of outside bytes may raise only a
:class:`~hotline.wire.errors.HotlineError`. Anything else is a crash.

Usage (the same with both engines, libFuzzer-style flags)::

    python fuzz/fuzz_card.py -max_total_time=30 fuzz/work/card fuzz/corpus/card
    python fuzz/fuzz_card.py path/to/crash.bin          # reproduce one input

Crashes are deduplicated by (exception type, innermost ``hotline`` frame). With
``HOTLINE_FUZZ_KEEP_GOING=1`` (what ``make fuzz`` sets) a crash is saved under
``$HOTLINE_FUZZ_OUT/crashes/`` (``HOTLINE_FUZZ_OUT`` defaults to ``fuzz/work/<name>``; input
``.bin`` and traceback ``.txt``, the shortest input per signature) and fuzzing goes on, so
one run finds every distinct crash; otherwise the first crash ends the run as libFuzzer would.
``$HOTLINE_FUZZ_OUT/stats.json`` holds the execution count, so ``fuzz/summary.py`` can report
it whichever engine ran.

``HOTLINE_FUZZ_ENGINE=random`` forces the fallback: a coverage-less random and mutation
runner over the seed corpus (used where atheris has no wheel for the interpreter).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

Target = Callable[[bytes], None]

KEEP_GOING = os.environ.get("HOTLINE_FUZZ_KEEP_GOING") == "1"
ENGINE = os.environ.get("HOTLINE_FUZZ_ENGINE", "auto")


def _atheris() -> object | None:
    if ENGINE == "random":
        return None
    try:
        import atheris  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    return atheris


@contextlib.contextmanager
def instrumented() -> Iterator[None]:
    """Import the code under test inside this block so atheris can trace its coverage."""
    engine = _atheris()
    if engine is None:
        yield
        return
    with engine.instrument_imports(include=["hotline", "valid_encodings"]):  # type: ignore[attr-defined]
        yield


class ByteReader:
    """Reads typed values off fuzz input, as atheris' ``FuzzedDataProvider`` does.

    Past the end every read returns zeros / empty bytes, so any input is a valid program.
    """

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def take(self, n: int) -> bytes:
        """The next ``n`` bytes (fewer at the end)."""
        out = self._data[self._pos : self._pos + n]
        self._pos += n
        return out

    def uint(self, n: int) -> int:
        """A big-endian unsigned integer of ``n`` bytes."""
        return int.from_bytes(self.take(n).ljust(n, b"\0"), "big")

    def sint(self, n: int) -> int:
        """A big-endian signed integer of ``n`` bytes."""
        return int.from_bytes(self.take(n).ljust(n, b"\0"), "big", signed=True)

    def rest(self) -> bytes:
        """Everything not read yet."""
        out = self._data[self._pos :]
        self._pos = len(self._data)
        return out


class _Stats:
    def __init__(self, name: str) -> None:
        self.name = name
        self.execs = 0
        self.started = time.monotonic()
        self.written = 0.0
        self.crashes: dict[str, int] = {}
        self.out = Path(os.environ.get("HOTLINE_FUZZ_OUT") or f"fuzz/work/{name}")

    def save(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.written < 1.0:
            return
        self.written = now
        self.out.mkdir(parents=True, exist_ok=True)
        doc = {
            "harness": self.name,
            "engine": "atheris" if _atheris() else "random",
            "execs": self.execs,
            "seconds": round(now - self.started, 1),
            "crashes": sorted(self.crashes),
        }
        (self.out / "stats.json").write_text(json.dumps(doc, indent=2) + "\n")


def _signature(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "/hotline/" in f.filename] or frames
    where = f"{Path(ours[-1].filename).name}:{ours[-1].lineno}" if ours else "unknown"
    return re.sub(r"[^A-Za-z0-9_.:-]", "_", f"{type(exc).__name__}-{where}").replace(":", "-")


def _record_crash(stats: _Stats, data: bytes, exc: BaseException) -> None:
    signature = _signature(exc)
    crashes = stats.out / "crashes"
    crashes.mkdir(parents=True, exist_ok=True)
    blob = crashes / f"crash-{signature}.bin"
    if blob.exists() and len(blob.read_bytes()) <= len(data):
        stats.crashes[signature] = stats.crashes.get(signature, 0) + 1
        return
    if signature not in stats.crashes:
        print(f"\n=== NEW CRASH in {stats.name}: {signature} ({len(data)} bytes)", file=sys.stderr)
        traceback.print_exception(exc, file=sys.stderr)
    stats.crashes[signature] = stats.crashes.get(signature, 0) + 1
    blob.write_bytes(data)
    text = "".join(traceback.format_exception(exc))
    (crashes / f"crash-{signature}.txt").write_text(f"input: {data!r}\n\n{text}")
    stats.save(force=True)


def guarded(name: str, target: Target) -> Target:
    """``target`` with the contract enforced: HotlineError passes, anything else crashes."""
    from hotline.wire.errors import HotlineError

    stats = _Stats(name)

    def run(data: bytes) -> None:
        stats.execs += 1
        stats.save()
        try:
            target(data)
        except HotlineError:
            return
        except Exception as exc:
            if not KEEP_GOING:
                stats.save(force=True)
                raise
            _record_crash(stats, data, exc)

    import atexit

    atexit.register(stats.save, True)
    return run


# --- fallback engine ---------------------------------------------------------------------------
_TOKENS = [
    b'"',
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"null",
    b"true",
    b"-1",
    b"0",
    b"1e400",
    b"18446744073709551616",
    b"9007199254740993",
    b"\\u0000",
    b"\\ud800",
    b"\xff",
    b"\xc3",
    b"=",
    b"+/",
    b"A" * 64,
    b"[" * 200,
]


def mutate(rng: random.Random, data: bytes, pool: list[bytes]) -> bytes:
    """One to four random edits of ``data``: flips, inserts, deletes, splices, JSON tokens."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        pos = rng.randint(0, len(buf))
        op = rng.randrange(7)
        if op == 0 and buf:
            i = rng.randrange(len(buf))
            buf[i] ^= 1 << rng.randrange(8)
        elif op == 1:
            buf[pos:pos] = bytes([rng.randrange(256)])
        elif op == 2 and buf:
            del buf[pos : pos + rng.randint(1, 16)]
        elif op == 3:
            buf[pos:pos] = rng.choice(_TOKENS)
        elif op == 4 and pool:
            other = rng.choice(pool)
            start = rng.randint(0, len(other))
            buf[pos:pos] = other[start : start + rng.randint(1, 64)]
        elif op == 5 and buf:
            i = rng.randrange(len(buf))
            buf[i : i + 1] = bytes([rng.choice(b'0123456789"{}[]:,')])
        else:
            buf = buf[:pos]
    return bytes(buf)


def _fallback(target: Target, argv: list[str]) -> None:
    flags = {k: v for k, _, v in (a[1:].partition("=") for a in argv[1:] if a.startswith("-"))}
    paths = [Path(a) for a in argv[1:] if not a.startswith("-")]
    files = [p for p in paths if p.is_file()]
    if files:
        for path in files:
            target(path.read_bytes())
        return
    pool = [f.read_bytes() for d in paths if d.is_dir() for f in sorted(d.iterdir()) if f.is_file()]
    # Not cryptographic: a reproducible stream of mutations when -seed is given.
    rng = random.Random(int(flags.get("seed", "0")) or None)  # noqa: S311
    deadline = time.monotonic() + float(flags.get("max_total_time", "30"))
    runs = int(flags.get("runs", "-1"))
    for seed in pool:
        target(seed)
    done = 0
    while time.monotonic() < deadline and done != runs:
        if pool and rng.random() < 0.9:
            data = mutate(rng, rng.choice(pool), pool)
        else:
            data = rng.randbytes(rng.randint(0, 256))
        target(data)
        done += 1
        if done % 50 == 0 and len(pool) < 5000:
            pool.append(data)
    print(f"Done {done} runs (fallback engine)", file=sys.stderr)


def main(name: str, target: Target) -> None:
    """Run ``target`` under atheris, or the fallback engine; see the module docstring."""
    run = guarded(name, target)
    engine = _atheris()
    if engine is None:
        _fallback(run, sys.argv)
        return
    engine.Setup(sys.argv, run)  # type: ignore[attr-defined]
    engine.Fuzz()  # type: ignore[attr-defined]
