"""The shapes of values from the outside world that every rule of the domain relies on."""

from __future__ import annotations

from taskfarm.domain.errors import InvalidInput


def whole_number(name: str, value: object, minimum: int, maximum: int) -> int:
    """A whole number within bounds. JSON does not tell 3 from 3.0, and JSON Schema calls
    both integers, so an integral float is accepted; booleans, fractions and text are not."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{name} must be a whole number, not {value!r}")
    if not minimum <= value <= maximum:
        raise InvalidInput(f"{name} must be between {minimum} and {maximum}, not {value}")
    return value


def is_storable_text(text: str) -> bool:
    """Whether every store can keep `text`: PostgreSQL refuses NUL characters, and lone
    surrogates (from JSON escapes) cannot be encoded at all."""
    if "\x00" in text:
        return False
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def is_identifier(text: str, max_length: int) -> bool:
    """Whether `text` could be a uuid the server handed out or a worker chose."""
    return 0 < len(text) <= max_length and is_storable_text(text)
