"""JSON responses encoded with msgspec."""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.responses import Response


def ok(body: Any, status: int = 200) -> Response:
    return Response(msgspec.json.encode(body), status_code=status, media_type="application/json")
