"""The JSON log line: one parseable object per record, fields the engine attaches included."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from webhook.logs import JsonFormatter


def test_a_record_is_one_json_object_with_its_fields() -> None:
    record = logging.LogRecord("guard.admission", logging.INFO, "f", 1, "admission %s", ("denied",), None)
    record.fields = {
        "uid": "u-1",
        "name": "modèle-ünïcode",
        "duration_ms": 1.25,
        "artifacts": [{"reference": "r", "digest": None}],
        "where": Path("/x"),  # not JSON: written as its text
        "message": "a field may not replace the message",
    }
    line = JsonFormatter().format(record)
    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed["message"] == "admission denied" and parsed["level"] == "info"
    assert parsed["logger"] == "guard.admission" and parsed["time"].endswith("Z")
    assert parsed["name"] == "modèle-ünïcode" and parsed["duration_ms"] == 1.25
    assert parsed["artifacts"] == [{"reference": "r", "digest": None}] and parsed["where"] == "/x"


def test_an_exception_is_in_the_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logging.LogRecord("guard", logging.ERROR, "f", 1, "failed", (), sys.exc_info())
    parsed = json.loads(JsonFormatter().format(record))
    assert "ValueError: boom" in parsed["exception"]
