"""How the server's processes log: plain text for people, or JSON lines for log shippers."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from taskfarm.audit import AUDIT_FIELD, AUDIT_LOGGER

#: The name the access log's lines carry, as a logger's records would.
ACCESS_LOGGER = "taskfarm.access"

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JSON_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S%z"


class TextFormatter(logging.Formatter):
    """`TEXT_FORMAT`, with the time formatted once per second rather than once per line; and
    the access log's lines in the same format (see `http.access_log`)."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)
        # (second, time format, that second in that format): one tuple, replaced whole.
        self._last_second: tuple[int, str, str] = (-1, "", "")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        if datefmt:
            return self._stamp(record.created, datefmt)
        return self._asctime(record.created, int(record.msecs))

    def _asctime(self, created: float, msecs: int) -> str:
        """The time as `logging` writes it by default: to the second, then milliseconds."""
        return f"{self._stamp(created, self.default_time_format)},{msecs:03d}"

    def _stamp(self, created: float, form: str) -> str:
        second, last_form, stamp = self._last_second
        if (second, last_form) != (int(created), form):
            stamp = time.strftime(form, self.converter(created))
            self._last_second = (int(created), form, stamp)
        return stamp

    def access_line(self, created: float, method: str, route: str, status: int, ms: float) -> str:
        """The line, newline included, of a request answered at `created` (seconds since the
        epoch) in `ms` milliseconds: what this formatter makes of an INFO record of
        `ACCESS_LOGGER`. The method and the route, which may be the raw path of a request
        that no route took, are escaped: a path cannot forge a line."""
        fields = {
            "asctime": self._asctime(created, int((created - int(created)) * 1000)),
            "levelname": "INFO",
            "name": ACCESS_LOGGER,
            "message": _printable(access_message(method, route, status, ms)),
        }
        return TEXT_FORMAT % fields + "\n"


class JsonFormatter(TextFormatter):
    """One JSON object per line: time, level, logger, message, and the access log's fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": self.formatTime(record, JSON_TIME_FORMAT),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        # The fields of an audit line (`taskfarm.audit`), each a field of the line's own.
        line.update(getattr(record, AUDIT_FIELD, {}))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)

    def access_line(self, created: float, method: str, route: str, status: int, ms: float) -> str:
        line = {
            "time": self._stamp(created, JSON_TIME_FORMAT),
            "level": "INFO",
            "logger": ACCESS_LOGGER,
            "message": access_message(method, route, status, ms),
            "method": method,
            "route": route,
            "status": status,
            "ms": ms,
        }
        # ASCII only, as json.dumps writes by default: non-ASCII characters and control
        # characters alike come out escaped.
        return json.dumps(line) + "\n"


FORMATTERS: dict[str, type[TextFormatter]] = {"text": TextFormatter, "json": JsonFormatter}


def access_message(method: str, route: str, status: int, ms: float) -> str:
    return f"{method} {route} {status} {ms:.2f}ms"


def _printable(text: str) -> str:
    """The text in printable ASCII: others as Python escapes them (`\\n`, `\\xe9`)."""
    if text.isascii() and text.isprintable():
        return text
    return text.encode("unicode_escape").decode("ascii")


class _CurrentStderr(logging.StreamHandler[Any]):
    """Writes to whatever sys.stderr is when a line is logged, as the last-resort handler does."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _: Any) -> None:
        pass


def audit_to_stderr(log_format: str) -> None:
    """Audit lines to stderr, for a command that changes things without a server (`taskfarm
    user`): the server's log does not see them."""
    audit_log = logging.getLogger(AUDIT_LOGGER)
    if any(isinstance(handler, _CurrentStderr) for handler in audit_log.handlers):
        return  # done before in this process
    handler = _CurrentStderr()
    handler.setFormatter(FORMATTERS[log_format]())
    audit_log.addHandler(handler)
    audit_log.setLevel(logging.INFO)


def logging_config(log_format: str) -> dict[str, Any]:
    """A `logging.config.dictConfig` for uvicorn's and taskfarm's loggers, all to stderr."""
    formatter = {"()": f"{__name__}.{FORMATTERS[log_format].__name__}"}
    handler = {
        "class": "logging.StreamHandler",
        "formatter": "default",
        "stream": "ext://sys.stderr",
    }
    logger = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "handlers": {"default": handler},
        "loggers": {"uvicorn": logger, "uvicorn.error": {"level": "INFO"}, "taskfarm": logger},
    }
