"""The policy artifacts of verdicts, and their part of the policy input, made once for equal
verdicts: whatever is reused must equal what would be made afresh."""

from __future__ import annotations

import dataclasses
from typing import Any

import pydantic_core

from guard.admission.kinds import KindTable
from guard.admission.outcome import ArtifactVerdict
from guard.admission.policies import LibraryPolicyEvaluator, policy_artifact
from guard.admission.ports import RuleMatch, VerifiedArtifact
from guard.admission.references import ArtifactReference, Occurrence
from guard.config import parse_config
from guard.policy.cache import JsonConstant
from guard.policy.examples import CONFIG
from guard.policy.input import Artifact, InputConstants, _artifact
from guard.signing.types import SignerInfo

REF = "registry.example.com/team-a/llama@sha256:" + "a" * 64


def _verdict(**changes: Any) -> ArtifactVerdict:
    signed = VerifiedArtifact(
        REF,
        "sha256:" + "a" * 64,
        (SignerInfo("key", "sha256:ab", details={"format": "oms"}),),
        {"name": "llama"},
    )
    base = ArtifactVerdict(
        ref=ArtifactReference(REF, "oci", (Occurrence("spec.containers[0].image", "app"),)),
        match=RuleMatch("team-a-models", "h"),
        status="verified",
        effect="pass",
        digest="sha256:" + "a" * 64,
        artifact=signed,
    )
    return dataclasses.replace(base, **changes)


def _evaluator() -> LibraryPolicyEvaluator:
    return LibraryPolicyEvaluator(parse_config(CONFIG), None, KindTable())  # type: ignore[arg-type]


def test_a_verdict_s_policy_artifact_is_what_policy_artifact_makes_whatever_changes() -> None:
    evaluator = _evaluator()
    authorities = evaluator._authorities
    base = _verdict()
    other_signed = dataclasses.replace(base.artifact, signers=(SignerInfo("keyless", "ci@example.com", "x"),))  # type: ignore[type-var]
    variants = [
        base,
        _verdict(),  # equal, with its own verified artifact
        _verdict(ref=ArtifactReference(REF, "oci", (Occurrence("spec.containers[0].image", "other"),))),
        _verdict(ref=ArtifactReference(REF, "oci", (Occurrence("spec.initContainers[0].image", "app"),))),
        _verdict(match=RuleMatch(None, "h", "warn")),
        _verdict(status="failed", effect="deny", message="not signed", reason="no signature", artifact=None),
        _verdict(status="error", effect="warn", message="registry down"),
        _verdict(artifact=other_signed),
        _verdict(artifact=dataclasses.replace(base.artifact, facts={"name": "other"})),  # type: ignore[type-var]
    ]
    for _ in range(2):
        for verdict in variants:
            made = evaluator._policy_artifact(verdict)
            assert made == policy_artifact(verdict, authorities.get(verdict.match.rule or "", ()))
    # equal verdicts over the same verified artifact share one; another verified artifact, equal
    # as it is, gets its own (by identity: its facts are not compared)
    assert evaluator._policy_artifact(dataclasses.replace(base)) is evaluator._policy_artifact(base)
    assert evaluator._policy_artifact(variants[1]) is not evaluator._policy_artifact(base)


def test_the_kept_policy_artifacts_are_bounded() -> None:
    from guard.admission import policies

    evaluator = _evaluator()
    for i in range(policies._ARTIFACTS_KEPT + 5):
        evaluator._policy_artifact(_verdict(message=f"m{i}"))
    assert 0 < len(evaluator._artifacts) <= policies._ARTIFACTS_KEPT


def test_an_artifact_s_part_of_the_input_is_built_once_per_artifact_and_namespace() -> None:
    config = parse_config(CONFIG)
    constants = InputConstants(config)
    artifact = _evaluator()._policy_artifact(_verdict())
    for namespace in ("team-a", "team-b", "team-a"):
        part = constants.artifact(artifact, namespace)
        assert type(part) is JsonConstant and part == _artifact(artifact, config, namespace)
        assert part.json == pydantic_core.to_json(_artifact(artifact, config, namespace))
    assert constants.artifact(artifact, "team-a") is constants.artifact(artifact, "team-a")
    # an equal artifact, another object: built again (what it holds is not compared)
    twin = Artifact(**{f.name: getattr(artifact, f.name) for f in dataclasses.fields(artifact)})
    assert constants.artifact(twin, "team-a") is not constants.artifact(artifact, "team-a")
    assert constants.artifact(twin, "team-a") == constants.artifact(artifact, "team-a")


def test_the_artifacts_part_is_one_constant_list_for_the_same_artifacts() -> None:
    from guard.policy.cache import JsonConstantList

    config = parse_config(CONFIG)
    constants = InputConstants(config)
    evaluator = _evaluator()
    one, two = evaluator._policy_artifact(_verdict()), evaluator._policy_artifact(_verdict(message="x"))
    part = constants.artifacts([one, two], "team-a")
    assert type(part) is JsonConstantList and part == [_artifact(a, config, "team-a") for a in (one, two)]
    assert part.json == pydantic_core.to_json(list(part))
    assert constants.artifacts([one, two], "team-a") is part
    assert constants.artifacts([two, one], "team-a") == [part[1], part[0]]
    assert constants.artifacts([one, two], "team-b") is not part
    assert constants.artifacts([], "team-a") == []


def test_the_verified_annotation_is_what_the_verdicts_make_whatever_is_reused() -> None:
    import json

    from guard.admission.outcome import AdmissionOutcome
    from guard.admission.response import audit_annotations

    base = _verdict()
    keyless = dataclasses.replace(
        base.artifact,  # type: ignore[type-var]
        signers=(
            SignerInfo("keyless", "ci@example.com", "https://issuer", details={"format": "cosign-bundle"}),
        ),
    )
    expected = {
        id(base.artifact): [["sha256:ab"], ["oms"]],
        id(keyless): [["ci@example.com"], ["cosign-bundle"]],
    }
    for _ in range(2):
        for verdict in (base, _verdict(artifact=keyless), base):
            outcome = AdmissionOutcome(
                uid="u", decision_id="d", decision="allowed", kind="Pod", artifacts=(verdict,)
            )
            (note,) = json.loads(audit_annotations(outcome)["verified"])
            assert note["reference"] == REF and note["rule"] == "team-a-models"
            assert [note["signers"], note["formats"]] == expected[id(verdict.artifact)]
