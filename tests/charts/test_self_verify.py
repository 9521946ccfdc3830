"""The chart's selfVerify values: the rendered config trusts guard's own image repository with the
release key (a trustFiles entry) or a keyless identity, parses as guard's config, and the rule
matches guard's image by digest; inconsistent values fail the render with the reason."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from guard.config import parse_config

helm = pytest.importorskip("helm_python", reason="helm-python-sdk (embedded Helm) is not installed")

CHART_DIR = Path(__file__).resolve().parents[2] / "charts" / "guard"
KEY = "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n"
DIGEST = "sha256:" + "ab" * 32
WORKFLOW = "https://github.com/cnai/guard/.github/workflows/release.yml@refs/tags/v0.1.0"


@pytest.fixture(scope="module")
def chart() -> Iterator[Any]:
    with helm.Chart.load(CHART_DIR) as loaded:
        yield loaded


def rendered_config(chart: Any, values: dict[str, Any]) -> dict[str, Any]:
    # rendered offline, as helm template does: the cert-manager TLS path (tls.mode helm refuses to
    # make a CA without a cluster)
    values = {"tls": {"mode": "cert-manager"}, **values}
    manifests = chart.render(values, name="guard", namespace="guard-system", is_install=True)
    for path, text in manifests.items():
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc and doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == "guard-config":
                config: dict[str, Any] = yaml.safe_load(doc["data"]["config.yaml"])
                return config
    raise AssertionError(f"no guard-config ConfigMap among {sorted(manifests)}")


def test_off_by_default(chart: Any) -> None:
    config = rendered_config(chart, {})
    assert "guard-image" not in (config.get("authorities") or {})


def test_key_rule_for_guards_own_repository(chart: Any) -> None:
    values = {
        "image": {"repository": "registry.example.com/platform/guard"},
        "trustFiles": {"guard-release.pub": KEY},
        "selfVerify": {"enabled": True, "publicKeyFile": "guard-release.pub"},
        "config": {"authorities": {"team": {"kind": "key", "key": "/etc/guard/trust/t.pub"}}},
    }
    config = rendered_config(chart, values)
    assert config["authorities"]["guard-image"] == {
        "kind": "key",
        "key": "/etc/guard/trust/guard-release.pub",
    }
    assert "team" in config["authorities"]  # the user's own authorities are kept
    rule = next(r for r in config["rules"] if r["name"] == "guard-image")
    assert rule == {
        "name": "guard-image",
        "artifacts": ["registry.example.com/platform/guard"],
        "authorities": ["guard-image"],
    }
    # guard reads the rendered config, and the rule is the one for guard's image by digest
    config["authorities"]["guard-image"]["key"] = str(Path(__file__))
    config["authorities"]["team"]["key"] = str(Path(__file__))
    parsed = parse_config(config, "rendered config.yaml")
    matched = parsed.match_rule(f"registry.example.com/platform/guard@{DIGEST}", "apps")
    assert matched is not None and matched.name == "guard-image"
    assert parsed.match_rule(f"registry.example.com/platform/other@{DIGEST}", "apps") is None


def test_keyless_rule(chart: Any) -> None:
    values = {
        "selfVerify": {
            "enabled": True,
            "keyless": {"issuer": "https://token.actions.githubusercontent.com", "identity": WORKFLOW},
        }
    }
    config = rendered_config(chart, values)
    assert config["authorities"]["guard-image"] == {
        "kind": "keyless",
        "issuer": "https://token.actions.githubusercontent.com",
        "identity": WORKFLOW,
    }
    assert parse_config(config, "rendered config.yaml").match_rule(f"ghcr.io/cnai/guard@{DIGEST}", "x")


@pytest.mark.parametrize(
    ("self_verify", "message"),
    [
        ({"enabled": True}, "give selfVerify.publicKeyFile"),
        ({"enabled": True, "publicKeyFile": "missing.pub"}, 'publicKeyFile "missing.pub" is not a key'),
        ({"enabled": True, "keyless": {"issuer": "https://issuer"}}, "exactly one of identity"),
    ],
)
def test_incomplete_values_fail_the_render(chart: Any, self_verify: dict[str, Any], message: str) -> None:
    with pytest.raises(Exception, match=message):
        rendered_config(chart, {"selfVerify": self_verify})
