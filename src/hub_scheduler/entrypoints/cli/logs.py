"""The CLI's logging: stdlib `logging` on stderr, as text or as JSON lines.

``--log-format json`` (env ``HUB_SCHEDULER_LOG_FORMAT``) makes every record one JSON object:
``timestamp`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, the record's extra fields
(``extra={...}``), and ``exception`` when there is one. The process commands log at INFO
(what they connected to, that they are ready, and what the engines say); the operator
commands only warnings, one line each. An app that configured logging itself keeps its own.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import click

LOG_FORMAT_ENV = "HUB_SCHEDULER_LOG_FORMAT"
FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
#: Where the group leaves the chosen format for its commands.
FORMAT_META = "hub_scheduler.log_format"
# Attributes every LogRecord has; anything else on a record came in through `extra=`.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: timestamp, level, logger, message and the extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        """See `logging.Formatter.format`."""
        stamp = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        line: dict[str, Any] = {
            "timestamp": stamp.replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(
            (key, value)
            for key, value in vars(record).items()
            if key not in _STANDARD and not key.startswith("_")
        )
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str)


class OneLineFormatter(logging.Formatter):
    """A text record on one line: no traceback (operator commands print one line each)."""

    def format(self, record: logging.LogRecord) -> str:
        """See `logging.Formatter.format`."""
        bare = logging.makeLogRecord(vars(record))
        bare.exc_info, bare.exc_text, bare.stack_info = None, None, None
        return " ".join(super().format(bare).split())


def format_of(ctx: click.Context | None) -> str:
    """The log format the command line chose (``text`` unless ``--log-format json``)."""
    return str(ctx.meta.get(FORMAT_META, "text")) if ctx else "text"


def configure(log_format: str, *, quiet: bool = False) -> None:
    """Log to stderr in `log_format`: INFO and up, or with `quiet` warnings on one line
    (unless the app has configured logging itself)."""
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    elif quiet:
        handler.setFormatter(OneLineFormatter("%(levelname)s %(name)s: %(message)s"))
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, handlers=[handler])
