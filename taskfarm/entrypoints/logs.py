"""How the server's processes log: plain text for people, or JSON lines for log shippers."""

from __future__ import annotations

import json
import logging
from typing import Any

#: The fields of the access log (see `http.access_log`) that JSON lines carry as their own keys.
ACCESS_FIELDS = ("method", "route", "status", "ms")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and the access log's fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
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
    formatter: dict[str, Any] = (
        {"()": f"{__name__}.JsonFormatter"}
        if log_format == "json"
        else {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}
    )
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
