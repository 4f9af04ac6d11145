"""JSON answers, rendered by one encoder made once: Starlette's `JSONResponse` makes a new
encoder for every answer, which costs a claim request more than rendering its task."""

from __future__ import annotations

import json
from typing import Any

from starlette import responses

_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


class JSONResponse(responses.JSONResponse):
    """Starlette's `JSONResponse`, byte for byte."""

    def render(self, content: Any) -> bytes:
        return _ENCODER.encode(content).encode("utf-8")
