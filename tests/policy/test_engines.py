"""Both engines, the same decisions: embedded regorus, and the OPA engine against a Data API server.

The OPA path is tested against guard.testing.opa.FakeOpaServer (OPA's Data API over HTTP, answered
by regorus), not against a real OPA: no opa binary can be installed here.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

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
from guard.testing.opa import FakeOpaServer


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

    def work(_: int) -> bool:
        decision = engine.evaluate_sync(document)
        with lock:
            seen.add(id(engine._local.engine))
        return decision.allowed

    with ThreadPoolExecutor(max_workers=3) as pool:
        assert all(pool.map(work, range(12)))
    assert len(seen) >= 2


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


# --- the OPA engine, against a Data API server backed by regorus ------------------------------


@pytest.fixture(scope="module")
def opa(library: PolicyLibrary) -> Iterator[FakeOpaServer]:
    with FakeOpaServer(library.modules()) as server:
        yield server


def _opa_engine(url: str, library: PolicyLibrary, **settings: object) -> OpaEngine:
    config = OpaEngineSettings.model_validate({"kind": "opa", "url": url, **settings})
    return OpaEngine(config, _deny, expected=[p.name for p in library.policies])


async def test_opa_engine_gives_the_same_decisions(
    opa: FakeOpaServer, engine: EmbeddedEngine, library: PolicyLibrary
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
    with FakeOpaServer(library.modules(), hang=True) as server:
        remote = _opa_engine(server.url, library, timeout_seconds=0.2)
        try:
            with pytest.raises(PolicyEngineError, match=r"no answer within 0.2s"):
                await remote.evaluate(example_input())
        finally:
            await remote.aclose()


async def test_opa_http_error(library: PolicyLibrary) -> None:
    with FakeOpaServer(library.modules(), status=500) as server:
        remote = _opa_engine(server.url, library)
        try:
            with pytest.raises(PolicyEngineError, match="HTTP 500"):
                await remote.evaluate(example_input())
        finally:
            await remote.aclose()


async def test_opa_without_the_bundle(opa: FakeOpaServer, library: PolicyLibrary) -> None:
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
    with FakeOpaServer(partial) as server:
        remote = _opa_engine(server.url, library)
        try:
            with pytest.raises(PolicyEngineError, match=r"lacks policies of the library: tenancy\.isolation"):
                await remote.evaluate(example_input())
        finally:
            await remote.aclose()


async def test_make_engine_follows_config(opa: FakeOpaServer) -> None:
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
    with FakeOpaServer(library.modules(), ssl_context=server_context) as server:
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
