"""Quiet, structured logs."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from lez.core.logs import JsonFormatter, TextFormatter, configure_logging


def _record(**extra: object) -> logging.LogRecord:
    record = logging.makeLogRecord(
        {"name": "lez.fines", "levelname": "INFO", "levelno": 20, "msg": "decided %s",
         "args": ("x",)}
    )
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_json_lines_carry_the_passage_id_as_a_field() -> None:
    line = JsonFormatter().format(_record(passage_id="CAM-1:42"))
    doc = json.loads(line)
    assert doc["msg"] == "decided x"
    assert doc["passage_id"] == "CAM-1:42"
    assert doc["level"] == "info" and doc["logger"] == "lez.fines"


def test_text_lines_show_the_context() -> None:
    assert TextFormatter().format(_record(passage_id="CAM-1:42")).endswith("[passage_id=CAM-1:42]")
    assert "[" not in TextFormatter().format(_record())


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("restore_logging")
def test_library_request_lines_are_silenced(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "text")
    logging.getLogger("httpx").info("HTTP Request: GET http://127.0.0.1/ 200")
    logging.getLogger("uvicorn.access").info("127.0.0.1 GET / 200")
    logging.getLogger("alembic.runtime.migration").info("Will assume transactional DDL.")
    logging.getLogger("lez.stage").info("plate reader started")
    logging.getLogger("httpx").warning("something worth seeing")
    err = capsys.readouterr().err
    assert "HTTP Request" not in err and "GET / 200" not in err and "transactional" not in err
    assert "plate reader started" in err and "something worth seeing" in err
