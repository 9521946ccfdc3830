"""Recalls at admission: checked before the verification cache (a recall acts at once, whatever
the TTL), matching the manifest, any layer of it, or a signer (optionally from a time on)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from guard.admission.pipeline import AdmissionEngine
from guard.admission.ports import VerifiedArtifact
from guard.admission.recalls import Recall, RecallIndex
from guard.admission.review import AdmissionRequest, AdmissionReview
from guard.admission.settings import AdmissionSettings
from guard.config import parse_config
from guard.signing.types import SignerInfo
from guard.testing.admission import FakePolicy, FakeRule, FakeRules, FakeVerifier, admission_review, pod

SIGNED = "registry.local/models/llama:v1"


def engine_with(recalls: list[Recall]) -> tuple[AdmissionEngine, FakeVerifier]:
    verifier = FakeVerifier()
    verifier.add(SIGNED)
    rules = FakeRules([FakeRule("models", "registry.local/models/*")])
    return AdmissionEngine(
        AdmissionSettings(), rules, verifier, FakePolicy(), recalls=RecallIndex(recalls)
    ), verifier


def request() -> AdmissionRequest:
    return AdmissionReview.model_validate(admission_review(pod(SIGNED))).request


async def test_a_recalled_manifest_is_denied_without_asking_the_registry_to_verify() -> None:
    verifier = FakeVerifier()
    digest = verifier.add(SIGNED)
    engine, verifier = engine_with([Recall(id="R1", reason="poisoned weights", digest=digest)])
    try:
        outcome = await engine.review(request())
    finally:
        await engine.aclose()
    assert not outcome.allowed
    assert (
        "recalled (R1, critical)" in outcome.artifacts[0].message
        and "poisoned weights" in outcome.artifacts[0].message
    )
    assert verifier.verify_calls == 0


async def test_a_signer_recall_applies_to_a_cached_verdict() -> None:
    clean, _ = engine_with([])
    try:
        assert (await clean.review(request())).allowed
    finally:
        await clean.aclose()
    engine, verifier = engine_with([Recall(id="R2", reason="key leaked", signer="ci@example.com")])
    try:
        first = await engine.review(request())
        second = await engine.review(request())
    finally:
        await engine.aclose()
    assert not first.allowed and not second.allowed
    assert verifier.verify_calls == 1  # the second came from the cache, and the recall still held
    assert "its signer ci@example.com" in second.artifacts[0].message


def test_layer_and_since_matching() -> None:
    layer = "sha256:" + "a" * 64
    before = SignerInfo(
        method="keyless",
        identity="me@x",
        issuer="iss",
        details={"integrated_time": "2026-01-01T00:00:00+00:00"},
    )
    after = SignerInfo(
        method="keyless",
        identity="me@x",
        issuer="iss",
        details={"integrated_time": "2026-06-01T00:00:00+00:00"},
    )
    index = RecallIndex(
        [
            Recall(id="L", reason="file", digest=layer),
            Recall(
                id="S",
                reason="compromised",
                signer="me@x",
                issuer="iss",
                since=datetime(2026, 3, 1, tzinfo=UTC),
            ),
        ]
    )
    art = VerifiedArtifact(
        reference="r", digest="sha256:" + "b" * 64, signers=(before,), layers=("sha256:" + "c" * 64, layer)
    )
    found = index.artifact(art)
    assert found is not None and (found.recall.id, found.matched) == ("L", "layer")
    assert (
        index.artifact(VerifiedArtifact(reference="r", digest="sha256:" + "b" * 64, signers=(before,)))
        is None
    )
    match = index.artifact(VerifiedArtifact(reference="r", digest="sha256:" + "b" * 64, signers=(after,)))
    assert match is not None and match.recall.id == "S"


def test_config_refuses_a_recall_without_exactly_one_target() -> None:
    with pytest.raises(Exception, match="exactly one of digest or signer"):
        parse_config({"recalls": [{"id": "x", "reason": "y"}]})
    with pytest.raises(ValidationError):
        Recall(id="x", reason="y", digest="sha256:short")
