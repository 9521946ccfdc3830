"""guard's config: authorities, rules, tenants, cluster facts, policy settings."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from guard.config import CertificateAuthority, KeyAuthority, KeylessAuthority, load_config, parse_config
from guard.errors import ConfigError
from guard.policy.examples import CONFIG
from guard.policy.settings import EmbeddedEngineSettings, OpaEngineSettings


def _config(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(CONFIG)
    data.update(changes)
    return data


def test_example_config_loads_from_yaml(tmp_path: Path) -> None:
    path = tmp_path / "guard.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    config = load_config(path)
    assert [t.name for t in config.tenants] == ["team-a", "team-b"]
    assert config.cluster.gpu_products["NVIDIA-H100-80GB-HBM3"].memory_gib == 80
    assert config.cluster.mig_profiles["3g.40gb"] == 40
    assert isinstance(config.policy.engine, EmbeddedEngineSettings)
    assert config.unmatched_artifacts == "deny"


def test_defaults_are_secure() -> None:
    config = parse_config({})
    assert config.unmatched_artifacts == "deny"
    assert config.policy.default_enforcement == "deny"
    assert config.policy.require_sbom is True
    assert config.policy.mutable_tags == "deny"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"rules": [{"name": "r", "artifacts": ["x/**"], "authorities": ["nope"]}]},
            "rules.0.authorities.0: unknown authority 'nope'",
        ),
        (
            {
                "authorities": {
                    "k": {"kind": "keyless", "issuer": "https://i", "identity": "a", "identityRegex": "b"}
                }
            },
            "authorities.k.keyless: Value error, give exactly one of identity or identityRegex",
        ),
        ({"authorities": {"k": {"kind": "pgp", "key": "x"}}}, "authorities.k: Input tag 'pgp' found"),
        (
            {"authorities": {"k": {"kind": "keyless", "issuer": "https://i", "identityRegex": "("}}},
            "authorities.k.keyless.identityRegex: Value error, not a valid regular expression",
        ),
        (
            {"tenants": [{"name": "a", "namespaces": ["a"], "gpu": {"maxPerPod": -1}}]},
            "tenants.0.gpu.maxPerPod: Input should be greater than or equal to 0",
        ),
        (
            {"tenants": [{"name": "a", "namespaces": ["a"], "gpu": {"nodePools": ["p"]}}]},
            "tenants.0.gpu.nodePools.0: unknown node pool 'p'",
        ),
        (
            {"tenants": [{"name": "a", "namespaces": ["a"]}, {"name": "a", "namespaces": ["b"]}]},
            "tenants.1.name: tenant 'a' is defined more than once",
        ),
        ({"policy": {"enforcement": {"GPU": "deny"}}}, "policy.enforcement: Value error"),
        (
            {"policy": {"enforcement": {"gpu.fit": "block"}}},
            "policy.enforcement.gpu.fit: Input should be 'deny', 'warn' or 'dryrun'",
        ),
        (
            {"policy": {"engine": {"kind": "opa", "url": "opa:8181"}}},
            "policy.engine.opa.url: String should match pattern",
        ),
        (
            {"policy": {"engine": {"kind": "opa", "url": "http://opa:8181", "timeoutSeconds": 0}}},
            "policy.engine.opa.timeoutSeconds: Input should be greater than 0",
        ),
        (
            {"cluster": {"nodePools": [{"name": "p", "labels": {"a": "b"}, "tenant": "ghost"}]}},
            "cluster.nodePools.0.tenant: unknown tenant 'ghost'",
        ),
        ({"unmatchedArtifacts": "ignore"}, "unmatchedArtifacts: Input should be 'deny', 'warn' or 'allow'"),
        (
            {"rules": [{"name": "r", "artifacts": [], "authorities": ["a"]}]},
            "rules.0.artifacts: Tuple should have at least 1 item",
        ),
        ({"tenats": []}, "tenats: Extra inputs are not permitted"),
    ],
)
def test_invalid_config_names_the_field(data: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(data, "guard.yaml")
    assert f"guard.yaml: {expected}" in str(info.value)


def test_invalid_yaml_file_names_path_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("cluster:\n  gridIntensityGPerKwh: -3\n")
    with pytest.raises(
        ConfigError, match=r"bad.yaml: cluster.gridIntensityGPerKwh: Input should be greater than 0"
    ):
        load_config(path)


def test_duplicate_rule_names_are_refused() -> None:
    key = {"kind": "key", "key": "k.pem"}
    rules = [{"name": "models", "artifacts": [glob], "authorities": ["k"]} for glob in ("a/**", "b/**")]
    with pytest.raises(ConfigError, match=r"g.yaml: rules.1.name: rule 'models' is defined more than once"):
        parse_config({"authorities": {"k": key}, "rules": rules}, "g.yaml")


def test_a_key_given_twice_is_refused_not_silently_replaced(tmp_path: Path) -> None:
    path = tmp_path / "guard.yaml"
    path.write_text("policy: {defaultEnforcement: deny}\nrules: []\npolicy: {defaultEnforcement: warn}\n")
    with pytest.raises(ConfigError, match=r"found the key 'policy' twice") as info:
        load_config(path)
    assert "line 3" in str(info.value)
    # YAML merge keys may still be overridden
    path.write_text("cluster: {<<: {gridIntensityGPerKwh: 100}, gridIntensityGPerKwh: 200}\n")
    assert load_config(path).cluster.grid_intensity_g_per_kwh == 200


def test_binary_config_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "guard.yaml"
    path.write_bytes(b"\xee\xff\x00binary")
    with pytest.raises(ConfigError, match=r"guard.yaml: expected UTF-8 YAML, found binary data"):
        load_config(path)


def test_opa_engine_settings() -> None:
    config = parse_config({"policy": {"engine": {"kind": "opa", "url": "https://opa.guard.svc:8181"}}})
    assert isinstance(config.policy.engine, OpaEngineSettings)
    assert config.policy.engine.timeout_seconds == 1.0


def test_enforcement_most_specific_key_wins() -> None:
    settings = parse_config(
        {"policy": {"defaultEnforcement": "warn", "enforcement": {"gpu": "dryrun", "gpu.fit": "deny"}}}
    ).policy
    assert settings.enforcement_for("gpu.fit") == "deny"
    assert settings.enforcement_for("gpu.quota") == "dryrun"
    assert settings.enforcement_for("tenancy.isolation") == "warn"


def test_match_rule_most_specific_wins() -> None:
    config = parse_config(
        _config(
            rules=[
                {"name": "all", "artifacts": ["registry.example.com/**"], "authorities": ["vendor"]},
                {
                    "name": "team-a",
                    "artifacts": ["registry.example.com/team-a/**"],
                    "authorities": ["team-a-ci"],
                },
                {
                    "name": "team-a-prod",
                    "artifacts": ["registry.example.com/team-a/**"],
                    "namespaces": ["team-a"],
                    "authorities": ["team-a-ci"],
                },
                {
                    "name": "team-a-ns-glob",
                    "artifacts": ["registry.example.com/team-a/**"],
                    "namespaces": ["team-a-*"],
                    "authorities": ["team-a-ci"],
                },
                {
                    "name": "pinned",
                    "artifacts": ["registry.example.com/team-a/llama:v1"],
                    "authorities": ["vendor"],
                },
                {"name": "hub", "artifacts": ["docker.io/library/*"], "authorities": ["vendor"]},
            ]
        )
    )

    def name(ref: str, ns: str) -> str | None:
        rule = config.match_rule(ref, ns)
        return rule.name if rule else None

    assert name("registry.example.com/other/m@sha256:" + "a" * 64, "x") == "all"
    assert name("registry.example.com/team-a/m:1", "x") == "team-a"
    assert name("registry.example.com/team-a/m:1", "team-a") == "team-a-prod"
    assert name("registry.example.com/team-a/m:1", "team-a-dev") == "team-a-ns-glob"
    assert name("registry.example.com/team-a/llama:v1", "team-a") == "pinned"
    assert name("nginx", "x") == "hub"
    assert name("ghcr.io/x/y:1", "x") is None
    # "*" stays within one path segment
    assert name("docker.io/library/a/b", "x") is None


def test_match_rule_sees_the_registry_the_runtime_pulls_from() -> None:
    """Registry host names are case-insensitive and index.docker.io is docker.io to the runtime:
    spelling the host differently must not move a reference to another rule (or to none)."""
    config = parse_config(
        _config(
            rules=[
                {"name": "all", "artifacts": ["**"], "authorities": ["vendor"]},
                {
                    "name": "team-a",
                    "artifacts": ["registry.example.com/team-a/**"],
                    "authorities": ["team-a-ci"],
                },
                {"name": "hub", "artifacts": ["docker.io/library/*"], "authorities": ["team-a-ci"]},
            ]
        )
    )

    def name(ref: str) -> str | None:
        rule = config.match_rule(ref, "x")
        return rule.name if rule else None

    assert name("registry.example.com/team-a/m:1") == "team-a"
    assert name("Registry.Example.COM/team-a/m:1") == "team-a"
    assert name("oci://REGISTRY.example.com/team-a/m:1") == "team-a"
    assert name("index.docker.io/library/nginx:1") == "hub"
    assert name("Docker.IO/nginx") == "hub"


def test_tenant_for_namespace() -> None:
    config = parse_config(_config())
    assert config.tenant_for("team-a").name == "team-a"  # type: ignore[union-attr]
    assert config.tenant_for("team-a-dev").name == "team-a"  # type: ignore[union-attr]
    assert config.tenant_for("team-b").name == "team-b"  # type: ignore[union-attr]
    assert config.tenant_for("kube-system") is None


def test_authorities_map_to_signing_verifiers(tmp_path: Path) -> None:
    from guard.signing import KeyVerifier, SigstoreVerifier
    from guard.signing.keys import generate_keypair

    pair = generate_keypair(tmp_path)
    config = parse_config(
        {
            "authorities": {
                "key": {"kind": "key", "key": str(pair.public_key)},
                "ci": {
                    "kind": "keyless",
                    "issuer": "https://token.actions.githubusercontent.com",
                    "identityRegex": r"https://github\.com/example/.+",
                },
            }
        }
    )
    key_verifier = config.authorities["key"].to_verifier()
    assert isinstance(key_verifier, KeyVerifier)
    assert key_verifier.method == "key"
    keyless = config.authorities["ci"]
    assert isinstance(keyless, KeylessAuthority)
    assert isinstance(keyless.to_verifier(), SigstoreVerifier)


def test_certificate_authority_with_missing_roots_fails_clearly(tmp_path: Path) -> None:
    from guard.errors import GuardError

    config = parse_config(
        {"authorities": {"ca": {"kind": "certificate", "roots": str(tmp_path / "none.pem")}}}
    )
    with pytest.raises(GuardError, match=r"none\.pem"):
        config.authorities["ca"].to_verifier()


def test_relative_paths_are_relative_to_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf_dir = tmp_path / "etc" / "guard"
    conf_dir.mkdir(parents=True)
    (conf_dir / "guard.yaml").write_text(
        yaml.safe_dump(
            {
                "authorities": {
                    "release": {"kind": "key", "key": "keys/release.pub"},
                    "roots": {"kind": "certificate", "roots": "/abs/roots.pem"},
                },
                "policy": {"directory": "policies"},
                "admission": {"registry": {"dockerConfig": "../docker/config.json"}},
            }
        )
    )
    monkeypatch.chdir(tmp_path)  # somewhere else: the working directory must not matter
    config = load_config(conf_dir / "guard.yaml")
    release, roots = config.authorities["release"], config.authorities["roots"]
    assert isinstance(release, KeyAuthority) and isinstance(roots, CertificateAuthority)
    assert release.key == conf_dir / "keys/release.pub"
    assert roots.roots == Path("/abs/roots.pem")  # absolute: kept
    assert config.policy.directory == conf_dir / "policies"
    assert config.admission.registry.docker_config == conf_dir / "../docker/config.json"
    # A document validated without a file keeps its relative paths as given.
    bare = parse_config({"authorities": {"k": {"kind": "key", "key": "k.pub"}}}).authorities["k"]
    assert isinstance(bare, KeyAuthority) and bare.key == Path("k.pub")
