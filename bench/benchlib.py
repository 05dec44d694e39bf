"""Shared helpers for the benchmarks: machine description, versions, statistics, result files.

Every benchmark writes one JSON document to ``bench/results/<name>.json`` with the keys that
``bench/report.py`` renders (``title``, ``description``, ``command``, ``timestamp``,
``source``, ``machine``, ``versions``, ``parameters``, ``summary``, ``tables``, ``notes``)
plus whatever raw figures it wants under ``results``. See :func:`document`.
"""

from __future__ import annotations

import asyncio
import datetime
import importlib.metadata
import json
import math
import os
import platform
import resource
import shlex
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"

Table = dict[str, Any]


#: issue 6: the client's Olm (``client/channel.py``) at most this many times raw vodozemac's
#: time per encrypt+decrypt round trip
OLM_TARGET_RATIO = 1.5
#: messages per keystore transaction for the amortised Olm figure (one mailbox batch)
OLM_BATCH = 10
#: the Olm round-trip variants of ``messages.measure_ceiling``: result key and label
OLM_VARIANTS = (
    ("raw_vodozemac", "raw `vodozemac.Session`"),
    ("hotline_wrappers", "`hotline.crypto.olm.OlmSession` wrappers"),
    (
        "wrappers_with_pickling",
        "wrappers + unpickle/re-pickle per operation (`channel.py` before sessions stayed open)",
    ),
    (
        "channel_sessions_open",
        "`channel.py` now, one message per transaction: session open, one pickle per side",
    ),
    (
        "channel_batch",
        f"`channel.py` now, {OLM_BATCH} messages per transaction: session open, one pickle "
        "per side",
    ),
)


def olm_ratios(olm: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], float]]:
    """Each Olm variant measured: label, figures, and its time per round trip over raw's."""
    raw = olm["raw_vodozemac"]["us_per_round_trip"]
    for key, label in OLM_VARIANTS:
        if key in olm:
            yield label, olm[key], olm[key]["us_per_round_trip"] / raw


def olm_target_lines(olm: dict[str, Any]) -> list[str]:
    """Whether the client's Olm meets issue 6's target, stated from the measured figures."""
    raw = olm["raw_vodozemac"]["us_per_round_trip"]
    lines = []
    for label, fig, ratio in olm_ratios(olm):
        if ratio == 1.0 and fig is olm["raw_vodozemac"]:
            continue
        line = (
            f"Olm, {label}: {fig['us_per_round_trip']:.1f} µs per round trip = {ratio:.2f}x raw "
            f"vodozemac ({raw:.1f} µs)"
        )
        if "channel.py" in label:
            verdict = "met" if ratio <= OLM_TARGET_RATIO else "**not met**"
            line += f"; issue 6 target (at most {OLM_TARGET_RATIO}x): {verdict}"
        lines.append(line + ".")
    return lines


def cpu_model() -> str:
    """The CPU model name from ``/proc/cpuinfo`` (Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
    }


def versions(packages: Iterable[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for package in packages:
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def command() -> str:
    """The exact command line of this process (interpreter path relative to the cwd)."""
    exe = Path(sys.executable)
    try:
        shown = str(exe.relative_to(Path.cwd()))
    except ValueError:
        shown = str(exe)
    return shlex.join([shown, *sys.argv])


def source_revision() -> str:
    """The git commit measured, marked when ``src/`` has uncommitted changes."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return f"{commit} + uncommitted changes in src/" if dirty else commit


def timestamp() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def percentile(samples: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (``pct`` in 0..100) of a non-empty sample."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def summarise_ms(samples_s: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99/mean/min/max of durations given in seconds, in milliseconds."""
    ms = [s * 1000 for s in samples_s]
    return {
        "n": len(ms),
        "p50_ms": percentile(ms, 50),
        "p95_ms": percentile(ms, 95),
        "p99_ms": percentile(ms, 99),
        "mean_ms": statistics.fmean(ms),
        "min_ms": min(ms),
        "max_ms": max(ms),
    }


def table(title: str, columns: list[str], rows: list[list[Any]], note: str = "") -> Table:
    return {"title": title, "columns": columns, "rows": rows, "note": note}


def document(
    *,
    name: str,
    title: str,
    description: str,
    packages: Iterable[str],
    parameters: dict[str, Any],
    summary: list[str],
    tables: list[Table],
    notes: list[str],
    results: dict[str, Any],
) -> dict[str, Any]:
    """Assemble the result document ``bench/report.py`` renders."""
    return {
        "name": name,
        "title": title,
        "description": description,
        "command": command(),
        "timestamp": timestamp(),
        "source": source_revision(),
        "machine": machine(),
        "versions": versions(packages),
        "parameters": parameters,
        "summary": summary,
        "tables": tables,
        "notes": notes,
        "results": results,
    }


def write(doc: dict[str, Any], out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{doc['name']}.json"
    path.write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n")
    return path


# -- helpers for the multi-process benchmarks (synapse.py, hotline_load.py, ceilings.py) -------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the server binds it next)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def load_average() -> float:
    """The 1-minute load average (``/proc/loadavg``), or -1 where unknown."""
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return -1.0


def wait_until_quiet(threshold: float, max_wait_s: float, poll_s: float = 10.0) -> dict[str, Any]:
    """Wait (bounded) until the 1-minute load average is below ``threshold``; says what it saw."""
    start = time.monotonic()
    first = load = load_average()
    while 0 <= threshold <= load and time.monotonic() - start < max_wait_s:
        print(f"waiting for a quiet machine: load {load:.2f} >= {threshold}", flush=True)
        time.sleep(poll_s)
        load = load_average()
    return {
        "threshold": threshold,
        "load_at_start": first,
        "load_when_started": load,
        "waited_s": round(time.monotonic() - start, 1),
        "quiet": 0 <= load < threshold,
    }


def listen_overflows() -> int:
    """Connections this machine dropped because a listening socket's accept queue was full
    (``TcpExt: ListenOverflows`` in ``/proc/net/netstat``, every socket alike), or -1."""
    try:
        lines = Path("/proc/net/netstat").read_text().splitlines()
    except OSError:
        return -1
    for keys, values in zip(lines[::2], lines[1::2], strict=False):
        if keys.startswith("TcpExt:"):
            counters = dict(zip(keys.split()[1:], values.split()[1:], strict=False))
            return int(counters.get("ListenOverflows", -1))
    return -1


class ProcStats:
    """CPU seconds and memory of one process (and, unless ``children=False``, its children)
    from ``/proc``; Linux only. A load generator measuring itself passes ``children=False``:
    the server it started is its child."""

    def __init__(self, pid: int, *, children: bool = True) -> None:
        self.pid = pid
        self.children = children

    def _pids(self) -> list[int]:
        pids = [self.pid]
        if not self.children:
            return pids
        try:
            children = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text().split()
            pids += [int(c) for c in children]
        except OSError:
            pass
        return pids

    def cpu_seconds(self) -> float:
        total = 0.0
        for pid in self._pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime
        return total

    def memory_kib(self) -> dict[str, int]:
        """Current (VmRSS) and peak (VmHWM) resident memory in KiB, summed over the processes."""
        found = {"rss_kib": 0, "peak_rss_kib": 0}
        for pid in self._pids():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        found["rss_kib"] += int(line.split()[1])
                    elif line.startswith("VmHWM:"):
                        found["peak_rss_kib"] += int(line.split()[1])
            except OSError:
                continue
        return found


class Window:
    """CPU used by a process between ``start()`` and ``stop()``, as cores busy on average."""

    def __init__(self, stats: ProcStats) -> None:
        self.stats = stats
        self._cpu = 0.0
        self._wall = 0.0

    def start(self) -> None:
        self._cpu = self.stats.cpu_seconds()
        self._wall = time.perf_counter()

    def stop(self) -> dict[str, float]:
        cpu = self.stats.cpu_seconds() - self._cpu
        wall = time.perf_counter() - self._wall
        return {"cpu_s": cpu, "wall_s": wall, "cpu_cores": cpu / wall if wall else 0.0} | {
            k: float(v) for k, v in self.stats.memory_kib().items()
        }


async def bounded_all(coros: list[Any], parallel: int) -> list[Any]:
    """Await ``coros`` with at most ``parallel`` running at once, results in order."""
    sem = asyncio.Semaphore(parallel)

    async def one(coro: Any) -> Any:
        async with sem:
            return await coro

    return list(await asyncio.gather(*(one(c) for c in coros)))


async def timed_phase(
    tag: str, phases: dict[str, float], name: str, coros: list[Any], parallel: int
) -> list[Any]:
    """:func:`bounded_all` as one named set-up phase: its wall time goes into ``phases``
    (seconds) and is printed after ``[tag]``."""
    start = time.perf_counter()
    try:
        return await bounded_all(coros, parallel)
    finally:
        phases[name] = round(time.perf_counter() - start, 2)
        print(f"[{tag}]   setup: {name} {phases[name]:.1f} s", flush=True)


#: The load plan both message benchmarks run (hotline_load.py and synapse.py): (pairs, messages
#: each sender sends). Equal N and M on both sides, so their figures compare one to one.
LOAD_PLAN = "1x200,10x40,100x8,1000x1"
SMOKE_PLAN = "1x3,2x2"


def parse_plan(text: str) -> list[tuple[int, int]]:
    """``"1x200,10x40"`` -> ``[(1, 200), (10, 40)]``."""
    plan = []
    for part in text.split(","):
        pairs, _, messages = part.strip().partition("x")
        plan.append((int(pairs), int(messages)))
    return plan


#: The offered-load sweep both message benchmarks run: N pairs, then total offered rates in
#: messages/s, each held for SWEEP_SECONDS (open loop: see :func:`send_paced`).
SWEEP = "10:4,8,16,24,32,40,48,64,96,128"
SMOKE_SWEEP = "2:4"
SWEEP_SECONDS = 8.0


def parse_sweep(text: str) -> tuple[int, list[float]]:
    """``"10:4,8,16"`` -> ``(10, [4.0, 8.0, 16.0])``; ``""`` -> ``(0, [])``."""
    if not text:
        return 0, []
    pairs, _, rates = text.partition(":")
    return int(pairs), [float(r) for r in rates.split(",") if r.strip()]


def sweep_step(pairs: int, rate: float, seconds: float) -> tuple[int, float]:
    """Messages per sender and the interval between one sender's sends, for ``pairs`` senders
    offering ``rate`` messages/s in total for ``seconds``."""
    interval = pairs / rate
    return max(1, math.ceil(seconds / interval)), interval


async def send_paced(
    texts: list[str],
    interval: float,
    offset: float,
    fire: Callable[[str], Awaitable[object]],
    starts: dict[str, float],
) -> None:
    """Open-loop sending: text ``i`` is due ``offset + i * interval`` seconds from now and its
    latency counts from when it was due, whether or not the sends before it have finished (a
    slow server makes later messages wait, and that wait is measured: no coordinated
    omission). Sends overlap; each client keeps its own order."""
    t0 = time.perf_counter()
    tasks = []
    for i, text in enumerate(texts):
        due = t0 + offset + i * interval
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        starts[text] = due
        tasks.append(asyncio.create_task(fire(text)))
    await asyncio.gather(*tasks)


#: At most this many messages in flight (sent, not yet answered by the server) across all the
#: senders of a level, in both message benchmarks: one per sender up to 100 pairs, as before,
#: so only the 1,000-pair level is held by it. Without it, 1,000 senders starting at once put
#: 1,000 requests in the server's queue and the last ones outwait any client timeout.
SEND_WINDOW = 100


def guarded(
    fire: Callable[[str], Awaitable[object]], failures: dict[str, str]
) -> Callable[[str], Awaitable[object]]:
    """``fire`` that notes a failed send in ``failures`` (text -> exception type) instead of
    raising, so one timeout makes a level incomplete instead of ending the benchmark."""

    async def one(text: str) -> object:
        try:
            return await fire(text)
        except Exception as exc:  # any failure is a result here
            failures[text] = type(exc).__name__
            return None

    return one


async def send_closed(
    texts: list[str],
    fire: Callable[[str], Awaitable[object]],
    starts: dict[str, float],
    slots: asyncio.Semaphore,
) -> None:
    """Closed-loop sending, one sender: each text is due as soon as the sender's previous send
    has been answered, and its latency counts from then, including any wait for one of the
    ``slots`` (:data:`SEND_WINDOW` sends in flight across all senders): a client-side queue is
    measured like a server-side one."""
    for text in texts:
        starts[text] = time.perf_counter()
        async with slots:
            await fire(text)


def outcome(run: dict[str, Any], failures: dict[str, str], deadline_hit: bool) -> dict[str, Any]:
    """Marks a level's result incomplete, with the reason, when a send failed or a message
    did not arrive before the deadline."""
    if failures:
        kinds = sorted(set(failures.values()))
        run["send_errors"] = len(failures)
        run["incomplete"] = f"{len(failures)} send(s) failed ({', '.join(kinds)})"
    elif run.get("delivered", 0) < run.get("messages", 0):
        missing = run.get("messages", 0) - run.get("delivered", 0)
        reason = "by the deadline" if deadline_hit else "(a receiver stopped)"
        run["incomplete"] = f"{missing} message(s) not delivered {reason}"
    return run


def incomplete_level(pairs: int, messages: int, exc: BaseException) -> dict[str, Any]:
    """The result of a level that could not run at all (e.g. its setup failed)."""
    return {
        "pairs": pairs,
        "messages_per_sender": messages,
        "messages": pairs * messages,
        "delivered": 0,
        "incomplete": f"did not run: {type(exc).__name__}: {str(exc)[:200]}",
    }


#: Columns of a load level in both message benchmarks (rows: :func:`run_rows`).
RUN_COLUMNS = [
    "pairs",
    "msgs/sender",
    "delivered",
    "messages/s",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "server CPU cores",
    "server peak RSS MiB",
    "load generator CPU cores",
]


def run_rows(runs: list[dict[str, Any]]) -> Iterator[list[Any]]:
    """One row per level; an incomplete level shows its delivered count marked with ``(!)``
    (its reason is in the result file and, via :func:`incomplete_notes`, the notes)."""
    for run in runs:
        lat = run.get("latency", {})
        server = run.get("server", {})
        mark = " (!)" if run.get("incomplete") else ""
        yield [
            run["pairs"],
            run["messages_per_sender"],
            f"{run['delivered']}/{run['messages']}{mark}",
            run.get("messages_per_s"),
            lat.get("p50_ms"),
            lat.get("p95_ms"),
            lat.get("p99_ms"),
            server.get("cpu_cores"),
            server["peak_rss_kib"] / 1024 if "peak_rss_kib" in server else None,
            run.get("load_generator", {}).get("cpu_cores"),
        ]


def setup_notes(runs: list[dict[str, Any]], parallel: int) -> list[str]:
    """A note of the untimed set-up's phases (seconds) for each distinct set-up in ``runs``."""
    seen: dict[int, dict[str, float]] = {}
    for run in runs:
        if run.get("setup_phases_s"):
            seen.setdefault(run["clients_connected"] // 2, run["setup_phases_s"])
    return [
        f"Set-up of {pairs:,} pairs (untimed, {parallel} at a time): "
        + ", ".join(f"{phase} {seconds:.0f} s" for phase, seconds in phases.items())
        + "."
        for pairs, phases in seen.items()
    ]


def incomplete_notes(name: str, runs: list[dict[str, Any]]) -> list[str]:
    """A note per incomplete level, for the result document."""
    return [
        f"{name}: the level N={r['pairs']} x {r['messages_per_sender']} is INCOMPLETE: "
        f"{r['incomplete']}."
        for r in runs
        if r.get("incomplete")
    ]


def sweep_table(title: str, runs: list[dict[str, Any]], note: str) -> Table:
    """The offered-load sweep's table: the offered rate, then a load level's columns."""
    rows = [[r["offered_per_s"], *row] for r, row in zip(runs, run_rows(runs), strict=True)]
    return table(title, ["offered msg/s", *RUN_COLUMNS], rows, note)


def message_body(pair: int, index: int, size: int = 120) -> str:
    """A chat line of ``size`` characters that names its pair and index (both benchmarks)."""
    head = f"pair {pair:04d} msg {index:06d} "
    return head + "x" * (size - len(head))


def rate_and_latency(starts: dict[str, float], arrivals: dict[str, float]) -> dict[str, Any]:
    """messages/s from the first send start to the last arrival, and latency percentiles."""
    delivered = [k for k in starts if k in arrivals]
    if not delivered:
        return {"messages": len(starts), "delivered": 0}
    first = min(starts.values())
    last = max(arrivals[k] for k in delivered)
    return {
        "messages": len(starts),
        "delivered": len(delivered),
        "seconds": last - first,
        "messages_per_s": len(delivered) / (last - first),
        "latency": summarise_ms([arrivals[k] - starts[k] for k in delivered]),
    }


def raise_fd_limit(needed: int) -> dict[str, int]:
    """Raise this process's soft descriptor limit (the server subprocess inherits it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = needed if hard == resource.RLIM_INFINITY else min(max(soft, needed), hard)
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return {"before": soft, "after": resource.getrlimit(resource.RLIMIT_NOFILE)[0], "hard": hard}
