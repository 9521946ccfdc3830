"""The admission pipeline against fakes: decisions, fail closed / open, deadline, single-flight."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from guard.admission.pipeline import AdmissionEngine
from guard.admission.ports import Violation
from guard.admission.response import build_response
from guard.admission.review import AdmissionReview
from guard.admission.settings import AdmissionSettings, CacheSettings
from guard.errors import (
    AnswerTooLargeError,
    RefusedTargetError,
    RegistryAnswerError,
    RegistryAuthError,
    RegistryTlsError,
    UntrustedContentError,
    UsageError,
)
from guard.testing.admission import FakePolicy, FakeRule, FakeRules, FakeVerifier, admission_review, pod

SIGNED = "registry.local/models/llama:v1"
UNSIGNED = "registry.local/models/unsigned:v1"
TAMPERED = "registry.local/models/evil:v1"


def make(
    *,
    verifier: FakeVerifier | None = None,
    policy: FakePolicy | None = None,
    rules: FakeRules | None = None,
    **settings: Any,
) -> tuple[AdmissionEngine, FakeVerifier, FakePolicy]:
    if verifier is None:
        verifier = FakeVerifier()
        verifier.add(SIGNED)
        verifier.add(UNSIGNED, signer=None)
        verifier.add(TAMPERED, tampered=True)
    policy = policy or FakePolicy()
    rules = rules or FakeRules(
        [
            FakeRule("models", "registry.local/models/*"),
            FakeRule("lenient", "registry.local/lenient/*", True),
        ]
    )
    engine = AdmissionEngine(AdmissionSettings(**settings), rules, verifier, policy)
    return engine, verifier, policy


def req(obj: dict[str, Any], **kw: Any) -> Any:
    return AdmissionReview.model_validate(admission_review(obj, **kw)).request


async def decide(engine: AdmissionEngine, obj: dict[str, Any], **kw: Any) -> Any:
    try:
        return await engine.review(req(obj, **kw))
    finally:
        pass


async def test_signed_model_allowed_with_audit_and_tag_warning() -> None:
    engine, verifier, _ = make()
    outcome = await engine.review(req(pod(SIGNED)))
    await engine.aclose()
    assert outcome.allowed and outcome.decision == "warned"  # a tag: allowed, with a pin-the-digest warning
    response = build_response(outcome).response
    assert response.allowed is True
    assert response.warnings and "pin the digest" in response.warnings[0]
    assert response.audit_annotations is not None
    assert "ci@example.com" in response.audit_annotations["verified"]
    assert response.audit_annotations["decision-id"] == outcome.decision_id
    assert verifier.resolve_calls == 1 and verifier.verify_calls == 1


async def test_pinned_digest_is_not_resolved_and_has_no_warning() -> None:
    engine, verifier, _ = make()
    digest = verifier.tags[SIGNED]
    outcome = await engine.review(req(pod(f"registry.local/models/llama@{digest}")))
    await engine.aclose()
    assert outcome.decision == "allowed"
    assert verifier.resolve_calls == 0


@pytest.mark.parametrize(
    ("image", "reason"),
    [
        (UNSIGNED, "no signature"),
        (TAMPERED, "does not match its content"),
        ("docker.io/library/nginx:1", "no trust rule"),
    ],
)
async def test_denied_with_reason_naming_the_container(image: str, reason: str) -> None:
    engine, _, _ = make()
    outcome = await engine.review(req(pod(SIGNED, image)))
    await engine.aclose()
    response = build_response(outcome).response
    assert response.allowed is False
    assert response.status is not None and response.status.code == 403
    assert reason in response.status.message
    assert "container 'c1'" in response.status.message


async def test_registry_down_fails_closed_with_actionable_message() -> None:
    engine, verifier, _ = make()
    verifier.down = True
    outcome = await engine.review(req(pod(SIGNED)))
    await engine.aclose()
    message = build_response(outcome).response.status.message  # type: ignore[union-attr]
    assert not outcome.allowed
    assert "connection refused" in message and "fails closed" in message


async def test_registry_down_fails_open_where_the_rule_says_so() -> None:
    verifier = FakeVerifier(down=True)
    engine, _, _ = make(verifier=verifier)
    outcome = await engine.review(req(pod("registry.local/lenient/m:1")))
    await engine.aclose()
    response = build_response(outcome).response
    assert response.allowed is True
    assert response.warnings and "fails open" in response.warnings[0]


async def test_deadline_denies_and_says_so() -> None:
    gate = threading.Event()  # never set: the registry hangs
    verifier = FakeVerifier(gate=gate, gate_timeout=10)
    verifier.add(SIGNED)
    engine, _, _ = make(
        verifier=verifier, timeout_seconds=1.0, deadline_margin_seconds=0.7, policy_budget_seconds=0.1
    )
    outcome = await engine.review(req(pod(SIGNED)))
    gate.set()
    await engine.aclose()
    assert not outcome.allowed
    assert "deadline" in build_response(outcome).response.status.message  # type: ignore[union-attr]
    counted = engine.metrics.registry.get_sample_value(
        "guard_admission_deadline_exceeded_total", {"stage": "verification"}
    )
    assert counted == 1.0  # what the chart's GuardDeadlineExceeded alert watches


async def test_concurrent_pods_with_the_same_model_verify_once() -> None:
    gate = threading.Event()
    verifier = FakeVerifier(gate=gate)
    verifier.add(SIGNED)
    engine, _, _ = make(verifier=verifier)
    requests = [engine.review(req(pod(SIGNED, name=f"p{i}"))) for i in range(20)]
    tasks = [asyncio.ensure_future(r) for r in requests]
    for _ in range(50):  # let every request reach the cache before the registry answers
        await asyncio.sleep(0)
    gate.set()
    outcomes = await asyncio.gather(*tasks)
    # and later requests are cache hits
    again = await engine.review(req(pod(SIGNED, name="late")))
    await engine.aclose()
    assert all(o.allowed for o in outcomes) and again.allowed
    assert verifier.resolve_calls == 1
    assert verifier.verify_calls == 1
    hits = engine.metrics.registry.get_sample_value(
        "guard_verification_cache_total", {"cache": "verification", "result": "hit"}
    )
    assert hits is not None and hits >= 1.0  # the late request at least


async def test_negative_verdicts_are_cached_but_registry_errors_are_not() -> None:
    engine, verifier, _ = make()
    await engine.review(req(pod(UNSIGNED)))
    await engine.review(req(pod(UNSIGNED)))
    assert verifier.verify_calls == 1  # the failure was remembered
    verifier2 = FakeVerifier(down=True)
    verifier2.add(SIGNED)
    engine2, _, _ = make(verifier=verifier2)
    await engine2.review(req(pod(SIGNED)))
    await engine2.review(req(pod(SIGNED)))
    await engine.aclose()
    await engine2.aclose()
    assert verifier2.resolve_calls == 2  # a registry error is retried on the next request


async def test_negative_ttl_zero_never_remembers_failures() -> None:
    engine, verifier, _ = make(cache=CacheSettings(negative_ttl_seconds=0))
    await engine.review(req(pod(UNSIGNED)))
    await engine.review(req(pod(UNSIGNED)))
    await engine.aclose()
    assert verifier.verify_calls == 2


async def test_expired_entries_are_verified_again() -> None:
    now = [0.0]
    verifier = FakeVerifier()
    verifier.add(SIGNED)
    policy = FakePolicy()
    from guard.admission.settings import AdmissionSettings as S

    engine = AdmissionEngine(
        S(cache=CacheSettings(ttl_seconds=60, tag_ttl_seconds=60)),
        FakeRules([FakeRule("models", "registry.local/models/*")]),
        verifier,
        policy,
        clock=lambda: now[0],
    )
    await engine.review(req(pod(SIGNED)))
    now[0] = 30
    await engine.review(req(pod(SIGNED)))
    now[0] = 100
    await engine.review(req(pod(SIGNED)))
    await engine.aclose()
    assert verifier.verify_calls == 2 and verifier.resolve_calls == 2


async def test_update_with_unchanged_references_is_served_from_the_cache_and_judged() -> None:
    engine, verifier, policy = make()
    old = pod(SIGNED)
    new = pod(SIGNED)
    new["metadata"]["labels"] = {"scaled": "yes"}
    created = await engine.review(req(old))
    outcome = await engine.review(req(new, operation="UPDATE", old=old))
    changed = await engine.review(req(pod(UNSIGNED), operation="UPDATE", old=old))
    await engine.aclose()
    assert created.allowed and outcome.allowed
    assert verifier.verify_calls == 2  # the CREATE and the changed update: the unchanged one was cached
    assert policy.calls == 3  # but policies judged every request
    assert not changed.allowed


async def test_policies_judge_an_ephemeral_container_that_reuses_an_image() -> None:
    # issue 9 item 3: same reference set, but a privileged container is added through the
    # ephemeralcontainers subresource; policies must run (they used to be skipped as "unchanged")
    def privileged(request: Any, _artifacts: Any) -> list[Violation]:
        containers = (request.object or {}).get("spec", {}).get("ephemeralContainers", [])
        return [
            Violation("tenancy.isolation", "privileged", "privileged container")
            for c in containers
            if (c.get("securityContext") or {}).get("privileged")
        ]

    engine, _, _ = make(policy=FakePolicy(judge=privileged))
    old = pod(SIGNED)
    new = pod(SIGNED)
    new["spec"]["ephemeralContainers"] = [
        {"name": "debug", "image": SIGNED, "securityContext": {"privileged": True}}
    ]
    outcome = await engine.review(req(new, operation="UPDATE", old=old, sub_resource="ephemeralcontainers"))
    await engine.aclose()
    assert not outcome.allowed
    assert [v.rule for v in outcome.violations] == ["privileged"]


async def test_update_of_an_object_being_deleted_is_not_blocked() -> None:
    engine, verifier, policy = make()
    old = pod(UNSIGNED)
    old["metadata"]["deletionTimestamp"] = "2026-12-02T00:00:00Z"
    new = pod(UNSIGNED)
    outcome = await engine.review(req(new, operation="UPDATE", old=old))
    await engine.aclose()
    assert outcome.allowed and outcome.decision == "skipped"
    assert verifier.verify_calls == 0 and policy.calls == 0


async def test_too_many_references_are_denied_before_any_registry_call() -> None:
    # issue 9 item 6: 2,000 distinct tags in one Pod took 9.3 s and starved other requests
    engine, verifier, _ = make(max_references=8)
    many = pod(SIGNED)
    many["spec"]["containers"] = [
        {"name": f"c{i}", "image": f"registry.local/models/m:{i}"} for i in range(9)
    ]
    outcome = await engine.review(req(many))
    await engine.aclose()
    assert not outcome.allowed and "9 distinct artifact references" in outcome.message
    assert verifier.resolve_calls == 0 and verifier.verify_calls == 0


async def test_a_stuck_verification_does_not_hold_the_key_past_the_deadline() -> None:
    # issue 9 item 7: a computation stuck on a dripping registry must not block later attempts
    gate = threading.Event()
    verifier = FakeVerifier(gate=gate, gate_timeout=30)
    verifier.add(SIGNED)
    now = [0.0]
    engine = AdmissionEngine(
        AdmissionSettings(timeout_seconds=2, deadline_margin_seconds=0.5, policy_budget_seconds=0.2),
        FakeRules([FakeRule("models", "registry.local/models/*")]),
        verifier,
        FakePolicy(),
        clock=lambda: now[0],
    )
    first = asyncio.ensure_future(engine.review(req(pod(SIGNED))))
    await asyncio.sleep(0.05)
    now[0] = 5.0  # far past the first computation's deadline
    second = asyncio.ensure_future(engine.review(req(pod(SIGNED))))
    await asyncio.sleep(0.05)
    gate.set()
    await asyncio.gather(first, second)
    await engine.aclose()
    assert verifier.resolve_calls == 2  # the second request started its own resolution


async def test_fail_open_is_the_same_decision_at_the_deadline_and_never_says_allowed_when_denied() -> None:
    # issue 9 item 9: with the registry hanging, policies still run (their budget is reserved)
    gate = threading.Event()
    verifier = FakeVerifier(gate=gate, gate_timeout=10)
    verifier.add("registry.local/lenient/m:v1")
    engine, _, policy = make(
        verifier=verifier, timeout_seconds=1.0, deadline_margin_seconds=0.2, policy_budget_seconds=0.3
    )
    decisions = []
    for _ in range(3):
        outcome = await engine.review(req(pod("registry.local/lenient/m:v1")))
        decisions.append((outcome.decision, outcome.allowed))
    both = pod("registry.local/lenient/m:v1")
    both["spec"]["containers"].append({"name": "other", "image": UNSIGNED})
    mixed = await engine.review(req(both))
    gate.set()
    await engine.aclose()
    assert decisions == [("warned", True)] * 3 and policy.calls >= 3
    warnings: list[str] = list(build_response(mixed).response.warnings or ())
    assert not mixed.allowed and not any("allowed UNVERIFIED" in w for w in warnings)


async def test_exempt_namespace_and_delete_are_allowed_unchecked() -> None:
    engine, verifier, policy = make()
    exempt = await engine.review(req(pod(UNSIGNED), namespace="kube-system"))
    delete = await engine.review(req(pod(UNSIGNED), operation="DELETE"))
    status = await engine.review(req(pod(UNSIGNED), operation="UPDATE", sub_resource="status"))
    await engine.aclose()
    assert [o.decision for o in (exempt, delete, status)] == ["exempt", "skipped", "skipped"]
    assert verifier.verify_calls == 0 and policy.calls == 0


async def test_ephemeral_containers_subresource_is_checked() -> None:
    engine, _, _ = make()
    old = pod(SIGNED)
    new = pod(SIGNED)
    new["spec"]["ephemeralContainers"] = [{"name": "debug", "image": UNSIGNED}]
    outcome = await engine.review(req(new, operation="UPDATE", old=old, sub_resource="ephemeralcontainers"))
    await engine.aclose()
    assert not outcome.allowed
    assert "container 'debug'" in build_response(outcome).response.status.message  # type: ignore[union-attr]


async def test_unknown_kind_is_denied_by_default_and_can_be_allowed() -> None:
    obj = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {}}
    engine, _, _ = make()
    denied = await engine.review(req(obj))
    engine2, _, _ = make(unknown_kinds="allow")
    allowed = await engine2.review(req(obj))
    await engine.aclose()
    await engine2.aclose()
    assert not denied.allowed and "admission.kinds" in build_response(denied).response.status.message  # type: ignore[union-attr]
    assert allowed.allowed and allowed.warnings


async def test_policy_violations_deny_warn_and_dryrun() -> None:
    policy = FakePolicy(
        violations=(
            Violation("gpu.cap", "max_gpus", "container 'c0' asks 9 GPUs, at most 8", action="deny"),
            Violation("supply_chain.sbom", "sbom", "no SBOM attached", action="warn"),
            Violation("tenancy.runtime", "sandbox", "not sandboxed", action="dryrun"),
        ),
        policies=("gpu.cap", "supply_chain.sbom", "tenancy.runtime", "carbon.budget"),
    )
    engine, _, _ = make(policy=policy)
    outcome = await engine.review(req(pod(SIGNED)))
    await engine.aclose()
    response = build_response(outcome).response
    assert not response.allowed
    assert "[gpu.cap] container 'c0' asks 9 GPUs" in response.status.message  # type: ignore[union-attr]
    assert response.warnings and any("[supply_chain.sbom]" in w for w in response.warnings)
    assert response.audit_annotations and "not sandboxed" in response.audit_annotations["dryrun-violations"]
    sample = engine.metrics.registry.get_sample_value
    assert sample("guard_admission_policy_decisions_total", {"policy": "gpu.cap", "result": "deny"}) == 1
    assert (
        sample("guard_admission_policy_decisions_total", {"policy": "carbon.budget", "result": "pass"}) == 1
    )
    # the policy saw the verified artifact with its digest
    seen = policy.seen[0][1]
    assert seen[0].artifact is not None and seen[0].digest is not None


async def test_policy_engine_failure_fails_closed() -> None:
    engine, _, _ = make(policy=FakePolicy(fail=True))
    outcome = await engine.review(req(pod(SIGNED)))
    await engine.aclose()
    assert not outcome.allowed
    assert "policy engine failed" in build_response(outcome).response.status.message  # type: ignore[union-attr]


async def test_unexpected_bug_fails_closed() -> None:
    class Broken:
        def match(self, reference: str, namespace: str) -> Any:
            raise ZeroDivisionError("boom")

    engine = AdmissionEngine(AdmissionSettings(), Broken(), FakeVerifier(), FakePolicy())
    outcome = await engine.review(req(pod(SIGNED)))
    await engine.aclose()
    assert not outcome.allowed
    assert "ZeroDivisionError" in build_response(outcome).response.status.message  # type: ignore[union-attr]


async def test_dry_run_is_marked_and_decides_the_same() -> None:
    engine, _, _ = make()
    outcome = await engine.review(req(pod(UNSIGNED), dry_run=True))
    await engine.aclose()
    response = build_response(outcome).response
    assert not response.allowed
    assert response.audit_annotations and response.audit_annotations["dry-run"] == "true"


async def test_non_oci_storage_uri_is_denied_when_a_rule_requires_a_signature() -> None:
    isvc = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "m", "namespace": "team-a"},
        "spec": {"predictor": {"model": {"storageUri": "s3://bucket/llama"}}},
    }
    engine, _, _ = make(rules=FakeRules([FakeRule("s3", "s3:*")], unmatched="deny"))
    outcome = await engine.review(req(isvc))
    await engine.aclose()
    assert not outcome.allowed


class _BrokenVerifier(FakeVerifier):
    """A registry that answers, with content guard's verification cannot make sense of."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    def verify(self, reference: str, digest: str, rule: Any) -> Any:
        raise self.error


@pytest.mark.parametrize(
    "error",
    [
        ValueError("malformed manifest"),  # a bug or hostile content, not an unreachable registry
        RuntimeError("internal error: a registry connection outside of an operation"),  # a bug
        UsageError("the admission webhook never writes to a registry"),
        # issue 9 items 1 and 10: junk content and refused targets are chosen by an outsider
        UntrustedContentError("fallback index is not an image index"),
        RefusedTargetError("redirect to 169.254.169.254 refused"),
        AnswerTooLargeError("referrers listing larger than 4 MiB", limit=4 << 20),
        # it answered: refused credentials (expired, rotated, none) are no outage, nor is a
        # certificate guard does not trust (a wrong CA bundle), nor a 4xx that is not "busy"
        RegistryAuthError("registry registry.local refused the credentials: UNAUTHORIZED"),
        RegistryTlsError("TLS to registry.local failed: CERTIFICATE_VERIFY_FAILED"),
        RegistryAnswerError("GET /v2/ on registry.local failed with HTTP 400: bad", status=400),
    ],
)
async def test_fail_open_rule_covers_only_an_unreachable_registry(error: Exception) -> None:
    verifier = _BrokenVerifier(error)
    verifier.add("registry.local/lenient/m:1")
    engine, _, _ = make(verifier=verifier)
    outcome = await engine.review(req(pod("registry.local/lenient/m:1")))
    await engine.aclose()
    response = build_response(outcome).response
    assert response.allowed is False
    assert response.status is not None
    assert "fails closed" in response.status.message or "failed verification" in response.status.message


async def test_a_deadline_at_a_registry_that_answers_never_fails_open() -> None:
    # issue 9 (siblings of items 4 and 9): junk referrers that make a verification run out of
    # time at a registry that answers must not let a fail-open rule allow the model unverified
    gate = threading.Event()
    slow = FakeVerifier(gate=gate, gate_timeout=10, answering=True)
    slow.add("registry.local/lenient/m:v1")
    engine, _, _ = make(
        verifier=slow, timeout_seconds=1.0, deadline_margin_seconds=0.2, policy_budget_seconds=0.3
    )
    outcome = await engine.review(req(pod("registry.local/lenient/m:v1")))
    gate.set()
    await engine.aclose()
    assert not outcome.allowed
    assert "fails closed" in (build_response(outcome).response.status.message or "")  # type: ignore[union-attr]


async def test_a_large_object_is_walked_off_the_event_loop_with_the_same_decision() -> None:
    engine, _, _ = make()
    big = pod(UNSIGNED)
    big["metadata"]["annotations"] = {f"k{i}": "x" * 1000 for i in range(300)}  # ~300 KB
    small = await engine.review(req(pod(UNSIGNED)))
    large = await engine.review(req(big), large=True)
    await engine.aclose()
    assert (small.decision, small.allowed) == (large.decision, large.allowed) == ("denied", False)


def test_policy_results_counted_at_once_per_template_add_up_with_the_others() -> None:
    from guard.admission.metrics import AdmissionMetrics

    metrics = AdmissionMetrics()
    policies = ("gpu.fit", "carbon.budget")
    for _ in range(3):
        metrics.count_results(policies)
    metrics.count_results(("gpu.fit",))  # another library's set, after a reload
    metrics.decisions.count([("gpu.fit", "deny"), ("carbon.budget", "pass")])  # one by one
    for _ in range(2):
        metrics.count_results(policies, (("carbon.budget", "warn"), ("not.listed", "deny")))
    sample = metrics.registry.get_sample_value
    name = "guard_admission_policy_decisions_total"
    assert sample(name, {"policy": "gpu.fit", "result": "pass"}) == 6
    assert sample(name, {"policy": "carbon.budget", "result": "pass"}) == 4
    assert sample(name, {"policy": "carbon.budget", "result": "warn"}) == 2
    assert sample(name, {"policy": "gpu.fit", "result": "deny"}) == 1
    assert sample(name, {"policy": "not.listed", "result": "deny"}) is None  # only what was evaluated
    created = "guard_admission_policy_decisions_created"
    assert sample(created, {"policy": "carbon.budget", "result": "pass"}) is not None
    # a scrape changes nothing
    assert sample(name, {"policy": "gpu.fit", "result": "pass"}) == 6
    # past so many combinations, the new ones are counted one by one (no more kept)
    from guard.admission import metrics as metrics_module

    for i in range(metrics_module._BULK_KEPT + 10):
        metrics.count_results(policies, (("gpu.fit", f"deny-{i}"),))
    assert len(metrics.decisions._bulk) == metrics_module._BULK_KEPT
    assert sample(name, {"policy": "carbon.budget", "result": "pass"}) == 4 + metrics_module._BULK_KEPT + 10
    assert sample(name, {"policy": "gpu.fit", "result": f"deny-{metrics_module._BULK_KEPT + 9}"}) == 1
