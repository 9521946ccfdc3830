"""Signatures made by cosign itself (``../shared/fixtures/cosign``), loaded into an OCI layout and
into Debian's docker-registry, give the results their READMEs expect, through ``verify_oci`` and
``guard verify``; wrong key, identity, issuer, digest and tampered evidence are refused with the
reason."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from guard.cli import run
from guard.errors import (
    IdentityMismatch,
    IntegrityError,
    SignatureMismatch,
    TransparencyLogError,
    UntrustedCertificate,
    VerificationError,
)
from guard.oci.cosign_bundle import verify_cosign_bundle
from guard.oci.layout import LayoutStore
from guard.oci.referrers import COSIGN_SIGNATURE, attach, load_attachment
from guard.oci.registry import RegistryAccess, RegistryStore
from guard.oci.types import (
    DOCKER_MANIFEST,
    OCI_EMPTY,
    OCI_EMPTY_BYTES,
    OCI_INDEX,
    OCI_MANIFEST,
    Store,
    sha256_digest,
)
from guard.oci.verify import SIGNATURE_PREDICATES, OciVerification, verify_oci
from guard.signing import KeyVerifier, SigstoreVerifier
from guard.signing.keys import load_public_key, public_key_fingerprint
from guard.testing import cosign_fixtures as cf

if TYPE_CHECKING:
    from guard.testing.registry import RegistryServer

FIXTURES = cf.fixtures_dir(Path(__file__).resolve().parents[2])
KEYLESS_IDENTITY = "philipp.belitz@securesystems.de"
KEYLESS_ISSUER = "https://github.com/login/oauth"
BUNDLE_IDENTITY = (
    "https://github.com/kubewarden/kubewarden-controller/.github/workflows/release.yml@refs/tags/v1.34.0"
)
BUNDLE_ISSUER = "https://token.actions.githubusercontent.com"
BUNDLE_SUBJECT = "sha256:c811d58de79c92f03214e63aa339484e488d694ae8a6283b5f3f17a9faf50172"

pytestmark = pytest.mark.skipif(
    not FIXTURES.is_dir(), reason=f"cosign fixtures not found at {FIXTURES} (shared/ beside the clone)"
)


def key(name: str) -> Path:
    return FIXTURES / cf.LEGACY_KEY / f"{name}.pub"


def keyless(
    identity: str | None = KEYLESS_IDENTITY, issuer: str = KEYLESS_ISSUER, identity_regex: str | None = None
) -> SigstoreVerifier:
    return SigstoreVerifier(
        issuer=issuer,
        identity=None if identity_regex else identity,
        identity_regex=identity_regex,
        trust_config=FIXTURES / cf.LEGACY_KEYLESS / "trusted_root.json",
        offline=True,
    )


# --- where the fixtures are loaded: an OCI layout, or the registry --------------------------


class Load(Protocol):
    def __call__(self, image: cf.LegacyImage, *, with_sig: bool = True) -> str: ...


Loaded = tuple[Store, Load]


@pytest.fixture(params=["layout", "registry"])
def where(request: pytest.FixtureRequest, tmp_path: Path, repo: str) -> Loaded:
    """(store, load): ``load(image)`` puts an image and its ``.sig`` tag in the store and
    returns the reference to verify (by tag)."""
    if request.param == "layout":
        layout = tmp_path / "layout"
        store: Store = LayoutStore(layout, create=True)

        def load_layout(image: cf.LegacyImage, *, with_sig: bool = True) -> str:
            cf.load_into_store(store, image, with_sig=with_sig)
            return f"oci-layout:{layout}:{image.tag}"

        return store, load_layout
    server: RegistryServer = request.getfixturevalue("registry")
    store = RegistryStore.open(server.host, repo, RegistryAccess(), loopback=True)

    def load_registry(image: cf.LegacyImage, *, with_sig: bool = True) -> str:
        cf.load_into_registry(store, server.root / "storage", repo, image, with_sig=with_sig)
        return f"oci://{server.host}/{repo}:{image.tag}"

    return store, load_registry


def images(set_name: str) -> dict[str, cf.LegacyImage]:
    return {image.tag: image for image in cf.legacy_images(FIXTURES / set_name)}


def check_legacy(result: OciVerification, image: cf.LegacyImage) -> None:
    assert result.digest == image.digest
    assert result.format == "cosign-legacy"
    assert result.signed_digest == image.digest and not result.via_index
    assert result.to_json()["format"] == "cosign-legacy"
    assert result.to_json()["signedVia"] == "manifest"


# --- legacy, key-signed, three signers ------------------------------------------------------


@pytest.mark.registry
def test_each_key_signature_verifies_with_exactly_its_key(where: Loaded) -> None:
    store, load = where
    sets = images(cf.LEGACY_KEY)
    expected = {
        "multi-cosigned-alice": {"alice": 0},
        "multi-cosigned-alice-bob-charlie": {"alice": 0, "bob": 1, "charlie": 2},
    }
    for tag, signers in expected.items():
        ref = load(sets[tag])
        for name in ("alice", "bob", "charlie", "default"):
            if name in signers:
                result = verify_oci(ref, KeyVerifier.from_file(key(name)), store)
                check_legacy(result, sets[tag])
                assert result.signature_layer == signers[name]
                assert result.signer.identity == public_key_fingerprint(load_public_key(key(name)))
                assert result.docker_reference == "index.docker.io/securesystemsengineering/testimage"
            else:
                with pytest.raises(SignatureMismatch, match="does not verify with key"):
                    verify_oci(ref, KeyVerifier.from_file(key(name)), store)


@pytest.mark.registry
def test_a_signature_of_another_digest_is_refused(where: Loaded) -> None:
    """The alice image's .sig manifest served as the .sig of the three-signer image: the payload
    names another digest, whatever key verifies it."""
    store, load = where
    sets = images(cf.LEGACY_KEY)
    alice, three = sets["multi-cosigned-alice"], sets["multi-cosigned-alice-bob-charlie"]
    swapped = cf.LegacyImage(three.tag, three.manifest, alice.sig_manifest, alice.payloads)
    ref = load(swapped)
    with pytest.raises(IntegrityError, match=f"signs '{alice.digest}', not the manifest {three.digest}"):
        verify_oci(ref, KeyVerifier.from_file(key("alice")), store)


@pytest.mark.registry
def test_an_image_without_signature_is_refused(where: Loaded) -> None:
    store, load = where
    ref = load(images(cf.LEGACY_KEY)["multi-cosigned-alice"], with_sig=False)
    with pytest.raises(VerificationError, match=r"no signature is attached.*\.sig"):
        verify_oci(ref, KeyVerifier.from_file(key("alice")), store)


@pytest.mark.registry
def test_oci11_referrer_variant_verifies_and_binds_its_subject(where: Loaded) -> None:
    """cosign's OCI 1.1 storage of the same signatures (artifactType
    application/vnd.dev.cosign.artifact.sig.v1+json, subject = the image)."""
    store, load = where
    three = images(cf.LEGACY_KEY)["multi-cosigned-alice-bob-charlie"]
    ref = load(three, with_sig=False)
    entry = cf.attach_as_referrer(store, three)
    result = verify_oci(ref, KeyVerifier.from_file(key("bob")), store)
    check_legacy(result, three)
    assert result.signature_digest == entry.digest and result.signature_layer == 1
    with pytest.raises(SignatureMismatch):
        verify_oci(ref, KeyVerifier.from_file(key("default")), store)


@pytest.mark.registry
def test_guard_verify_cli_on_a_cosign_signed_image(where: Loaded, capsys: pytest.CaptureFixture[str]) -> None:
    _, load = where
    image = images(cf.LEGACY_KEY)["multi-cosigned-alice-bob-charlie"]
    ref = load(image)
    assert run(["verify", ref, "--key", str(key("charlie")), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["format"] == "cosign-legacy" and out["digest"] == image.digest and out["signatureLayer"] == 2
    assert run(["verify", ref, "--key", str(key("default"))]) == 1
    assert "does not verify with key" in capsys.readouterr().err


# --- legacy, keyless (Fulcio certificate, Rekor SET only) -----------------------------------


@pytest.mark.registry
def test_keyless_legacy_signature_verifies_offline(where: Loaded) -> None:
    store, load = where
    image = next(iter(images(cf.LEGACY_KEYLESS).values()))
    ref = load(image)
    result = verify_oci(ref, keyless(), store)
    check_legacy(result, image)
    assert result.signer.method == "keyless"
    assert result.signer.identity == KEYLESS_IDENTITY and result.signer.issuer == KEYLESS_ISSUER
    assert result.signer.details["integrated_time"] == "2024-05-30T15:18:17+00:00"
    assert result.signer.details["log_index"] == "98235800"
    # signed under another name and served under this one: reported, not enforced (as cosign)
    assert result.docker_reference == "index.docker.io/phbelitz/rekor-test"
    regex = verify_oci(ref, keyless(identity_regex=r".*@securesystems\.de"), store)
    assert regex.signer.identity == KEYLESS_IDENTITY


@pytest.mark.registry
@pytest.mark.parametrize(
    ("identity", "issuer", "reason"),
    [
        ("bob@gmail.com", KEYLESS_ISSUER, "signer identity mismatch: expected bob@gmail.com"),
        (KEYLESS_IDENTITY, "https://accounts.google.com", "OIDC issuer mismatch"),
    ],
)
def test_keyless_legacy_wrong_identity_or_issuer_is_refused(
    where: Loaded, identity: str, issuer: str, reason: str
) -> None:
    store, load = where
    ref = load(next(iter(images(cf.LEGACY_KEYLESS).values())))
    with pytest.raises(IdentityMismatch, match=reason):
        verify_oci(ref, keyless(identity, issuer), store)


def _tampered(image: cf.LegacyImage, change: Callable[[dict[str, Any]], None]) -> list[dict[str, Any]]:
    layers = copy.deepcopy(image.layers())
    change(layers[0]["annotations"])
    return layers


def _shift_time(annotations: dict[str, Any]) -> None:
    bundle = json.loads(annotations["dev.sigstore.cosign/bundle"])
    bundle["Payload"]["integratedTime"] += 60
    annotations["dev.sigstore.cosign/bundle"] = json.dumps(bundle)


def _other_key_cert(annotations: dict[str, Any]) -> None:
    # the chain's intermediate in place of the leaf: a certificate the entry does not name
    annotations["dev.sigstore.cosign/certificate"] = (
        annotations["dev.sigstore.cosign/chain"].split("-----END CERTIFICATE-----")[0]
        + "-----END CERTIFICATE-----\n"
    )


def _no_bundle(annotations: dict[str, Any]) -> None:
    del annotations["dev.sigstore.cosign/bundle"]


@pytest.mark.registry
@pytest.mark.parametrize(
    ("change", "error", "reason"),
    [
        (_shift_time, TransparencyLogError, "SignedEntryTimestamp is not the trusted log's signature"),
        (_other_key_cert, TransparencyLogError, "another certificate"),
        (_no_bundle, TransparencyLogError, "carries no Rekor bundle"),
    ],
)
def test_keyless_legacy_tampered_evidence_is_refused(
    where: Loaded, change: Callable[[dict[str, Any]], None], error: type[Exception], reason: str
) -> None:
    store, load = where
    image = next(iter(images(cf.LEGACY_KEYLESS).values()))
    ref = load(image, with_sig=False)
    cf.attach_as_referrer(store, image, _tampered(image, change))
    with pytest.raises(error, match=reason):
        verify_oci(ref, keyless(), store)


def test_keyless_legacy_under_another_trust_root_is_refused(tmp_path: Path) -> None:
    """The same signature under a trust root whose Fulcio CA is not the signer's."""
    root = json.loads((FIXTURES / cf.LEGACY_KEYLESS / "trusted_root.json").read_text())
    root["certificateAuthorities"] = root["certificateAuthorities"][:1]  # only the 2021 CA
    other = tmp_path / "root.json"
    other.write_text(json.dumps(root))
    image = next(iter(images(cf.LEGACY_KEYLESS).values()))
    layout = tmp_path / "layout"
    store = LayoutStore(layout, create=True)
    cf.load_into_store(store, image)
    verifier = SigstoreVerifier(issuer=KEYLESS_ISSUER, identity=KEYLESS_IDENTITY, trust_config=other)
    with pytest.raises(UntrustedCertificate, match="does not chain to a Fulcio CA"):
        verify_oci(f"oci-layout:{layout}:{image.tag}", verifier, store)


# --- cosign v3 bundle (DSSE, predicate https://sigstore.dev/cosign/sign/v1, signed timestamp) --


def bundle_verifier(
    identity: str = BUNDLE_IDENTITY, issuer: str = BUNDLE_ISSUER, root: Path | None = None
) -> SigstoreVerifier:
    return SigstoreVerifier(
        issuer=issuer,
        identity=identity,
        trust_config=root or FIXTURES / cf.BUNDLE_V3 / "trusted_root.json",
        offline=True,
    )


def bundle_bytes() -> bytes:
    return (FIXTURES / cf.BUNDLE_V3 / "bundle.sigstore.json").read_bytes()


def test_bundle_v3_verifies_for_its_subject() -> None:
    """The image's manifest bytes are not in the fixtures (README), so the backend is checked
    against the subject digest the README names."""
    signer, predicate = verify_cosign_bundle(
        bundle_bytes(), bundle_verifier(), BUNDLE_SUBJECT, SIGNATURE_PREDICATES, "fixture"
    )
    assert predicate == "https://sigstore.dev/cosign/sign/v1"
    assert (
        signer.method == "keyless" and signer.identity == BUNDLE_IDENTITY and signer.issuer == BUNDLE_ISSUER
    )
    assert signer.details["integrated_time"] == "2026-04-09T07:23:29+00:00"


@pytest.mark.parametrize(
    ("identity", "issuer", "reason"),
    [
        (BUNDLE_IDENTITY.replace("v1.34.0", "v1.33.0"), BUNDLE_ISSUER, "signer identity mismatch"),
        (BUNDLE_IDENTITY, "https://accounts.google.com", "OIDC issuer mismatch"),
    ],
)
def test_bundle_v3_wrong_identity_or_issuer_is_refused(identity: str, issuer: str, reason: str) -> None:
    with pytest.raises(IdentityMismatch, match=reason):
        verify_cosign_bundle(
            bundle_bytes(), bundle_verifier(identity, issuer), BUNDLE_SUBJECT, SIGNATURE_PREDICATES, "fixture"
        )


def test_bundle_v3_signed_timestamp_needs_the_timestamp_authorities(tmp_path: Path) -> None:
    root = json.loads((FIXTURES / cf.BUNDLE_V3 / "trusted_root.json").read_text())
    root.pop("timestampAuthorities", None)
    bare = tmp_path / "no-tsa.json"
    bare.write_text(json.dumps(root))
    with pytest.raises(VerificationError, match="Timestamp Authorities"):
        verify_cosign_bundle(
            bundle_bytes(), bundle_verifier(root=bare), BUNDLE_SUBJECT, SIGNATURE_PREDICATES, "fixture"
        )


def test_bundle_v3_is_not_an_attestation_when_only_attestations_count() -> None:
    with pytest.raises(VerificationError, match="is not a signature"):
        verify_cosign_bundle(
            bundle_bytes(), bundle_verifier(), BUNDLE_SUBJECT, ("https://slsa.dev/provenance/v1",), "fixture"
        )


@pytest.mark.registry
def test_bundle_v3_attached_to_another_image_is_refused(where: Loaded, tmp_path: Path) -> None:
    """cosign's bundle as an OCI 1.1 referrer (artifactType ...sigstore.bundle.v0.3+json) of an
    image it does not name: the cryptography holds, the digest does not."""
    store, load = where
    image = images(cf.LEGACY_KEY)["multi-cosigned-alice"]
    ref = load(image, with_sig=False)
    path = tmp_path / "bundle.sigstore.json"
    path.write_bytes(bundle_bytes())
    attach(store, store.resolve(image.digest), load_attachment("signature", path), settle=0.01)
    with pytest.raises(IntegrityError, match=f"subject is .*c811d58d.*not the manifest {image.digest}"):
        verify_oci(ref, bundle_verifier(), store)
    with pytest.raises(IdentityMismatch):
        verify_oci(ref, bundle_verifier(issuer="https://accounts.google.com"), store)


# --- a platform manifest admitted on a signature of the index that lists it -----------------


def _signed_index(
    tmp_path: Path, platform: cf.LegacyImage, *, lists_platform: bool = True
) -> tuple[cf.LegacyImage, Path]:
    """An OCI image index listing ``platform`` (a real image manifest of the fixtures), signed the
    way cosign signs what it is given: simple signing of the index digest, under ``.sig``. The
    fixtures have no signed index, so this signature is made here with a throwaway key."""
    private = ec.generate_private_key(ec.SECP256R1())
    public = tmp_path / "index-key.pub"
    public.write_bytes(
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    listed = platform.digest if lists_platform else "sha256:" + "1" * 64
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {
                    "mediaType": DOCKER_MANIFEST,
                    "digest": listed,
                    "size": len(platform.manifest),
                    "platform": {"architecture": "amd64", "os": "linux"},
                },
            ],
        },
        separators=(",", ":"),
    ).encode()
    payload = json.dumps(
        {
            "critical": {
                "identity": {"docker-reference": "registry.example/app"},
                "image": {"docker-manifest-digest": sha256_digest(index)},
                "type": "cosign container image signature",
            },
            "optional": None,
        },
        separators=(",", ":"),
    ).encode()
    signature = base64.b64encode(private.sign(payload, ec.ECDSA(hashes.SHA256()))).decode()
    sig_manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_EMPTY, "digest": sha256_digest(OCI_EMPTY_BYTES), "size": 2},
            "layers": [
                {
                    "mediaType": COSIGN_SIGNATURE,
                    "digest": sha256_digest(payload),
                    "size": len(payload),
                    "annotations": {"dev.cosignproject.cosign/signature": signature},
                },
            ],
        }
    ).encode()
    return cf.LegacyImage("multi", index, sig_manifest, (payload,)), public


@pytest.mark.registry
def test_platform_manifest_accepted_on_the_index_signature(where: Loaded, tmp_path: Path) -> None:
    store, load = where
    platform = images(cf.LEGACY_KEY)["multi-cosigned-alice"]
    base = load(platform, with_sig=False).rsplit(":", 1)[0]
    index, public = _signed_index(tmp_path, platform)
    load(index)
    verifier = KeyVerifier.from_file(public)
    # the pod names tag and platform digest: the tag's index lists it and is signed
    result = verify_oci(f"{base}:multi@{platform.digest}", verifier, store)
    assert result.digest == platform.digest and result.via_index
    assert result.signed_digest == index.digest and result.format == "cosign-legacy"
    assert result.to_json()["signedVia"] == "index"
    # or the caller names the index
    assert verify_oci(f"{base}@{platform.digest}", verifier, store, index="multi").via_index
    # the index itself verifies directly
    assert not verify_oci(f"{base}:multi", verifier, store).via_index
    # the platform digest alone: nothing says which index, and it has no signature of its own
    with pytest.raises(VerificationError, match="no signature is attached"):
        verify_oci(f"{base}@{platform.digest}", verifier, store)


@pytest.mark.registry
def test_an_index_that_does_not_list_the_manifest_vouches_for_nothing(where: Loaded, tmp_path: Path) -> None:
    store, load = where
    platform = images(cf.LEGACY_KEY)["multi-cosigned-alice"]
    base = load(platform, with_sig=False).rsplit(":", 1)[0]
    index, public = _signed_index(tmp_path, platform, lists_platform=False)
    load(index)
    with pytest.raises(VerificationError, match="no signature is attached"):
        verify_oci(f"{base}:multi@{platform.digest}", KeyVerifier.from_file(public), store)


def test_junk_signature_layers_are_capped(tmp_path: Path) -> None:
    """Whoever can push can append any number of layers to a .sig manifest: at most
    max_signatures are tried in all, and the verdict says how many were left."""
    three = images(cf.LEGACY_KEY)["multi-cosigned-alice-bob-charlie"]
    layout = tmp_path / "layout"
    store = LayoutStore(layout, create=True)
    cf.load_into_store(store, three, with_sig=False)
    cf.attach_as_referrer(store, three, three.layers()[:1] * 40)  # alice's signature, 40 times
    with pytest.raises(
        SignatureMismatch,
        match=r"none of the 32 attached signatures verified \(8 more signatures were not tried \(cap 32\)\)",
    ):
        verify_oci(f"oci-layout:{layout}:{three.tag}", KeyVerifier.from_file(key("bob")), store)
    assert (
        verify_oci(
            f"oci-layout:{layout}:{three.tag}", KeyVerifier.from_file(key("alice")), store
        ).signature_layer
        == 0
    )
