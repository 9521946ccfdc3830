"""Both engines, the same decisions and the same messages: embedded regorus, and real OPA.

Real OPA is OPA's Go library in process (guard.testing.opa, PyPI opa-golib-python-bindings): every
sample of the library (and variants of them with other numbers and strings) gives the very same
violations, messages included, under both engines; the library's Rego tests pass on OPA too. The
OPA engine (guard.policy.opa, an HTTP client) is tested against guard.testing.opa.OpaServer, OPA's
Data API over HTTP answered by that same OPA evaluator.
"""

from __future__ import annotations

import json
import re
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from guard.config import parse_config
from guard.errors import PolicyEngineError
from guard.policy.decision import Decision, Enforcement
from guard.policy.embedded import EmbeddedEngine
from guard.policy.engine import make_engine
from guard.policy.examples import example_input
from guard.policy.library import PolicyLibrary, default_library_dir, load_library
from guard.policy.opa import OpaEngine
from guard.policy.settings import OpaEngineSettings, PolicySettings
from guard.testing.opa import OpaServer, evaluate_raw, new_opa, opa_version


def _deny(policy: str) -> Enforcement:
    return "deny"


@pytest.fixture(scope="module")
def engine() -> EmbeddedEngine:
    return EmbeddedEngine(load_library(), _deny)


def _samples() -> list[Path]:
    return sorted(default_library_dir().rglob("samples/*/*.json"))


def test_base_example_is_allowed_without_findings(engine: EmbeddedEngine) -> None:
    decision = engine.evaluate_sync(example_input())
    assert decision.allowed
    assert decision.violations == ()
    assert len(decision.policies) == len(engine.library.policies)


def test_rule_by_rule_equals_one_aggregated_query(engine: EmbeddedEngine) -> None:
    """The engine evaluates each deny / warn set on its own (faster with regorus); one query over
    every package (``aggregate_module``) must give the very same document on every sample."""
    from guard.policy.embedded import AGGREGATE_QUERY, aggregate_module, new_regorus_engine

    library = engine.library
    aggregate = new_regorus_engine(library.modules(), [("guard_engine.rego", aggregate_module(library))])
    for path in _samples():
        document = json.loads(path.read_text())
        aggregate.set_input_json(json.dumps(document))
        assert engine.evaluate_raw(document) == json.loads(aggregate.eval_rule_as_json(AGGREGATE_QUERY)), path


def test_denied_sample_gives_a_complete_violation(engine: EmbeddedEngine) -> None:
    document = json.loads(
        (default_library_dir() / "gpu/samples/denied/fit--model_exceeds_gpu_memory.json").read_text()
    )
    decision = engine.evaluate_sync(document)
    assert not decision.allowed
    [violation] = decision.denials
    assert violation.policy == "gpu.fit"
    assert violation.rule == "model_exceeds_gpu_memory"
    assert violation.severity == "high"
    assert violation.container == "server"
    assert violation.artifact and "llama-3-8b" in violation.artifact
    assert "NIST-AI-RMF MEASURE-2.6" in violation.controls
    assert "needs 131.4 GiB" in violation.message
    assert decision.message().startswith('[gpu.fit/model_exceeds_gpu_memory] container "server"')


@pytest.mark.parametrize(
    ("action", "allowed", "bucket"), [("warn", True, "warnings"), ("dryrun", True, "dryrun")]
)
def test_enforcement_actions(action: str, allowed: bool, bucket: str) -> None:
    settings = PolicySettings.model_validate({"enforcement": {"gpu": action}})
    engine = EmbeddedEngine(load_library(), settings.enforcement_for)
    document = json.loads(
        (default_library_dir() / "gpu/samples/denied/quota--gpu_per_container_exceeded.json").read_text()
    )
    decision = engine.evaluate_sync(document)
    assert decision.allowed is allowed
    found = getattr(decision, bucket)
    assert [v.rule for v in found] == ["gpu_per_container_exceeded"]
    assert found[0].source == "deny"


def test_warn_rules_warn_under_deny_enforcement(engine: EmbeddedEngine) -> None:
    document = example_input()
    document["workload"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = None
    decision = engine.evaluate_sync(document)
    assert decision.allowed
    assert [(v.rule, v.enforcement, v.source) for v in decision.warnings] == [
        ("privilege_escalation", "warn", "warn")
    ]


def test_each_thread_gets_its_own_regorus_engine(engine: EmbeddedEngine) -> None:
    document = example_input()
    seen: set[int] = set()
    lock = threading.Lock()
    together = threading.Barrier(3)  # three evaluations at once, on three threads

    def work(i: int) -> bool:
        together.wait(timeout=30)
        # a document of its own each: a decision the cache holds would skip the engine
        decision = engine.evaluate_sync({**document, "workload": {**document["workload"], "name": f"w{i}"}})
        with lock:
            seen.add(id(engine._engine()))  # this thread's regorus engine
        return decision.allowed

    with ThreadPoolExecutor(max_workers=3) as pool:
        assert all(pool.map(work, range(3)))
    assert len(seen) == 3


def test_runtime_error_is_a_policy_engine_error(tmp_path: Path) -> None:
    root = tmp_path / "lib"
    (root / "x").mkdir(parents=True)
    (root / "x/items.rego").write_text(
        "package guard.x.items\n\ndeny contains v if {\n\tsome i in input.items\n"
        '\tv := {"rule": "r", "message": sprintf("%v", [i]), "severity": "low"}\n}\n'
    )
    engine = EmbeddedEngine(load_library(root), _deny)
    assert engine.evaluate_sync({"items": [1]}).denials[0].message == "1"
    with pytest.raises(PolicyEngineError, match="embedded policy evaluation failed") as info:
        engine.evaluate_sync({"items": None})
    assert "Stack backtrace" not in str(info.value)


def test_malformed_violation_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "lib"
    (root / "x").mkdir(parents=True)
    (root / "x/bad.rego").write_text(
        'package guard.x.bad\n\ndeny contains {"rule": "r", "severity": "urgent"}\n'
    )
    engine = EmbeddedEngine(load_library(root), _deny)
    with pytest.raises(PolicyEngineError, match="needs string 'rule' and 'message'"):
        engine.evaluate_sync({})


def test_undefined_decision_rule_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "lib"
    (root / "x").mkdir(parents=True)
    (root / "x/odd.rego").write_text(
        'package guard.x.odd\n\ndeny := [{"rule": "r", "message": "m"}] if input.never\n'
    )
    engine = EmbeddedEngine(load_library(root), _deny)
    with pytest.raises(PolicyEngineError, match=r"deny of policy x\.odd gave no set of violations"):
        engine.evaluate_sync({})
    assert engine.evaluate_sync({"never": True}).denials[0].rule == "r"


# --- real OPA in process: the same violations, messages included ----------------------------


@pytest.fixture(scope="module")
def real_opa(library: PolicyLibrary) -> Iterator[Any]:
    opa = new_opa(library.modules())
    yield opa
    opa.close()


def _canonical(raw: dict[str, Any]) -> dict[str, dict[str, list[str]]]:
    """Violations as sorted JSON texts: a set has no order an engine must keep."""
    return {
        policy: {rule: sorted(json.dumps(v, sort_keys=True) for v in found) for rule, found in sets.items()}
        for policy, sets in raw.items()
    }


def _messages(raw: dict[str, Any]) -> list[str]:
    return sorted(v["message"] for sets in raw.values() for found in sets.values() for v in found)


def _walk(value: Any, change: Callable[[Any], Any]) -> Any:
    if isinstance(value, dict):
        return {k: _walk(v, change) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, change) for v in value]
    return change(value)


def _numbers(change: Callable[[float], float]) -> Callable[[Any], Any]:
    def each(value: Any) -> Any:
        is_number = isinstance(value, int | float) and not isinstance(value, bool)
        return change(value) if is_number else value

    return each


# Variants of every sample: what the samples do not show but inputs hold (fractional GPU counts,
# integral floats from JSON "2.0", huge and tiny figures, characters the engines escape).
VARIANTS: dict[str, Callable[[Any], Any]] = {
    "as-floats": _numbers(float),
    "plus-a-quarter": _numbers(lambda x: x + 0.25),
    "huge": _numbers(lambda x: x * 123456789.5),
    "tiny": _numbers(lambda x: x * 1.5e-7),
    "odd-strings": lambda v: v + ' "\u00e9\t<\u2028\u00a0\x7f\x01' if isinstance(v, str) else v,
}


def test_the_opa_tested_against_is_the_documented_one() -> None:
    """README names the OPA version the library is tested against: keep it true when the pin of
    opa-golib-python-bindings (Makefile) moves."""
    assert opa_version() == "v1.20.2"


def test_every_sample_gives_the_same_violations_and_messages_on_opa(
    real_opa: Any, engine: EmbeddedEngine
) -> None:
    messages = 0
    for path in _samples():
        document = json.loads(path.read_text())
        ours, theirs = engine.evaluate_raw(document), evaluate_raw(real_opa, document)
        assert _canonical(theirs) == _canonical(ours), path.name
        found = _messages(theirs)
        assert not [m for m in found if "%!" in m], path.name  # Go's fmt: a verb that did not fit
        messages += len(found)
    assert messages >= 60  # the samples' denials and warnings, all compared


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_sample_variants_give_the_same_violations_and_messages_on_opa(
    variant: str, real_opa: Any, engine: EmbeddedEngine
) -> None:
    change = VARIANTS[variant]
    for path in _samples():
        document = _walk(json.loads(path.read_text()), change)
        ours, theirs = engine.evaluate_raw(document), evaluate_raw(real_opa, document)
        assert _canonical(theirs) == _canonical(ours), f"{variant} {path.name}"


def test_the_garbled_messages_are_fixed(real_opa: Any) -> None:
    """OPA's sprintf("%.1f", [700]) is "%!f(int64=700)": these messages read right on OPA now."""
    root = default_library_dir()
    carbon = json.loads((root / "carbon/samples/denied/budget--carbon_budget_exceeded.json").read_text())
    [denial] = evaluate_raw(real_opa, carbon)["carbon.budget"]["deny"]
    assert "x 700 W x 2000.0 h = 11200.0 kWh x 475 g/kWh = 5320.0 kg CO2e" in denial["message"]
    assert "has 4000.0 kg CO2e left" in denial["message"]
    fit = json.loads((root / "gpu/samples/denied/fit--model_exceeds_gpu_memory--mig.json").read_text())
    [denial] = evaluate_raw(real_opa, fit)["gpu.fit"]["deny"]
    assert "needs 15.0 GiB for 8030261248 parameters in bf16; its GPUs give 10.0 GiB" in denial["message"]


def test_the_library_rego_tests_pass_on_opa(library: PolicyLibrary) -> None:
    """What `opa test policies/` checks: every test_* rule is true under OPA too (one query per
    test package: its document holds the rules that are true, an undefined test is absent)."""
    with_tests = new_opa(library.modules(with_tests=True))
    ran, failed = 0, []
    try:
        for module in library.tests:
            document = with_tests.eval_document(module.package)
            for rule in re.findall(r"^(test_[A-Za-z0-9_]+)\b", module.text, re.MULTILINE):
                ran += 1
                if document.get(rule) is not True:
                    failed.append(f"{module.package}.{rule}: {document.get(rule, 'undefined')}")
    finally:
        with_tests.close()
    assert ran >= 130
    assert failed == []


def test_a_decimal_tie_in_the_carbon_budget_decides_the_same(real_opa: Any, engine: EmbeddedEngine) -> None:
    document = json.loads(
        (default_library_dir() / "carbon/samples/denied/budget--carbon_budget_exceeded.json").read_text()
    )
    document["workload"]["gpu"]["total"] = 1
    document["workload"]["durationHours"] = 1
    document["cluster"]["gridIntensityGPerKWh"] = 1000
    for product in document["cluster"]["gpuProducts"].values():
        product["boardPowerW"] = 200  # 1 GPU x 200 W x 1 h = 0.2 kWh x 1000 g/kWh = 0.2 kg
    document["tenant"]["carbon"] = {"budgetKgCO2e": 0.3, "usedKgCO2e": 0.1}
    ours = engine.evaluate_raw(document)["carbon.budget"]
    theirs = evaluate_raw(real_opa, document)["carbon.budget"]
    assert _canonical({"c": theirs}) == _canonical({"c": ours})


# --- the OPA engine, against OPA's Data API answered by OPA's evaluator --------------------


@pytest.fixture(scope="module")
def opa(library: PolicyLibrary) -> Iterator[OpaServer]:
    with OpaServer(library.modules()) as server:
        yield server


def _opa_engine(url: str, library: PolicyLibrary, **settings: object) -> OpaEngine:
    config = OpaEngineSettings.model_validate({"kind": "opa", "url": url, **settings})
    return OpaEngine(config, _deny, expected=[p.name for p in library.policies])


async def test_opa_engine_gives_the_same_decisions(
    opa: OpaServer, engine: EmbeddedEngine, library: PolicyLibrary
) -> None:
    remote = _opa_engine(opa.url, library)
    try:
        for path in _samples():
            document = json.loads(path.read_text())
            local: Decision = engine.evaluate_sync(document)
            assert (await remote.evaluate(document)).to_json() == local.to_json(), path.name
    finally:
        await remote.aclose()
    assert opa.requests and "input" in opa.requests[-1]


async def test_opa_unreachable(library: PolicyLibrary) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    remote = _opa_engine(f"http://127.0.0.1:{port}", library)
    try:
        with pytest.raises(
            PolicyEngineError, match=rf"OPA at http://127.0.0.1:{port} \(data.guard\): unreachable"
        ):
            await remote.evaluate(example_input())
    finally:
        await remote.aclose()


async def test_opa_timeout(library: PolicyLibrary) -> None:
    with OpaServer(library.modules(), hang=True) as server:
        remote = _opa_engine(server.url, library, timeout_seconds=0.2)
        try:
            with pytest.raises(PolicyEngineError, match=r"no answer within 0.2s"):
                await remote.evaluate(example_input())
        finally:
            await remote.aclose()


async def test_opa_http_error(library: PolicyLibrary) -> None:
    with OpaServer(library.modules(), status=500) as server:
        remote = _opa_engine(server.url, library)
        try:
            with pytest.raises(PolicyEngineError, match="HTTP 500"):
                await remote.evaluate(example_input())
        finally:
            await remote.aclose()


async def test_opa_without_the_bundle(opa: OpaServer, library: PolicyLibrary) -> None:
    remote = _opa_engine(opa.url, library, package_root="nothing.here")
    try:
        with pytest.raises(
            PolicyEngineError, match=r"no document at data.nothing.here: is the policy bundle loaded\?"
        ):
            await remote.evaluate(example_input())
    finally:
        await remote.aclose()


async def test_opa_with_policies_missing(library: PolicyLibrary) -> None:
    partial = [m for m in library.modules() if "tenancy" not in str(m.path)]
    with OpaServer(partial) as server:
        remote = _opa_engine(server.url, library)
        try:
            with pytest.raises(PolicyEngineError, match=r"lacks policies of the library: tenancy\.isolation"):
                await remote.evaluate(example_input())
        finally:
            await remote.aclose()


async def test_make_engine_follows_config(opa: OpaServer) -> None:
    embedded = make_engine(parse_config({}).policy)
    assert isinstance(embedded, EmbeddedEngine)
    remote = make_engine(parse_config({"policy": {"engine": {"kind": "opa", "url": opa.url}}}).policy)
    assert isinstance(remote, OpaEngine)
    try:
        assert (await remote.evaluate(example_input())).allowed
    finally:
        await remote.aclose()


async def test_opa_over_verified_tls(tmp_path: Path, library: PolicyLibrary) -> None:
    import trustme

    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    with OpaServer(library.modules(), ssl_context=server_context) as server:
        assert server.url.startswith("https://localhost:")
        trusted = _opa_engine(server.url, library, ca_file=str(ca_file))
        untrusted = _opa_engine(server.url, library)
        try:
            assert (await trusted.evaluate(example_input())).allowed
            with pytest.raises(PolicyEngineError, match="TLS certificate is not trusted"):
                await untrusted.evaluate(example_input())
        finally:
            await trusted.aclose()
            await untrusted.aclose()


async def test_opa_evaluation_error_is_a_policy_engine_error(tmp_path: Path) -> None:
    """A real evaluation error of OPA (two values for one complete rule) is its HTTP 500."""
    root = tmp_path / "lib"
    (root / "x").mkdir(parents=True)
    (root / "x/odd.rego").write_text(
        'package guard.x.odd\n\nm := "a" if input.a\n\nm := "b" if input.b\n\n'
        'deny contains {"rule": "r", "message": m, "severity": "low"}\n'
    )
    library = load_library(root)
    with OpaServer(library.modules()) as server:
        remote = _opa_engine(server.url, library)
        try:
            assert (await remote.evaluate({"a": True})).denials[0].message == "a"
            with pytest.raises(PolicyEngineError, match="HTTP 500"):
                await remote.evaluate({"a": True, "b": True})
        finally:
            await remote.aclose()
