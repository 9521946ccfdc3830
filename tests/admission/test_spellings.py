"""The deprecated annotation key models.guard.cnai.io/references: still read, warned, and never
a way around the current key (both spellings with different values: denied)."""

from __future__ import annotations

from typing import Any

from guard.admission.response import build_response
from guard.admission.settings import AdmissionSettings
from guard.admission.spellings import REFERENCES_ANNOTATION
from guard.testing.admission import pod
from tests.admission.test_pipeline import SIGNED, UNSIGNED, make, req

OLD = "models.guard.cnai.io/references"


def _annotated(**annotations: str) -> dict[str, Any]:
    obj = pod(f"{SIGNED}")
    obj["metadata"]["annotations"] = annotations
    return obj


def test_the_current_spelling_is_the_default() -> None:
    assert AdmissionSettings().annotations == (REFERENCES_ANNOTATION,)
    assert REFERENCES_ANNOTATION == "models.guard.cnai.dev/references"


async def test_the_old_spelling_is_still_verified_and_warned() -> None:
    engine, _, _ = make()
    outcome = await engine.review(req(_annotated(**{OLD: UNSIGNED})))
    await engine.aclose()
    assert not outcome.allowed  # the reference under the old key was read and verified: unsigned
    assert any(a.ref.reference == UNSIGNED for a in outcome.artifacts)
    assert any(OLD in w and "deprecated" in w for w in outcome.warnings)


async def test_the_old_spelling_warns_in_the_response() -> None:
    engine, _, _ = make()
    outcome = await engine.review(req(_annotated(**{OLD: SIGNED})))
    await engine.aclose()
    assert outcome.allowed and outcome.decision == "warned"
    warnings: list[str] = list(build_response(outcome).response.warnings or [])
    assert any(f"write {REFERENCES_ANNOTATION}" in w for w in warnings)


async def test_both_spellings_with_different_values_are_denied() -> None:
    engine, verifier, _ = make()
    obj = _annotated(**{REFERENCES_ANNOTATION: SIGNED, OLD: UNSIGNED})
    outcome = await engine.review(req(obj))
    await engine.aclose()
    assert not outcome.allowed and outcome.decision == "denied"
    assert OLD in outcome.message and REFERENCES_ANNOTATION in outcome.message
    assert verifier.verify_calls == 0  # decided before any registry call


async def test_both_spellings_with_the_same_value_are_checked_once_and_warned() -> None:
    engine, _, _ = make()
    obj = _annotated(**{REFERENCES_ANNOTATION: SIGNED, OLD: f" {SIGNED} "})
    outcome = await engine.review(req(obj))
    await engine.aclose()
    assert outcome.allowed
    assert any(OLD in w for w in outcome.warnings)


async def test_an_audit_reads_the_old_spelling_too() -> None:
    engine, _, _ = make()
    obj = _annotated(**{REFERENCES_ANNOTATION: SIGNED, OLD: UNSIGNED})
    outcome = await engine.evaluate_object(req(obj))
    await engine.aclose()
    assert outcome.decision == "denied" and OLD in outcome.message
