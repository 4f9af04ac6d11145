"""Reading requests: JSON bodies and query parameters, refused with a clear 400."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Collection, Mapping
from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request

from taskfarm.domain import InvalidInput


def _refuse_constant(name: str) -> Any:
    # JSON has no NaN or Infinity; Python's parser accepts them unless told not to.
    raise ValueError(f"{name} is not valid JSON")


#: Made once: `json.loads` with an option makes a new decoder for every body.
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)


def _json(body: bytes) -> Any:
    """The body as `json.loads` reads bytes, refusing NaN and Infinity. orjson reads the
    bodies of every day several times faster; what it refuses (numbers past 64 bits, UTF-16,
    escaped lone surrogates) the standard library reads, or refuses too."""
    with contextlib.suppress(orjson.JSONDecodeError):
        return orjson.loads(body)
    try:
        return _DECODER.decode(body.decode(json.detect_encoding(body), "surrogatepass"))
    except (ValueError, RecursionError):
        raise InvalidInput("the request body must be a JSON object") from None


async def json_object(
    request: Request, *, required: Collection[str] = (), optional: Collection[str] = ()
) -> Mapping[str, Any]:
    """The body as a JSON object holding all `required` keys and nothing unknown."""
    data = _json(await request.body())
    if not isinstance(data, dict):
        raise InvalidInput("the request body must be a JSON object")
    missing = [key for key in required if key not in data]
    if missing:
        raise InvalidInput(f"the request body lacks {', '.join(missing)}")
    unknown = sorted(set(data) - set(required) - set(optional))
    if unknown:
        known = ", ".join([*required, *optional])
        raise InvalidInput(f"unknown field {', '.join(unknown)}: expected {known}")
    return data


def choice(request: Request, name: str, choices: Collection[str], default: str) -> str:
    """A query parameter that must be one of `choices`; anything else is 404, as the API
    has always answered."""
    value = request.query_params.get(name, default)
    if value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise HTTPException(404, f"unknown {name} {value!r}: use one of {allowed}")
    return value


def query_number(request: Request, name: str, default: int) -> int:
    """A query parameter holding a whole number, refused with a 400 otherwise; its bounds are
    the domain's to check."""
    value = request.query_params.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise InvalidInput(f"{name} must be a whole number, not {value!r}") from None
