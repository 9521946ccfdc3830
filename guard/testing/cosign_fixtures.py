"""Load the signatures cosign itself made (``shared/fixtures/cosign``) into an OCI layout or a
running ``docker-registry``, exactly as cosign stored them, for tests and benchmarks.

The image manifests are the exact bytes Docker Hub served (their digests are what the payloads
sign), but their config and layer blobs are not part of the fixtures, and distribution refuses a
manifest PUT whose blobs it lacks. So for the registry the manifests are written into its
filesystem storage the way distribution itself lays them out (blob data, the repository's
revision link, the tag links), as a registry restored from a backup holds them; everything is
then read back through the registry's HTTP API like any other image. The payload blobs are
pushed through the API.

The ``.sig`` manifests were pretty-printed by the project the fixtures come from: their layers
and annotations are cosign's, their own digest is not the one Docker Hub had (cosign never signs
that digest, so nothing depends on it).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from guard.oci.push import push_bytes
from guard.oci.referrers import add_to_fallback_index, fallback_tag
from guard.oci.types import (
    DOCKER_MANIFEST,
    OCI_EMPTY,
    OCI_EMPTY_BYTES,
    OCI_MANIFEST,
    Descriptor,
    Store,
    sha256_digest,
)

ENV_VAR = "GUARD_COSIGN_FIXTURES"
LEGACY_KEY = "legacy-key-connaisseur-multisig"
LEGACY_KEYLESS = "legacy-keyless-connaisseur"
BUNDLE_V3 = "bundle-v3-sign-keyless-kubewarden-controller"
COSIGN_SIG_ARTIFACT = "application/vnd.dev.cosign.artifact.sig.v1+json"


def fixtures_dir(repo_root: Path) -> Path:
    """``$GUARD_COSIGN_FIXTURES``, else ``<repo>/../shared/fixtures/cosign`` (CI keeps a read-only
    copy of ``shared/`` beside the clone)."""
    override = os.environ.get(ENV_VAR)
    return Path(override) if override else repo_root.parent / "shared" / "fixtures" / "cosign"


@dataclass(frozen=True)
class LegacyImage:
    """One signed image of a legacy set: its manifest bytes and its ``.sig`` manifest."""

    tag: str
    manifest: bytes
    sig_manifest: bytes
    payloads: tuple[bytes, ...]

    @property
    def digest(self) -> str:
        return sha256_digest(self.manifest)

    @property
    def sig_tag(self) -> str:
        return f"{fallback_tag(self.digest)}.sig"

    def layers(self) -> list[dict[str, Any]]:
        layers: list[dict[str, Any]] = json.loads(self.sig_manifest)["layers"]
        return layers


def legacy_images(set_dir: Path) -> list[LegacyImage]:
    """Every image of a legacy set (``image-manifest*.json`` with its ``sig-manifest.<tag>.json``)."""
    payloads = {sha256_digest(p.read_bytes()): p.read_bytes() for p in sorted(set_dir.glob("payload.*.json"))}
    images = []
    for path in sorted(set_dir.glob("image-manifest*.json")):
        body = path.read_bytes()
        digest = sha256_digest(body)
        sig = set_dir / f"sig-manifest.{fallback_tag(digest)}.sig.json"
        sig_body = sig.read_bytes()
        wanted = {layer["digest"] for layer in json.loads(sig_body)["layers"]}
        tag = path.stem.removeprefix("image-manifest").lstrip(".") or "signed"
        images.append(LegacyImage(tag, body, sig_body, tuple(payloads[d] for d in sorted(wanted))))
    return images


def load_into_store(store: Store, image: LegacyImage, *, with_sig: bool = True) -> None:
    """Put one legacy image and its ``.sig`` tag into ``store`` (an OCI layout: its push
    checks nothing the fixtures lack)."""
    store.push_manifest(image.manifest, DOCKER_MANIFEST, image.tag)
    for payload in image.payloads:
        push_bytes(store, payload)
    if with_sig:
        store.push_manifest(image.sig_manifest, OCI_MANIFEST, image.sig_tag)


def seed_registry_manifest(storage: Path, repository: str, body: bytes, tag: str | None = None) -> str:
    """Write a manifest into a distribution filesystem storage root as distribution does, so the
    registry serves it (by digest, and by ``tag``) although its blobs are absent."""
    digest = sha256_digest(body)
    hexdigest = digest.split(":", 1)[1]
    base = storage / "docker" / "registry" / "v2"
    blob = base / "blobs" / "sha256" / hexdigest[:2] / hexdigest / "data"
    blob.parent.mkdir(parents=True, exist_ok=True)
    blob.write_bytes(body)
    manifests = base / "repositories" / repository / "_manifests"
    links = [manifests / "revisions" / "sha256" / hexdigest / "link"]
    if tag:
        links += [
            manifests / "tags" / tag / "current" / "link",
            manifests / "tags" / tag / "index" / "sha256" / hexdigest / "link",
        ]
    for link in links:
        link.parent.mkdir(parents=True, exist_ok=True)
        link.write_text(digest)
    return digest


def load_into_registry(
    store: Store, storage: Path, repository: str, image: LegacyImage, *, with_sig: bool = True
) -> None:
    """Put one legacy image and its ``.sig`` tag into a running docker-registry (``store`` is a
    RegistryStore of ``repository``; ``storage`` the registry's filesystem root)."""
    for payload in image.payloads:
        push_bytes(store, payload)
    seed_registry_manifest(storage, repository, image.manifest, image.tag)
    if with_sig:
        seed_registry_manifest(storage, repository, image.sig_manifest, image.sig_tag)


def attach_as_referrer(
    store: Store, image: LegacyImage, layers: list[dict[str, Any]] | None = None
) -> Descriptor:
    """The OCI 1.1 variant of the same signatures: a referrer of artifactType
    ``application/vnd.dev.cosign.artifact.sig.v1+json`` with cosign's layers (payload blobs and
    annotations unchanged) and the image as its subject (fallback tag kept when needed)."""
    push_bytes(store, OCI_EMPTY_BYTES)
    for payload in image.payloads:
        push_bytes(store, payload)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": COSIGN_SIG_ARTIFACT,
        "config": {"mediaType": OCI_EMPTY, "digest": sha256_digest(OCI_EMPTY_BYTES), "size": 2},
        "layers": layers if layers is not None else image.layers(),
        "subject": {"mediaType": DOCKER_MANIFEST, "digest": image.digest, "size": len(image.manifest)},
    }
    body = json.dumps(manifest, separators=(",", ":")).encode()
    pushed, indexed = store.push_referrer(body, OCI_MANIFEST)
    entry = Descriptor(OCI_MANIFEST, pushed.digest, pushed.size, COSIGN_SIG_ARTIFACT)
    if not indexed and store.referrers(image.digest) is None:
        add_to_fallback_index(store, image.digest, entry, settle=0.01)
    return entry
