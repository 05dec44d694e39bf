"""Print what the last ``make fuzz`` ran, from ``fuzz/work/<name>/stats.json``; exit 1 if any
harness saved a crash (``fuzz/work/<name>/crashes/``)."""

from __future__ import annotations

import json
import platform
import re
import sys
import time
from pathlib import Path

WORK = Path(__file__).resolve().parent / "work"


def main() -> int:
    """Print one line per harness and the crash files; return the exit status."""
    print(f"fuzz summary {time.strftime('%Y-%m-%d %H:%M')} on {platform.node()} "
          f"({platform.machine()}, Python {platform.python_version()})")  # fmt: skip
    crashed = False
    for stats_file in sorted(WORK.glob("*/stats.json")):
        stats = json.loads(stats_file.read_text())
        log = stats_file.parent / "log.txt"
        text = log.read_text() if log.exists() else ""
        done = re.search(r"Done (\d+) runs in (\d+) second", text)
        if done:  # libFuzzer's own final count (stats.json is written at most once a second)
            stats["execs"], stats["seconds"] = int(done[1]), int(done[2])
        crashes = sorted((stats_file.parent / "crashes").glob("crash-*.bin"))
        crashed = crashed or bool(crashes)
        print(
            f"  {stats['harness']:<20} {stats['engine']:<8} {stats['execs']:>10,} execs "
            f"{stats['seconds']:>7} s  {len(crashes)} crash(es)"
        )
        for crash in crashes:
            print(f"      {crash.relative_to(WORK.parent.parent)}")
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
