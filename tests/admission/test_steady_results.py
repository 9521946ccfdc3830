"""The policy result of a template's pods, kept once the engine says it holds for every pod of
the template (``LibraryPolicyEvaluator._steady_key``, ``Decision.steady``): whatever is answered
from it must be what evaluating would answer."""

from __future__ import annotations

import copy
import json
import random
from typing import Any

import pytest

from guard.admission import policies as policies_module
from guard.admission.kinds import KindTable
from guard.admission.outcome import ArtifactVerdict
from guard.admission.policies import LibraryPolicyEvaluator
from guard.admission.ports import PolicyResult, RuleMatch, VerifiedArtifact
from guard.admission.references import PER_POD_METADATA, extract_references, template_digest
from guard.admission.review import AdmissionRequest, AdmissionReview
from guard.config import parse_config
from guard.policy.cache import split_volatile
from guard.policy.embedded import EmbeddedEngine
from guard.policy.examples import CONFIG, FACTS, IMAGE, MODEL, POOL
from guard.policy.library import load_library
from guard.signing.types import SignerInfo
from guard.testing.admission import admission_review

_RULES = {MODEL: "team-a-models", IMAGE: "platform-images"}


def _config(carbon: bool = False) -> Any:
    document = copy.deepcopy(CONFIG)
    if not carbon:  # team-a's carbon budget makes its inputs read the usage: never kept
        del document["tenants"][0]["carbon"]
    return parse_config(document)


def _evaluator(carbon: bool = False, *, kept: bool = True, cache_size: int = 1024) -> LibraryPolicyEvaluator:
    config = _config(carbon)
    engine = EmbeddedEngine(load_library(), config.policy.enforcement_for, cache_size=cache_size)
    evaluator = LibraryPolicyEvaluator(config, engine, KindTable())
    if not kept:
        evaluator._steady_key = lambda *_args: None  # type: ignore[method-assign]
    return evaluator


def _deployment_pod(name: str, *, gpus: int = 1, namespace: str = "team-a") -> dict[str, Any]:
    """A pod of a Deployment's ReplicaSet, as the API server sends it to a validating webhook:
    its own name, uid, creation time and managed fields."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "generateName": "llm-7d9f8c6b5-",
            "namespace": namespace,
            "uid": f"uid-{name}",
            "creationTimestamp": f"2026-12-07T01:{len(name) % 60:02d}:00Z",
            "resourceVersion": str(len(name)),
            "managedFields": [
                {"manager": "kube-controller-manager", "time": f"2026-12-07T01:00:{len(name) % 60:02d}Z"}
            ],
            "labels": {"app": "llm", "pod-template-hash": "7d9f8c6b5"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "llm-7d9f8c6b5"}],
        },
        "spec": {
            "containers": [
                {
                    "name": "server",
                    "image": IMAGE,
                    "resources": {
                        "limits": {"nvidia.com/gpu": str(gpus)},
                        "requests": {"nvidia.com/gpu": str(gpus)},
                    },
                    "securityContext": {"allowPrivilegeEscalation": False},
                    "volumeMounts": [{"name": "model", "mountPath": "/models"}],
                }
            ],
            "nodeSelector": {POOL: "team-a-h100"},
            "volumes": [{"name": "model", "image": {"reference": MODEL}}],
        },
    }


_SIGNED = {
    MODEL: VerifiedArtifact(MODEL, "sha256:" + "a" * 64, (SignerInfo("keyless", "ci", "x"),), dict(FACTS)),
    IMAGE: VerifiedArtifact(IMAGE, "sha256:" + "b" * 64, (SignerInfo("key", "sha256:ab"),), {}),
}


def _verdicts(obj: dict[str, Any], *, failed: frozenset[str] = frozenset()) -> list[ArtifactVerdict]:
    """What the verifier would say of ``obj``'s references: the two known ones verified (the same
    verified artifacts every time, as the cache gives them) unless ``failed``, the others
    unmatched."""
    out = []
    for ref in extract_references(obj, KindTable().lookup("", "Pod") or _no_kind(), ()):
        signed = _SIGNED.get(ref.reference)
        if signed is None:
            out.append(
                ArtifactVerdict(ref=ref, match=RuleMatch(None, "h"), status="unmatched", effect="pass")
            )
            continue
        outcome: dict[str, Any] = (
            {"status": "failed", "effect": "deny", "message": "not signed", "reason": "no signature"}
            if ref.reference in failed
            else {"status": "verified", "effect": "pass", "digest": signed.digest, "artifact": signed}
        )
        out.append(ArtifactVerdict(ref=ref, match=RuleMatch(_RULES[ref.reference], "h"), **outcome))
    return out


def _no_kind() -> Any:
    raise AssertionError("the Pod kind is built in")


def _request(obj: dict[str, Any], **changes: Any) -> AdmissionRequest:
    review = admission_review(obj)
    review["request"].update(changes)
    return AdmissionReview.model_validate(review).request


async def _evaluate(evaluator: LibraryPolicyEvaluator, obj: dict[str, Any], **changes: Any) -> PolicyResult:
    """What the admission pipeline asks: the object's template digest given."""
    failed = changes.pop("failed", frozenset())
    request = _request(obj, **changes)
    return await evaluator.evaluate(
        request, _verdicts(obj, failed=failed), template=template_digest(request.object)
    )


def _counted(evaluator: LibraryPolicyEvaluator, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The inputs the evaluator's engine is given from now on."""
    given: list[dict[str, Any]] = []
    evaluate = evaluator._engine.evaluate

    async def counted(document: Any) -> Any:
        given.append(copy.deepcopy(dict(document)))
        return await evaluate(document)

    monkeypatch.setattr(evaluator._engine, "evaluate", counted)
    return given


async def test_a_template_s_pods_are_answered_from_its_result_once_it_holds_for_all(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    evaluator, fresh = _evaluator(), _evaluator(kept=False, cache_size=0)
    given = _counted(evaluator, monkeypatch)
    results = []
    for i in range(5):
        pod = _deployment_pod(f"llm-7d9f8c6b5-{i:05d}")
        result = await _evaluate(evaluator, pod, uid=f"request-{i}")
        assert result == await _evaluate(fresh, pod, uid=f"request-{i}")
        results.append(result)
    assert len(given) == 1  # the first pod's input only: the others answered from its result
    assert results[0].policies and all(r == results[0] for r in results)
    # a change the inputs are made of is evaluated: another image, more GPUs, another user
    await _evaluate(evaluator, _deployment_pod("llm-7d9f8c6b5-zzzzz", gpus=2))
    await _evaluate(evaluator, _deployment_pod("llm-7d9f8c6b5-zzzzz"), userInfo={"username": "bob"})
    assert len(given) == 3


async def test_a_result_naming_the_pod_is_evaluated_for_every_pod(monkeypatch: pytest.MonkeyPatch) -> None:
    evaluator = _evaluator()
    given = _counted(evaluator, monkeypatch)
    for i in range(3):
        name = f"llm-7d9f8c6b5-{i:05d}"
        result = await _evaluate(evaluator, _deployment_pod(name, gpus=99))  # over team-a's quota
        assert any(name in v.message for v in result.violations), result
        assert not any(
            f"llm-7d9f8c6b5-{j:05d}" in v.message for v in result.violations for j in range(3) if j != i
        )
    assert len(given) == 3


async def test_nothing_is_kept_for_a_carbon_budget_a_name_that_is_no_string_or_a_refused_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    budgeted = _evaluator(carbon=True)
    given = _counted(budgeted, monkeypatch)
    for i in range(3):  # team-a's carbon budget: its inputs read the usage published now
        await _evaluate(budgeted, _deployment_pod(f"llm-7d9f8c6b5-{i:05d}"))
    assert len(given) == 3 and not budgeted._steady
    evaluator = _evaluator()
    given = _counted(evaluator, monkeypatch)
    pod = _deployment_pod("llm-7d9f8c6b5-00000")
    await _evaluate(evaluator, pod, name=None)
    await _evaluate(evaluator, pod, name=None)
    assert len(given) == 2 and not evaluator._steady
    # without the template digest (the pipeline gives none for a large object): evaluated
    request = _request(pod, uid="no-template")
    await evaluator.evaluate(request, _verdicts(pod))
    await evaluator.evaluate(request, _verdicts(pod))
    assert len(given) == 4 and not evaluator._steady
    await _evaluate(evaluator, pod)  # kept from now on
    for odd in ("NaN", "Infinity-pod"):  # a name the engine's input check refuses is sent, as before
        await _evaluate(evaluator, _deployment_pod(odd), name=odd)
    assert len(given) == 7
    # a name that is no UTF-8 (a lone surrogate) fails as it does without kept results
    fresh = _evaluator(kept=False, cache_size=0)
    for changes in ({"name": "\ud800"}, {"uid": "\udfff"}):
        assert await _answer(evaluator, pod, changes) == await _answer(fresh, pod, changes)


async def test_what_the_api_server_sets_for_each_pod_reaches_no_input_but_the_volatile_fields(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What the key leaves out (``PER_POD_METADATA``) is in no input, but for the name in the
    volatile fields: the inputs of the pods of a template differ in those fields only."""
    evaluator = _evaluator(kept=False, cache_size=0)
    given = _counted(evaluator, monkeypatch)
    base = _deployment_pod("llm-7d9f8c6b5-aaaaa")
    other = _deployment_pod("llm-7d9f8c6b5-bbbbbbbbb")
    for field in PER_POD_METADATA:
        assert base["metadata"].get(field) != other["metadata"].get(field), field
    await _evaluate(evaluator, base, uid="one")
    await _evaluate(evaluator, other, uid="two")
    first, second = (json.dumps(split_volatile(d)[0], sort_keys=True) for d in given)
    assert first == second
    assert "uid-llm" not in first and "2026-12-07" not in first and "kube-controller-manager" not in first


def _mutated(obj: dict[str, Any], rng: random.Random) -> tuple[dict[str, Any], dict[str, Any]]:
    out = copy.deepcopy(obj)
    meta = out["metadata"]
    changes: dict[str, Any] = {"uid": f"request-{rng.randrange(10**6)}"}
    for _ in range(rng.randrange(1, 4)):
        choice = rng.randrange(11)
        if choice == 0:
            meta["name"] = rng.choice(["llm-7d9f8c6b5-00001", "llm-7d9f8c6b5-00002", "x"])
        elif choice == 1:
            meta["uid"], meta["creationTimestamp"] = f"u{rng.randrange(9)}", "2026-12-07T02:00:00Z"
        elif choice == 2:
            meta["labels"]["tier"] = rng.choice(["a", "b"])
        elif choice == 3:
            out["spec"]["containers"][0]["resources"] = {"limits": {"nvidia.com/gpu": str(rng.randrange(12))}}
        elif choice == 4:
            meta["namespace"] = rng.choice(["team-a", "team-b", "default", "ml-sandbox"])
        elif choice == 5:
            changes["namespace"] = rng.choice(["team-a", "team-b", None])
        elif choice == 6:
            changes["userInfo"] = {"username": rng.choice(["alice", "bob"]), "groups": ["g"]}
        elif choice == 7:
            changes["dryRun"] = rng.choice([True, False])
        elif choice == 8:
            changes["failed"] = frozenset({rng.choice([MODEL, IMAGE])})
        elif choice == 9:
            out["spec"]["containers"][0]["securityContext"] = {
                "allowPrivilegeEscalation": rng.choice([True, False])
            }
        else:
            changes["name"] = rng.choice([None, "llm-7d9f8c6b5-00003", meta.get("name")])
    return out, changes


async def _answer(evaluator: LibraryPolicyEvaluator, obj: dict[str, Any], changes: dict[str, Any]) -> Any:
    try:
        return await _evaluate(evaluator, obj, **dict(changes))
    except Exception as err:  # the same error, or the same result
        return (type(err).__name__, str(err))


async def test_kept_results_equal_evaluated_ones_over_random_changes() -> None:
    for carbon in (False, True):
        evaluator, fresh = _evaluator(carbon), _evaluator(carbon, kept=False, cache_size=0)
        rng = random.Random(11)
        bases = [_deployment_pod("llm-7d9f8c6b5-00000"), _deployment_pod("llm-7d9f8c6b5-00000", gpus=3)]
        for _ in range(150):
            obj, changes = _mutated(rng.choice(bases), rng)
            expected = await _answer(fresh, obj, changes)
            assert isinstance(expected, PolicyResult), expected
            assert await _answer(evaluator, obj, changes) == expected, changes
        if not carbon:
            assert evaluator._steady  # the comparison went through kept results too


async def test_kept_results_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(policies_module, "_STEADY_KEPT", 5)
    evaluator = _evaluator()
    for i in range(12):
        pod = _deployment_pod("llm-7d9f8c6b5-00000")
        pod["metadata"]["labels"]["n"] = str(i)
        await _evaluate(evaluator, pod)
    assert 0 < len(evaluator._steady) <= 5
