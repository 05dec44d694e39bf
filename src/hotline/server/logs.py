"""Server logging: structlog, filtered by ``HOTLINE_LOG_LEVEL`` (default ``warning``).

Nothing secret is ever logged (no keys, plaintext or tokens): log calls pass codes, paths and
exception type names only.
"""

from __future__ import annotations

import logging
import os

import structlog


def configure_logging(level_name: str | None = None) -> None:
    name = (level_name or os.environ.get("HOTLINE_LOG_LEVEL") or "warning").upper()
    level = logging.getLevelNamesMapping().get(name, logging.WARNING)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(level))
