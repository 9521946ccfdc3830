"""JSON log lines: one object per line, with the fields the engine attaches (``extra={"fields": ...}``).

The engine logs the request uid, decision id, references and reasons; never secrets and never
whole objects. One line per admission decision, so it is kept cheap: pydantic-core's serializer
(UTF-8, ~4x faster than ``json.dumps``), and records without the process / thread names nobody prints.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import pydantic_core

_RESERVED = {"time", "level", "logger", "message"}


class JsonFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__()
        self._second: tuple[int, str] = (-1, "")  # the last second's text, one tuple: threads

    def format(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        cached, stamp = self._second
        if cached != second:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = (second, stamp)
        line: dict[str, Any] = {
            "time": f"{stamp}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            if _RESERVED.isdisjoint(fields):
                line.update(fields)
            else:
                line.update({k: v for k, v in fields.items() if k not in _RESERVED})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return pydantic_core.to_json(line, fallback=str).decode()


def configure_json_logging(level: int = logging.INFO) -> None:
    """Send guard's and uvicorn's logs to stderr as JSON lines."""
    # the line has no process, thread or task names: do not look them up for every record
    logging.logProcesses = logging.logThreads = logging.logMultiprocessing = False
    logging.logAsyncioTasks = False  # type: ignore[attr-defined,unused-ignore]
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    for name in ("guard", "webhook", "uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False
