"""The subject of an attestation: the exact model it is bound to.

A model directory is identified by its OMS subject digest (SHA-256 over the concatenated resource
digests, as ``guard sign`` puts in ``model.sig``); when a ``model.sig`` is present, its serialization
(method, hash type, ignored paths) is used so that attestation and signature name the same digest.
The signature file is only read for those options: the directory is always hashed afresh (through
the digest cache when one is given: never when verifying), so a stale or forged ``model.sig``
cannot change what the digest describes.
An OCI artifact is identified by its manifest digest.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from guard.errors import BundleFormatError, IntegrityError, ModelDirectoryError
from guard.signing import (
    DEFAULT_IGNORE_PATHS,
    DEFAULT_SIGNATURE_NAME,
    DigestCache,
    Manifest,
    Serialization,
    compare_manifests,
    hash_model,
    manifest_from_statement,
    statement_for_manifest,
)
from guard.signing.bundle import envelope_of, parse_bundle, parse_statement

log = logging.getLogger(__name__)


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


def signature_manifest(signature: Path) -> Manifest:
    """The manifest a ``model.sig`` states (unverified: only used to hash the same way and to
    warn when the directory no longer matches it)."""
    try:
        data = signature.read_bytes()
    except OSError as err:
        raise ModelDirectoryError(f"cannot read {signature}: {err.strerror or err}") from err
    try:
        statement = parse_statement(envelope_of(parse_bundle(data, str(signature))).payload)
        return manifest_from_statement(statement)
    except BundleFormatError as err:
        raise BundleFormatError(f"{signature}: {err}", field=err.field) from err


def directory_subject(
    model_dir: Path, *, cache: DigestCache | None = None, verifying: bool = False
) -> ModelSubject:
    """Hash ``model_dir`` (ignoring ``model.sig``) and return its OMS subject.

    ``verifying``: the directory is being checked, its ``model.sig`` not verified: of the paths
    that ``model.sig`` says to ignore only the default ones (``.git``...) are, so that whoever
    wrote it cannot leave a file they added out of the subject (and keep every attestation of the
    model without it). The signer's own side (``guard attest``, ``guard sbom``) honours them all."""
    if not model_dir.is_dir():
        raise ModelDirectoryError(
            f"{model_dir}: expected a model directory, found nothing there"
            if not model_dir.exists()
            else f"{model_dir}: not a directory"
        )
    signature = model_dir / DEFAULT_SIGNATURE_NAME
    signed = signature_manifest(signature) if signature.is_file() else None
    serialization = signed.serialization if signed is not None else Serialization()
    if verifying:
        kept = tuple(p for p in serialization.ignore_paths if p in DEFAULT_IGNORE_PATHS)
        serialization = dataclasses.replace(serialization, ignore_paths=kept)
    manifest = hash_model(model_dir, serialization, cache=cache, exclude=(DEFAULT_SIGNATURE_NAME,))
    if signed is not None:
        try:
            compare_manifests(signed, manifest)
        except IntegrityError as err:
            warn_not_covered(signature, model_dir, err)
    return subject_of(model_dir, manifest)


def warn_not_covered(signature: Path, model_dir: Path, err: IntegrityError) -> None:
    """Log that ``model_dir`` no longer matches its ``signature``: what ``err`` says changed."""
    log.warning(
        "%s no longer matches %s (%s): attestations will name the current bytes, which the "
        "signature does not cover; re-sign the model",
        signature,
        model_dir,
        err,
    )


def subject_of(model_dir: Path, manifest: Manifest) -> ModelSubject:
    """The OMS subject of ``model_dir`` hashed into ``manifest``."""
    name = model_dir.resolve().name
    digest = statement_for_manifest(manifest, name)["subject"][0]["digest"]["sha256"]
    return ModelSubject(name=name, sha256=digest, kind="directory", manifest=manifest, path=model_dir)
