"""The subject of an attestation: the exact model it is bound to.

A model directory is identified by its OMS subject digest (SHA-256 over the concatenated resource
digests, as ``guard sign`` puts in ``model.sig``); when a ``model.sig`` is present, its serialization
(method, hash type, ignored paths) is used so that attestation and signature name the same digest.
The signature file is only read for those options: the directory is always hashed afresh (through
the digest cache), so a stale or forged ``model.sig`` cannot change what the digest describes.
An OCI artifact is identified by its manifest digest.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from guard.errors import BundleFormatError, ModelDirectoryError
from guard.signing import (
    DEFAULT_SIGNATURE_NAME,
    DigestCache,
    Manifest,
    Serialization,
    hash_model,
    manifest_from_statement,
    statement_for_manifest,
)
from guard.signing.bundle import envelope_of, parse_bundle, parse_statement


@dataclass(frozen=True)
class ModelSubject:
    """What an attestation must name: ``{name, digest: {sha256: hex}}``."""

    name: str
    sha256: str
    kind: Literal["directory", "oci"]
    manifest: Manifest | None = None  # directories: the files and their digests
    path: Path | None = None  # directories
    reference: str | None = None  # OCI: the reference as given

    def as_statement_subject(self) -> list[dict[str, object]]:
        return [{"name": self.name, "digest": {"sha256": self.sha256}}]


def signature_serialization(signature: Path) -> Serialization | None:
    """The serialization a ``model.sig`` states (unverified: only used to hash the same way)."""
    try:
        data = signature.read_bytes()
    except OSError as err:
        raise ModelDirectoryError(f"cannot read {signature}: {err.strerror or err}") from err
    try:
        statement = parse_statement(envelope_of(parse_bundle(data, str(signature))).payload)
        return manifest_from_statement(statement).serialization
    except BundleFormatError as err:
        raise BundleFormatError(f"{signature}: {err}", field=err.field) from err


def directory_subject(model_dir: Path, *, cache: DigestCache | None = None) -> ModelSubject:
    """Hash ``model_dir`` (ignoring ``model.sig``) and return its OMS subject."""
    if not model_dir.is_dir():
        raise ModelDirectoryError(
            f"{model_dir}: expected a model directory, found nothing there"
            if not model_dir.exists()
            else f"{model_dir}: not a directory"
        )
    signature = model_dir / DEFAULT_SIGNATURE_NAME
    serialization = signature_serialization(signature) if signature.is_file() else None
    manifest = hash_model(
        model_dir, serialization or Serialization(), cache=cache, exclude=(DEFAULT_SIGNATURE_NAME,)
    )
    name = model_dir.resolve().name
    digest = statement_for_manifest(manifest, name)["subject"][0]["digest"]["sha256"]
    return ModelSubject(name=name, sha256=digest, kind="directory", manifest=manifest, path=model_dir)
