"""Referrers: attach signatures, SBOMs and attestations to an artifact, and find them again.

A referrer is an image manifest whose ``subject`` is the artifact's manifest. Registries with the
OCI 1.1 Referrers API index it themselves (they answer ``OCI-Subject`` on push); for the others
(distribution 2.8 among them) the client maintains the fallback tag ``sha256-<hex>``: an image
index listing the referrers.

Without a compare-and-swap on tags (distribution 2.8 has no ``If-Match`` for manifests) the
fallback index is updated by a convergent read-modify-write: every write is the union of what
is there now and every entry this client has ever seen in it (so another client's entry is never
dropped by us); a client never writes from a read older than half the settle interval (it reads
again instead); and it only returns once two reads a settle interval apart both hold its entry
and every entry it has seen. So a writer that read before our write and wrote after it is caught
by our second read and repaired, and a writer cannot overwrite an entry whose owner has already
returned unless its own PUT took longer than half the settle interval to land. That residual
window cannot be closed by any client without a registry-side compare-and-swap.
"""

from __future__ import annotations

import base64
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from guard.errors import NotFoundError, RegistryError, UntrustedContentError, UsageError
from guard.oci.types import (
    CYCLONEDX_JSON,
    IN_TOTO_JSON,
    OCI_CREATED,
    OCI_EMPTY,
    OCI_EMPTY_BYTES,
    OCI_INDEX,
    OCI_MANIFEST,
    OCI_TITLE,
    SIGSTORE_BUNDLE,
    Descriptor,
    Store,
    sha256_digest,
)
from guard.untrusted import parse_json, parse_object

log = logging.getLogger(__name__)

AttachmentKind = Literal["signature", "sbom", "attestation"]
SPDX_JSON = "application/spdx+json"
PREDICATE_ANNOTATION = "dev.sigstore.bundle.predicateType"
MAX_ATTACHMENT_BYTES = 16 * 1024 * 1024
_ATTEMPTS = 40


def fallback_tag(digest: str) -> str:
    """The fallback tag of the referrers of ``digest``: ``sha256-<hex>``."""
    algorithm, hexdigest = digest.split(":", 1)
    return f"{algorithm}-{hexdigest}"


@dataclass(frozen=True)
class Attachment:
    """A file to attach: its bytes, the referrer's artifactType, the layer's media type."""

    kind: AttachmentKind
    data: bytes
    artifact_type: str
    layer_media_type: str
    filename: str
    annotations: dict[str, str]


def _bundle_predicate_type(doc: dict[str, Any], path: Path) -> str | None:
    """The predicate type of the statement in a bundle or DSSE envelope the user attaches (to
    annotate the referrer with it), or None when it has no payload. A payload that is not a
    JSON statement is the user's mistake: UsageError, before anything is pushed."""
    envelope = doc.get("dsseEnvelope") if "dsseEnvelope" in doc else doc
    if not isinstance(envelope, dict) or not isinstance(envelope.get("payload"), str):
        return None
    try:
        payload = base64.b64decode(envelope["payload"], validate=True)
    except ValueError as err:
        raise UsageError(f"{path}: the envelope's payload is not base64: {err}") from err
    statement = parse_json(payload, f"{path}: the envelope's payload", error=UsageError)
    value = statement.get("predicateType") if isinstance(statement, dict) else None
    return value if isinstance(value, str) else None


def load_attachment(kind: AttachmentKind, path: Path) -> Attachment:
    """Read and classify a file to attach; UsageError when it is not what ``kind`` needs."""
    try:
        if path.stat().st_size > MAX_ATTACHMENT_BYTES:
            raise UsageError(f"{path}: larger than {MAX_ATTACHMENT_BYTES} bytes; refusing to attach it")
        data = path.read_bytes()
    except OSError as err:
        raise UsageError(f"cannot read {path}: {err.strerror}") from err
    return attachment_of(kind, data, path)


def attachment_of(kind: AttachmentKind, data: bytes, path: Path) -> Attachment:
    """Classify ``data`` (what ``path`` holds, or was just written with) as an attachment of
    ``kind``; UsageError when it is not what ``kind`` needs."""
    doc = parse_object(
        data, f"{path}: expected a JSON {kind}", max_bytes=MAX_ATTACHMENT_BYTES, error=UsageError
    )
    annotations = {OCI_TITLE: path.name}
    media_type = str(doc.get("mediaType", ""))
    is_bundle = media_type.startswith("application/vnd.dev.sigstore.bundle")
    if kind == "signature":
        if not is_bundle:
            raise UsageError(
                f"{path}: expected a Sigstore bundle (mediaType {SIGSTORE_BUNDLE}), found mediaType "
                f"{media_type or '(none)'}"
            )
        predicate = _bundle_predicate_type(doc, path)
        if predicate:
            annotations[PREDICATE_ANNOTATION] = predicate
        return Attachment(kind, data, SIGSTORE_BUNDLE, media_type, path.name, annotations)
    if kind == "sbom":
        if doc.get("bomFormat") == "CycloneDX":
            return Attachment(kind, data, CYCLONEDX_JSON, CYCLONEDX_JSON, path.name, annotations)
        if "spdxVersion" in doc or ("@context" in doc and "spdx" in json.dumps(doc.get("@context"))):
            return Attachment(kind, data, SPDX_JSON, SPDX_JSON, path.name, annotations)
        raise UsageError(f"{path}: expected a CycloneDX (bomFormat: CycloneDX) or SPDX JSON SBOM")
    if is_bundle or ("payloadType" in doc and "signatures" in doc):
        predicate = _bundle_predicate_type(doc, path)
        if predicate:
            annotations[PREDICATE_ANNOTATION] = predicate
        layer_type = media_type if is_bundle else "application/vnd.dsse.envelope.v1+json"
        return Attachment(kind, data, IN_TOTO_JSON, layer_type, path.name, annotations)
    if doc.get("_type", "").startswith("https://in-toto.io/Statement/"):
        if isinstance(doc.get("predicateType"), str):
            annotations[PREDICATE_ANNOTATION] = doc["predicateType"]
        return Attachment(kind, data, IN_TOTO_JSON, IN_TOTO_JSON, path.name, annotations)
    raise UsageError(
        f"{path}: expected an in-toto attestation (a Sigstore bundle, a DSSE envelope or an in-toto "
        "Statement)"
    )


def referrer_annotations(attachment: Attachment) -> dict[str, str]:
    return {**attachment.annotations, OCI_CREATED: datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}


def referrer_manifest(
    subject: Descriptor, attachment: Attachment, layer_digest: str, annotations: dict[str, str]
) -> bytes:
    empty = sha256_digest(OCI_EMPTY_BYTES)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": attachment.artifact_type,
        "config": {"mediaType": OCI_EMPTY, "digest": empty, "size": len(OCI_EMPTY_BYTES)},
        "layers": [
            {
                "mediaType": attachment.layer_media_type,
                "digest": layer_digest,
                "size": len(attachment.data),
                **({"annotations": {OCI_TITLE: attachment.filename}} if attachment.filename else {}),
            }
        ],
        "subject": {"mediaType": subject.media_type, "digest": subject.digest, "size": subject.size},
        "annotations": annotations,
    }
    return json.dumps(manifest, indent=2).encode()


def attach(
    store: Store,
    subject: Descriptor,
    attachment: Attachment,
    *,
    settle: float = 0.15,
    sleep: Callable[[float], None] = time.sleep,
) -> Descriptor:
    """Push ``attachment`` as a referrer of ``subject``; keep the fallback index when needed."""
    # imported here: reading referrers (admission, verify) needs none of the push side (10 ms)
    from guard.oci.push import push_bytes  # noqa: PLC0415

    push_bytes(store, OCI_EMPTY_BYTES)
    layer_digest = push_bytes(store, attachment.data)
    annotations = referrer_annotations(attachment)
    body = referrer_manifest(subject, attachment, layer_digest, annotations)
    pushed, indexed = store.push_referrer(body, OCI_MANIFEST)
    entry = Descriptor(OCI_MANIFEST, pushed.digest, pushed.size, attachment.artifact_type, annotations)
    if not indexed and store.referrers(subject.digest) is None:
        add_to_fallback_index(store, subject.digest, entry, settle=settle, sleep=sleep)
    return entry


@dataclass(frozen=True)
class ReferrerLimits:
    """How much of an artifact's referrers guard reads. Whoever can push to a repository can
    attach any number of referrers: every count here bounds the work one artifact can cause.
    Referrers are taken newest first in registry order (the fallback index and the Referrers API
    list them oldest first), never by their ``created`` annotation, which the pusher writes."""

    max_listed: int = 1000  # entries of a referrers listing read per artifact
    max_signatures: int = 32  # signature referrers tried per verification
    max_attestations: int = 16  # attestation referrers read per artifact
    max_per_predicate: int = 4  # of those, per predicate type (its annotation)


DEFAULT_LIMITS = ReferrerLimits()


@dataclass(frozen=True)
class ReferrerListing:
    """The referrers of one artifact, newest first, with the entries that were not read: the
    ones that do not parse as descriptors and the ones past ``max_listed``."""

    referrers: tuple[Descriptor, ...]
    skipped: tuple[str, ...] = ()

    def of_type(self, artifact_type: str) -> list[Descriptor]:
        return [d for d in self.referrers if d.artifact_type == artifact_type]

    def skipped_summary(self) -> list[str]:
        """What was not read, in a few words: the junk count and what the cap left out."""
        capped = [s for s in self.skipped if "past the cap" in s]
        junk = len(self.skipped) - len(capped)
        return ([f"{junk} junk referrer entries skipped"] if junk else []) + capped


def _listing(entries: list[Any], where: str, max_listed: int) -> ReferrerListing:
    """Parse listing entries (oldest first, as registries list them) into a newest-first
    listing; an entry that does not parse is skipped with its reason, the others are kept."""
    found: list[Descriptor] = []
    skipped: list[str] = []
    for i in range(len(entries) - 1, -1, -1):
        if len(found) >= max_listed:
            skipped.append(f"{i + 1} older entries past the cap of {max_listed} were not read")
            break
        try:
            found.append(Descriptor.from_json(entries[i], f"{where}[{i}]"))
        except UntrustedContentError as err:
            skipped.append(str(err))
    return ReferrerListing(tuple(found), tuple(skipped))


def _fallback_entries(store: Store, tag: str) -> list[Any]:
    """The raw entries of the fallback index ``tag`` ([] when there is none). A tag that holds
    something else than an image index is content someone pushed: UntrustedContentError."""
    try:
        fetched = store.fetch_manifest(tag)
    except NotFoundError:
        return []
    index = fetched.json()
    manifests = index.get("manifests")
    if index.get("mediaType") not in (OCI_INDEX, None) or not isinstance(manifests, list):
        raise UntrustedContentError(
            f"{store.describe()}:{tag} exists but is not an image index of referrers (expected "
            f"mediaType {OCI_INDEX} with a manifests list, found mediaType "
            f"{str(index.get('mediaType'))[:100]!r})",
            where=tag,
        )
    return manifests


def _read_fallback(store: Store, tag: str) -> list[Descriptor]:
    """Every entry of the fallback index, oldest first (for writing it back: an entry that does
    not parse is kept out of guard's view, and a later write drops it)."""
    listing = _listing(_fallback_entries(store, tag), f"{tag} manifests", 2**31)
    for reason in listing.skipped:
        log.warning("fallback index %s: skipped an entry: %s", tag, reason)
    return list(reversed(listing.referrers))


def add_to_fallback_index(
    store: Store,
    subject_digest: str,
    entry: Descriptor,
    *,
    settle: float = 0.15,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Converge the fallback index on a superset of everything seen plus ``entry``."""
    tag = fallback_tag(subject_digest)
    known: dict[str, Descriptor] = {entry.digest: entry}
    confirmed = 0
    for _ in range(_ATTEMPTS):
        read_at = clock()
        current = _read_fallback(store, tag)
        for desc in current:
            known.setdefault(desc.digest, desc)
        present = {d.digest for d in current}
        if present >= known.keys():
            confirmed += 1
            if confirmed >= 2:
                return
            sleep(settle * (1 + random.random()))  # noqa: S311 - jitter, not security
            continue
        confirmed = 0
        if clock() - read_at > settle / 2:
            continue  # what we read may be stale by now: read again rather than write over it
        merged = current + [d for k, d in known.items() if k not in present]
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [d.to_json() for d in merged]}
        store.push_manifest(json.dumps(index, indent=2).encode(), OCI_INDEX, tag)
        log.debug("fallback index %s written with %d entries", tag, len(merged))
        sleep(settle * random.random() / 2)  # noqa: S311 - let concurrent writers land
    raise RegistryError(
        f"{store.describe()}: the fallback referrers tag {tag} kept changing; gave up after {_ATTEMPTS} "
        "attempts (too many concurrent attachers?)"
    )


def read_referrers(store: Store, digest: str, limits: ReferrerLimits = DEFAULT_LIMITS) -> ReferrerListing:
    """The referrers of ``digest``, newest first (Referrers API, else the fallback tag), at most
    ``limits.max_listed``; entries that do not parse are skipped and said so."""
    native = store.referrers(digest)
    if native is not None:
        listed = native[-limits.max_listed :]
        cut = len(native) - len(listed)
        skipped = (f"{cut} older entries past the cap of {limits.max_listed} were not read",) if cut else ()
        return ReferrerListing(tuple(reversed(listed)), skipped)
    tag = fallback_tag(digest)
    return _listing(_fallback_entries(store, tag), f"{tag} manifests", limits.max_listed)


def list_referrers(store: Store, digest: str, artifact_type: str | None = None) -> list[Descriptor]:
    """Referrers of ``digest`` (Referrers API, else the fallback tag), optionally filtered,
    oldest first as the registry lists them; entries that do not parse are left out."""
    listing = read_referrers(store, digest, ReferrerLimits(max_listed=2**31))
    found = list(reversed(listing.referrers))
    if artifact_type is not None:
        found = [d for d in found if d.artifact_type == artifact_type]
    return found


COSIGN_SIGNATURE = "application/vnd.dev.cosign.simplesigning.v1+json"
DSSE_ENVELOPE = "application/vnd.dsse.envelope.v1+json"


def legacy_cosign(store: Store, digest: str) -> list[tuple[str, Descriptor]]:
    """Cosign's pre-OCI-1.1 storage: the tags ``sha256-<hex>.sig`` / ``.att`` / ``.sbom`` next to
    the artifact, as ``(tag, descriptor)`` (the descriptor's artifactType is what cosign stores in
    such a tag). Listed by ``guard discover``; ``.sig`` is verified by ``guard.oci.cosign_legacy``
    and ``.att`` read by ``guard.attest.cosign_att``."""
    found = []
    for suffix, kind in (("sig", COSIGN_SIGNATURE), ("att", DSSE_ENVELOPE), ("sbom", "sbom")):
        tag = f"{fallback_tag(digest)}.{suffix}"
        try:
            desc = store.resolve(tag)
        except NotFoundError:
            continue
        found.append((tag, Descriptor(desc.media_type, desc.digest, desc.size, kind)))
    return found
