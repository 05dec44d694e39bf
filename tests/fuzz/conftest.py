"""Fixtures of the fuzz tests: the seeds of ``fuzz/valid_encodings.py`` and a live server.

``fuzz/`` (the atheris harnesses and their seed builders) and ``tests/integration`` (the
two-party harness) are put on ``sys.path`` so both are shared rather than copied.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
for extra in (ROOT / "fuzz", ROOT / "tests" / "integration"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))
