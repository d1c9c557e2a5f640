"""Log output of every eventpipe process: text for a terminal, or one JSON object per line.

A JSON line holds ``time`` (UTC, ISO-8601), ``level``, ``logger`` and ``message``, the
``request_id`` of the HTTP request being handled when there is one, the traceback as
``exception``, and any ``extra=`` fields of the call. Nothing here adds request headers or
settings to a line, so credentials reach the log only if a message quotes them.
"""

from __future__ import annotations

import logging
import logging.config
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Final

import orjson

from eventpipe.settings import Settings

# The id of the request the current task is handling; set by the gateway for each request. A
# context variable follows the request through every await without being passed around.
request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s %(message)s"

# What every LogRecord carries; anything else on a record came in through ``extra=``, except
# uvicorn's copy of the message with terminal colour codes.
_NOT_EXTRA: Final = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        current = request_id.get()
        if current is not None:
            line["request_id"] = current
        for key, value in record.__dict__.items():
            if key not in _NOT_EXTRA:
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        # default=str: an extra field of any type still yields a line rather than an error.
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        current = request_id.get()
        return text if current is None else f"{text} [request_id={current}]"


def logging_config(settings: Settings) -> dict[str, Any]:
    """A :func:`logging.config.dictConfig` dictionary for ``settings``.

    A dictionary rather than a function call, because uvicorn and Faust each (re)configure logging
    in the processes they start and accept such a dictionary to do it with.
    """
    formatter = JsonFormatter if settings.log_format == "json" else TextFormatter
    return {
        "version": 1,
        # Loggers created before this call (uvicorn's, Faust's) keep logging, through the root.
        "disable_existing_loggers": False,
        "formatters": {"eventpipe": {"()": formatter}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "eventpipe",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": settings.log_level, "handlers": ["stderr"]},
    }


def configure_logging(settings: Settings) -> None:
    logging.config.dictConfig(logging_config(settings))
