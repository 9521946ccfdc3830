"""Data-driven admission cases: tests/data/admission/<case>.json with <case>.expected.json beside it.

A case holds an ``object`` (and optionally ``oldObject``, ``operation``, ``subResource``,
``dryRun``, ``registry_down``, ``allowed_model_sources``: the ``policy.allowed_model_sources``
prefixes); it is decided by the engine over the fake registry below, and the
response must match the expectation: ``allowed``, ``decision``, substrings of the deny message
(``message_contains``) and of the warnings (``warnings_contain``), the references verified
(``verified``) and the number of registry verifications (``verifications``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from guard.admission.pipeline import AdmissionEngine
from guard.admission.response import build_response
from guard.admission.review import AdmissionReview
from guard.admission.settings import AdmissionSettings
from guard.testing.admission import FakePolicy, FakeRule, FakeRules, FakeVerifier, admission_review

DATA = Path(__file__).parent.parent / "data" / "admission"
CASES = sorted(p for p in DATA.glob("*.json") if not p.name.endswith(".expected.json"))


def test_every_case_has_its_expected_decision() -> None:
    assert len(CASES) >= 20
    for case in CASES:
        assert case.with_suffix(".expected.json").is_file(), f"{case.name} has no expected decision beside it"


def _registry(down: bool) -> FakeVerifier:
    verifier = FakeVerifier(down=down)
    verifier.add("registry.local/models/llama:v1")
    verifier.add("registry.local/models/unsigned:v1", signer=None)
    verifier.add("registry.local/models/evil:v1", tampered=True)
    return verifier


@pytest.mark.parametrize("case", CASES, ids=[p.stem for p in CASES])
async def test_case(case: Path) -> None:
    data: dict[str, Any] = json.loads(case.read_text())
    expected: dict[str, Any] = json.loads(case.with_suffix(".expected.json").read_text())
    obj = data.get("object") or data["oldObject"]
    review = admission_review(
        obj,
        operation=data.get("operation", "CREATE"),
        old=data.get("oldObject"),
        dry_run=data.get("dryRun", False),
        sub_resource=data.get("subResource"),
    )
    review["request"]["object"] = data.get("object")
    verifier = _registry(data.get("registry_down", False))
    rules = FakeRules(
        [
            FakeRule("models", "registry.local/models/*"),
            FakeRule("lenient", "registry.local/lenient/*", True),
        ],
        allowed_sources=data.get("allowed_model_sources", ()),
    )
    engine = AdmissionEngine(AdmissionSettings(), rules, verifier, FakePolicy())
    outcome = await engine.review(AdmissionReview.model_validate(review).request)
    await engine.aclose()
    response = build_response(outcome).response
    assert response.allowed is expected["allowed"], response
    assert outcome.decision == expected["decision"]
    message = response.status.message if response.status else ""
    for part in expected.get("message_contains", []):
        assert part in message, f"{part!r} not in {message!r}"
    warnings = " | ".join(response.warnings or ())
    for part in expected.get("warnings_contain", []):
        assert part in warnings, f"{part!r} not in {warnings!r}"
    if "verified" in expected:
        notes = response.audit_annotations or {}
        verified = [v["reference"] for v in json.loads(notes.get("verified", "[]"))]
        assert verified == expected["verified"]
    if "verifications" in expected:
        assert verifier.verify_calls == expected["verifications"]
