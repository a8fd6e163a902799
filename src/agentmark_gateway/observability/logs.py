"""Log lines as text or JSON, each with the id of the request it was written for.

``dict_config(settings)`` is a ``logging.config.dictConfig`` dictionary: the
servers take it (uvicorn's ``log_config``, granian's ``log_dictconfig``) so that
the master and every worker write the same format. Every line goes through one
handler on the root logger; the servers' own loggers propagate to it.

Secrets never reach a line: API keys and session tokens travel in headers,
which nothing logs, and ``redact`` removes anything shaped like a key, a session
token or a one-time link from every message as a second guard (an exception
text quoting a value, a path with a link token in the access log).
"""

from __future__ import annotations

import logging
import logging.config
import re
import time
from typing import Any

import orjson

from agentmark_gateway.observability import request_id
from agentmark_gateway.settings import Settings

__all__ = [
    "JsonFormatter",
    "RequestIdFilter",
    "TextFormatter",
    "configure",
    "dict_config",
    "redact",
]

# The servers' loggers, sent to the root handler instead of their own.
SERVER_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "granian", "granian.access")

_SECRETS = re.compile(
    r"(?P<keep>sk_agentmark_|ses_|/setup/|/invite/|[Bb]earer\s+)[A-Za-z0-9_\-.~+/=]+"
)
REDACTED = "[redacted]"


def redact(text: str) -> str:
    """``text`` with API keys, session tokens, link tokens and bearer values masked."""
    # Every access-log line comes here: the substring checks (each a fast scan) spare
    # the lines with none of the pattern's prefixes, nearly all, the regex.
    if (
        "sk_agentmark_" not in text
        and "ses_" not in text
        and "/setup/" not in text
        and "/invite/" not in text
        and "earer" not in text  # Bearer, bearer
    ):
        return text
    return _SECRETS.sub(lambda match: match["keep"] + REDACTED, text)


class RequestIdFilter(logging.Filter):
    """Puts the current request's id (or None) on every record as ``request_id``."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.current()
        return True


class TextFormatter(logging.Formatter):
    """``2026-12-06 20:15:02,123 INFO uvicorn.access [id] message``; ``-`` outside requests."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        if getattr(record, "request_id", None) is None:
            record.request_id = "-"
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, request_id,
    and the exception's traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _utc(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        request_id = getattr(record, "request_id", None)
        if request_id is not None:
            entry["request_id"] = request_id
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        elif record.exc_text:
            entry["exception"] = redact(record.exc_text)
        return orjson.dumps(entry, default=str).decode()


def _utc(created: float) -> str:
    seconds = int(created)
    millis = int((created - seconds) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def dict_config(settings: Settings) -> dict[str, Any]:
    """The logging configuration of a server process: one handler on stderr, in
    ``AGENTMARK_LOG_FORMAT`` (text or json), at ``AGENTMARK_LOG_LEVEL``."""
    level = settings.log_level.upper()
    if level == "TRACE":  # uvicorn's name for its most verbose level
        level = "DEBUG"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {
            "text": {"()": TextFormatter},
            "json": {"()": JsonFormatter},
        },
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": settings.log_format,
                "filters": ["request_id"],
            }
        },
        "root": {"handlers": ["default"], "level": level},
        "loggers": {
            **{
                name: {"handlers": [], "level": level, "propagate": True} for name in SERVER_LOGGERS
            },
            # Its INFO lines are one per migration step and plugin: noise in a server log.
            "alembic": {"level": "WARNING"},
        },
    }


def configure(settings: Settings) -> None:
    """Applies ``dict_config`` to this process (for code that starts no server)."""
    logging.config.dictConfig(dict_config(settings))
