"""The real webhook (``guard serve``'s app: real wiring, OCI verification, Rego policies) over TLS
admits container images signed by cosign itself (``../shared/fixtures/cosign``), loaded into
Debian's docker-registry, and denies the wrong signer with the reason."""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from guard.admission.ports import RuleMatch
from guard.admission.verifier import OciReferenceVerifier
from guard.config import parse_config
from guard.oci.registry import RegistryAccess, RegistryStore
from guard.policy.input import Signer
from guard.testing import cosign_fixtures as cf
from guard.testing.admission import admission_review, pod
from webhook.server import WebhookServer, build_app
from webhook.tls import ReloadingCertificate

FIXTURES = cf.fixtures_dir(Path(__file__).resolve().parents[2])
KEYLESS_IDENTITY = "philipp.belitz@securesystems.de"
KEYLESS_ISSUER = "https://github.com/login/oauth"
REPO = "cosign-e2e/testimage"

pytestmark = [
    pytest.mark.registry,
    pytest.mark.skipif(
        not FIXTURES.is_dir(), reason=f"cosign fixtures not found at {FIXTURES} (shared/ beside the clone)"
    ),
]


@pytest.fixture(scope="module")
def images(registry: Any) -> dict[str, cf.LegacyImage]:
    """Every legacy image of the fixtures in the registry, with its .sig tag."""
    store = RegistryStore.open(registry.host, REPO, RegistryAccess(), loopback=True)
    loaded = {}
    for set_name in (cf.LEGACY_KEY, cf.LEGACY_KEYLESS):
        for image in cf.legacy_images(FIXTURES / set_name):
            cf.load_into_registry(store, registry.root / "storage", REPO, image)
            loaded[image.tag] = image
    return loaded


def config(registry: Any, authority: dict[str, Any]) -> dict[str, Any]:
    return {
        "authorities": {"images": authority},
        "rules": [{"name": "images", "artifacts": [f"{registry.host}/{REPO}"], "authorities": ["images"]}],
        "policy": {
            "requireSbom": False,
            "mutableTags": "warn",
            "enforcement": {"provenance": "warn", "tenancy": "warn"},
        },
    }


def keyless(identity: str = KEYLESS_IDENTITY, issuer: str = KEYLESS_ISSUER) -> dict[str, Any]:
    return {
        "kind": "keyless",
        "issuer": issuer,
        "identity": identity,
        "trustConfig": str(FIXTURES / cf.LEGACY_KEYLESS / "trusted_root.json"),
        "offline": True,
    }


@pytest.fixture
def serve(tls_files: tuple[Path, Path], client_context: ssl.SSLContext) -> Iterator[Any]:
    running: list[tuple[WebhookServer, httpx.Client]] = []

    def start(doc: dict[str, Any]) -> httpx.Client:
        app = build_app(parse_config(doc), ReloadingCertificate(*tls_files))
        server = WebhookServer(app, ReloadingCertificate(*tls_files)).start()
        client = httpx.Client(base_url=server.url, verify=client_context, timeout=30)
        running.append((server, client))
        return client

    yield start
    for server, client in running:
        client.close()
        server.stop()


def answer(client: httpx.Client, image: str) -> dict[str, Any]:
    response = client.post("/validate", json=admission_review(pod(image)))
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()["response"]
    return result


def test_key_signed_image_admitted_and_wrong_key_denied(registry: Any, images: Any, serve: Any) -> None:
    three = images["multi-cosigned-alice-bob-charlie"]
    ref = f"{registry.host}/{REPO}@{three.digest}"
    bob = serve(config(registry, {"kind": "key", "key": str(FIXTURES / cf.LEGACY_KEY / "bob.pub")}))
    allowed = answer(bob, ref)
    assert allowed["allowed"] is True, allowed["status"]["message"]
    verified = json.loads(allowed["auditAnnotations"]["verified"])
    assert verified[0]["digest"] == three.digest and verified[0]["formats"] == ["cosign-legacy"]
    # bob signed the three-signer image, not the alice one
    denied = answer(bob, f"{registry.host}/{REPO}@{images['multi-cosigned-alice'].digest}")
    assert denied["allowed"] is False
    assert "does not verify with key" in denied["status"]["message"]
    other = serve(config(registry, {"kind": "key", "key": str(FIXTURES / cf.LEGACY_KEY / "default.pub")}))
    assert answer(other, ref)["allowed"] is False


def test_keyless_image_admitted_and_wrong_identity_or_issuer_denied(
    registry: Any, images: Any, serve: Any
) -> None:
    image = images["signed"]  # the keyless set's image-manifest.json
    ref = f"{registry.host}/{REPO}:{image.tag}"
    allowed = answer(serve(config(registry, keyless())), ref)
    assert allowed["allowed"] is True, allowed["status"]["message"]
    assert json.loads(allowed["auditAnnotations"]["verified"])[0]["signers"] == [KEYLESS_IDENTITY]
    wrong_identity = answer(serve(config(registry, keyless(identity="bob@gmail.com"))), ref)
    assert wrong_identity["allowed"] is False
    assert "signer identity mismatch: expected bob@gmail.com" in wrong_identity["status"]["message"]
    wrong_issuer = answer(serve(config(registry, keyless(issuer="https://accounts.google.com"))), ref)
    assert wrong_issuer["allowed"] is False
    assert "OIDC issuer mismatch" in wrong_issuer["status"]["message"]


def test_admission_verifier_and_policy_input_name_the_format(registry: Any, images: Any) -> None:
    """OciReferenceVerifier (the webhook's registry side) and the policy input it feeds say which
    signature format verified, so a policy can phase cosign's legacy format out."""
    image = images["signed"]
    verifier = OciReferenceVerifier(parse_config(config(registry, keyless())))
    reference = f"{registry.host}/{REPO}:{image.tag}"
    artifact = verifier.verify(reference, image.digest, RuleMatch(rule="images", trust_hash="t"))
    signer = artifact.signers[0]
    assert signer.identity == KEYLESS_IDENTITY
    assert signer.details["format"] == "cosign-legacy" and signer.details["signed_via"] == "manifest"
    as_input = Signer(signer.method, signer.identity, signer.issuer, signer.details["format"], "manifest")
    assert as_input.to_json() == {
        "method": "keyless",
        "identity": KEYLESS_IDENTITY,
        "issuer": KEYLESS_ISSUER,
        "format": "cosign-legacy",
        "signedVia": "manifest",
    }
