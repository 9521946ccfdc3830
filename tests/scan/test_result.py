"""The result document: the shipped JSON Schema is the one generated from the models."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import jsonschema
import pytest
from pydantic import ValidationError

from guard.cli import run
from guard.scan.result import (
    API_VERSION,
    ScanInfo,
    ScanResult,
    Summary,
    fingerprint,
    generate_schema,
    schema_text,
    shipped_schema_text,
)


def _minimal() -> ScanResult:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    info = ScanInfo(
        id="abc",
        started=now,
        finished=now,
        guard_version="0.1.0",
        config_hash="sha256:" + "0" * 64,
        policy_library_digest=None,
        sources=(),
        partial=False,
    )
    summary = Summary(
        workloads=0,
        ai_workloads=0,
        pods=0,
        artifacts=0,
        findings=0,
        by_severity={},
        by_policy={},
        by_tenant={},
        by_namespace={},
        by_status={},
        by_category={},
    )
    return ScanResult(scan=info, summary=summary)


def test_shipped_schema_equals_generated() -> None:
    assert shipped_schema_text() == schema_text(), (
        "guard/data/scan/result.schema.json is stale: regenerate it with "
        "`guard scan --schema > guard/data/scan/result.schema.json`"
    )


def test_document_validates_against_schema_and_round_trips() -> None:
    doc = json.loads(_minimal().to_json())
    assert doc["apiVersion"] == API_VERSION
    assert doc["scan"]["guardVersion"] == "0.1.0"
    jsonschema.Draft202012Validator(generate_schema()).validate(doc)
    assert ScanResult.model_validate(doc) == _minimal()


def test_unknown_field_is_refused() -> None:
    doc = json.loads(_minimal().to_json())
    doc["surprise"] = 1
    with pytest.raises(ValidationError):
        ScanResult.model_validate(doc)


def test_fingerprint_is_stable_and_distinguishes_parts() -> None:
    assert fingerprint("a", "b") == fingerprint("a", "b")
    assert fingerprint("a", "b") != fingerprint("ab", "")
    assert fingerprint("a", None) == fingerprint("a", "")


def test_cli_prints_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["scan", "--schema"]) == 0
    assert json.loads(capsys.readouterr().out) == generate_schema()
