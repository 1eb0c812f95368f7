"""Logging for every lez process: quiet by default, structured on request.

Quiet means one line per stage start, warnings and errors always, a passage's decision only at
DEBUG, and nothing per HTTP request (httpx, uvicorn's access log), per Alembic plugin or per
Kafka connection. ``LEZ_LOG_FORMAT=json`` writes one JSON object per line with the fields a
log aggregator indexes; a passage id passed as ``extra={"passage_id": ...}`` becomes a field.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Literal

LogFormat = Literal["text", "json"]

# Libraries whose INFO lines are per request / per plugin noise for an operator.
_NOISY = {
    "httpx": logging.WARNING,
    "httpcore": logging.WARNING,
    "uvicorn.access": logging.WARNING,
    "uvicorn.error": logging.WARNING,
    "alembic": logging.WARNING,
    "alembic.runtime.migration": logging.WARNING,
    "kafka": logging.WARNING,
    "easyocr": logging.WARNING,
    "multipart": logging.WARNING,
    "python_multipart": logging.WARNING,
    "fontTools": logging.WARNING,
    "fpdf": logging.WARNING,
    "PIL": logging.WARNING,
}

# Fields of a LogRecord that are not "extra" context.
_STANDARD = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}

CONTEXT_FIELDS = ("passage_id", "camera_id", "stage", "notice_id", "decision")
"""Context that stages pass with ``extra=``; the text format shows them too."""


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, context fields, exception."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value if isinstance(value, str | int | float | bool) else str(value)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``time level logger: message [passage_id=...]``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = [f"{k}={getattr(record, k)}" for k in CONTEXT_FIELDS if hasattr(record, k)]
        return f"{line} [{' '.join(context)}]" if context else line


def configure_logging(level: str = "INFO", fmt: LogFormat = "text") -> None:
    """Set up the root logger once, in the entry point (replaces earlier handlers)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name, floor in _NOISY.items():
        logging.getLogger(name).setLevel(max(floor, root.level))
