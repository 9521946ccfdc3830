"""Reading a scan result document (untrusted bytes: bounded, and every failure a clear error)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pydantic import ValidationError

from guard.errors import ReportError
from guard.scan.result import API_VERSION, ScanResult
from guard.untrusted import lone_surrogate_in

MAX_RESULT_BYTES = 512 << 20


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def read_result(path: Path, what: str = "scan result") -> tuple[ScanResult, str]:
    """The parsed document and the sha256 of its bytes ('sha256:<hex>')."""
    try:
        size = path.stat().st_size
        if size > MAX_RESULT_BYTES:
            raise ReportError(f"{what} {path} is {size} bytes: expected at most {MAX_RESULT_BYTES}")
        data = path.read_bytes()
    except FileNotFoundError as err:
        raise ReportError(f"{what} {path} does not exist") from err
    except IsADirectoryError as err:
        raise ReportError(f"{what} {path} is a directory, expected a guard scan result file") from err
    except OSError as err:
        raise ReportError(f"cannot read {what} {path}: {err.strerror or err}") from err
    try:
        raw = json.loads(data, parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise ReportError(
            f"{what} {path}: expected the JSON document `guard scan -o` writes, found: {err}"
        ) from err
    if lone_surrogate_in(data, raw):  # no UTF-8 report can carry one
        raise ReportError(
            f"{what} {path}: expected JSON text, found a string with a lone UTF-16 surrogate escape"
        )
    if not isinstance(raw, dict) or raw.get("apiVersion") != API_VERSION:
        found = raw.get("apiVersion") if isinstance(raw, dict) else type(raw).__name__
        raise ReportError(f"{what} {path}: expected apiVersion {API_VERSION!r}, found {found!r}")
    try:
        result = ScanResult.model_validate(raw)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()[:5])
        raise ReportError(f"{what} {path} is not a valid scan result: {problems}") from err
    return result, "sha256:" + hashlib.sha256(data).hexdigest()
