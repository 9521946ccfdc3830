"""Settings, the kinds table extended by config, the cache, the response builder."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from guard.admission.cache import SingleFlightCache
from guard.admission.kinds import BUILTIN_KINDS, KindTable
from guard.admission.outcome import AdmissionOutcome
from guard.admission.ports import Violation
from guard.admission.references import extract_references, walk
from guard.admission.response import MAX_WARNING_CHARS, MAX_WARNINGS, build_response, response_json
from guard.admission.review import MalformedReviewError, parse_review
from guard.admission.wiring import check_admission_config
from guard.config import parse_config
from guard.errors import ConfigError


def test_configured_kind_is_extracted_and_overrides_nothing_else() -> None:
    config = parse_config(
        {
            "admission": {
                "kinds": [
                    {
                        "group": "trainer.example.com",
                        "kind": "FineTune",
                        "podSpecs": ["spec.workers.*.template.spec"],
                        "references": ["spec.baseModel.uri"],
                    }
                ]
            }
        }
    )
    table = KindTable(config.admission.kinds)
    assert len(table) == len(BUILTIN_KINDS) + 1
    spec = table.lookup("trainer.example.com", "FineTune")
    assert spec is not None
    obj = {
        "spec": {
            "baseModel": {"uri": "oci://registry.local/base:v1"},
            "workers": [
                {"template": {"spec": {"containers": [{"name": "w", "image": "registry.local/t:v1"}]}}}
            ],
        }
    }
    refs = extract_references(obj, spec, ())
    assert [(r.scheme, r.reference) for r in refs] == [
        ("oci", "registry.local/t:v1"),
        ("oci", "registry.local/base:v1"),
    ]
    assert refs[0].occurrences[0].location == "spec.workers[0].template.spec.containers[0].image"
    assert refs[1].occurrences[0].location == "spec.baseModel.uri"


@pytest.mark.parametrize(
    ("admission", "path"),
    [
        (
            {"kinds": [{"group": "x", "kind": "Y", "podSpecs": ["spec..template"]}]},
            "admission.kinds.0.podSpecs",
        ),
        ({"kinds": [{"group": "x", "kind": "Y"}]}, "admission.kinds.0"),
        ({"timeoutSeconds": 1, "deadlineMarginSeconds": 0.9}, "admission"),
        ({"timeoutSeconds": 31}, "admission.timeoutSeconds"),
        ({"unknownKinds": "maybe"}, "admission.unknownKinds"),
        ({"cache": {"ttlSeconds": 0}}, "admission.cache.ttlSeconds"),
        ({"exempt_namespace": ["x"]}, "admission.exempt_namespace"),
    ],
)
def test_bad_admission_settings_name_the_field(admission: dict[str, Any], path: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"admission": admission})
    assert f"<config>: {path}" in str(err.value)


def test_fail_open_rules_must_name_rules() -> None:
    config = parse_config({"admission": {"failOpenRules": ["nope"]}})
    with pytest.raises(ConfigError, match=r"admission.failOpenRules.0: unknown rule 'nope'"):
        check_admission_config(config)


def test_walk_reaches_list_elements_and_map_values() -> None:
    obj = {"a": [{"b": {"x": 1, "y": 2}}, {"b": {"z": 3}}]}
    assert list(walk(obj, "a.*.b.*")) == [("a[0].b.x", 1), ("a[0].b.y", 2), ("a[1].b.z", 3)]
    assert list(walk(obj, "a.*.c")) == []


async def test_cache_evicts_the_least_recently_used() -> None:
    cache: SingleFlightCache[str, int] = SingleFlightCache(ttl=60, negative_ttl=0, max_entries=2)
    calls: list[str] = []

    def compute(key: str) -> Any:
        async def run() -> int:
            calls.append(key)
            return len(key)

        return run

    for key in ("a", "bb", "a", "ccc", "a", "bb"):
        await cache.get(key, compute(key))
    assert calls == ["a", "bb", "ccc", "bb"]  # "bb" was evicted by "ccc"; "a" stayed recent
    await cache.aclose()


async def test_cached_answers_what_get_would_without_computing() -> None:
    events: list[str] = []
    cache: SingleFlightCache[str, int] = SingleFlightCache(
        ttl=60, negative_ttl=60, max_entries=10, on_event=events.append
    )

    async def value() -> int:
        return 7

    async def refused() -> int:
        raise ValueError("refused")

    assert cache.cached("a") is None  # nothing kept: no event (the get that follows counts it)
    assert await cache.get("a", value) == 7
    with pytest.raises(ValueError, match="refused"):
        await cache.get("b", refused, keep_error=lambda _err: True)
    assert cache.cached("a") == 7
    with pytest.raises(ValueError, match="refused"):
        cache.cached("b")
    assert events == ["miss", "miss", "hit", "negative_hit"]
    await cache.aclose()


async def test_a_caller_giving_up_does_not_cancel_the_shared_computation() -> None:
    cache: SingleFlightCache[str, int] = SingleFlightCache(ttl=60, negative_ttl=0, max_entries=10)
    release = asyncio.Event()

    async def slow() -> int:
        await release.wait()
        return 42

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(cache.get("k", slow), 0.01)
    release.set()
    assert await cache.get("k", slow) == 42
    await cache.aclose()


def test_warnings_are_clipped_and_counted() -> None:
    violations = tuple(Violation(f"p.{i}", "r", "x" * 400, action="warn") for i in range(MAX_WARNINGS + 5))
    outcome = AdmissionOutcome(uid="u", decision_id="d", decision="warned", kind="Pod", violations=violations)
    warnings = build_response(outcome).response.warnings or ()
    assert len(warnings) == MAX_WARNINGS + 1
    assert all(len(w) <= MAX_WARNING_CHARS for w in warnings)
    assert warnings[-1].startswith("... and 5 more warnings")


def test_a_deny_always_says_why() -> None:
    outcome = AdmissionOutcome(uid="u", decision_id="d", decision="denied", kind="Pod")
    response = build_response(outcome).response
    assert response.allowed is False and response.status is not None
    assert response.status.message == "guard denied this Pod (decision d): denied by guard"


@pytest.mark.parametrize(
    ("body", "found"),
    [
        (b"{", "(body)"),
        (
            b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": "u"}}',
            "request.kind",
        ),
        (b'{"apiVersion": "v1", "kind": "Pod"}', "apiVersion"),
    ],
)
def test_malformed_reviews_say_what_is_wrong(body: bytes, found: str) -> None:
    with pytest.raises(MalformedReviewError, match="expected an AdmissionReview v1") as err:
        parse_review(body)
    assert found in str(err.value)


def test_a_policy_restating_a_verification_failure_is_not_repeated() -> None:
    from guard.admission.outcome import ArtifactVerdict
    from guard.admission.ports import RuleMatch
    from guard.admission.references import ArtifactReference, Occurrence

    ref = ArtifactReference("r.local/m:v1", "oci", (Occurrence("spec.containers[0].image", "app"),))
    verdict = ArtifactVerdict(
        ref=ref,
        match=RuleMatch("models", "h"),
        status="failed",
        effect="deny",
        message="container 'app': r.local/m:v1 failed verification: files changed (1): w.bin",
        reason="files changed (1): w.bin",
    )
    restated = Violation(
        "supply_chain.signature",
        "failed",
        "artifact r.local/m:v1: files changed (1): w.bin",
        artifact="r.local/m:v1",
    )
    other = Violation(
        "provenance.licenses", "licence", "artifact r.local/m:v1: no licence", artifact="r.local/m:v1"
    )
    outcome = AdmissionOutcome(
        uid="u",
        decision_id="d",
        decision="denied",
        kind="Pod",
        artifacts=(verdict,),
        violations=(restated, other),
    )
    message = build_response(outcome).response.status.message  # type: ignore[union-attr]
    assert message.count("files changed (1): w.bin") == 1
    assert "[provenance.licenses] artifact r.local/m:v1: no licence" in message


def test_required_attestations_must_be_known() -> None:
    base = {
        "authorities": {"ci": {"kind": "key", "key": "/k.pub"}},
        "rules": [{"name": "m", "artifacts": ["r/**"], "authorities": ["ci"]}],
    }
    for ok in (["provenance"], ["datasets", "sbom"], ["https://example.com/custom/v1"]):
        base["rules"][0]["requiredAttestations"] = ok  # type: ignore[index]
        check_admission_config(parse_config(base))
    for bad in ("sboms", "slsa-provenance"):
        base["rules"][0]["requiredAttestations"] = [bad]  # type: ignore[index]
        with pytest.raises(
            ConfigError, match=rf"rules.0.requiredAttestations.0: unknown attestation '{bad}'"
        ):
            check_admission_config(parse_config(base))


@pytest.mark.parametrize(
    "request_body",
    [
        {
            "uid": "u1",
            "kind": {"version": "v1", "kind": "Pod"},
            "resource": {"version": "v1", "resource": "pods"},
            "operation": "CREATE",
        },
        {
            "uid": "u2",
            "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
            "name": "web",
            "namespace": "ml",
            "operation": "UPDATE",
            "userInfo": {"username": "alice", "uid": "42", "groups": ["dev", "system:authenticated"]},
            "object": {"kind": "Deployment"},
            "dryRun": True,
        },
    ],
)
def test_the_request_fields_of_the_policy_input_are_what_the_model_dump_has(
    request_body: dict[str, Any],
) -> None:
    from guard.admission.policies import request_fields
    from guard.policy.input import build_input_for_object, request_input

    review = parse_review(
        json.dumps(
            {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request_body}
        ).encode()
    )
    request = review.request
    dumped = request.model_dump(by_alias=True, exclude={"object", "old_object"}, mode="json")
    fields = request_fields(request)
    assert fields == {k: dumped[k] for k in fields}
    assert request_input(fields) == request_input(dumped)
    config = parse_config({})
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "r/i:1"}]}
    pod = {"metadata": {"name": "p"}, "spec": spec}
    assert build_input_for_object(pod, spec, [], config, request=fields) == build_input_for_object(
        pod, spec, [], config, request=dumped
    )


def _outcomes() -> list[AdmissionOutcome]:
    from guard.admission.outcome import ArtifactVerdict
    from guard.admission.ports import RuleMatch, VerifiedArtifact
    from guard.admission.references import ArtifactReference, Occurrence
    from guard.signing.types import SignerInfo

    ref = ArtifactReference("r.local/m:v1", "oci", (Occurrence("spec.containers[0].image", "app"),))
    signed = VerifiedArtifact("r.local/m:v1", "sha256:" + "b" * 64, (SignerInfo("key", "sha256:ab", None),))
    verified = ArtifactVerdict(
        ref=ref,
        match=RuleMatch("models", "h"),
        status="verified",
        effect="pass",
        digest="sha256:" + "b" * 64,
        resolved_from_tag=True,
        artifact=signed,
    )
    failed = ArtifactVerdict(
        ref=ref, match=RuleMatch("models", "h"), status="failed", effect="deny", message="m: not signed"
    )
    warn = Violation(
        "gpu.fit", "fit", "container 'app' asks for 2 GPUs: \u00abtoo many\u00bb \u2013 \u4e2d", action="warn"
    )
    deny = Violation("tenancy.isolation", "iso", 'namespace "x"\n is not yours', action="deny")
    dry = Violation("carbon.budget", "b", "over budget", action="dryrun")
    base: dict[str, Any] = {"uid": "u-1", "decision_id": "d" * 32, "kind": "Pod"}
    return [
        AdmissionOutcome(**base, decision="allowed"),
        AdmissionOutcome(**base, decision="allowed", message="allowed UNVERIFIED", dry_run=True),
        AdmissionOutcome(**base, decision="skipped", notes={"exempt": "namespace kube-system is exempt"}),
        AdmissionOutcome(
            **base, decision="warned", artifacts=(verified,), violations=(warn, dry), warnings=("spelling",)
        ),
        AdmissionOutcome(**base, decision="denied"),
        AdmissionOutcome(**base, decision="denied", artifacts=(failed, verified), violations=(deny, warn)),
    ]


@pytest.mark.parametrize("warn_only", [False, True])
@pytest.mark.parametrize("outcome", _outcomes())
def test_the_response_json_is_the_models_json(outcome: AdmissionOutcome, warn_only: bool) -> None:
    expected = build_response(outcome, warn_only=warn_only).to_json()
    assert response_json(outcome, warn_only=warn_only) == expected
    assert json.loads(expected)["response"]["uid"] == "u-1"


def test_decision_ids_are_random_uuid4_hex() -> None:
    import uuid

    from guard.admission.pipeline import _decision_id

    ids = [_decision_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for made in ids:
        assert len(made) == 32 and made == made.lower()
        parsed = uuid.UUID(hex=made)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
        assert parsed.hex == made
    # every bit but the six fixed ones takes both values
    varying = 0
    for made in ids:
        varying |= int(made, 16) ^ int(ids[0], 16)
    assert bin(varying).count("1") == 122


def test_repository_of_answers_alike_from_its_memo_and_stays_bounded() -> None:
    from guard.admission import pipeline

    refs = [
        "nginx",
        "docker.io/library/nginx:1.27",
        "DOCKER.IO:443/library/nginx@sha256:" + "a" * 64,
        "registry.example.com:5000/team/model:v1",
        "not a reference at all@sha256:zz",
        "r.example/m@" + "x" * 2000,  # too long to keep
    ]
    pipeline._REPOSITORIES.clear()
    first = [pipeline.repository_of(r) for r in refs]
    again = [pipeline.repository_of(r) for r in refs]
    pipeline._REPOSITORIES.clear()
    fresh = [pipeline.repository_of(r) for r in refs]
    assert first == again == fresh
    assert first[:4] == [
        "docker.io/library/nginx",
        "docker.io/library/nginx",
        "docker.io/library/nginx",
        "registry.example.com:5000/team/model",
    ]
    assert refs[-1] not in pipeline._REPOSITORIES
    for i in range(pipeline._REPOSITORIES_KEPT + 10):
        pipeline.repository_of(f"r.example/m{i}:v1")
    assert len(pipeline._REPOSITORIES) <= pipeline._REPOSITORIES_KEPT
    assert pipeline.repository_of("r.example/m5:v1") == "r.example/m5"
