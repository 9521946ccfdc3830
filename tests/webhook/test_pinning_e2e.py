"""POST /mutate then POST /validate over real TLS against Debian's docker-registry: the tag is
resolved at the registry, the patch (applied with jsonpatch) pins the digest that was pushed, and
the validating webhook verifies that digest."""

from __future__ import annotations

import base64
import json
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonpatch
import pytest

from guard.config import parse_config
from guard.testing.admission import admission_review, pod
from guard.testing.admission_registry import PublishedModels, publish_models
from webhook.server import WebhookServer, build_app
from webhook.tls import ReloadingCertificate

pytestmark = pytest.mark.registry


@pytest.fixture(scope="module")
def models(registry: Any, tmp_path_factory: pytest.TempPathFactory) -> PublishedModels:
    return publish_models(registry.host, tmp_path_factory.mktemp("pin-models"), prefix="pin-e2e")


@pytest.fixture
def client(
    models: PublishedModels, tls_files: tuple[Path, Path], client_context: ssl.SSLContext
) -> Iterator[httpx.Client]:
    app = build_app(parse_config(models.config()), ReloadingCertificate(*tls_files))
    server = WebhookServer(app, ReloadingCertificate(*tls_files)).start()
    with httpx.Client(base_url=server.url, verify=client_context, timeout=30) as http:
        yield http
    server.stop()


def _post(client: httpx.Client, path: str, obj: dict[str, Any]) -> dict[str, Any]:
    response = client.post(path, json=admission_review(obj))
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()["response"]
    return answer


def test_mutate_pins_the_pushed_digest_and_validate_verifies_it(
    client: httpx.Client, models: PublishedModels
) -> None:
    obj = pod(models.signed)
    mutated = _post(client, "/mutate", obj)
    assert mutated["allowed"] is True
    assert mutated["patchType"] == "JSONPatch"
    patched = jsonpatch.apply_patch(obj, json.loads(base64.b64decode(mutated["patch"])))
    image = patched["spec"]["containers"][0]["image"]
    assert image == f"{models.signed}@{models.signed_digest}"
    # reinvocation: nothing more to do, and no patchType without a patch
    again = _post(client, "/mutate", patched)
    assert "patchType" not in again
    assert "patch" not in again
    validated = _post(client, "/validate", patched)
    assert validated["allowed"] is True, validated
    assert json.loads(validated["auditAnnotations"]["verified"])[0]["digest"] == models.signed_digest


def test_mutate_never_refuses_the_validating_side_does(client: httpx.Client, models: PublishedModels) -> None:
    obj = pod(models.unsigned)
    mutated = _post(client, "/mutate", obj)
    assert mutated["allowed"] is True
    patched = jsonpatch.apply_patch(obj, json.loads(base64.b64decode(mutated["patch"])))
    assert "@sha256:" in patched["spec"]["containers"][0]["image"]
    assert _post(client, "/validate", patched)["allowed"] is False


def test_a_malformed_review_is_a_400_at_mutate(client: httpx.Client) -> None:
    response = client.post("/mutate", content=b"{not json")
    assert response.status_code == 400
    assert "error" in response.json()


def test_warn_mode_config_admits_unsigned_with_a_warning_and_never_pins(
    models: PublishedModels, tls_files: tuple[Path, Path], client_context: ssl.SSLContext
) -> None:
    """What the chart's default mode: warn renders (admission.mode warn, policy enforcement and
    unmatched_artifacts warn): an unsigned model is admitted with the would-be denial as a warning
    and an audit annotation; nothing is pinned."""
    config = models.config(unmatched_artifacts="warn", admission={"mode": "warn"})
    config["policy"]["default_enforcement"] = "warn"
    config["policy"]["enforcement"] = {k: "warn" for k in config["policy"]["enforcement"]}
    app = build_app(parse_config(config), ReloadingCertificate(*tls_files))
    server = WebhookServer(app, ReloadingCertificate(*tls_files)).start()
    try:
        with httpx.Client(base_url=server.url, verify=client_context, timeout=30) as http:
            unsigned = _post(http, "/validate", pod(models.unsigned))
            assert unsigned["allowed"] is True, unsigned
            assert unsigned["warnings"][0].startswith("guard (mode warn) would deny: ")
            assert "no signature is attached" in unsigned["auditAnnotations"]["would-deny"]
            assert "status" not in unsigned
            assert "patch" not in _post(http, "/mutate", pod(models.signed))
    finally:
        server.stop()
