"""`guard sign oci://REPO@sha256:...`: a cosign v3 signature of an image (or any OCI manifest),
written by guard and attached as an OCI 1.1 referrer (guard.oci.cosign_sign)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from guard.commands.output import print_json
from guard.errors import IntegrityError, UsageError
from guard.signing.types import Signer

if TYPE_CHECKING:
    from guard.oci.registry import RegistryAccess

log = logging.getLogger(__name__)


def sign_oci_target(
    target: str,
    signer: Signer,
    *,
    signature: Path | None,
    registry: RegistryAccess,
    json_output: bool,
) -> None:
    """Sign the manifest ``target`` names; print the subject and the referrer digests."""
    from guard.oci.cosign_sign import sign_image  # noqa: PLC0415
    from guard.oci.reference import parse_reference  # noqa: PLC0415
    from guard.oci.store import open_store  # noqa: PLC0415
    from guard.signing.model import check_signature_target, write_atomic  # noqa: PLC0415

    if signature is not None:  # before anything is attached: the copy must not destroy a file
        if signature.is_dir():
            raise UsageError(f"signature path {signature} is a directory; expected a file path")
        check_signature_target(signature)
    ref = parse_reference(target)
    store = open_store(ref, registry)
    subject = store.resolve(ref.reference)
    if ref.digest is not None and subject.digest != ref.digest:
        raise IntegrityError(
            f"{target}: the registry answered manifest {subject.digest} for digest {ref.digest}",
            changed=[ref.digest],
        )
    if ref.digest is None:
        log.warning(
            "%s: signing by tag; the tag named %s now, and that digest is what is signed (sign "
            "REPO@sha256:... as built, so a tag moved meanwhile cannot be signed instead)",
            target,
            subject.digest,
        )
    signed = sign_image(store, subject, signer, repository=ref.name)
    if signature is not None:
        write_atomic(signature, signed.bundle)
    if json_output:
        doc = {
            "reference": str(ref.with_digest(subject.digest)),
            "subject": subject.digest,
            "format": "cosign-bundle",
            "method": signer.method,
            "referrer": signed.referrer.digest,
            "artifactType": signed.referrer.artifact_type,
            "signature": str(signature) if signature is not None else None,
        }
        print_json(doc)
        return
    typer.echo(f"signed {ref.with_digest(subject.digest)} ({signer.method}, cosign v3 bundle)")
    typer.echo(f"signature: referrer {signed.referrer.digest}")


def refuse_directory_options(**given: object) -> None:
    """Options of model-directory signing given with an OCI target are a mistake."""
    named = [f"--{name.replace('_', '-')}" for name, value in given.items() if value]
    if named:
        raise UsageError(f"{', '.join(named)} apply to model directories, not to oci:// targets")
