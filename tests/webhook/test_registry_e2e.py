"""The real webhook (real wiring: OCI verification, attestations, Rego policies) over real TLS,
against Debian's docker-registry holding signed, unsigned and tampered models."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from guard.config import parse_config
from guard.testing.admission import admission_review, pod
from guard.testing.admission_net import refused_address
from guard.testing.admission_registry import PublishedModels, publish_models
from guard.testing.faultproxy import FaultProxy
from webhook.server import WebhookServer, build_app
from webhook.tls import ReloadingCertificate

pytestmark = pytest.mark.registry


@pytest.fixture(scope="module")
def models(registry: Any, tmp_path_factory: pytest.TempPathFactory) -> PublishedModels:
    return publish_models(registry.host, tmp_path_factory.mktemp("webhook-models"), prefix="webhook-e2e")


@pytest.fixture
def serve(tls_files: tuple[Path, Path], client_context: ssl.SSLContext) -> Iterator[Any]:
    running: list[tuple[WebhookServer, httpx.Client]] = []

    def start(config: dict[str, Any]) -> httpx.Client:
        app = build_app(parse_config(config), ReloadingCertificate(*tls_files))
        server = WebhookServer(app, ReloadingCertificate(*tls_files)).start()
        client = httpx.Client(base_url=server.url, verify=client_context, timeout=30)
        running.append((server, client))
        return client

    yield start
    for server, client in running:
        client.close()
        server.stop()


def answer(client: httpx.Client, obj: dict[str, Any], **kw: Any) -> dict[str, Any]:
    response = client.post("/validate", json=admission_review(obj, **kw))
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()["response"]
    return result


def test_signed_model_is_allowed_and_attributed(models: PublishedModels, serve: Any) -> None:
    client = serve(models.config())
    result = answer(client, pod(models.signed))
    assert result["allowed"] is True, result
    verified = json.loads(result["auditAnnotations"]["verified"])
    assert verified[0]["digest"] == models.signed_digest
    assert verified[0]["signers"][0].startswith("sha256:")  # the key's fingerprint
    assert any(models.signed_digest in w and "pin the digest" in w for w in result["warnings"])
    pinned = models.signed.rsplit(":", 1)[0] + "@" + models.signed_digest
    assert answer(client, pod(pinned))["allowed"] is True


def test_unsigned_and_tampered_are_denied_with_the_reason(models: PublishedModels, serve: Any) -> None:
    client = serve(models.config())
    unsigned = answer(client, pod(models.unsigned))
    assert unsigned["allowed"] is False
    assert "no signature is attached" in unsigned["status"]["message"]
    assert "container 'c0'" in unsigned["status"]["message"]
    tampered = answer(client, pod(models.tampered))
    assert tampered["allowed"] is False
    assert models.tampered_file in tampered["status"]["message"]


def test_dry_run_decides_the_same_and_is_marked(models: PublishedModels, serve: Any) -> None:
    client = serve(models.config())
    result = answer(client, pod(models.unsigned), dry_run=True)
    assert result["allowed"] is False
    assert result["auditAnnotations"]["dry-run"] == "true"


def test_kserve_oci_storage_uri_and_modelcar(models: PublishedModels, serve: Any) -> None:
    client = serve(models.config())
    isvc: dict[str, Any] = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "llm", "namespace": "team-a"},
        "spec": {
            "predictor": {
                "model": {"modelFormat": {"name": "huggingface"}, "storageUri": f"oci://{models.signed}"}
            }
        },
    }
    first = answer(client, isvc)
    assert first["allowed"] is True, first
    isvc["spec"]["predictor"]["model"]["storageUri"] = f"oci://{models.tampered}"
    denied = answer(client, isvc)
    assert denied["allowed"] is False and "storageUri" in denied["status"]["message"]


def test_slow_registry_is_denied_within_the_deadline(models: PublishedModels, serve: Any) -> None:
    with FaultProxy(models.host) as proxy:
        proxy.mode = "stall"  # connections accepted and forwarded, no answer ever comes back
        config = models.config(admission={"timeoutSeconds": 2, "deadlineMarginSeconds": 1.2})
        config["rules"][0]["artifacts"].append(f"{proxy.address}/**")
        client = serve(config)
        image = models.signed.replace(models.host, proxy.address)
        result = answer(client, pod(image))
        assert proxy.connections >= 1
    assert result["allowed"] is False
    assert "deadline" in result["status"]["message"]


def test_registry_down_fails_closed(models: PublishedModels, serve: Any) -> None:
    down = refused_address()
    config = models.config()
    config["rules"][0]["artifacts"].append(f"{down}/**")
    client = serve(config)
    result = answer(client, pod(f"{down}/models/m:v1"))
    assert result["allowed"] is False
    assert "could not verify" in result["status"]["message"], result["status"]["message"]
    assert "fails closed" in result["status"]["message"]


def test_registry_down_fails_open_for_a_fail_open_rule(models: PublishedModels, serve: Any) -> None:
    down = refused_address()
    config = models.config(admission={"failOpenRules": ["models"]})
    config["rules"][0]["artifacts"].append(f"{down}/**")
    client = serve(config)
    result = answer(client, pod(f"{down}/models/m:v1"))
    assert result["allowed"] is True, result
    assert any("fails open" in w for w in result["warnings"])


def test_a_ca_bundle_gone_after_start_up_fails_closed_under_a_fail_open_rule(
    models: PublishedModels, serve: Any, tls_files: tuple[Path, Path], tmp_path: Path
) -> None:
    # a rotated Secret, an unmounted volume: no registry is down, so no fail-open rule covers it
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(tls_files[0].read_bytes())
    config = models.config(admission={"failOpenRules": ["models"], "registry": {"caFile": str(bundle)}})
    client = serve(config)
    bundle.unlink()
    result = answer(client, pod(models.signed))
    assert result["allowed"] is False, result
    message = result["status"]["message"]
    assert "fails closed" in message and "CA bundle" in message and str(bundle) in message, message


def test_concurrent_pods_with_one_model_cause_one_verification(models: PublishedModels, serve: Any) -> None:
    client = serve(models.config())
    results: list[dict[str, Any]] = []
    barrier = threading.Barrier(8)

    def one(i: int) -> None:
        barrier.wait(10)
        results.append(answer(client, pod(models.signed, name=f"p{i}")))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 8 and all(r["allowed"] for r in results)
    metrics = client.get("/metrics").text
    assert 'guard_verification_cache_total{cache="verification",result="miss"} 1.0' in metrics
    assert 'guard_verification_cache_total{cache="tag",result="miss"} 1.0' in metrics


def test_registry_credentials_from_the_admission_docker_config(
    registry_auth: Any, tmp_path: Path, serve: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import base64

    from guard.oci.registry import RegistryAccess

    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-docker-config"))  # no ambient credentials
    user, password = registry_auth.username, registry_auth.password
    models = publish_models(
        registry_auth.host,
        tmp_path / "models",
        prefix="webhook-auth",
        access=RegistryAccess(username=user, password=password),
    )
    docker_config = tmp_path / "config.json"
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    docker_config.write_text(json.dumps({"auths": {registry_auth.host: {"auth": token}}}))

    with_credentials = serve(models.config(admission={"registry": {"dockerConfig": str(docker_config)}}))
    assert answer(with_credentials, pod(models.signed))["allowed"] is True

    without = serve(models.config())
    result = answer(without, pod(models.signed))
    assert result["allowed"] is False
    assert "could not verify" in result["status"]["message"], result["status"]["message"]
    assert password not in json.dumps(result)  # credentials never leak into answers
    assert "admission.registry.dockerConfig" in result["status"]["message"]

    # a registry that refuses the webhook's credentials (expired, rotated, missing) answered: it
    # is reachable, so a fail-open rule does not cover it (else every pod passes unverified)
    lenient = serve(models.config(admission={"failOpenRules": ["models"]}))
    result = answer(lenient, pod(models.signed))
    assert result["allowed"] is False, result
    assert "refused access" in result["status"]["message"], result["status"]["message"]


def test_rule_requiring_any_or_all_of_two_authorities(
    models: PublishedModels, serve: Any, tmp_path: Path
) -> None:
    from guard.signing.keys import generate_keypair

    other = generate_keypair(tmp_path / "other")
    config = models.config()
    config["authorities"]["release"] = {"kind": "key", "key": str(other.public_key)}
    config["rules"][0]["authorities"] = ["release", "ci"]
    any_of = serve(config)
    assert answer(any_of, pod(models.signed))["allowed"] is True
    config["rules"][0]["require"] = "all"
    all_of = serve(config)
    result = answer(all_of, pod(models.signed))
    assert result["allowed"] is False
    assert "failed verification under rule 'models'" in result["status"]["message"]


def test_required_attestation_missing_then_attached(registry: Any, tmp_path: Path, serve: Any) -> None:
    from guard.testing.admission_registry import attach_provenance

    models = publish_models(registry.host, tmp_path / "models", prefix="webhook-att")
    config = models.config()
    config["rules"][0]["required_attestations"] = ["provenance"]
    client = serve(config)
    missing = answer(client, pod(models.signed))
    assert missing["allowed"] is False
    assert "requires a valid provenance attestation" in missing["status"]["message"]

    attach_provenance(models.host, models.signed, models.signed_digest, models.private_key, tmp_path)
    fresh = serve(config)  # a new process: nothing cached
    present = answer(fresh, pod(models.signed))
    assert present["allowed"] is True, present


def test_a_tenant_s_authority_must_be_the_one_that_verified(
    models: PublishedModels, serve: Any, tmp_path: Path
) -> None:
    """Under a rule of two authorities (require any), a model signed by one of them is verified;
    tenancy.signers must see which one signed it, not every authority of the rule: a tenant
    trusting the other authority does not get a model only ``ci`` signed."""
    from guard.signing.keys import generate_keypair

    other = generate_keypair(tmp_path / "team-key")
    config = models.config()
    config["authorities"]["team-a-release"] = {"kind": "key", "key": str(other.public_key)}
    config["rules"][0]["authorities"] = ["team-a-release", "ci"]
    prefix = models.signed.rsplit("/", 1)[0]
    config["tenants"] = [
        {
            "name": "team-a",
            "namespaces": ["team-a"],
            "registries": [prefix],
            "authorities": ["team-a-release"],
        }
    ]
    config["policy"]["enforcement"] = {"provenance": "warn", "tenancy": "warn", "tenancy.signers": "deny"}
    result = answer(serve(config), pod(models.signed))
    assert result["allowed"] is False, result
    assert "[tenancy.signers]" in result["status"]["message"], result["status"]["message"]
    # the tenant trusting ci, the authority that signed, gets it
    config["tenants"][0]["authorities"] = ["ci"]
    assert answer(serve(config), pod(models.signed))["allowed"] is True
