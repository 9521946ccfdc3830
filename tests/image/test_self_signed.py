"""guard signs its own image (`make image-test`): the built image pushed to Debian's
docker-registry (``buildah push``), signed by the guard inside it (``guard sign oci://...@sha256``:
a cosign v3 bundle referrer), verified by that guard (``guard verify``) and by its webhook (a Pod
running guard's image is admitted; an unsigned image, or one signed with another key, is denied),
all as uid 65532 on a read-only root. Skipped unless GUARD_IMAGE names a built image."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from guard.oci.registry import RegistryAccess, RegistryStore
from guard.signing.keys import generate_keypair
from guard.testing.image_rootfs import Image, review, serving
from guard.testing.registry import push_test_image
from guard.testing.sigstore import TestSigstore

IMAGE = os.environ.get("GUARD_IMAGE", "")
STORAGE = ["--storage-driver", os.environ.get("STORAGE_DRIVER", "vfs")]

pytestmark = [
    pytest.mark.registry,
    pytest.mark.skipif(not IMAGE, reason="GUARD_IMAGE is not set (make image-test builds and sets it)"),
    pytest.mark.skipif(shutil.which("buildah") is None, reason="buildah is not installed"),
]
REPO = "guard/guard"
GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
WORKFLOW = "https://github.com/cnai/guard/.github/workflows/release-image.yml@refs/tags/v0.1.0"


@pytest.fixture(scope="module")
def pushed(registry: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    """guard's image in the registry: ``HOST/guard/guard@sha256:...`` (loopback, plain HTTP)."""
    digest_file = tmp_path_factory.mktemp("push") / "digest"
    subprocess.run(
        ["buildah", *STORAGE, "push", "--quiet", "--tls-verify=false", "--digestfile", str(digest_file),
         IMAGE, f"docker://{registry.host}/{REPO}:ci"],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    digest = digest_file.read_text().strip()
    assert digest.startswith("sha256:"), digest
    return f"{registry.host}/{REPO}@{digest}"


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the image's /tmp holds: the CI key pair and another key."""
    out = tmp_path_factory.mktemp("files")
    generate_keypair(out, name="ci")
    generate_keypair(out, name="other")
    return out


def test_guard_signs_and_verifies_its_own_image(image: Image, pushed: str, files: Path) -> None:
    signed = image.run("sign", f"oci://{pushed}", "--key", "/tmp/ci.pem", "--json", files=files)
    assert signed.returncode == 0, signed.stderr
    doc = json.loads(signed.stdout)
    assert doc["format"] == "cosign-bundle" and doc["subject"] == pushed.split("@")[1]
    verified = image.run("verify", f"oci://{pushed}", "--key", "/tmp/ci.pub.pem", "--json", files=files)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    result = json.loads(verified.stdout)
    assert result["verified"] is True and result["digest"] == doc["subject"]
    assert result["predicateType"] == "https://sigstore.dev/cosign/sign/v1"
    wrong = image.run("verify", f"oci://{pushed}", "--key", "/tmp/other.pub.pem", files=files)
    assert wrong.returncode == 1, wrong.stdout + wrong.stderr


def test_webhook_admits_guards_signed_image_and_denies_others(
    image: Image, pushed: str, files: Path, registry: Any, tmp_path: Path
) -> None:
    sign = image.run("sign", f"oci://{pushed}", "--key", "/tmp/ci.pem", files=files)
    assert sign.returncode == 0, sign.stderr
    store = RegistryStore.open(registry.host, "guard/unsigned", RegistryAccess(), loopback=True)
    unsigned = f"{registry.host}/guard/unsigned@{push_test_image(store, 'v1', b'not guard')}"
    other = f"{registry.host}/guard/unsigned@{push_test_image(store, 'v2', b'signed by another key')}"
    assert image.run("sign", f"oci://{other}", "--key", "/tmp/other.pem", files=files).returncode == 0
    served = tmp_path / "served"
    shutil.copytree(files, served)
    config = {
        "authorities": {"guard-ci": {"kind": "key", "key": "/tmp/ci.pub.pem"}},
        "rules": [{"name": "guard", "artifacts": [f"{registry.host}/guard/**"], "authorities": ["guard-ci"]}],
        "policy": {
            "requireSbom": False,
            "mutableTags": "warn",
            "enforcement": {"provenance": "warn", "tenancy": "warn"},
        },
    }
    (served / "config.yaml").write_text(yaml.safe_dump(config))
    with serving(image, served) as client:
        allowed = review(client, pushed)
        assert allowed["allowed"] is True, allowed
        verified = json.loads(allowed["auditAnnotations"]["verified"])
        assert verified[0]["digest"] == pushed.split("@")[1]
        for denied_image in (unsigned, other):
            denied = review(client, denied_image)
            assert denied["allowed"] is False, denied


def test_guard_signs_its_own_image_keyless(image: Image, pushed: str, tmp_path: Path) -> None:
    # the release workflow's keyless variant, against the test Sigstore instance on 127.0.0.1
    sigstore = TestSigstore.create(tmp_path / "sigstore", issuer=GITHUB_ISSUER)
    files = tmp_path / "keyless"
    files.mkdir()
    with sigstore.serve():
        shutil.copy(sigstore.trust_config_path, files / "trust.json")
        token = sigstore.identity_token(WORKFLOW)
        trust = ["--trust-config", "/tmp/trust.json"]
        signed = image.run(
            "sign", f"oci://{pushed}", "--keyless", "--identity-token", token, *trust, files=files
        )
        assert signed.returncode == 0, signed.stderr
    verify = ["verify", f"oci://{pushed}", "--issuer", GITHUB_ISSUER, *trust]
    verified = image.run(*verify, "--identity", WORKFLOW, files=files)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    other = image.run(*verify, "--identity", WORKFLOW.replace("v0.1.0", "v0.0.1"), files=files)
    assert other.returncode == 1, other.stdout + other.stderr
