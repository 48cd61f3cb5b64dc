"""Log lines of a service process: each names the HTTP request it belongs to.

The request id lives in a context variable set by the request-id middleware
(services/http/observe.py); asyncio copies it into the tasks and threads a request starts, so
a line written while handling a request carries its id, and any other line carries "-". With
HOTLINE_LOG_FORMAT=json each line is one JSON object (python-json-logger), for a log
collector; otherwise plain text.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar

from pythonjsonlogger.json import JsonFormatter

REQUEST_ID: ContextVar[str] = ContextVar("request_id", default="-")

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(request_id)s %(message)s"
FORMATS = ("text", "json")


class RequestIdFilter(logging.Filter):
    """Puts the current request id on every record (a filter on the handler, so records of
    every logger, the libraries' too, get it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):  # the access log names it itself
            record.request_id = REQUEST_ID.get()
        return True


def formatter(kind: str) -> logging.Formatter:
    if kind == "json":
        return JsonFormatter(
            JSON_FIELDS,
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            json_ensure_ascii=False,
        )
    return logging.Formatter(TEXT_FORMAT)


def configure(kind: str = "text", level: int = logging.INFO) -> logging.Handler:
    """One handler on the root logger, writing to standard error in the given format."""
    if kind not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, got {kind!r}")
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(formatter(kind))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return handler
