"""`guard sign oci://...`: cosign v3 image signatures written by guard (a Sigstore bundle v0.3 as
an OCI 1.1 referrer, the fallback tag on Debian's docker-registry 2.8), in the shape of the real
cosign bundle of ``shared/fixtures/cosign``, verified by ``guard verify`` with a key and keyless
(guard.testing.sigstore); the wrong key, another image and a changed bundle are refused."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from guard.cli import run
from guard.oci.cosign_sign import COSIGN_SIGN_PREDICATE, cosign_key_hint, cosign_statement
from guard.oci.referrers import Attachment, attach, fallback_tag, list_referrers
from guard.oci.registry import RegistryAccess, RegistryStore
from guard.oci.types import OCI_EMPTY, OCI_MANIFEST, SIGSTORE_BUNDLE
from guard.signing.keys import KeyPair, generate_keypair
from guard.testing import cosign_fixtures as cf
from guard.testing.registry import push_test_image
from guard.testing.sigstore import DEFAULT_ISSUER, TestSigstore

if TYPE_CHECKING:
    from guard.testing.registry import RegistryServer

pytestmark = pytest.mark.registry
FIXTURES = cf.fixtures_dir(Path(__file__).resolve().parents[2])
REAL_BUNDLE = "bundle-v3-sign-keyless-kubewarden-controller"
WORKFLOW = "https://github.com/acme/guard/.github/workflows/release.yml@refs/tags/v0.1.0"


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[KeyPair, KeyPair]:
    return generate_keypair(tmp_path_factory.mktemp("k1")), generate_keypair(tmp_path_factory.mktemp("k2"))


@pytest.fixture
def image(registry: RegistryServer, repo: str) -> tuple[RegistryStore, str, str]:
    store = RegistryStore.open(registry.host, repo, RegistryAccess(), loopback=True)
    digest = push_test_image(store, "v1", b"layer of the signed image")
    return store, f"oci://{registry.host}/{repo}@{digest}", digest


def test_key_signature_is_cosign_v3_shaped_and_verifies(
    image: tuple[RegistryStore, str, str], keys: tuple[KeyPair, KeyPair], tmp_path: Path
) -> None:
    store, ref, digest = image
    copy = tmp_path / "image.sigstore.json"
    assert run(["sign", ref, "--key", str(keys[0].private_key), "--signature", str(copy)]) == 0
    # the referrer, as cosign v3 writes it (registry without the Referrers API: fallback tag)
    assert store.referrers(digest) is None
    (entry,) = list_referrers(store, digest)
    assert store.resolve(fallback_tag(digest)).media_type == "application/vnd.oci.image.index.v1+json"
    manifest = store.fetch_manifest(entry.digest).json()
    assert manifest["artifactType"] == SIGSTORE_BUNDLE == entry.artifact_type
    assert manifest["config"]["mediaType"] == OCI_EMPTY
    assert manifest["subject"]["digest"] == digest
    assert manifest["subject"]["mediaType"] == OCI_MANIFEST
    (layer,) = manifest["layers"]
    assert layer["mediaType"] == SIGSTORE_BUNDLE and "annotations" not in layer
    assert manifest["annotations"]["dev.sigstore.bundle.content"] == "dsse-envelope"
    assert manifest["annotations"]["dev.sigstore.bundle.predicateType"] == COSIGN_SIGN_PREDICATE
    assert "org.opencontainers.image.created" in manifest["annotations"]
    with store.fetch_blob(layer["digest"]) as chunks:
        bundle = json.loads(b"".join(chunks))
    assert bundle == json.loads(copy.read_bytes())
    assert bundle["verificationMaterial"]["publicKey"] == {
        "hint": cosign_key_hint(keys[0].public_key.read_bytes())
    }
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    assert statement == cosign_statement(digest)
    # guard verifies it, with the right key only
    assert run(["verify", ref, "--key", str(keys[0].public_key)]) == 0
    assert run(["verify", ref, "--key", str(keys[1].public_key)]) == 1


@pytest.mark.skipif(not FIXTURES.is_dir(), reason=f"cosign fixtures not found at {FIXTURES}")
def test_statement_has_the_shape_of_real_cosign_output() -> None:
    real = json.loads((FIXTURES / REAL_BUNDLE / "bundle.sigstore.json").read_bytes())
    assert real["mediaType"] == SIGSTORE_BUNDLE
    theirs = json.loads(base64.b64decode(real["dsseEnvelope"]["payload"]))
    ours = cosign_statement("sha256:" + theirs["subject"][0]["digest"]["sha256"])
    assert ours == theirs
    assert real["dsseEnvelope"]["payloadType"] == "application/vnd.in-toto+json"


def test_unsigned_and_changed_images_are_refused(
    image: tuple[RegistryStore, str, str], keys: tuple[KeyPair, KeyPair], registry: RegistryServer, repo: str
) -> None:
    store, ref, _ = image
    assert run(["sign", ref, "--key", str(keys[0].private_key)]) == 0
    other = push_test_image(store, "v2", b"another layer, never signed")
    assert run(["verify", f"oci://{registry.host}/{repo}@{other}", "--key", str(keys[0].public_key)]) == 1
    # signing by tag signs what the tag names now (with a warning); the other image is then signed
    assert run(["sign", f"oci://{registry.host}/{repo}:v2", "--key", str(keys[1].private_key)]) == 0
    assert run(["verify", f"oci://{registry.host}/{repo}@{other}", "--key", str(keys[1].public_key)]) == 0
    assert run(["verify", ref, "--key", str(keys[1].public_key)]) == 1


def test_directory_options_with_an_oci_target_are_usage_errors(
    image: tuple[RegistryStore, str, str], keys: tuple[KeyPair, KeyPair]
) -> None:
    _, ref, _ = image
    assert run(["sign", ref, "--key", str(keys[0].private_key), "--shard-size", "1G"]) == 2


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestSigstore]:
    sigstore = TestSigstore.create(tmp_path_factory.mktemp("sigstore"))
    with sigstore.serve():
        yield sigstore


def test_keyless_signature_verifies_with_identity_and_issuer(
    image: tuple[RegistryStore, str, str], served: TestSigstore
) -> None:
    _, ref, _ = image
    token = served.identity_token(WORKFLOW)
    trust = ["--trust-config", str(served.trust_config_path)]
    assert run(["sign", ref, "--keyless", "--identity-token", token, *trust]) == 0
    verify: list[Any] = ["verify", ref, "--issuer", DEFAULT_ISSUER, *trust]
    assert run([*verify, "--identity", WORKFLOW]) == 0
    assert run([*verify, "--identity", WORKFLOW.replace("v0.1.0", "v0.0.9")]) == 1


def test_replayed_and_tampered_bundles_are_refused(
    image: tuple[RegistryStore, str, str],
    keys: tuple[KeyPair, KeyPair],
    registry: RegistryServer,
    repo: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store, ref, _ = image
    copy = Path(registry.root) / f"{repo.replace('/', '-')}.sigstore.json"
    assert run(["sign", ref, "--key", str(keys[0].private_key), "--signature", str(copy)]) == 0
    bundle = json.loads(copy.read_bytes())
    # the valid bundle of one image attached to another: its subject names the first image
    replay = push_test_image(store, "replay", b"an image the bundle does not name")
    attach(store, store.resolve(replay), _signature(bundle))
    target = f"oci://{registry.host}/{repo}@{replay}"
    capsys.readouterr()
    assert run(["verify", target, "--key", str(keys[0].public_key)]) == 1
    assert f"not the manifest {replay}" in capsys.readouterr().err
    # a statement rewritten to name the other image, the signature kept
    forged = json.loads(json.dumps(bundle))
    other = push_test_image(store, "forged", b"an image with a forged statement")
    statement = cosign_statement(other)
    forged["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    attach(store, store.resolve(other), _signature(forged))
    assert run(["verify", f"oci://{registry.host}/{repo}@{other}", "--key", str(keys[0].public_key)]) == 1
    assert "the signature does not verify with the given key" in capsys.readouterr().err


def _signature(bundle: dict[str, Any]) -> Attachment:
    return Attachment(
        kind="signature",
        data=json.dumps(bundle).encode(),
        artifact_type=SIGSTORE_BUNDLE,
        layer_media_type=SIGSTORE_BUNDLE,
        filename="",
        annotations={"dev.sigstore.bundle.predicateType": COSIGN_SIGN_PREDICATE},
    )


def test_signature_copy_never_replaces_a_file_that_is_not_a_signature(
    image: tuple[RegistryStore, str, str],
    keys: tuple[KeyPair, KeyPair],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``--signature model/config.json`` (a typo, or a path a CI variable set) must not replace
    the user's file with the bundle, and must refuse before anything is attached."""
    store, ref, digest = image
    config = tmp_path / "model" / "config.json"
    config.parent.mkdir()
    config.write_text('{"architectures": ["LlamaForCausalLM"]}\n')
    assert run(["sign", ref, "--key", str(keys[0].private_key), "--signature", str(config)]) == 2
    assert "not a signature" in capsys.readouterr().err
    assert config.read_text() == '{"architectures": ["LlamaForCausalLM"]}\n'
    assert list_referrers(store, digest) == []
