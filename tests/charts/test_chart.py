"""The Helm chart (charts/guard), rendered offline with helm-python-sdk (Helm v4 embedded).

The chart is checked against the code it deploys, so that they cannot drift apart:
- the rendered config file passes ``guard.config.parse_config``;
- the config part of ``values.schema.json`` is generated from ``GuardConfig`` (regenerate with
  ``.venv/bin/python tests/charts/test_chart.py``) and a test compares it;
- the webhook rules cover exactly the kinds of ``guard.admission.kinds.BUILTIN_KINDS``;
- the Deployment's arguments parse with the real ``guard serve`` command line, and the real server,
  started with them and the rendered files, answers the API server over TLS.

``lookup`` (the generated certificate kept on upgrade) is tested against kmock's Kubernetes API
emulator. Not covered here (needs a cluster): cert-manager issuing, pods actually starting.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import functools
import json
import logging
import os
import re
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

if TYPE_CHECKING:
    from guard.config import GuardConfig

ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = ROOT / "charts" / "guard"
SCHEMA_FILE = CHART_DIR / "values.schema.json"
NAMESPACE = "guard-system"
RELEASE = "guard"
CHART_DEFINITION_PREFIX = "chart."


# --- the generated part of values.schema.json -------------------------------------------------


def config_definitions() -> dict[str, Any]:
    """``GuardConfig``'s JSON schema as ``definitions`` entries (``GuardConfig`` plus its models)."""
    from guard.config import GuardConfig

    schema = _without_titles(GuardConfig.model_json_schema(ref_template="#/definitions/{model}"))
    definitions: dict[str, Any] = dict(schema.pop("$defs", {}))
    definitions["GuardConfig"] = schema
    return definitions


def _without_titles(node: Any) -> Any:
    """pydantic's generated ``title`` keywords (``"Gpu Product"``) are noise in a values schema."""
    if isinstance(node, dict):
        return {k: _without_titles(v) for k, v in node.items() if not (k == "title" and isinstance(v, str))}
    if isinstance(node, list):
        return [_without_titles(v) for v in node]
    return node


def write_schema(target: Path = SCHEMA_FILE) -> None:
    """values.schema.json with fresh generated definitions (the chart's own are kept) to ``target``."""
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    own = {k: v for k, v in schema["definitions"].items() if k.startswith(CHART_DEFINITION_PREFIX)}
    schema["definitions"] = {**own, **config_definitions()}
    target.write_text(json.dumps(schema, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":  # pragma: no cover - a maintenance entry point
    sys.path.insert(0, str(ROOT))
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else SCHEMA_FILE
    write_schema(out)
    print(f"wrote {out}")
    sys.exit(0)


helm = pytest.importorskip("helm_python", reason="helm-python-sdk (embedded Helm) is not installed")


# --- rendering --------------------------------------------------------------------------------


class _StrictLoader(yaml.SafeLoader):
    """Refuses a mapping with a key twice (Kubernetes' YAML parsers refuse or drop one)."""


def _no_duplicates(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    keys = [loader.construct_object(k) for k, _ in node.value]
    duplicated = {k for k in keys if keys.count(k) > 1}
    assert not duplicated, f"duplicate keys {duplicated} at {node.start_mark}"
    return dict(loader.construct_pairs(node))


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


class Rendered:
    """The manifests of one offline render, parsed."""

    def __init__(self, manifests: dict[str, str]) -> None:
        self.manifests = dict(manifests)
        self.notes = ""
        self.objects: list[dict[str, Any]] = []
        for path, text in manifests.items():
            if path.endswith("NOTES.txt"):
                self.notes = text
                continue
            self.objects.extend(doc for doc in yaml.load_all(text, Loader=_StrictLoader) if doc)
        # helm hooks (uninstall cleanup, helm test) apart: they are not part of the release
        self.hooks = [o for o in self.objects if "helm.sh/hook" in (o["metadata"].get("annotations") or {})]
        self.objects = [o for o in self.objects if o not in self.hooks]

    def all(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def one(self, kind: str, name: str | None = None) -> dict[str, Any]:
        found = [o for o in self.all(kind) if name is None or o["metadata"]["name"] == name]
        assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
        return found[0]

    @property
    def pod(self) -> dict[str, Any]:
        spec: dict[str, Any] = self.one("Deployment")["spec"]["template"]["spec"]
        return spec

    def container(self, name: str) -> dict[str, Any]:
        for c in self.pod["containers"] + self.pod.get("initContainers", []):
            if c["name"] == name:
                return dict(c)
        raise AssertionError(f"no container {name!r}")

    @property
    def webhook_name(self) -> str:
        return str(self.one("ValidatingWebhookConfiguration")["metadata"]["name"])

    @property
    def webhook(self) -> dict[str, Any]:
        hooks = self.one("ValidatingWebhookConfiguration")["webhooks"]
        assert len(hooks) == 1
        hook: dict[str, Any] = hooks[0]
        return hook

    @property
    def config_text(self) -> str:
        text: str = self.one("ConfigMap", f"{RELEASE}-config")["data"]["config.yaml"]
        return text

    def volume(self, name: str) -> dict[str, Any]:
        for v in self.pod["volumes"]:
            if v["name"] == name:
                return dict(v)
        raise AssertionError(f"no volume {name!r}")


@pytest.fixture(scope="module")
def chart() -> Iterator[Any]:
    with helm.Chart.load(CHART_DIR) as loaded:
        yield loaded


@pytest.fixture(scope="module")
def default(chart: Any) -> Rendered:
    return render(chart)


@functools.cache
def offline_ca() -> dict[str, str]:
    """A CA for rendering ``tls.mode: helm`` without a cluster (tls.helm.ca), made once per run."""
    from cryptography.hazmat.primitives import serialization

    from guard.testing.pki import self_signed_ca

    key, cert = self_signed_ca("guard test CA")
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return {"cert": cert.public_bytes(serialization.Encoding.PEM).decode(), "key": key_pem.decode()}


def offline(values: dict[str, Any] | None) -> dict[str, Any]:
    """``values`` renderable without a cluster: in tls.mode helm, with the test CA in tls.helm.ca."""
    values = copy.deepcopy(values or {})
    tls = values.setdefault("tls", {})
    if tls.get("mode", "helm") == "helm":
        tls.setdefault("helm", {}).setdefault("ca", offline_ca())
    return values


def render(chart: Any, values: dict[str, Any] | None = None, namespace: str = NAMESPACE) -> Rendered:
    """Render offline (as helm template does); helm mode gets the test CA (see ``offline``)."""
    return Rendered(chart.render(offline(values), name=RELEASE, namespace=namespace, is_install=True))


def render_as_is(chart: Any, values: dict[str, Any] | None = None) -> Rendered:
    return Rendered(chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True))


def parsed_config(rendered: Rendered) -> GuardConfig:
    from guard.config import parse_config

    return parse_config(yaml.safe_load(rendered.config_text), "rendered config.yaml")


# --- lint and schema --------------------------------------------------------------------------

TLS_MODES: dict[str, dict[str, Any]] = {
    "helm": {"tls": {"mode": "helm"}},
    "cert-manager": {"tls": {"mode": "cert-manager"}},
    "cert-manager-issuer": {
        "tls": {
            "mode": "cert-manager",
            "certManager": {"issuerRef": {"name": "corp-ca", "kind": "ClusterIssuer"}},
        }
    },
    "secret": {"tls": {"mode": "secret", "secret": {"name": "my-tls", "caBundle": "Q0EK"}}},
}

WARN_FIRST: dict[str, Any] = {"mode": "warn"}
PINNING_ON: dict[str, Any] = {"pinning": {"enabled": True}}
SCANNER_ON: dict[str, Any] = {"scanner": {"enabled": True}}
SCANNER_SHARDED: dict[str, Any] = {"scanner": {"enabled": True, "shards": 4, "writeReports": "openreports"}}

MIRROR_HOST = "registry.air-gapped.invalid"  # .invalid never resolves: any network access would fail
MIRRORS: dict[str, Any] = {
    "mirrors": [
        {"host": MIRROR_HOST, "volume": {"persistentVolumeClaim": {"claimName": "guard-mirror"}}},
        {
            "host": "Other.Example:5000",
            "volume": {"nfs": {"server": "nfs.example", "path": "/m"}},
            "subPath": "a/b",
        },
    ],
}
MIRROR_PATHS = {
    MIRROR_HOST: f"/var/lib/guard/mirrors/{MIRROR_HOST}",
    "other.example:5000": "/var/lib/guard/mirrors/other.example_5000",
}

EVERYTHING_ON: dict[str, Any] = {
    "opa": {"enabled": True},
    "metrics": {"serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True}},
    "networkPolicy": {
        "enabled": True,
        "egress": [{"ports": [{"port": 53, "protocol": "UDP"}, {"port": 443, "protocol": "TCP"}]}],
    },
    "registry": {"credentialsSecret": "regcred", "caBundle": "-----BEGIN CERTIFICATE-----\n"},
    "trustFiles": {"release.pub": "-----BEGIN PUBLIC KEY-----\n"},
}


@pytest.mark.parametrize(
    "values",
    [
        {},
        WARN_FIRST,
        {"webhook": {"clusterWide": True}},
        PINNING_ON,
        SCANNER_ON,
        SCANNER_SHARDED,
        *TLS_MODES.values(),
        EVERYTHING_ON,
        {**MIRRORS, **SCANNER_ON},
    ],
    ids=[
        "default",
        "warn-first",
        "cluster-wide",
        "pinning",
        "scanner",
        "scanner-sharded",
        *TLS_MODES,
        "all-on",
        "mirrors",
    ],
)
def test_lint_is_clean(values: dict[str, Any]) -> None:
    report = helm.lint(CHART_DIR, offline(values), strict=True, namespace=NAMESPACE, kube_version="v1.30.0")
    assert report["errors"] == []
    # severity 2 = warning, 3 = error: none (and the chart has an icon, so no info either)
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


def test_schema_config_definitions_are_generated_from_the_code() -> None:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    generated = {k: v for k, v in schema["definitions"].items() if not k.startswith(CHART_DEFINITION_PREFIX)}
    assert generated == config_definitions(), (
        "values.schema.json is stale: run .venv/bin/python tests/charts/test_chart.py"
    )
    assert schema["properties"]["config"]["$ref"] == "#/definitions/GuardConfig"


def test_regenerating_the_schema_is_a_no_op(tmp_path: Path) -> None:
    # The generator is what the drift test tells maintainers to run: it must work and be stable.
    out = tmp_path / "values.schema.json"
    subprocess.run([sys.executable, str(Path(__file__)), str(out)], check=True, capture_output=True)
    assert out.read_text(encoding="utf-8") == SCHEMA_FILE.read_text(encoding="utf-8")


BAD_VALUES = [
    ({"webhook": {"timeoutSeconds": 31}}, "timeoutSeconds"),
    ({"webhook": {"timeoutSeconds": 0}}, "timeoutSeconds"),
    ({"webhook": {"failurePolicy": "Maybe"}}, "failurePolicy"),
    ({"tls": {"mode": "self-signed"}}, "mode"),
    ({"tls": {"mode": "secret"}}, "secret"),
    ({"tls": {"mode": "secret", "secret": {"name": "x"}}}, "caBundle"),
    ({"replicaCount": 0}, "replicaCount"),
    ({"unknownTopLevel": True}, "unknownTopLevel"),
    ({"webhook": {"exemptNamespaces": ["Not_A_Namespace"]}}, "exemptNamespaces"),
    ({"securityContext": {"allowPrivilegeEscalation": True}}, "allowPrivilegeEscalation"),
    ({"podSecurityContext": {"runAsNonRoot": False}}, "runAsNonRoot"),
    ({"policies": {"files": {"signature.rego": "package x"}}}, "files"),
    ({"image": {"digest": "latest"}}, "digest"),
    # without UPDATE, `kubectl set image` on a running Pod or Deployment, and an ephemeral
    # container added to a Pod (an UPDATE of pods/ephemeralcontainers), are never sent to guard
    ({"webhook": {"operations": ["CREATE"]}}, "operations"),
    ({"webhook": {"operations": ["UPDATE", "DELETE"]}}, "operations"),
    (
        {
            "webhook": {
                "rules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "resources": ["pods"],
                        "operations": ["CREATE"],
                    }
                ]
            }
        },
        "operations",
    ),
    # the config part comes from GuardConfig's own schema
    ({"config": {"unmatchedArtifacts": "perhaps"}}, "unmatchedArtifacts"),
    ({"config": {"admission": {"cache": {"ttlSeconds": 0}}}}, "ttlSeconds"),
    ({"config": {"admission": {"cache": {"ttl_seconds": 0}}}}, "ttl_seconds"),  # deprecated spelling
    ({"config": {"admission": {"cache": {"ttlSecond": 1}}}}, "ttlSecond"),
    ({"config": {"authorities": {"k": {"kind": "key"}}}}, "key"),
    ({"config": {"typo_key": 1}}, "typo_key"),
]


@pytest.mark.parametrize(
    ("values", "named"), BAD_VALUES, ids=[f"{named}-{i}" for i, (_, named) in enumerate(BAD_VALUES)]
)
def test_bad_values_are_rejected_with_the_path(chart: Any, values: dict[str, Any], named: str) -> None:
    with pytest.raises(helm.HelmValuesError) as err:
        chart.validate_schema(values)
    assert named in str(err.value)
    # an install (render) refuses them too
    with pytest.raises(helm.HelmError):
        render(chart, values)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"config": {"admission": {"timeoutSeconds": 5}}},
            "config.admission.timeoutSeconds (5) differs from webhook.timeoutSeconds (10)",
        ),
        (
            {"config": {"admission": {"timeout_seconds": 5}}},  # the deprecated spelling, read too
            "config.admission.timeoutSeconds (5) differs from webhook.timeoutSeconds (10)",
        ),
        (
            {"config": {"admission": {"timeoutSeconds": 10, "timeout_seconds": 10}}},
            "config.admission: expected the key timeoutSeconds once, found timeoutSeconds and timeout_",
        ),
        ({"webhook": {"timeoutSeconds": 1}}, "leaves guard less than 0.2 s to decide"),
        (
            {"opa": {"enabled": True}, "config": {"policy": {"engine": {"kind": "embedded"}}}},
            'config.policy.engine.kind is "embedded"',
        ),
        (
            {
                "policies": {"files": {"a/b.rego": "package guard.a.b"}},
                "config": {"policy": {"directory": "/x"}},
            },
            "conflicts with policies.files",
        ),
        ({"podDisruptionBudget": {"minAvailable": 1, "maxUnavailable": 1}}, "not both"),
        ({"server": {"workers": 2}}, "metrics.port (9090) needs server.workers 1"),
        ({"metrics": {"port": 8443}}, "must differ from server.port"),
        ({"metrics": {"port": 0, "serviceMonitor": {"enabled": True}}}, "needs metrics.port"),
    ],
)
def test_inconsistent_values_fail_the_render(chart: Any, values: dict[str, Any], message: str) -> None:
    with pytest.raises(helm.HelmRenderError) as err:
        render(chart, values)
    assert message in str(err.value)


def test_timeout_one_second_passes_with_a_smaller_margin(chart: Any) -> None:
    values = {"webhook": {"timeoutSeconds": 1}, "config": {"admission": {"deadlineMarginSeconds": 0.5}}}
    rendered = render(chart, values)
    assert rendered.webhook["timeoutSeconds"] == 1
    assert parsed_config(rendered).admission.deadline_seconds == pytest.approx(0.5)


# --- the webhook configuration ----------------------------------------------------------------


def test_webhook_defaults_fail_closed(default: Rendered) -> None:
    hook = default.webhook
    assert hook["failurePolicy"] == "Fail"
    assert hook["timeoutSeconds"] == 10
    assert hook["admissionReviewVersions"] == ["v1"]
    assert hook["sideEffects"] == "None"
    assert hook["matchPolicy"] == "Equivalent"
    service = hook["clientConfig"]["service"]
    assert service == {"name": RELEASE, "namespace": NAMESPACE, "path": "/validate", "port": 443}
    assert "FAIL OPEN" not in default.notes


def test_fail_open_is_explicit_and_warned(chart: Any) -> None:
    rendered = render(chart, {"webhook": {"failurePolicy": "Ignore"}})
    assert rendered.webhook["failurePolicy"] == "Ignore"
    assert "FAIL OPEN" in rendered.notes


def test_an_object_selector_is_warned_as_an_opt_out_for_every_workload_author(chart: Any) -> None:
    """An objectSelector matches the object's own labels, which whoever creates the object writes:
    with one, any tenant skips guard by labelling (or not labelling) its workload."""
    assert "objectSelector" not in render(chart).notes
    for selector in (
        {"matchLabels": {"guard.cnai.dev/check": "true"}},
        {"matchExpressions": [{"key": "guard.cnai.dev/skip", "operator": "DoesNotExist"}]},
    ):
        rendered = render(chart, {"webhook": {"objectSelector": selector}})
        assert rendered.webhook["objectSelector"] == selector
        assert "WARNING: webhook.objectSelector" in rendered.notes
        assert "labels" in rendered.notes.split("WARNING: webhook.objectSelector", 1)[1]


def test_a_release_in_the_default_namespace_is_warned_as_exempting_it(chart: Any) -> None:
    """guard's own namespace is never checked: installed in "default" (helm install without -n),
    every workload created there is admitted unchecked. The NOTES say so."""
    rendered = render(chart, namespace="default")
    assert "default" in _excluded_namespaces(rendered.webhook)
    assert 'WARNING: guard is installed in the namespace "default"' in rendered.notes
    assert "WARNING: guard is installed" not in render(chart).notes


def _excluded_namespaces(hook: dict[str, Any]) -> list[str]:
    expressions = hook["namespaceSelector"]["matchExpressions"]
    (expr,) = [e for e in expressions if e["key"] == "kubernetes.io/metadata.name"]
    assert expr["operator"] == "NotIn"
    names: list[str] = expr["values"]
    return names


def test_namespace_selector_excludes_system_release_and_exempt_namespaces(chart: Any) -> None:
    rendered = render(
        chart,
        {
            "webhook": {
                "exemptNamespaces": ["monitoring"],
                "namespaceSelector": {"matchExpressions": [{"key": "team", "operator": "Exists"}]},
            },
            "config": {"admission": {"exemptNamespaces": ["ci"]}},
        },
        namespace="security",
    )
    excluded = _excluded_namespaces(rendered.webhook)
    assert excluded == ["kube-system", "kube-public", "kube-node-lease", "security", "monitoring", "ci"]
    # the user's own expressions are kept beside it
    assert {"key": "team", "operator": "Exists"} in rendered.webhook["namespaceSelector"]["matchExpressions"]
    # guard's config exempts exactly the namespaces the API server does not send
    assert list(parsed_config(rendered).admission.exempt_namespaces) == excluded


SYSTEM_NAMESPACES = ["kube-system", "kube-public", "kube-node-lease"]


def test_default_values_require_the_opt_in_label_and_exclude_system_namespaces(default: Rendered) -> None:
    selector = default.webhook["namespaceSelector"]
    assert selector["matchLabels"] == {"guard.cnai.dev/enforce": "true"}
    assert _excluded_namespaces(default.webhook) == [*SYSTEM_NAMESPACES, NAMESPACE]
    assert list(parsed_config(default).admission.exempt_namespaces) == [*SYSTEM_NAMESPACES, NAMESPACE]
    assert "guard.cnai.dev/enforce=true are checked" in default.notes


def test_cluster_wide_drops_the_label_but_never_the_system_namespaces(chart: Any) -> None:
    webhook = {"clusterWide": True, "namespaceSelector": {"matchLabels": {"tier": "ml"}}}
    rendered = render(chart, {"webhook": webhook})
    selector = rendered.webhook["namespaceSelector"]
    assert selector["matchLabels"] == {"tier": "ml"}
    assert _excluded_namespaces(rendered.webhook) == [*SYSTEM_NAMESPACES, NAMESPACE]
    assert "Every namespace is checked" in rendered.notes


def test_custom_opt_in_label(chart: Any) -> None:
    rendered = render(chart, {"webhook": {"optInLabel": {"key": "example.com/guarded", "value": "yes"}}})
    assert rendered.webhook["namespaceSelector"]["matchLabels"] == {"example.com/guarded": "yes"}


def test_default_mode_is_deny_in_opted_in_namespaces_only(default: Rendered) -> None:
    config = parsed_config(default)
    assert config.admission.mode == "enforce"
    assert config.unmatched_artifacts == "deny"
    assert config.policy.default_enforcement == "deny"
    assert "MODE WARN" not in default.notes
    hook = default.webhook
    assert hook["failurePolicy"] == "Fail"
    assert hook["namespaceSelector"]["matchLabels"] == {"guard.cnai.dev/enforce": "true"}
    assert {"kube-system", "kube-public", "kube-node-lease", NAMESPACE} <= set(_excluded_namespaces(hook))


def test_warn_first_is_one_value_and_turns_every_deny_into_a_warning(chart: Any) -> None:
    warned = render(chart, WARN_FIRST)
    config = parsed_config(warned)
    assert config.admission.mode == "warn"  # the webhook admits what it would deny, with a warning
    assert config.unmatched_artifacts == "warn"
    assert config.policy.default_enforcement == "warn"
    assert "MODE WARN" in warned.notes
    assert warned.webhook["namespaceSelector"]["matchLabels"] == {"guard.cnai.dev/enforce": "true"}
    enforcement = {"supply_chain": "deny", "gpu": "dryrun"}
    rendered = render(
        chart,
        {"mode": "warn", "config": {"unmatchedArtifacts": "allow", "policy": {"enforcement": enforcement}}},
    )
    config = parsed_config(rendered)
    assert config.unmatched_artifacts == "allow"  # never made stricter
    assert dict(config.policy.enforcement) == {"supply_chain": "warn", "gpu": "dryrun"}


def test_deny_mode_keeps_the_config_as_given(chart: Any) -> None:
    config_values = {"policy": {"enforcement": {"supply_chain": "deny"}}}
    rendered = render(chart, {"mode": "deny", "config": config_values})
    config = parsed_config(rendered)
    assert config.admission.mode == "enforce"
    assert config.unmatched_artifacts == "deny"
    assert config.policy.default_enforcement == "deny"
    assert dict(config.policy.enforcement) == {"supply_chain": "deny"}
    assert "MODE WARN" not in rendered.notes


# kinds of the table that are cluster-scoped (their webhook rule must say so)
_CLUSTER_SCOPED = {
    "clusterservingruntimes",
    "localmodelcaches",
    "clusterstoragecontainers",
    "clustertrainingruntimes",
}


def _plural(kind: str) -> str:
    return kind.lower() + "s"


def test_webhook_rules_match_the_kinds_table(default: Rendered) -> None:
    from guard.admission.kinds import BUILTIN_KINDS

    routed: set[tuple[str, str]] = set()
    subresources: set[str] = set()
    for rule in default.webhook["rules"]:
        assert rule["operations"] == ["CREATE", "UPDATE"]
        scope = "Cluster" if set(rule["resources"]) <= _CLUSTER_SCOPED else "Namespaced"
        assert rule["scope"] == scope, rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                if "/" in resource:
                    subresources.add(resource)
                else:
                    routed.add((group, resource))
    table = {(k.group, _plural(k.kind)) for k in BUILTIN_KINDS}
    assert table - routed == set(), "kinds guard checks that the API server would never send"
    assert routed - table == set(), "kinds the API server sends that guard would deny as unknown"
    assert subresources == {"pods/ephemeralcontainers"}


def test_config_follows_the_webhook(default: Rendered) -> None:
    config = parsed_config(default)
    assert config.admission.timeout_seconds == default.webhook["timeoutSeconds"]
    assert config.unmatched_artifacts == "deny"


# --- the Deployment ---------------------------------------------------------------------------


def test_deployment_is_highly_available(default: Rendered) -> None:
    deployment = default.one("Deployment")
    assert deployment["spec"]["replicas"] >= 2
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    selector = deployment["spec"]["selector"]["matchLabels"]
    pod = default.pod
    spread = pod["topologySpreadConstraints"][0]
    assert spread["labelSelector"]["matchLabels"] == selector
    anti = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]
    assert anti["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    pdb = default.one("PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == selector
    labels = deployment["metadata"]["labels"]
    for key in (
        "app.kubernetes.io/name",
        "app.kubernetes.io/instance",
        "app.kubernetes.io/version",
        "app.kubernetes.io/managed-by",
        "helm.sh/chart",
    ):
        assert key in labels


def _assert_restricted(container: dict[str, Any], pod: dict[str, Any]) -> None:
    ctx = container["securityContext"]
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["readOnlyRootFilesystem"] is True
    assert ctx["capabilities"]["drop"] == ["ALL"]
    assert "add" not in ctx["capabilities"]
    assert ctx.get("privileged", False) is False
    run_as_non_root = ctx.get("runAsNonRoot", pod["securityContext"].get("runAsNonRoot"))
    assert run_as_non_root is True
    seccomp = ctx.get("seccompProfile", pod["securityContext"].get("seccompProfile"))
    assert seccomp == {"type": "RuntimeDefault"}


def test_every_container_is_restricted(chart: Any, default: Rendered) -> None:
    pod = default.pod
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["automountServiceAccountToken"] is False
    for rendered in (default, render(chart, {"opa": {"enabled": True}})):
        containers = rendered.pod["containers"] + rendered.pod.get("initContainers", [])
        for container in containers:
            _assert_restricted(container, rendered.pod)
            assert "memory" in container["resources"]["limits"]
    # read-only root: /tmp is an emptyDir (TLS reload scratch, Sigstore cache)
    tmp = default.volume("tmp")
    assert "emptyDir" in tmp
    assert {"name": "tmp", "mountPath": "/tmp"} in default.container("guard")["volumeMounts"]


def test_no_rbac_is_granted(default: Rendered) -> None:
    for kind in ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"):
        assert default.all(kind) == []
    assert default.one("ServiceAccount")["automountServiceAccountToken"] is False


def _hook(rendered: Rendered, kind: str, component: str = "cleanup") -> dict[str, Any]:
    found = [h for h in rendered.hooks if h["kind"] == kind and h["metadata"]["name"].find(component) > 0]
    assert len(found) == 1, (kind, component, [h["metadata"]["name"] for h in rendered.hooks])
    return found[0]


def _run_the_helm_test(rendered: Rendered, port: int, tmp_path: Path) -> None:
    """The helm test Pod's command, run here against the real server (its Service name verified)."""
    pod = _hook(rendered, "Pod", "test")
    (container,) = pod["spec"]["containers"]
    files = _hook(rendered, "ConfigMap", "test")["data"]
    script = tmp_path / "helm_test.py"
    script.write_text(files["helm_test.py"], encoding="utf-8")
    assert container["command"][:2] == ["python", "/test/helm_test.py"]
    url, namespace, mode = container["command"][2:]
    assert url == f"https://{RELEASE}.{NAMESPACE}.svc:443/validate" and namespace == NAMESPACE
    ca = tmp_path / "ca.crt"
    ca.write_bytes(base64.b64decode(rendered.webhook["clientConfig"]["caBundle"]))
    env = {**os.environ, "GUARD_TEST_CONNECT": f"127.0.0.1:{port}"}
    done = subprocess.run(
        [sys.executable, str(script), url, namespace, mode, str(ca)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok: unsigned model denied" in done.stdout
    assert f"ok: the release namespace {NAMESPACE} is excluded (allowed)" in done.stdout


def test_helm_test_hook_posts_reviews_over_verified_tls(chart: Any, default: Rendered) -> None:
    pod = _hook(default, "Pod", "test")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    policy = pod["metadata"]["annotations"]["helm.sh/hook-delete-policy"]
    assert policy == "before-hook-creation,hook-succeeded"
    (container,) = pod["spec"]["containers"]
    _assert_restricted(container, pod["spec"])
    assert pod["spec"]["automountServiceAccountToken"] is False
    (ca,) = [v for v in pod["spec"]["volumes"] if v["name"] == "ca"]
    # only the CA of the TLS Secret, never its key
    assert ca["secret"] == {"secretName": f"{RELEASE}-tls", "items": [{"key": "ca.crt", "path": "ca.crt"}]}
    assert container["command"][-1] == "deny"
    warned = _hook(render(chart, {"mode": "warn"}), "Pod", "test")
    assert warned["spec"]["containers"][0]["command"][-1] == "warn"
    secret_mode = render(chart, TLS_MODES["secret"])
    assert _hook(secret_mode, "ConfigMap", "test")["data"]["ca.crt"] == "CA\n"


def test_helm_test_script_expects_a_warning_in_warn_mode(chart: Any, tmp_path: Path) -> None:
    # the script's own judgement, on answers a warn-mode and a broken release would give
    script = _hook(render(chart), "ConfigMap", "test")["data"]["helm_test.py"]
    namespace: dict[str, Any] = {"__name__": "helm_test"}
    exec(compile(script, "helm_test.py", "exec"), namespace)
    answers: list[dict[str, Any]] = []

    def fake_post(_url: str, body: dict[str, Any], _ca: str) -> dict[str, Any]:
        return answers.pop(0)

    namespace["post"] = fake_post
    main = namespace["main"]
    answers[:] = [{"allowed": True, "warnings": ["guard (mode warn) would deny: x"]}, {"allowed": True}]
    assert main("https://x/validate", NAMESPACE, "warn") == 0
    answers[:] = [{"allowed": True}, {"allowed": True}]  # a release admitting what it must deny
    assert main("https://x/validate", NAMESPACE, "deny") == 1
    answers[:] = [{"allowed": False, "status": {"message": "no"}}, {"allowed": False}]  # exclusion broken
    assert main("https://x/validate", NAMESPACE, "deny") == 1


def test_uninstall_cleanup_hook_deletes_only_guards_webhooks(chart: Any, default: Rendered) -> None:
    webhook = default.webhook_name
    for kind in ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ConfigMap", "Job"):
        annotations = _hook(default, kind)["metadata"]["annotations"]
        assert annotations["helm.sh/hook"] == "pre-delete"
        assert annotations["helm.sh/hook-delete-policy"] == "before-hook-creation,hook-succeeded"
    # RBAC before the Job
    assert int(_hook(default, "ClusterRole")["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(
        _hook(default, "Job")["metadata"]["annotations"]["helm.sh/hook-weight"]
    )
    rules = _hook(default, "ClusterRole")["rules"]
    assert rules == [
        {
            "apiGroups": ["admissionregistration.k8s.io"],
            "resources": ["validatingwebhookconfigurations"],
            "resourceNames": [webhook],
            "verbs": ["get", "delete"],
        },
        {
            "apiGroups": ["admissionregistration.k8s.io"],
            "resources": ["mutatingwebhookconfigurations"],
            "resourceNames": [f"{webhook}-pin"],
            "verbs": ["get", "delete"],
        },
    ]
    binding = _hook(default, "ClusterRoleBinding")
    job = _hook(default, "Job")
    pod = job["spec"]["template"]["spec"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": pod["serviceAccountName"], "namespace": NAMESPACE}
    ]
    assert binding["roleRef"]["name"] == _hook(default, "ClusterRole")["metadata"]["name"]
    (container,) = pod["containers"]
    _assert_restricted(container, pod)
    assert container["command"][2:] == [webhook, f"{webhook}-pin"]
    # the script it runs is the chart's file
    script = _hook(default, "ConfigMap")["data"]["cleanup_webhooks.py"]
    assert script == (CHART_DIR / "files" / "cleanup_webhooks.py").read_text(encoding="utf-8")
    kept = render(chart, {"cleanupHook": {"enabled": False}}).hooks
    assert [h for h in kept if "cleanup" in h["metadata"]["name"]] == []


async def test_cleanup_script_deletes_the_webhooks_against_an_api_server(kmock: Any, tmp_path: Path) -> None:
    # the hook's command, run here against kmock's Kubernetes API (kubeconfig: no in-cluster token)
    for plural, kind in (
        ("validatingwebhookconfigurations", "ValidatingWebhookConfiguration"),
        ("mutatingwebhookconfigurations", "MutatingWebhookConfiguration"),
    ):
        kmock.resources[f"admissionregistration.k8s.io/v1/{plural}"] = {"kind": kind, "namespaced": False}
    name = f"{RELEASE}.{NAMESPACE}.guard.cnai.dev"
    kmock.objects["admissionregistration.k8s.io/v1/validatingwebhookconfigurations", None, name] = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [],
    }
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "k",
                "clusters": [{"name": "k", "cluster": {"server": str(kmock.url).rstrip("/")}}],
                "users": [{"name": "k", "user": {"token": "test"}}],
                "contexts": [{"name": "k", "context": {"cluster": "k", "user": "k"}}],
            }
        )
    )
    script = CHART_DIR / "files" / "cleanup_webhooks.py"
    env = {k: v for k, v in os.environ.items() if k != "KUBERNETES_SERVICE_HOST"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        name,
        f"{name}-pin",
        env={**env, "KUBECONFIG": str(kubeconfig)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, err.decode()
    assert f"deleted {name}" in out.decode() and f"{name}-pin: already gone" in out.decode()
    deletes = [r for r in kmock if r.method == "DELETE"]
    assert [r.url.path.rsplit("/", 1)[-1] for r in deletes] == [name, f"{name}-pin"]


def test_probes_use_https_health_endpoints(default: Rendered) -> None:
    guard = default.container("guard")
    port_names = {p["name"]: p["containerPort"] for p in guard["ports"]}
    expected = (("startupProbe", "/healthz"), ("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"))
    for probe, path in expected:
        get = guard[probe]["httpGet"]
        assert (get["scheme"], get["path"]) == ("HTTPS", path)
        assert get["port"] in port_names
    service = default.one("Service", RELEASE)
    assert service["spec"]["ports"][0]["targetPort"] == "https"
    assert service["spec"]["ports"][0]["port"] == default.webhook["clientConfig"]["service"]["port"]
    assert [p["name"] for p in service["spec"]["ports"]] == ["https"]  # no /metrics on it
    metrics = default.one("Service", f"{RELEASE}-metrics")
    expected_port = {"name": "metrics", "port": 9090, "targetPort": "metrics", "protocol": "TCP"}
    assert metrics["spec"]["ports"] == [expected_port]
    assert port_names["metrics"] == 9090
    assert _serve_options(guard["args"])["metrics_port"] == 9090


def _serve_options(args: list[str]) -> dict[str, Any]:
    """Parse the container's args with guard's real command line (click), without running it."""
    import typer

    from guard.cli import app

    command = typer.main.get_command(app)
    assert args[0] == "serve"
    group_ctx = command.make_context("guard", list(args), resilient_parsing=False)
    sub = command.get_command(group_ctx, "serve")  # type: ignore[attr-defined]
    assert sub is not None
    ctx = sub.make_context("serve", list(args[1:]), parent=group_ctx)
    return dict(ctx.params)


def _mount_for(container: dict[str, Any], path: str) -> dict[str, Any]:
    for mount in container["volumeMounts"]:
        if path.startswith(mount["mountPath"].rstrip("/") + "/"):
            return dict(mount)
    raise AssertionError(f"{path} is on no mounted volume")


def test_serve_arguments_point_at_mounted_files(default: Rendered) -> None:
    guard = default.container("guard")
    options = _serve_options(guard["args"])
    assert options["port"] == guard["ports"][0]["containerPort"]
    assert options["workers"] == 1
    # the config: the ConfigMap's config.yaml
    config_mount = _mount_for(guard, str(options["config"]))
    assert default.volume(config_mount["name"])["configMap"]["name"] == f"{RELEASE}-config"
    assert options["config"].name == "config.yaml"
    # TLS: tls.crt and tls.key of the Secret the webhook's certificate lives in
    secret = default.one("Secret")
    for option, key in (("tls_cert", "tls.crt"), ("tls_key", "tls.key")):
        mount = _mount_for(guard, str(options[option]))
        assert mount["readOnly"] is True
        volume = default.volume(mount["name"])
        assert volume["secret"]["secretName"] == secret["metadata"]["name"]
        assert options[option].name == key
        assert {"key": key, "path": key} in volume["secret"]["items"]


# --- TLS ------------------------------------------------------------------------------------


def test_helm_mode_generates_a_certificate_the_ca_bundle_verifies(default: Rendered) -> None:
    from cryptography import x509

    secret = default.one("Secret")
    assert secret["type"] == "kubernetes.io/tls"
    data = {k: base64.b64decode(v) for k, v in secret["data"].items()}
    ca_bundle = base64.b64decode(default.webhook["clientConfig"]["caBundle"])
    assert ca_bundle == data["ca.crt"]
    ca = x509.load_pem_x509_certificate(ca_bundle)
    cert = x509.load_pem_x509_certificate(data["tls.crt"])
    # signed by the CA (real signature check), for the Service's DNS names, valid now
    cert.verify_directly_issued_by(ca)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName
    )
    assert f"{RELEASE}.{NAMESPACE}.svc" in names
    now = datetime.now(UTC)
    assert cert.not_valid_before_utc <= now < cert.not_valid_after_utc
    # the key in the Secret is the certificate's key
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(data["tls.key"], password=None)
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()  # type: ignore[union-attr]


def test_helm_mode_certificate_passes_a_real_tls_handshake(default: Rendered, tmp_path: Path) -> None:
    # What the API server does: connect to <service>.<namespace>.svc, trusting only caBundle.
    data = {k: base64.b64decode(v) for k, v in default.one("Secret")["data"].items()}
    (tmp_path / "tls.crt").write_bytes(data["tls.crt"])
    (tmp_path / "tls.key").write_bytes(data["tls.key"])
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(tmp_path / "tls.crt", tmp_path / "tls.key")
    client_ctx = ssl.create_default_context(
        cadata=base64.b64decode(default.webhook["clientConfig"]["caBundle"]).decode()
    )
    host = f"{RELEASE}.{NAMESPACE}.svc"
    errors: list[BaseException] = []
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(10)

        def serve_one() -> None:
            try:
                conn, _ = listener.accept()
                with server_ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.sendall(b"ok")
            except (OSError, ssl.SSLError) as err:
                errors.append(err)

        thread = threading.Thread(target=serve_one)
        thread.start()
        with (
            socket.create_connection(listener.getsockname(), timeout=10) as raw,
            client_ctx.wrap_socket(raw, server_hostname=host) as tls,
        ):
            assert tls.recv(2) == b"ok"
        thread.join(10)
    assert errors == []


async def _render_live(kmock: Any, **options: Any) -> Rendered:
    """Render against a Kubernetes API (kmock's emulator), so that ``lookup`` sees its objects."""

    def run() -> dict[str, str]:
        with (
            helm.Config(kube_apiserver=str(kmock.url), kube_token="test", namespace=NAMESPACE) as config,
            helm.Chart.load(CHART_DIR) as loaded,
        ):
            manifests: dict[str, str] = config.render(loaded, name=RELEASE, namespace=NAMESPACE, **options)
            return manifests

    # helm blocks while kmock serves on this event loop: run helm in a thread
    return Rendered(await asyncio.wait_for(asyncio.to_thread(run), timeout=60))


def _a_cluster(kmock: Any) -> None:
    """kmock as a cluster: namespace kube-system exists (the chart's test for a reachable API)."""
    kmock.resources["v1/secrets"] = {"kind": "Secret", "namespaced": True}
    kmock.resources["v1/namespaces"] = {"kind": "Namespace", "namespaced": False}
    # kmock 0.8 parses /api/v1/namespaces/<name> as a namespace prefix, not a Namespace: serve it
    kmock["get /api/v1/namespaces/kube-system"] << {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "kube-system"},
    }


async def test_helm_mode_keeps_the_certificate_on_upgrade(kmock: Any) -> None:
    _a_cluster(kmock)
    installed = await _render_live(kmock, is_install=True)  # nothing in the cluster yet: generated
    secret = installed.one("Secret")
    kmock.objects["v1/secrets", NAMESPACE, secret["metadata"]["name"]] = secret
    upgraded = await _render_live(kmock, is_upgrade=True)
    assert upgraded.one("Secret")["data"] == secret["data"]
    assert upgraded.webhook["clientConfig"]["caBundle"] == secret["data"]["ca.crt"]


async def test_helm_mode_replaces_an_incomplete_secret(kmock: Any) -> None:
    _a_cluster(kmock)
    stale = {"tls.crt": "Q1JU", "tls.key": "S0VZ"}  # no ca.crt: the caBundle cannot be known
    kmock.objects["v1/secrets", NAMESPACE, f"{RELEASE}-tls"] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": f"{RELEASE}-tls", "namespace": NAMESPACE},
        "data": stale,
    }
    upgraded = await _render_live(kmock, is_upgrade=True)
    data = upgraded.one("Secret")["data"]
    assert data["tls.crt"] != stale["tls.crt"]
    assert upgraded.webhook["clientConfig"]["caBundle"] == data["ca.crt"]


NO_CLUSTER = "tls.mode helm has no cluster to read its Secret from"


def test_helm_mode_without_a_cluster_fails_pointing_to_gitops(chart: Any) -> None:
    # helm template / --dry-run=client: lookup sees nothing. A new CA on every render would rotate
    # the caBundle at each GitOps sync: the chart fails instead, naming the ways out.
    with pytest.raises(helm.errors.HelmRenderError) as failed:
        render_as_is(chart)
    for named in (NO_CLUSTER, "tls.mode=cert-manager", "tls.mode=secret", "tls.helm.ca.cert"):
        assert named in str(failed.value)
    # helm lint does not stop at fail (it logs it): the defaults still lint clean
    report = helm.lint(CHART_DIR, {}, strict=True, namespace=NAMESPACE, kube_version="v1.30.0")
    assert report["errors"] == []
    with pytest.raises(helm.errors.HelmRenderError, match="needs both cert and key"):
        render_as_is(chart, {"tls": {"helm": {"ca": {"cert": offline_ca()["cert"]}}}})


def test_helm_mode_with_a_given_ca_keeps_the_ca_bundle_across_renders(chart: Any) -> None:
    from cryptography import x509

    first, second = render(chart), render(chart)
    bundle = first.webhook["clientConfig"]["caBundle"]
    assert second.webhook["clientConfig"]["caBundle"] == bundle
    assert base64.b64decode(bundle).decode() == offline_ca()["cert"]
    leaf = x509.load_pem_x509_certificate(base64.b64decode(second.one("Secret")["data"]["tls.crt"]))
    leaf.verify_directly_issued_by(x509.load_pem_x509_certificate(base64.b64decode(bundle)))


@pytest.mark.parametrize("mode", ["cert-manager", "cert-manager-issuer", "secret"])
def test_gitops_tls_modes_render_byte_identical(chart: Any, mode: str) -> None:
    # what Argo CD does on every sync: helm template, twice; nothing may differ (no diff, no rotation)
    values = {**TLS_MODES[mode], "pinning": {"enabled": True}}
    first, second = render_as_is(chart, values), render_as_is(chart, values)
    assert first.manifests == second.manifests
    assert "caBundle: Q0EK" in first.manifests["guard/templates/webhook.yaml"] or mode != "secret"


async def test_helm_mode_in_a_cluster_generates_then_keeps_the_ca(kmock: Any) -> None:
    _a_cluster(kmock)
    installed = await _render_live(kmock, is_install=True)  # no Secret yet, but a cluster: generated
    assert installed.webhook["clientConfig"]["caBundle"] == installed.one("Secret")["data"]["ca.crt"]


def test_cert_manager_mode(chart: Any) -> None:
    rendered = render(chart, TLS_MODES["cert-manager"])
    assert rendered.all("Secret") == []
    hook = rendered.webhook
    assert "caBundle" not in hook["clientConfig"]
    certificate = rendered.one("Certificate", f"{RELEASE}-tls")
    annotations = rendered.one("ValidatingWebhookConfiguration")["metadata"]["annotations"]
    assert annotations["cert-manager.io/inject-ca-from"] == f"{NAMESPACE}/{certificate['metadata']['name']}"
    assert f"{RELEASE}.{NAMESPACE}.svc" in certificate["spec"]["dnsNames"]
    assert rendered.volume("tls")["secret"]["secretName"] == certificate["spec"]["secretName"]
    # no issuer given: a self-signed root, a CA certificate and a CA issuer
    ca_issuer = rendered.one("Issuer", f"{RELEASE}-ca")
    assert certificate["spec"]["issuerRef"]["name"] == ca_issuer["metadata"]["name"]
    assert rendered.one("Certificate", f"{RELEASE}-ca")["spec"]["isCA"] is True
    assert "selfSigned" in rendered.one("Issuer", f"{RELEASE}-selfsigned")["spec"]


def test_cert_manager_mode_with_an_existing_issuer(chart: Any) -> None:
    rendered = render(chart, TLS_MODES["cert-manager-issuer"])
    assert rendered.all("Issuer") == []
    certificate = rendered.one("Certificate")
    assert certificate["spec"]["issuerRef"] == {"name": "corp-ca", "kind": "ClusterIssuer"}


def test_existing_secret_mode(chart: Any) -> None:
    rendered = render(chart, TLS_MODES["secret"])
    assert rendered.all("Secret") == []
    assert rendered.all("Certificate") == []
    assert rendered.webhook["clientConfig"]["caBundle"] == "Q0EK"
    assert rendered.volume("tls")["secret"]["secretName"] == "my-tls"


# --- the real server, started the way the chart starts it --------------------------------------


def _materialize_pod_files(rendered: Rendered, container: dict[str, Any], root: Path) -> None:
    """Lay the container's volumes out under ``root`` as the kubelet would (ConfigMap and Secret
    keys or items as files, emptyDirs as directories)."""
    for mount in container["volumeMounts"]:
        target = root / mount["mountPath"].lstrip("/")
        target.mkdir(parents=True, exist_ok=True)
        volume = rendered.volume(mount["name"])
        if "configMap" in volume:
            data = dict(rendered.one("ConfigMap", volume["configMap"]["name"])["data"])
            items = volume["configMap"].get("items") or [{"key": k, "path": k} for k in data]
        elif "secret" in volume:
            secret = rendered.one("Secret", volume["secret"]["secretName"])
            data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
            items = volume["secret"].get("items") or [{"key": k, "path": k} for k in data]
        else:
            # emptyDirs, and the mirrors' volumes (their content is the test's to lay out)
            assert "emptyDir" in volume or volume["name"].startswith("mirror-"), volume
            continue
        for item in items:
            path = target / item["path"]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(data[item["key"]], encoding="utf-8")


def _rooted(container: dict[str, Any], root: Path) -> Any:
    """A function rewriting the container's absolute paths (on its mounts) to lie under ``root``."""
    mounts = sorted((m["mountPath"] for m in container["volumeMounts"]), key=len, reverse=True)
    at_mount = re.compile(r"(?<![\w./-])(" + "|".join(map(re.escape, mounts)) + r")(?=/|$|\s)", re.MULTILINE)

    def rooted(value: str) -> str:
        return at_mount.sub(lambda m: f"{root}{m.group(1)}", value)

    return rooted


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_rendered_pod_serves_the_api_server(chart: Any, tmp_path: Path) -> None:
    """Start the real ``guard serve`` with the Deployment's arguments and the rendered ConfigMaps
    and Secret laid out as in the container (rooted at a temporary directory), then call it the
    way the API server does: HTTPS to the Service name, trusting only the webhook's caBundle."""
    import httpx
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from guard.testing.admission import admission_review, pod
    from guard.testing.processes import stop_process

    public_key = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    values = {
        "mode": "deny",
        "webhook": {"exemptNamespaces": ["monitoring"]},
        "trustFiles": {"release.pub": public_key.decode()},
        "config": {
            "authorities": {"release": {"kind": "key", "key": "/etc/guard/trust/release.pub"}},
            "rules": [{"name": "acme", "artifacts": ["registry.acme.test/*"], "authorities": ["release"]}],
        },
    }
    rendered = render(chart, values)
    guard = rendered.container("guard")
    root = tmp_path / "pod"
    _materialize_pod_files(rendered, guard, root)
    # the container's absolute paths, rooted at the temporary directory
    rooted = _rooted(guard, root)
    config_file = root / "etc/guard/config/config.yaml"
    config_file.write_text(rooted(config_file.read_text(encoding="utf-8")), encoding="utf-8")
    port = _free_port()
    args = [rooted(a) for a in guard["args"]]
    args[args.index("--host") + 1] = "127.0.0.1"
    args[args.index("--port") + 1] = str(port)
    metrics_port = _free_port()
    args[args.index("--metrics-port") + 1] = str(metrics_port)
    env = {**os.environ, **{e["name"]: rooted(e["value"]) for e in guard["env"]}}
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("guard")), *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    ca = base64.b64decode(rendered.webhook["clientConfig"]["caBundle"]).decode()
    host = f"{RELEASE}.{NAMESPACE}.svc"
    try:
        with httpx.Client(
            base_url=f"https://127.0.0.1:{port}",
            verify=ssl.create_default_context(cadata=ca),
            timeout=30,
        ) as client:
            sni = {"sni_hostname": host}  # connect to 127.0.0.1, verify the Service's name
            probe = guard["readinessProbe"]["httpGet"]
            deadline = time.monotonic() + 60
            while True:
                assert process.poll() is None, (process.stderr.read() if process.stderr else b"").decode()
                try:
                    if client.get(probe["path"], extensions=sni).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "the pod never became ready"
                time.sleep(0.1)
            assert client.get(guard["livenessProbe"]["httpGet"]["path"], extensions=sni).status_code == 200
            path = rendered.webhook["clientConfig"]["service"]["path"]
            review = admission_review(pod("docker.io/library/busybox:1.36"))
            denied = client.post(path, json=review, extensions=sni)
            answer = denied.json()["response"]
            assert answer["allowed"] is False
            assert "docker.io/library/busybox:1.36" in answer["status"]["message"]
            review = admission_review(pod("docker.io/library/busybox:1.36", namespace="monitoring"))
            exempt = client.post(path, json=review, extensions=sni)
            assert exempt.json()["response"]["allowed"] is True
            # /metrics: not on the admission port; in plain HTTP on the metrics port
            assert client.get("/metrics", extensions=sni).status_code == 404
            scraped = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10)
            assert scraped.status_code == 200
            counted = 'guard_admission_request_duration_seconds_count{decision="denied",kind="Pod"} 1.0'
            assert counted in scraped.text
            # what `helm test` runs, against this server
            _run_the_helm_test(rendered, port, tmp_path)
    finally:
        stop_process(process, grace=20)


# --- config, trust files, policies, OPA --------------------------------------------------------


def test_user_config_renders_and_parses(chart: Any) -> None:
    values: dict[str, Any] = {
        "mode": "deny",
        "trustFiles": {"release.pub": "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n"},
        "registry": {"credentialsSecret": "regcred", "caBundle": "-----BEGIN CERTIFICATE-----\n"},
        "config": {
            "authorities": {
                "release": {"kind": "key", "key": "/etc/guard/trust/release.pub"},
                "ci": {
                    "kind": "keyless",
                    "issuer": "https://token.actions.githubusercontent.com",
                    "identityRegex": "^https://github.com/acme/.*$",
                },
            },
            "rules": [
                {"name": "models", "artifacts": ["registry.acme.io/*"], "authorities": ["release", "ci"]}
            ],
            "tenants": [{"name": "team-a", "namespaces": ["team-a-*"]}],
            "policy": {"defaultEnforcement": "warn", "enforcement": {"gpu": "deny"}},
            "admission": {"failOpenRules": ["models"], "cache": {"ttlSeconds": 600}},
        },
    }
    rendered = render(chart, values)
    config = parsed_config(rendered)
    assert config.rules[0].name == "models"
    assert config.admission.cache.ttl_seconds == 600
    # the key file the config names is mounted where it says
    guard = rendered.container("guard")
    from guard.config import KeyAuthority

    release = config.authorities["release"]
    assert isinstance(release, KeyAuthority)
    mount = _mount_for(guard, str(release.key))
    trust = rendered.one("ConfigMap", rendered.volume(mount["name"])["configMap"]["name"])
    assert "release.pub" in trust["data"]
    # registry credentials and CA are wired into admission.registry
    docker_config = str(config.admission.registry.docker_config)
    volume = rendered.volume(_mount_for(guard, docker_config)["name"])
    items = [{"key": ".dockerconfigjson", "path": "config.json"}]
    assert volume["secret"] == {"secretName": "regcred", "items": items}
    ca_file = str(config.admission.registry.ca_file)
    ca_cm = rendered.volume(_mount_for(guard, ca_file)["name"])["configMap"]["name"]
    assert rendered.one("ConfigMap", ca_cm)["data"]["ca.crt"].startswith("-----BEGIN CERTIFICATE-----")

    # changing the config rolls the pods
    def checksum(r: Rendered) -> str:
        value: str = r.one("Deployment")["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
        return value

    changed = copy.deepcopy(values)
    changed["config"]["unmatchedArtifacts"] = "warn"
    assert checksum(render(chart, changed)) != checksum(rendered)


def _keys(node: Any) -> set[str]:
    if isinstance(node, dict):
        return {k for k in node if isinstance(k, str)} | {k for v in node.values() for k in _keys(v)}
    if isinstance(node, list):
        return {k for v in node for k in _keys(v)}
    return set()


def test_the_rendered_config_is_camel_case(chart: Any) -> None:
    values = {
        "mode": "warn",
        "registry": {"credentialsSecret": "regcred", "caBundle": "-----BEGIN CERTIFICATE-----\n"},
        "opa": {"enabled": True},
        "energyUsage": {"configMap": "guard-usage"},
        "config": {"admission": {"exemptNamespaces": ["ci"]}},
    }
    written = yaml.safe_load(render(chart, values).config_text)
    assert not {k for k in _keys(written) if "_" in k}, written
    assert written["admission"]["timeoutSeconds"] == 10
    assert written["unmatchedArtifacts"] == "warn" and written["policy"]["defaultEnforcement"] == "warn"


def test_snake_case_config_values_still_render_and_load(chart: Any, caplog: pytest.LogCaptureFixture) -> None:
    # values written before the config went camelCase: the keys the chart reads or sets are
    # moved to their camelCase spelling (never written twice); the others load with a warning
    values = {
        "mode": "warn",
        "registry": {"credentialsSecret": "regcred"},
        "config": {
            "unmatched_artifacts": "allow",
            "policy": {"default_enforcement": "deny"},
            "admission": {
                "exempt_namespaces": ["ci"],
                "deadline_margin_seconds": 2,
                "fail_open_rules": [],
                "registry": {"docker_config": "/elsewhere.json"},
            },
        },
    }
    rendered = render(chart, values)
    written = yaml.safe_load(rendered.config_text)
    assert written["unmatchedArtifacts"] == "allow" and "unmatched_artifacts" not in written
    admission = written["admission"]
    assert "ci" in admission["exemptNamespaces"] and "exempt_namespaces" not in admission
    assert admission["deadlineMarginSeconds"] == 2 and "deadline_margin_seconds" not in admission
    assert admission["registry"] == {"dockerConfig": "/etc/guard/registry/config.json"}
    assert "ci" in _excluded_namespaces(rendered.webhook)
    assert "unmatchedArtifacts is allow" in rendered.notes
    with caplog.at_level(logging.WARNING, logger="guard.config"):
        config = parsed_config(rendered)
    assert config.admission.fail_open_rules == () and config.policy.default_enforcement == "warn"
    assert "admission.fail_open_rules is a deprecated spelling; write admission.failOpenRules" in caplog.text


def test_a_config_the_code_refuses_is_caught_by_the_test(chart: Any) -> None:
    # The JSON schema cannot express cross references; parse_config does, on the rendered file.
    from guard.errors import ConfigError

    values = {"config": {"rules": [{"name": "r", "artifacts": ["*"], "authorities": ["nobody"]}]}}
    chart.validate_schema(values)
    with pytest.raises(ConfigError, match=r"rules\.0\.authorities\.0: unknown authority 'nobody'"):
        parsed_config(render(chart, values))


def _library_files() -> dict[str, str]:
    """The repository's policy library without tests and samples, as policies.files."""
    root = ROOT / "policies"
    return {
        str(p.relative_to(root)): p.read_text(encoding="utf-8")
        for p in sorted(root.rglob("*.rego"))
        if not p.stem.endswith("_test")
    }


def _materialize(rendered: Rendered, volume_name: str, target: Path) -> Path:
    """Write a ConfigMap volume to disk the way the kubelet would (items: key -> path)."""
    volume = rendered.volume(volume_name)["configMap"]
    data = rendered.one("ConfigMap", volume["name"])["data"]
    for item in volume["items"]:
        path = target / item["path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(data[item["key"]], encoding="utf-8")
    return target


def test_policy_library_from_values_loads_as_the_repository_library(chart: Any, tmp_path: Path) -> None:
    from guard.policy.library import load_library

    rendered = render(chart, {"policies": {"files": _library_files()}})
    config = parsed_config(rendered)
    guard = rendered.container("guard")
    assert config.policy.directory is not None
    mount = _mount_for(guard, str(config.policy.directory) + "/x")
    assert mount["mountPath"] == str(config.policy.directory)
    library = load_library(_materialize(rendered, mount["name"], tmp_path / "lib"))
    expected = load_library(ROOT / "policies")
    assert [p.name for p in library.policies] == [p.name for p in expected.policies]


def test_opa_sidecar(chart: Any, tmp_path: Path) -> None:
    rendered = render(chart, {"opa": {"enabled": True}})
    config = parsed_config(rendered)
    from guard.policy.settings import OpaEngineSettings

    engine = config.policy.engine
    assert isinstance(engine, OpaEngineSettings)
    opa = rendered.container("opa")
    assert f"--addr=127.0.0.1:{engine.url.rsplit(':', 1)[1]}" in opa["args"]
    assert engine.url == "http://127.0.0.1:8181"
    # the library shipped in the image is copied out for OPA by an init container: run its code
    init = rendered.container("policies")
    assert init["command"][:2] == ["python3", "-c"]
    target = tmp_path / "opa-policies"
    subprocess.run([sys.executable, "-c", init["command"][2], str(target)], check=True, cwd=ROOT)
    copied = sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file())
    assert copied == sorted(_library_files())
    assert init["command"][3] == opa["args"][-1]
    assert opa["volumeMounts"][0]["mountPath"] == opa["args"][-1]


def test_opa_sidecar_with_policies_from_values(chart: Any, tmp_path: Path) -> None:
    from guard.policy.library import load_library

    rendered = render(chart, {"opa": {"enabled": True}, "policies": {"files": _library_files()}})
    assert "initContainers" not in rendered.pod
    opa_lib = load_library(_materialize(rendered, "opa-policies", tmp_path / "opa"))
    assert len(opa_lib.policies) == len(load_library(ROOT / "policies").policies)


def test_optional_objects(chart: Any, default: Rendered) -> None:
    for kind in ("ServiceMonitor", "NetworkPolicy"):
        assert default.all(kind) == []
    rendered = render(chart, EVERYTHING_ON)
    monitor = rendered.one("ServiceMonitor")
    endpoint = monitor["spec"]["endpoints"][0]
    assert (endpoint["scheme"], endpoint["path"], endpoint["port"]) == ("http", "/metrics", "metrics")
    # it selects the metrics Service only
    selector = monitor["spec"]["selector"]["matchLabels"]
    selected = [s for s in rendered.all("Service") if selector.items() <= s["metadata"]["labels"].items()]
    assert [s["metadata"]["name"] for s in selected] == [f"{RELEASE}-metrics"]
    policy = rendered.one("NetworkPolicy")
    assert policy["spec"]["ingress"] == [
        {"ports": [{"port": "https", "protocol": "TCP"}]},
        {"ports": [{"port": "metrics", "protocol": "TCP"}]},
    ]
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]


def test_other_fail_open_settings_are_warned(chart: Any, default: Rendered) -> None:
    assert "WARNING" not in default.notes
    config = {
        "rules": [{"name": "models", "artifacts": ["*"], "authorities": ["k"]}],
        "authorities": {"k": {"kind": "key", "key": "/etc/guard/trust/k.pub"}},
        "unmatchedArtifacts": "allow",
        "admission": {"failOpenRules": ["models"], "unknownKinds": "allow"},
    }
    rendered = render(chart, {"config": config})
    parsed_config(rendered)
    assert "failOpenRules (models)" in rendered.notes
    assert "unmatchedArtifacts is allow" in rendered.notes
    assert "unknownKinds is allow" in rendered.notes


def _kube_versions() -> list[str]:
    """The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest known."""
    import kubernetes_validate  # type: ignore[import-untyped]

    minimum = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text(encoding="utf-8"))["kubeVersion"]
    oldest = minimum.removeprefix(">=").removesuffix("-0")
    return [oldest, kubernetes_validate.utils.latest_version()]


@pytest.mark.parametrize(
    "values",
    [
        {},
        WARN_FIRST,
        TLS_MODES["cert-manager"],
        EVERYTHING_ON,
        PINNING_ON,
        SCANNER_ON,
        SCANNER_SHARDED,
        {**MIRRORS, **SCANNER_ON},
    ],
    ids=[
        "default",
        "warn-first",
        "cert-manager",
        "all-on",
        "pinning",
        "scanner",
        "scanner-sharded",
        "mirrors",
    ],
)
def test_manifests_match_the_kubernetes_api(chart: Any, values: dict[str, Any]) -> None:
    # Strict: an unknown or misplaced field is an error (the API server would drop or refuse it).
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    values = copy.deepcopy(values)
    values.setdefault("webhook", {})["matchConditions"] = [{"name": "not-dry-run", "expression": "true"}]
    rendered = render(chart, values)
    checked: set[str] = set()
    for obj in rendered.objects + rendered.hooks:
        for version in _kube_versions():
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.utils.SchemaNotFoundError:
                # CRDs (cert-manager, Prometheus Operator): no schema ships with Kubernetes
                assert obj["apiVersion"].split("/")[0] in {"cert-manager.io", "monitoring.coreos.com"}
                break
            checked.add(obj["kind"])
    core = {"ConfigMap", "Deployment", "Service", "ServiceAccount", "PodDisruptionBudget"}
    assert core | {"ValidatingWebhookConfiguration", "Job", "ClusterRole", "ClusterRoleBinding"} <= checked
    if values.get("pinning"):
        assert "MutatingWebhookConfiguration" in checked
    if values.get("scanner"):
        assert {"CronJob", "ClusterRole", "ClusterRoleBinding", "PersistentVolumeClaim"} <= checked


def _scanner_rules(rendered: Rendered) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = rendered.one("ClusterRole")["rules"]
    return rules


def test_scanner_rbac_is_read_only_over_the_kinds_table(chart: Any, default: Rendered) -> None:
    assert default.all("CronJob") == [] and default.all("ClusterRole") == []
    rendered = render(chart, SCANNER_ON)
    rules = _scanner_rules(rendered)
    assert {verb for rule in rules for verb in rule["verbs"]} == {"get", "list"}
    granted = {(g, r) for rule in rules for g in rule["apiGroups"] for r in rule["resources"]}
    wanted = {
        (group, resource)
        for rule in chart.values["webhook"]["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        if "/" not in resource
    }
    assert granted == wanted | {("", "namespaces"), ("", "nodes")}
    assert ("", "pods") in granted
    assert not {r for _, r in granted} & {"secrets", "configmaps", "*"}
    binding = rendered.one("ClusterRoleBinding")
    (subject,) = binding["subjects"]
    cron = rendered.one("CronJob")
    pod_spec = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert subject["name"] == pod_spec["serviceAccountName"] != rendered.pod.get("serviceAccountName")
    (container,) = pod_spec["containers"]
    _assert_restricted(container, pod_spec)
    script = container["args"][0]
    assert "guard scan --in-cluster --config /etc/guard/config/config.yaml" in script
    assert "--shard" not in script
    # results on a PVC, never in a ConfigMap
    claim = {v["name"]: v for v in pod_spec["volumes"]}["results"]["persistentVolumeClaim"]["claimName"]
    assert rendered.one("PersistentVolumeClaim", claim)["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert "configmaps" not in json.dumps(rules)


def test_scanner_sharded_is_an_indexed_job_merged_by_index_zero(chart: Any) -> None:
    rendered = render(chart, SCANNER_SHARDED)
    job = rendered.one("CronJob")["spec"]["jobTemplate"]["spec"]
    assert job["completionMode"] == "Indexed"
    assert job["completions"] == job["parallelism"] == 4
    script = job["template"]["spec"]["containers"][0]["args"][0]
    assert '--shard "$JOB_COMPLETION_INDEX/4"' in script
    assert "--write-reports openreports" in script
    assert 'guard scan merge "$run"/shard-*.json' in script
    (pvc,) = rendered.all("PersistentVolumeClaim")
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    reports = [r for r in _scanner_rules(rendered) if r["apiGroups"] == ["openreports.io"]]
    verbs = ["get", "create", "patch"]
    assert reports == [{"apiGroups": ["openreports.io"], "resources": ["reports"], "verbs": verbs}]


def test_scanner_script_runs_under_sh(chart: Any, tmp_path: Path) -> None:
    """The rendered shell script, run by a real sh with a stand-in guard: shards write their
    result, index 0 waits for all and merges, findings (exit 1) do not fail the Job."""
    rendered = render(chart, {"scanner": {"enabled": True, "shards": 3}})
    job = rendered.one("CronJob")["spec"]["jobTemplate"]["spec"]
    script = job["template"]["spec"]["containers"][0]["args"][0]
    results = tmp_path / "results"
    results.mkdir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "guard"
    fake.write_text(
        "#!/bin/sh\n"
        'out=""; prev=""; for a in "$@"; do [ "$prev" = -o ] && out=$a; prev=$a; done\n'
        'if [ "$2" = merge ]; then echo merged > "$out"; exit 1; fi\n'
        'echo "$*" > "$out"; exit 1\n'
    )
    fake.chmod(0o755)
    script = script.replace("/results", str(results))
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "JOB_NAME": "scan-1"}
    for index in (2, 1):
        shard_env = {**env, "JOB_COMPLETION_INDEX": str(index)}
        done = subprocess.run(["sh", "-c", script], env=shard_env, check=False)
        assert done.returncode == 0
    done = subprocess.run(["sh", "-c", script], env={**env, "JOB_COMPLETION_INDEX": "0"}, check=False)
    assert done.returncode == 0
    written = (results / "scan-1" / "shard-1.json").read_text().split()[-3:]
    assert written == ["1/3", "-o", f"{results}/scan-1/shard-1.json"]
    assert (results / "latest.json").read_text() == "merged\n"


def test_scanner_refuses_opa_sidecar_and_unknown_report_flavor(chart: Any) -> None:
    with pytest.raises(helm.HelmRenderError) as err:
        render(chart, {"scanner": {"enabled": True}, "opa": {"enabled": True}})
    assert "no OPA sidecar" in str(err.value)
    with pytest.raises(helm.HelmValuesError):
        render(chart, {"scanner": {"enabled": True, "writeReports": "configmap"}})


def test_pinning_webhook_mirrors_the_validating_one(chart: Any) -> None:
    rendered = render(chart, PINNING_ON)
    (hook,) = rendered.one("MutatingWebhookConfiguration")["webhooks"]
    assert hook["reinvocationPolicy"] == "IfNeeded"
    assert hook["sideEffects"] == "None"
    assert hook["failurePolicy"] == "Fail"
    assert hook["clientConfig"]["service"]["path"] == "/mutate"
    validating = rendered.webhook
    for key in ("namespaceSelector", "rules", "timeoutSeconds"):
        assert hook[key] == validating[key], key
    assert hook["clientConfig"]["caBundle"] == validating["clientConfig"]["caBundle"]
    assert hook["namespaceSelector"]["matchLabels"] == {"guard.cnai.dev/enforce": "true"}


def test_deployment_replicasets_are_not_sent_twice_but_pods_are(chart: Any, default: Rendered) -> None:
    (condition,) = default.webhook["matchConditions"]
    assert condition["name"] == "not-a-deployments-replicaset"
    assert "request.resource.resource == 'replicasets'" in condition["expression"]
    assert "o.kind == 'Deployment'" in condition["expression"]
    resources = {r for rule in default.webhook["rules"] for r in rule["resources"]}
    assert {"pods", "replicasets", "deployments"} <= resources
    user = {"name": "no-dry-run", "expression": "!request.dryRun"}
    rendered = render(chart, {"webhook": {"skipDeploymentReplicaSets": False, "matchConditions": [user]}})
    assert rendered.webhook["matchConditions"] == [user]
    values = {"mode": "deny", "pinning": {"enabled": True}, "webhook": {"matchConditions": [user]}}
    both = render(chart, values)
    (hook,) = both.one("MutatingWebhookConfiguration")["webhooks"]
    assert [c["name"] for c in hook["matchConditions"]] == ["not-a-deployments-replicaset", "no-dry-run"]


@pytest.mark.parametrize(
    ("resource", "owners", "sent"),
    [
        (
            ("apps", "replicasets"),
            [{"apiVersion": "apps/v1", "kind": "Deployment", "controller": True}],
            False,
        ),
        (("apps", "replicasets"), [{"apiVersion": "apps/v1", "kind": "Deployment"}], True),  # not controller
        (("apps", "replicasets"), None, True),  # a bare ReplicaSet
        (
            ("apps", "replicasets"),
            [{"apiVersion": "x.io/v1", "kind": "Deployment", "controller": True}],
            True,
        ),
        (("", "pods"), [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "controller": True}], True),
        (("apps", "deployments"), None, True),
    ],
    ids=["deployment-rs", "non-controller", "bare-rs", "foreign-deployment", "owned-pod", "deployment"],
)
def test_the_replicaset_condition_evaluates_as_cel(
    default: Rendered, resource: tuple[str, str], owners: list[dict[str, Any]] | None, sent: bool
) -> None:
    celpy = pytest.importorskip("celpy", reason="cel-python (a CEL evaluator) is not installed")
    (condition,) = default.webhook["matchConditions"]
    env = celpy.Environment()
    program = env.program(env.compile(condition["expression"]))
    metadata: dict[str, Any] = {"name": "x"} if owners is None else {"name": "x", "ownerReferences": owners}
    activation = {
        "request": celpy.json_to_cel(
            {"resource": {"group": resource[0], "version": "v1", "resource": resource[1]}}
        ),
        "object": celpy.json_to_cel({"metadata": metadata}),
    }
    assert bool(program.evaluate(activation)) is sent


def test_pinning_is_never_installed_in_warn_mode(chart: Any, default: Rendered) -> None:
    assert default.all("MutatingWebhookConfiguration") == []
    rendered = render(chart, {"mode": "warn", "pinning": {"enabled": True}})
    assert rendered.all("MutatingWebhookConfiguration") == []
    assert "digest-pinning webhook is installed with mode=deny only" in rendered.notes


def test_extra_kinds_without_a_webhook_rule_are_warned(chart: Any) -> None:
    kind = {"group": "example.com", "kind": "Notebook", "podSpecs": ["spec.template.spec"]}
    rendered = render(chart, {"config": {"admission": {"kinds": [kind]}}})
    assert parsed_config(rendered).admission.kinds[0].kind == "Notebook"
    assert 'no entry of\nwebhook.rules names the resource "notebooks"' in rendered.notes
    rule = {"apiGroups": ["example.com"], "apiVersions": ["v1"], "resources": ["notebooks"]}
    routed = render(
        chart,
        {
            "config": {"admission": {"kinds": [kind]}},
            "webhook": {"rules": [*chart.values["webhook"]["rules"], rule]},
        },
    )
    assert "WARNING" not in routed.notes
    assert routed.webhook["rules"][-1]["resources"] == ["notebooks"]


def test_single_replica_is_warned(chart: Any) -> None:
    rendered = render(chart, {"replicaCount": 1})
    assert "single point of failure" in rendered.notes


def test_image_pinned_by_digest(chart: Any, default: Rendered) -> None:
    assert default.container("guard")["image"] == "ghcr.io/cnai/guard:0.1.0"
    digest = "sha256:" + "a" * 64
    rendered = render(chart, {"image": {"digest": digest, "tag": "1.2.3"}, "scanner": {"enabled": True}})
    assert rendered.container("guard")["image"] == f"ghcr.io/cnai/guard@{digest}"  # the digest wins
    scanner = rendered.one("CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert scanner["image"] == f"ghcr.io/cnai/guard@{digest}"
    # values.schema.json refuses a malformed digest with its path (the template's own fail, for
    # installs that skip the schema, says the same)
    for bad in ("sha256:abc", "a" * 64, "sha512:" + "a" * 128, "sha256:" + "A" * 64):
        with pytest.raises(helm.errors.HelmValuesError, match="at '/image/digest'"):
            render(chart, {"image": {"digest": bad}})
    with pytest.raises(helm.errors.HelmValuesError, match="at '/opa/image/digest'"):
        render(chart, {"opa": {"enabled": True, "image": {"digest": "latest"}}})


def test_a_malformed_digest_fails_the_render_without_the_schema(tmp_path: Path) -> None:
    import shutil

    copy_dir = tmp_path / "guard"
    shutil.copytree(CHART_DIR, copy_dir)
    (copy_dir / "values.schema.json").unlink()  # as --skip-schema-validation would
    with helm.Chart.load(copy_dir) as loaded:
        with pytest.raises(helm.errors.HelmRenderError, match=r"image\.digest: expected sha256: and 64"):
            render(loaded, {"image": {"digest": "sha256:abc"}})
        with pytest.raises(helm.errors.HelmRenderError, match=r"opa\.image\.digest: expected"):
            render(loaded, {"opa": {"enabled": True, "image": {"digest": "latest"}}})


def test_chart_metadata_is_complete() -> None:
    meta = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text(encoding="utf-8"))
    for key in ("home", "icon", "kubeVersion", "appVersion"):
        assert meta[key]
    assert meta["sources"] and meta["maintainers"]
    icon = meta["icon"].removeprefix("https://raw.githubusercontent.com/cnai/guard/main/")
    assert (ROOT / icon).is_file()  # the icon it names is in the repository


def test_defaults_are_not_mutated_between_renders(chart: Any) -> None:
    # sprig's set mutates maps: rendering twice must give the same config
    values: dict[str, Any] = {"config": {"admission": {"exemptNamespaces": ["ci"]}}}
    first = render(chart, copy.deepcopy(values)).config_text
    assert render(chart, copy.deepcopy(values)).config_text == first


def test_energy_usage_configmap_is_mounted_and_configured(chart: Any, default: Rendered) -> None:
    assert "energy-usage" not in [v["name"] for v in default.pod["volumes"]]
    rendered = render(chart, {"energyUsage": {"configMap": "guard-usage"}})
    assert rendered.volume("energy-usage")["configMap"] == {"name": "guard-usage", "optional": True}
    mounts = {m["name"]: m for m in rendered.container("guard")["volumeMounts"]}
    assert mounts["energy-usage"]["mountPath"] == "/etc/guard/usage" and mounts["energy-usage"]["readOnly"]
    config = parsed_config(rendered)
    assert str(config.energy.usage_file) == "/etc/guard/usage/usage.json"
    both = {"energyUsage": {"configMap": "guard-usage"}, "config": {"energy": {"usageFile": "/x.json"}}}
    with pytest.raises(helm.HelmRenderError, match=r"conflicts with energyUsage\.configMap"):
        render(chart, both)


# --- registry mirrors (air-gapped clusters) ----------------------------------------------------


def _scanner_pod(rendered: Rendered) -> dict[str, Any]:
    spec: dict[str, Any] = rendered.one("CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return spec


def test_mirrors_are_mounted_read_only_in_the_webhook_and_the_scanner(chart: Any, default: Rendered) -> None:
    rendered = render(chart, {**MIRRORS, **SCANNER_ON})
    scanner = _scanner_pod(rendered)
    for pod, container in ((rendered.pod, rendered.container("guard")), (scanner, scanner["containers"][0])):
        mounts = {m["name"]: m for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert mounts["mirror-0"] == {
            "name": "mirror-0",
            "mountPath": MIRROR_PATHS[MIRROR_HOST],
            "readOnly": True,
        }
        assert mounts["mirror-1"] == {
            "name": "mirror-1",
            "mountPath": MIRROR_PATHS["other.example:5000"],
            "subPath": "a/b",
            "readOnly": True,
        }
        # the source is read-only too (no write, and no fsGroup chown of the mirror's files)
        assert volumes["mirror-0"] == {
            "name": "mirror-0",
            "persistentVolumeClaim": {"claimName": "guard-mirror", "readOnly": True},
        }
        assert volumes["mirror-1"] == {
            "name": "mirror-1",
            "nfs": {"server": "nfs.example", "path": "/m", "readOnly": True},
        }
        # the pod stays as strict as without mirrors
        assert pod["securityContext"] == default.pod["securityContext"]
        _assert_restricted(container, pod)
        assert container["securityContext"] == default.container("guard")["securityContext"]
    assert f"{MIRROR_HOST}: {MIRROR_PATHS[MIRROR_HOST]}\n" in rendered.notes
    assert "other.example:5000: /var/lib/guard/mirrors/other.example_5000 (subPath a/b)" in rendered.notes
    assert "mirror" not in default.notes
    # a source without a readOnly field (an image volume, a hostPath) is mounted as given
    source = {"image": {"reference": "registry.local/mirror:v1"}}
    image = {"mirrors": [{"host": MIRROR_HOST, "volume": source}]}
    assert render(chart, image).volume("mirror-0") == {"name": "mirror-0", **source}


def test_the_rendered_config_names_the_mounted_mirrors(chart: Any, tmp_path: Path) -> None:
    from guard.config import load_config

    rendered = render(chart, {**MIRRORS, "config": {"registries": [{"host": "kept.example"}]}})
    written = yaml.safe_load(rendered.config_text)
    assert written["registries"] == [
        {"host": "kept.example"},
        {"host": MIRROR_HOST, "mirror": {"ociLayout": MIRROR_PATHS[MIRROR_HOST]}},
        {"host": "other.example:5000", "mirror": {"ociLayout": MIRROR_PATHS["other.example:5000"]}},
    ]
    guard = rendered.container("guard")
    for entry in written["registries"][1:]:
        layout = entry["mirror"]["ociLayout"]
        assert _mount_for(guard, layout + "/repository")["name"].startswith("mirror-")
    # guard loads it once the volumes are there (a missing mirror directory is a config error)
    root = tmp_path / "pod"
    _materialize_pod_files(rendered, guard, root)
    config_file = root / "etc/guard/config/config.yaml"
    config_file.write_text(_rooted(guard, root)(config_file.read_text(encoding="utf-8")), encoding="utf-8")
    config = load_config(config_file)
    layouts = {r.host: r.mirror.oci_layout for r in config.registries if r.mirror is not None}
    assert layouts == {host: root / path.lstrip("/") for host, path in MIRROR_PATHS.items()}


def test_a_model_in_the_mounted_mirror_is_verified_by_the_rendered_config(chart: Any, tmp_path: Path) -> None:
    # The mirror volume filled as a user fills it (guard push into OCI layouts), the rendered config
    # loaded, and the admission app answering: what the mirror holds signed is allowed, what it
    # lacks is denied with the path guard looked at. No registry runs; the host never resolves.
    import httpx

    from guard.config import load_config
    from guard.testing.admission import admission_review, pod
    from guard.testing.admission_registry import publish_models
    from webhook.server import WebhookServer, build_app
    from webhook.tls import ReloadingCertificate

    root = tmp_path / "pod"
    mirror_dir = root / MIRROR_PATHS[MIRROR_HOST].lstrip("/")
    models = publish_models(MIRROR_HOST, tmp_path / "models", prefix="team", mirror=mirror_dir)
    config = models.config()
    config["authorities"]["ci"]["key"] = "/etc/guard/trust/ci.pub"
    values = {
        "mirrors": MIRRORS["mirrors"][:1],
        "trustFiles": {"ci.pub": models.public_key.read_text(encoding="utf-8")},
        "config": config,
    }
    rendered = render(chart, values)
    guard = rendered.container("guard")
    _materialize_pod_files(rendered, guard, root)
    config_file = root / "etc/guard/config/config.yaml"
    config_file.write_text(_rooted(guard, root)(config_file.read_text(encoding="utf-8")), encoding="utf-8")
    certificate = ReloadingCertificate(root / "etc/guard/tls/tls.crt", root / "etc/guard/tls/tls.key")
    server = WebhookServer(build_app(load_config(config_file), certificate), certificate).start()
    ca = base64.b64decode(rendered.webhook["clientConfig"]["caBundle"]).decode()
    sni = {"sni_hostname": f"{RELEASE}.{NAMESPACE}.svc"}
    verify = ssl.create_default_context(cadata=ca)
    try:
        with httpx.Client(base_url=server.url, verify=verify, timeout=30) as client:

            def answer(image: str) -> dict[str, Any]:
                response = client.post("/validate", json=admission_review(pod(image)), extensions=sni)
                assert response.status_code == 200, response.text
                result: dict[str, Any] = response.json()["response"]
                return result

            assert answer(models.signed)["allowed"] is True
            assert answer(models.unsigned)["allowed"] is False
            absent = answer(f"{MIRROR_HOST}/team/absent:v1")
            assert absent["allowed"] is False
            assert f"no OCI image layout at {mirror_dir}/team/absent" in absent["status"]["message"]
    finally:
        server.stop()


def test_a_mirror_merges_into_the_hosts_registries_entry(chart: Any) -> None:
    path = MIRROR_PATHS[MIRROR_HOST]
    for own in ({}, {"mirror": {"ociLayout": path}}, {"mirror": {"oci_layout": path}}):
        values = {**MIRRORS, "config": {"registries": [{"host": MIRROR_HOST.upper(), **own}]}}
        written = yaml.safe_load(render(chart, values).config_text)["registries"]
        assert written[0] == {"host": MIRROR_HOST.upper(), "mirror": {"ociLayout": path}}
        assert [r["host"] for r in written] == [MIRROR_HOST.upper(), "other.example:5000"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"mirrors": [*MIRRORS["mirrors"], {"host": MIRROR_HOST.upper(), "volume": {"emptyDir": {}}}]},
            f"mirrors[2].host: {MIRROR_HOST.upper()} is mirrored twice (mirrors[0] names it too)",
        ),
        (
            {**MIRRORS, "config": {"registries": [{"host": MIRROR_HOST, "mirror": {"ociLayout": "/srv/m"}}]}},
            f"config.registries.0.mirror.ociLayout (/srv/m) conflicts with mirrors ({MIRROR_HOST}, "
            f"mounted at {MIRROR_PATHS[MIRROR_HOST]}): give one of them",
        ),
        (
            {"mirrors": [{"host": MIRROR_HOST, "volume": {"nfs": {"server": "s", "readOnly": False}}}]},
            "mirrors[0].volume.nfs.readOnly is false: guard reads a mirror and never writes it",
        ),
    ],
    ids=["duplicate-host", "conflicting-oci-layout", "writable-source"],
)
def test_inconsistent_mirrors_fail_the_render(chart: Any, values: dict[str, Any], message: str) -> None:
    chart.validate_schema(values)  # the schema cannot tell: the render does
    with pytest.raises(helm.HelmRenderError) as err:
        render(chart, values)
    assert message in str(err.value)


def test_no_mirrors_change_nothing(chart: Any) -> None:
    # tls.mode secret: no certificate generated, so two renders are byte-comparable
    base = {**TLS_MODES["secret"], **SCANNER_ON}

    def manifests(values: dict[str, Any]) -> dict[str, str]:
        rendered: dict[str, str] = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
        return rendered

    without = manifests(base)
    assert manifests({**base, "mirrors": []}) == without
    rendered = Rendered(without)
    assert "registries" not in yaml.safe_load(rendered.config_text)
    assert "/var/lib/guard" not in "".join(without.values())


@pytest.mark.parametrize(
    "host",
    [
        "registry.example.com",
        "Registry.Example.com:5000",
        "localhost",
        "localhost:5000",
        "registry:5000",
        "10.0.0.1:5000",
        "[::1]:5000",
        "registry",
        "a_b.example",
        "registry.example.com/models",
        "https://registry.example.com",
        "-bad.example",
        "",
    ],
)
def test_the_schema_accepts_the_mirror_hosts_guard_accepts(chart: Any, host: str) -> None:
    from guard.oci.settings import RegistryHost

    try:
        RegistryHost(host=host)
        guard_accepts = True
    except ValueError:
        guard_accepts = False
    values = {"mirrors": [{"host": host, "volume": {"emptyDir": {}}}]}
    if guard_accepts:
        chart.validate_schema(values)
    else:
        with pytest.raises(helm.HelmValuesError, match="host"):
            chart.validate_schema(values)


@pytest.mark.parametrize(
    "mirror",
    [
        {"host": MIRROR_HOST},
        {"volume": {"emptyDir": {}}},
        {"host": MIRROR_HOST, "volume": {}},
        {"host": MIRROR_HOST, "volume": {"emptyDir": {}, "nfs": {"server": "s", "path": "/"}}},
        {"host": MIRROR_HOST, "volume": {"name": "mine"}},
        {"host": MIRROR_HOST, "volume": {"hostPath": "/srv/mirror"}},
        {"host": MIRROR_HOST, "volume": {"emptyDir": {}}, "subPath": "../etc"},
        {"host": MIRROR_HOST, "volume": {"emptyDir": {}}, "subPath": "/abs"},
        {"host": MIRROR_HOST, "volume": {"emptyDir": {}}, "mountPath": "/elsewhere"},
    ],
    ids=[
        "no-volume",
        "no-host",
        "empty-volume",
        "two-sources",
        "named",
        "not-a-source",
        "dotdot",
        "absolute",
        "unknown-key",
    ],
)
def test_bad_mirrors_are_rejected_by_the_schema(chart: Any, mirror: dict[str, Any]) -> None:
    with pytest.raises(helm.HelmValuesError, match=r"mirrors"):
        chart.validate_schema({"mirrors": [mirror]})


def test_the_air_gapped_guide_shows_what_the_chart_renders(chart: Any) -> None:
    guide = (ROOT / "docs" / "guides" / "air-gapped.md").read_text(encoding="utf-8")
    blocks = [yaml.safe_load(b) for b in re.findall(r"^```yaml\n(.*?)^```", guide, re.M | re.S)]
    values = next(b for b in blocks if isinstance(b, dict) and "mirrors" in b)
    shown = next(b for b in blocks if isinstance(b, dict) and set(b) == {"registries"})
    chart.validate_schema(values)
    rendered = render(chart, values)
    assert yaml.safe_load(rendered.config_text)["registries"] == shown["registries"]
    mounts = {m["mountPath"] for m in rendered.container("guard")["volumeMounts"]}
    assert {r["mirror"]["ociLayout"] for r in shown["registries"]} <= mounts
