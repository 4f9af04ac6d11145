"""How the server's processes log: plain text for people, or JSON lines for log shippers."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

#: The fields of the access log (see `http.access_log`) that JSON lines carry as their own keys.
ACCESS_FIELDS = ("method", "route", "status", "ms")


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JSON_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S%z"


def spare_unused_record_fields() -> None:
    """Stops every log record of this process from looking up what no line of ours shows:
    the caller's file and line, the thread, the process. The access log writes a record per
    request; these are the switches of the logging HOWTO's section on optimisation."""
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


class TextFormatter(logging.Formatter):
    """`TEXT_FORMAT`, with the time formatted once per second rather than once per line."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)
        # (second, time format, that second in that format): one tuple, replaced whole.
        self._last_second: tuple[int, str, str] = (-1, "", "")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        form = datefmt or self.default_time_format
        second, last_form, stamp = self._last_second
        if (second, last_form) != (int(record.created), form):
            stamp = time.strftime(form, self.converter(record.created))
            self._last_second = (int(record.created), form, stamp)
        return stamp if datefmt else f"{stamp},{int(record.msecs):03d}"


class JsonFormatter(TextFormatter):
    """One JSON object per line: time, level, logger, message, and the access log's fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": self.formatTime(record, JSON_TIME_FORMAT),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(
            (field, getattr(record, field)) for field in ACCESS_FIELDS if hasattr(record, field)
        )
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line)


def logging_config(log_format: str) -> dict[str, Any]:
    """A `logging.config.dictConfig` for uvicorn's and taskfarm's loggers, all to stderr."""
    formatter = {"()": f"{__name__}.{'JsonFormatter' if log_format == 'json' else 'TextFormatter'}"}
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
