"""Whatever the body or object, the engine answers: a MalformedReviewError or an outcome, never a
crash, and never an allow for a reference it could not verify."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guard.admission.kinds import KindTable
from guard.admission.pipeline import AdmissionEngine
from guard.admission.references import extract_references
from guard.admission.review import AdmissionReview, MalformedReviewError, parse_review
from guard.admission.settings import AdmissionSettings
from guard.testing.admission import FakePolicy, FakeRules, FakeVerifier, admission_review

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=30,
)
FIELDS = st.sampled_from(
    [
        "spec",
        "template",
        "containers",
        "initContainers",
        "image",
        "volumes",
        "jobTemplate",
        "predictor",
        "model",
        "storageUri",
        "headGroupSpec",
        "workerGroupSpecs",
        "metadata",
        "annotations",
        "reference",
        "name",
    ]
)
k8s_like = st.recursive(
    st.text(max_size=30) | st.none() | st.integers(),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(FIELDS, children, max_size=4),
    max_leaves=40,
)


@given(st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode()))
def test_parse_review_only_raises_malformed(body: bytes) -> None:
    with contextlib.suppress(MalformedReviewError):
        parse_review(body)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(k8s_like, st.sampled_from([k for k in KindTable()]))
def test_every_object_gets_a_decision_and_unverifiable_references_are_never_allowed(
    obj: Any, kind: Any
) -> None:
    body = {"apiVersion": f"{kind.group}/v1" if kind.group else "v1", "kind": kind.kind}
    if isinstance(obj, dict):
        body.update({k: v for k, v in obj.items() if k not in ("apiVersion", "kind")})
    refs = extract_references(body, kind, ("models.guard.cnai.dev/references",))
    request = AdmissionReview.model_validate(admission_review(body)).request
    # an empty registry, and no rule covers anything: every reference must be denied
    engine = AdmissionEngine(AdmissionSettings(), FakeRules(), FakeVerifier(), FakePolicy())

    async def decide() -> Any:
        try:
            return await engine.review(request)
        finally:
            await engine.aclose()

    outcome = asyncio.run(decide())
    assert outcome.decision in ("allowed", "denied")
    assert outcome.allowed == (not refs)
