"""Structured logging: key=value on a console, one JSON object per line in production.

Logs never contain transcript text or audio: hearing content is court data.
"""
from __future__ import annotations

import logging
import os
import re
import sys

import structlog


def configure(level: str = "INFO", fmt: str = "console") -> None:
    # Third-party libraries must not phone home or flood the log.
    os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("MODELSCOPE_OFFLINE", "1")
    logging.basicConfig(stream=sys.stderr, level=level, format="%(message)s")
    redact_queries()
    for noisy in ("funasr", "modelscope", "faster_whisper", "jieba", "numba", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    renderer = (structlog.processors.JSONRenderer(ensure_ascii=False) if fmt == "json"
                else structlog.dev.ConsoleRenderer(colors=False))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            no_statements,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
    )


_STATEMENT = re.compile(r"\s*\[SQL: .*", re.DOTALL)


def no_statements(_logger, _name, event: dict) -> dict:
    """A database error's text carries its SQL and, as parameters, the line's words: only what
    the database said stays (``(sqlite3.OperationalError) database is locked``)."""
    for key, value in event.items():
        if isinstance(value, str) and "[SQL: " in value:
            event[key] = _STATEMENT.sub(" [SQL and parameters left out]", value)
    return event


class RedactQueries(logging.Filter):
    """Query strings never reach a log: uvicorn writes each request's path with its query, and
    FunASR clients carry their token as ``?token=…``. Nor do path parts in Chinese (a party's name
    in …/participants/张三/voice, a hearing id that is a case number): court data, not the server's."""

    QUERY = re.compile(r"\?[^\s?]*=\S*")  # to the next space: a quote inside it is the client's
    NAMED = re.compile(r"(?<=/)[^/\s?\"']*(?:%[89A-Fa-f][0-9A-Fa-f]|[^\x00-\x7f])[^/\s?\"']*")

    def _clean(self, text: str) -> str:
        return self.NAMED.sub("[redacted]", self.QUERY.sub("?[redacted]", text))

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(self._clean(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.msg, str) and not record.args:
            record.msg = self._clean(record.msg)
        return True


def redact_queries() -> None:
    """Install the filter on the web server's loggers (again after uvicorn configured them: idempotent)."""
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactQueries) for f in logger.filters):
            logger.addFilter(RedactQueries())


def get_logger(name: str):
    return structlog.get_logger(name)
