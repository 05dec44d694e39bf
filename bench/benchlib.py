"""Shared helpers for the benchmarks: machine description, versions, statistics, result files.

Every benchmark writes one JSON document to ``bench/results/<name>.json`` with the keys that
``bench/report.py`` renders (``title``, ``description``, ``command``, ``timestamp``,
``source``, ``machine``, ``versions``, ``parameters``, ``summary``, ``tables``, ``notes``)
plus whatever raw figures it wants under ``results``. See :func:`document`.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"

Table = dict[str, Any]


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
