"""Verify a model in a registry or layout without downloading its weights.

``verify_oci(ref, verifier, store)`` is a pure, thread-safe function (no globals): the CLI's
``guard verify oci://...`` and the admission webhook call it. Procedure:

1. Resolve the reference to a manifest digest (a tag that moves between resolve and fetch is
   reported, never silently followed) and fetch the manifest (digest checked).
2. Find the signature referrers: artifactType Sigstore bundle, from the Referrers API or the
   fallback tag ``sha256-<hex>``, newest first in registry order (never by the ``created``
   annotation a pusher writes). A referrer whose ``dev.sigstore.bundle.predicateType``
   annotation names an attestation (SBOM, provenance, anything not a signature predicate) is
   left out before anything is fetched, so attestations never crowd signatures out of the cap;
   at most ``limits.max_signatures`` are tried.
3. For each signature until one verifies: fetch its referrer manifest (its ``subject`` must be
   this manifest) and its bundle blob (digest checked, bounded size). Content that does not
   parse fails that referrer only (UntrustedContentError) and the next one is tried.
4. An OMS model signature: ``verify_model_bundle`` (cryptography, identity, statement), then the
   signed resources must equal the raw layers exactly: name <-> ``org.cncf.model.filepath``,
   sha256 <-> layer digest, nothing extra, nothing missing. No layer blob is fetched.
5. Any other signature predicate (cosign's ``https://sigstore.dev/cosign/sign/v1``, or one the
   rule names): verified with ``verify_statement``; one of its subjects must be the manifest
   digest itself (container images, modelcars, tar-layer artifacts). A statement of any other
   predicate type is an attestation and never counts as a signature, whoever signed it.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from guard.errors import (
    BundleFormatError,
    GuardError,
    IntegrityError,
    NotFoundError,
    RegistryError,
    UntrustedContentError,
    VerificationError,
)
from guard.oci.blobs import read_small_blob
from guard.oci.cosign_bundle import verify_cosign_bundle
from guard.oci.cosign_legacy import (
    COSIGN_SIG_ARTIFACT,
    LegacyUntried,
    LegacyVerified,
    legacy_sources,
    verify_legacy,
)
from guard.oci.modelpack import artifact_kind, artifact_layers
from guard.oci.reference import Reference, parse_reference
from guard.oci.referrers import (
    DEFAULT_LIMITS,
    PREDICATE_ANNOTATION,
    ReferrerLimits,
    fallback_tag,
    read_referrers,
)
from guard.oci.registry import RegistryAccess
from guard.oci.store import open_store, resolve_and_fetch
from guard.oci.types import (
    DOCKER_MANIFEST_LIST,
    OCI_INDEX,
    SIGSTORE_BUNDLE,
    Descriptor,
    Store,
    subject_digest,
)
from guard.signing import Manifest, Resource, compare_manifests, verify_model_bundle
from guard.signing.types import (
    LEGACY_PREDICATE_TYPE,
    OMS_PREDICATE_TYPE,
    SIMPLE_SIGNING_TYPE,
    SignerInfo,
    Verifier,
)
from guard.untrusted import parse_object

_BUNDLE_PREFIX = "application/vnd.dev.sigstore.bundle"
Mode = Literal["layers", "manifest-digest"]
# Which signature format verified: OMS model signatures, cosign v3 bundles, cosign simple signing.
SignatureFormat = Literal["oms", "cosign-bundle", "cosign-legacy"]
MODEL_PREDICATES = (OMS_PREDICATE_TYPE, LEGACY_PREDICATE_TYPE)
COSIGN_SIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1"
# What counts as a signature: OMS model signatures, and cosign's signature predicate for images.
# A rule may add predicate types (``signature_predicates``); nothing else ever counts.
SIGNATURE_PREDICATES = (*MODEL_PREDICATES, COSIGN_SIGN_PREDICATE)
_LISTED_FAILURES = 3  # failures named in the message when none of the signatures verified


@dataclass(frozen=True)
class OciVerification:
    """What was verified: the manifest digest, how it was bound, and who signed it."""

    reference: str
    digest: str
    store: str
    artifact_kind: str  # modelpack | cnai | kitops | other
    mode: Mode
    signature_digest: str
    predicate_type: str
    signer: SignerInfo
    files: tuple[str, ...]
    format: SignatureFormat = "oms"
    # the digest the signature names: ``digest`` itself, or the image index that lists it
    signed_digest: str = ""
    docker_reference: str | None = None  # a cosign simple-signing payload's claim (not enforced)
    signature_layer: int | None = None  # cosign simple signing: which layer (signer) verified

    @property
    def via_index(self) -> bool:
        return bool(self.signed_digest) and self.signed_digest != self.digest

    def to_json(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "digest": self.digest,
            "store": self.store,
            "artifactKind": self.artifact_kind,
            "mode": self.mode,
            "signature": self.signature_digest,
            "predicateType": self.predicate_type,
            "signer": {
                "method": self.signer.method,
                "identity": self.signer.identity,
                "issuer": self.signer.issuer,
                "keyFingerprint": self.signer.key_fingerprint,
            },
            "files": list(self.files),
            "format": self.format,
            "signedDigest": self.signed_digest or self.digest,
            "signedVia": "index" if self.via_index else "manifest",
            **({"dockerReference": self.docker_reference} if self.docker_reference else {}),
            **({"signatureLayer": self.signature_layer} if self.signature_layer is not None else {}),
        }


def peek_predicate_type(bundle: bytes) -> str | None:
    """The bundle's claimed predicate type, only to choose the verifying path (never trusted).
    Bytes that are not a JSON object are junk: UntrustedContentError says what they are."""
    doc = parse_object(bundle, "signature bundle")
    try:
        payload = base64.b64decode(doc["dsseEnvelope"]["payload"], validate=True)
        value = parse_object(payload, "signature statement").get("predicateType")
    except (UntrustedContentError, binascii.Error, KeyError, TypeError):
        return None
    return value if isinstance(value, str) else None


def _may_be_signature(referrer: Descriptor, predicates: Collection[str]) -> bool:
    """Whether a bundle referrer may hold a signature, by its predicate-type annotation alone
    (nothing fetched). Without the annotation it may; the verified statement decides then."""
    claimed = referrer.annotations.get(PREDICATE_ANNOTATION)
    return claimed is None or claimed in predicates


def _check_layers(manifest: Mapping[str, Any], signed: Any, digest: str) -> tuple[str, ...]:
    """The signed OMS resources must be exactly the raw layers (name and sha256)."""
    serialization = signed.serialization
    if serialization.method != "files" or serialization.hash_type != "sha256":
        raise VerificationError(
            f"the signature of {digest} uses {serialization.method}/{serialization.hash_type}; checking it "
            "against layer digests needs files/sha256. Pull the model and verify the directory instead."
        )
    try:
        layers = artifact_layers(manifest)
    except UntrustedContentError as err:
        # the manifest is content whoever pushed it chose, not a registry that failed to answer
        raise IntegrityError(
            f"{digest}: its layers cannot be checked against the signature: {err}", changed=[digest]
        ) from err
    not_raw = [layer.path or layer.descriptor.digest for layer in layers if not layer.is_raw]
    if not_raw:
        raise VerificationError(
            f"{digest} has packed (tar) layers {not_raw}: a files signature cannot be checked against them "
            "without downloading; sign the manifest digest instead"
        )
    algorithm = signed.resources[0].algorithm if signed.resources else "sha256"
    seen: set[str] = set()
    actual = []
    for layer in layers:
        assert layer.path is not None
        if layer.path in seen:
            raise IntegrityError(f"{digest}: file {layer.path} appears in two layers", changed=[layer.path])
        seen.add(layer.path)
        actual.append(Resource(layer.path, algorithm, layer.descriptor.digest.split(":", 1)[1]))
    compare_manifests(signed, Manifest(serialization, tuple(sorted(actual))))
    return tuple(sorted(seen))


@dataclass(frozen=True)
class _Verified:
    mode: Mode
    signer: SignerInfo
    predicate: str
    files: tuple[str, ...]
    format: SignatureFormat
    signature: str
    docker_reference: str | None = None
    layer: int | None = None


def _verify_signature(
    store: Store,
    sig: Descriptor,
    subject: Descriptor,
    manifest: Mapping[str, Any],
    verifier: Verifier,
    *,
    predicates: Collection[str],
) -> _Verified:
    referrer = store.fetch_manifest(sig.digest).json()
    bound = subject_digest(referrer)
    if bound != subject.digest:
        raise VerificationError(
            f"signature referrer {sig.digest} is listed for {subject.digest} but its subject is {bound!r}"
        )
    layers = referrer.get("layers") if isinstance(referrer.get("layers"), list) else []
    try:
        bundle_layers = [
            Descriptor.from_json(raw, f"referrer {sig.digest} layers[{i}]")
            for i, raw in enumerate(layers or [])
            if isinstance(raw, dict) and str(raw.get("mediaType", "")).startswith(_BUNDLE_PREFIX)
        ]
    except RegistryError as err:
        # whoever can push to the repository wrote it: a bad signature, not a registry failure
        # (which would stop trying the other signatures, and which a webhook rule may fail open)
        raise BundleFormatError(f"signature referrer {sig.digest} is malformed: {err}") from err
    if not bundle_layers:
        raise BundleFormatError(f"signature referrer {sig.digest} holds no Sigstore bundle layer")
    bundle = read_small_blob(store, bundle_layers[0], f"signature {bundle_layers[0].digest}")
    claimed = peek_predicate_type(bundle)
    if claimed not in predicates:
        raise BundleFormatError(
            f"referrer {sig.digest} is not a signature: its statement's predicate type is {claimed!r} "
            f"(an attestation, which never counts as a signature); signature predicates: "
            f"{', '.join(sorted(predicates))}"
        )
    hexdigest = subject.digest.split(":", 1)[1]
    if claimed in MODEL_PREDICATES:
        verified = verify_model_bundle(bundle, verifier)
        # A v0.2 statement's subjects are the model's files: one whose bytes happen to be this
        # manifest does not vouch for the manifest (and every layer it names).
        oms = verified.statement.get("predicateType") == OMS_PREDICATE_TYPE
        subjects = (verified.statement.get("subject") or []) if oms else []
        if any(isinstance(s, dict) and (s.get("digest") or {}).get("sha256") == hexdigest for s in subjects):
            return _Verified("manifest-digest", verified.signer, str(claimed), (), "oms", sig.digest)
        files = _check_layers(manifest, verified.manifest, subject.digest)
        return _Verified("layers", verified.signer, str(claimed), files, "oms", sig.digest)
    # 5. cosign v3 (or a predicate the rule adds): the statement's subject is the manifest
    signer, predicate = verify_cosign_bundle(bundle, verifier, subject.digest, predicates, sig.digest)
    return _Verified("manifest-digest", signer, predicate, (), "cosign-bundle", sig.digest)


def _verify_digest(
    store: Store,
    descriptor: Descriptor,
    manifest: Mapping[str, Any],
    verifier: Verifier,
    *,
    limits: ReferrerLimits,
    predicates: Collection[str],
    label: str,
) -> _Verified:
    """Steps 2-6 for one digest: the first signature of any format that verifies."""
    # 2. find signatures: registry order, attestations left out unfetched, capped
    listing = read_referrers(store, descriptor.digest, limits)
    bundles = listing.of_type(SIGSTORE_BUNDLE)
    signatures = [d for d in bundles if _may_be_signature(d, predicates)]
    not_signatures = len(bundles) - len(signatures)
    legacy = legacy_sources(store, descriptor.digest, list(listing.referrers))
    if not signatures and not legacy:
        notes = [f"{not_signatures} attestation referrers are not signatures"] if not_signatures else []
        notes += listing.skipped_summary()  # junk entries, and older entries past the listing cap
        why = f" ({'; '.join(notes)})" if notes else ""
        raise VerificationError(
            f"no signature is attached to {label} (no referrer with artifactType {SIGSTORE_BUNDLE} and a "
            f"signature predicate{why}, no cosign {COSIGN_SIG_ARTIFACT} referrer, no tag "
            f"{fallback_tag(descriptor.digest)}.sig); attach one with `guard attach --signature` or "
            "`cosign sign`"
        )
    untried = max(0, len(signatures) - limits.max_signatures)
    signatures = signatures[: limits.max_signatures]  # bound the work junk referrers can cause
    untried += max(0, len(legacy) - limits.max_signatures)
    legacy = legacy[: limits.max_signatures]
    # 3.-5. verify each bundle, newest first, until one holds
    failures: list[GuardError] = []
    for sig in signatures:
        try:
            return _verify_signature(store, sig, descriptor, manifest, verifier, predicates=predicates)
        except (VerificationError, NotFoundError) as err:
            failures.append(err)
    # 6. cosign simple signing: each layer of each signature manifest is one signature; the
    #    layers tried across all of them share one cap (junk cannot multiply the work)
    budget = limits.max_signatures
    for source in legacy:
        if budget <= 0:
            untried += 1
            continue
        for outcome in verify_legacy(store, source, descriptor.digest, verifier, max_layers=budget):
            if isinstance(outcome, LegacyUntried):
                untried += outcome.count
                continue
            budget -= 1
            if isinstance(outcome, LegacyVerified):
                return _Verified(
                    "manifest-digest",
                    outcome.signer,
                    SIMPLE_SIGNING_TYPE,
                    (),
                    "cosign-legacy",
                    outcome.manifest_digest,
                    outcome.docker_reference,
                    outcome.layer,
                )
            failures.append(outcome)
    raise _none_verified(failures, untried, len(listing.skipped), limits.max_signatures)


def _index_listing(
    store: Store, reference: Reference, index: str | None, platform: Descriptor
) -> Descriptor | None:
    """The image index (``index``, else the reference's tag when it pins a digest too) that
    lists ``platform``, or None: a platform manifest may be admitted on a signature of the index
    that lists it (cosign signs what it is given, usually the index)."""
    name = index or (reference.tag if reference.digest is not None else None)
    if not name:
        return None
    try:
        resolved = store.resolve(name)
        if resolved.digest == platform.digest:
            return None
        fetched = store.fetch_manifest(resolved.digest)
    except NotFoundError:
        return None
    doc = fetched.json()
    if doc.get("mediaType", fetched.descriptor.media_type) not in (OCI_INDEX, DOCKER_MANIFEST_LIST):
        return None
    entries = doc.get("manifests")
    listed = isinstance(entries, list) and any(
        isinstance(e, dict) and e.get("digest") == platform.digest for e in entries
    )
    return fetched.descriptor if listed else None


def verify_oci(
    ref: str | Reference,
    verifier: Verifier,
    store: Store | None = None,
    *,
    access: RegistryAccess | None = None,
    limits: ReferrerLimits = DEFAULT_LIMITS,
    extra_predicates: Collection[str] = (),
    index: str | None = None,
) -> OciVerification:
    """Verify the artifact ``ref`` names against ``verifier`` without fetching any weight blob.
    Only signature predicates count (``SIGNATURE_PREDICATES`` plus ``extra_predicates``).
    A platform manifest whose own signatures do not verify is accepted on a signature of the
    image index that lists it: ``index`` (a tag or digest), else the reference's tag when the
    reference also pins a digest (``repo:tag@sha256:...``)."""
    reference = parse_reference(ref) if isinstance(ref, str) else ref
    store = store or open_store(reference, access)
    predicates = frozenset((*SIGNATURE_PREDICATES, *extra_predicates))
    # 1. resolve and fetch
    descriptor, fetched = resolve_and_fetch(store, reference)
    manifest = fetched.json()
    label = f"{reference.base()}@{descriptor.digest}"
    via: Descriptor | None = None
    try:
        verified = _verify_digest(
            store, descriptor, manifest, verifier, limits=limits, predicates=predicates, label=label
        )
    except VerificationError as direct:
        # 7. a platform manifest: a signature on the index that lists it
        via = _index_listing(store, reference, index, descriptor)
        if via is None:
            raise
        try:
            verified = _verify_digest(
                store,
                via,
                store.fetch_manifest(via.digest).json(),
                verifier,
                limits=limits,
                predicates=predicates,
                label=f"{reference.base()}@{via.digest} (the index listing {descriptor.digest})",
            )
        except VerificationError as err:
            error = type(direct)(
                f"{direct}; nor does a signature of the image index {via.digest} that lists it: {err}"
            )
            raise error from direct
    return OciVerification(
        reference=str(ref),
        digest=descriptor.digest,
        store=store.describe(),
        artifact_kind=artifact_kind(manifest),
        mode=verified.mode,
        signature_digest=verified.signature,
        predicate_type=verified.predicate,
        signer=verified.signer,
        files=verified.files,
        format=verified.format,
        signed_digest=via.digest if via is not None else descriptor.digest,
        docker_reference=verified.docker_reference,
        signature_layer=verified.layer,
    )


def _none_verified(failures: list[GuardError], untried: int, unparsed: int, cap: int) -> GuardError:
    """The error when no signature verified: the first failure's class (the cause a caller acts
    on), naming a few failures and counting the rest, the junk and what the cap left untried."""
    first = failures[0]
    notes = []
    if unparsed:
        notes.append(f"{unparsed} referrer entries that do not parse were skipped")
    if untried:
        notes.append(f"{untried} more signatures were not tried (cap {cap})")
    if len(failures) == 1 and not notes:
        return first
    junk = sum(isinstance(e, UntrustedContentError) for e in failures)
    named = "; ".join(f"{type(e).__name__}: {e}" for e in failures[:_LISTED_FAILURES])
    if len(failures) > _LISTED_FAILURES:
        named += f"; and {len(failures) - _LISTED_FAILURES} more"
    if junk:
        notes.insert(0, f"{junk} of them junk referrers skipped")
    extra = f" ({'; '.join(notes)})" if notes else ""
    error = type(first)(f"none of the {len(failures)} attached signatures verified{extra}: {named}")
    error.__cause__ = first
    return error


def format_verification(result: OciVerification) -> str:
    """One human paragraph saying what was verified and how."""
    who = result.signer.identity + (f" (issuer {result.signer.issuer})" if result.signer.issuer else "")
    if result.mode == "layers":
        how = f"{len(result.files)} files match the layer digests (no weights fetched)"
    elif result.via_index:
        how = f"the signature names the image index {result.signed_digest}, which lists this manifest"
    else:
        how = "the signature's subject is the manifest digest"
    where = result.signature_digest
    if result.signature_layer is not None:
        where += f" layers[{result.signature_layer}]"
    return (
        f"verified {result.reference}\n  digest: {result.digest}\n"
        f"  signed by: {who} [{result.signer.method}]\n"
        f"  format: {result.format}\n"
        f"  binding: {how}\n  signature: {where}"
    )


def verify_oci_command(
    target: str,
    verifier: Verifier,
    access: RegistryAccess | None = None,
    *,
    json_output: bool = False,
) -> OciVerification:
    """The body of ``guard verify oci://...`` / ``oci-layout:...``: verify and print the result
    (JSON with ``json_output``). Raises GuardError on failure; the CLI maps it to an exit code."""
    import typer  # noqa: PLC0415 - the CLI's printer: the webhook's verification path imports this module

    result = verify_oci(target, verifier, access=access)
    if json_output:
        typer.echo(json.dumps(result.to_json(), indent=2))
    else:
        typer.echo(format_verification(result))
    return result
