"""Fetch what is attached to an artifact: its signatures, attestations and SBOMs, as raw bytes.

``guard download signature|attestation|sbom REF`` and ``guard pull`` (which restores the model's
signature beside the files) use it. A referrer is content whoever can push to the repository
wrote, so: the listing is bounded (``read_referrers``), each referrer's manifest must name this
artifact as its ``subject``, the content blob is digest-checked and bounded in size, and the kind
is decided by the content (the statement's predicate type), never by an annotation alone.
Nothing here verifies a signature: ``Attached.verified`` is set only by a caller that did
(``guard.oci.verify.verify_oci`` names the referrer that verified).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from guard.errors import BundleFormatError, RegistryError, UntrustedContentError
from guard.oci.blobs import read_small_blob
from guard.oci.referrers import (
    DEFAULT_LIMITS,
    MAX_ATTACHMENT_BYTES,
    SPDX_JSON,
    ReferrerLimits,
    read_referrers,
)
from guard.oci.types import (
    CYCLONEDX_JSON,
    IN_TOTO_JSON,
    OCI_MANIFEST,
    SIGSTORE_BUNDLE,
    Descriptor,
    Store,
    subject_digest,
)
from guard.oci.verify import MODEL_PREDICATES, SIGNATURE_PREDICATES, peek_predicate_type

DownloadKind = Literal["signature", "attestation", "sbom"]
DOWNLOAD_KINDS: tuple[DownloadKind, ...] = ("signature", "attestation", "sbom")
_ARTIFACT_TYPES: dict[DownloadKind, tuple[str, ...]] = {
    "signature": (SIGSTORE_BUNDLE,),
    "attestation": (IN_TOTO_JSON, SIGSTORE_BUNDLE),
    "sbom": (CYCLONEDX_JSON, SPDX_JSON),
}


@dataclass(frozen=True)
class Attached:
    """One attachment's raw content and what it is."""

    kind: DownloadKind
    referrer: str  # the referrer manifest's digest
    artifact_type: str
    media_type: str  # the content layer's
    data: bytes
    predicate_type: str | None = None
    verified: bool = False

    @property
    def is_model_signature(self) -> bool:
        """An OMS model signature: one that ``guard verify DIR`` reads as ``model.sig``."""
        return self.kind == "signature" and self.predicate_type in MODEL_PREDICATES

    def as_verified(self) -> Attached:
        return replace(self, verified=True)


def referrer_content(store: Store, subject: str, referrer: Descriptor) -> tuple[bytes, str]:
    """The first layer of ``referrer`` (digest-checked, at most MAX_ATTACHMENT_BYTES) and its
    media type; the referrer must name ``subject`` as its subject."""
    manifest = store.fetch_manifest(referrer.digest).json()
    found = subject_digest(manifest)
    if found != subject:
        raise BundleFormatError(
            f"referrer {referrer.digest} is listed for {subject} but its subject is {found!r}"
        )
    layers = manifest.get("layers")
    if not isinstance(layers, list) or not layers or not isinstance(layers[0], dict):
        raise BundleFormatError(f"referrer {referrer.digest} has no content layer")
    try:
        layer = Descriptor.from_json(layers[0], f"referrer {referrer.digest} layers[0]")
    except RegistryError as err:
        raise BundleFormatError(f"referrer {referrer.digest} is malformed: {err}") from err
    data = read_small_blob(store, layer, f"referrer {referrer.digest} content", MAX_ATTACHMENT_BYTES)
    return data, layer.media_type


def _kind_of(referrer: Descriptor, media_type: str, data: bytes) -> tuple[DownloadKind, str | None]:
    if referrer.artifact_type in _ARTIFACT_TYPES["sbom"]:
        return "sbom", None
    predicate = peek_predicate_type(data) if media_type.startswith("application/vnd.dev.sigstore") else None
    if referrer.artifact_type == SIGSTORE_BUNDLE and predicate in SIGNATURE_PREDICATES:
        return "signature", predicate
    return "attestation", predicate


def _candidates(
    store: Store, subject: str, kind: DownloadKind, limits: ReferrerLimits
) -> Iterator[Descriptor]:
    listing = read_referrers(store, subject, limits)
    wanted = _ARTIFACT_TYPES[kind]
    return (d for d in listing.referrers if d.artifact_type in wanted)


def find_attached(
    store: Store,
    subject: str,
    kind: DownloadKind,
    *,
    limits: ReferrerLimits = DEFAULT_LIMITS,
    problems: list[str] | None = None,
) -> list[Attached]:
    """The attachments of ``kind`` on ``subject``, newest first, at most ``limits.max_signatures``
    (signatures) or ``limits.max_attestations`` (the others) fetched. A referrer whose content
    cannot be read is skipped and said in ``problems``."""
    cap = limits.max_signatures if kind == "signature" else limits.max_attestations
    found: list[Attached] = []
    for referrer in _candidates(store, subject, kind, limits):
        if len(found) >= cap:
            break
        try:
            data, media_type = referrer_content(store, subject, referrer)
            got, predicate = _kind_of(referrer, media_type, data)
        except UntrustedContentError as err:
            if problems is not None:
                problems.append(str(err))
            continue
        if got == kind:
            found.append(
                Attached(kind, referrer.digest, referrer.artifact_type or "", media_type, data, predicate)
            )
    return found


def attached_by_digest(store: Store, subject: str, referrer: str) -> Attached:
    """The attachment in the referrer ``referrer`` of ``subject`` (the one a verification named)."""
    descriptor = Descriptor(OCI_MANIFEST, referrer, 0, SIGSTORE_BUNDLE)
    data, media_type = referrer_content(store, subject, descriptor)
    kind, predicate = _kind_of(descriptor, media_type, data)
    return Attached(kind, referrer, SIGSTORE_BUNDLE, media_type, data, predicate)


def describe(attached: Attached) -> dict[str, Any]:
    """The ``--json`` row of one attachment (no content)."""
    return {
        "kind": attached.kind,
        "referrer": attached.referrer,
        "artifactType": attached.artifact_type,
        "mediaType": attached.media_type,
        "predicateType": attached.predicate_type,
        "bytes": len(attached.data),
        "verified": attached.verified,
    }


@dataclass(frozen=True)
class Restored:
    """What ``guard pull`` did about the model's signature: the file written (or None) and why."""

    path: Path | None
    attached: Attached | None
    note: str

    @property
    def verified(self) -> bool:
        return self.attached is not None and self.attached.verified


def model_signature(store: Store, subject: str, verified_referrer: str | None = None) -> Restored:
    """The model signature to restore beside pulled files: the one that verified (when the pull
    verified), else the only OMS model signature attached. Several unverified ones: none (which
    one is the user's is a trust decision, made with trust options)."""
    if verified_referrer is not None:
        chosen = attached_by_digest(store, subject, verified_referrer).as_verified()
        if not chosen.is_model_signature:
            return Restored(
                None, chosen, "the verified signature signs the manifest digest (cosign), not the files"
            )
        return Restored(None, chosen, "verified")
    problems: list[str] = []
    signatures = [
        s for s in find_attached(store, subject, "signature", problems=problems) if s.is_model_signature
    ]
    if not signatures:
        return Restored(None, None, "no model signature is attached")
    if len(signatures) > 1:
        return Restored(
            None,
            None,
            f"{len(signatures)} model signatures are attached; give trust options (--key, "
            "--identity ...) to verify and restore the one you trust",
        )
    return Restored(None, signatures[0], "not verified: give trust options (--key, --identity ...) to verify")


def restore_signature(found: Restored, directory: Path, name: str) -> Restored:
    """Write ``found``'s signature to ``directory/name``; an existing file with other bytes is
    left alone (it may be the user's) and said so."""
    if found.attached is None or not found.attached.is_model_signature:
        return found
    from guard.signing.model import write_atomic  # noqa: PLC0415

    path = directory / name
    taken = path.exists() and (not path.is_file() or path.read_bytes() != found.attached.data)
    if path.is_symlink() or taken:
        return Restored(None, found.attached, f"{path} exists with other content; left as it is")
    write_atomic(path, found.attached.data)
    return Restored(path, found.attached, found.note)
