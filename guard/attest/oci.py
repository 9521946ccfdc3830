"""Attestations of OCI artifacts: the subject is the manifest digest; attestations are referrers.

``oci_subject`` resolves a reference (a moving tag is reported, never followed) to its manifest
digest. ``oci_attestation_inputs`` finds every in-toto referrer (Referrers API or the fallback
tag, via guard.oci) and reads its bundle; a referrer that cannot be an attestation (wrong subject,
no Sigstore bundle layer, an unsigned SBOM) becomes an ``invalid`` outcome with the reason, never
silently skipped. ``oci_signature`` verifies the model signature with ``guard.oci.verify_oci``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from guard.attest.collect import AttestationInput, SignatureOutcome, collect_facts
from guard.attest.cosign_att import att_tag, dsse_inputs, dsse_layers
from guard.attest.facts import ModelFacts, PackagingFacts
from guard.attest.specs import CYCLONEDX_TYPE, SPDX3_TYPE
from guard.attest.subject import ModelSubject
from guard.attest.verify import AttestationOutcome
from guard.errors import GuardError, NotFoundError, VerificationError
from guard.oci.blobs import read_small_blob
from guard.oci.cosign_legacy import legacy_sources
from guard.oci.packaging import MAX_CONFIG_BYTES, packaging
from guard.oci.reference import Reference, parse_reference
from guard.oci.referrers import (
    DEFAULT_LIMITS,
    PREDICATE_ANNOTATION,
    SPDX_JSON,
    ReferrerLimits,
    ReferrerListing,
    read_referrers,
)
from guard.oci.registry import RegistryAccess
from guard.oci.store import open_store, resolve_and_fetch
from guard.oci.types import (
    CNAI_CONFIG,
    CYCLONEDX_JSON,
    IN_TOTO_JSON,
    MODELPACK_CONFIG,
    SIGSTORE_BUNDLE,
    Descriptor,
    Store,
    subject_digest,
)
from guard.oci.verify import verify_oci
from guard.signing import Verifier

_BUNDLE_PREFIX = "application/vnd.dev.sigstore.bundle"


@dataclass(frozen=True)
class OciTarget:
    subject: ModelSubject
    descriptor: Descriptor
    store: Store
    reference: Reference
    manifest: Mapping[str, Any] = field(default_factory=dict)


def oci_subject(reference: Reference, store: Store) -> OciTarget:
    descriptor, fetched = resolve_and_fetch(store, reference)
    algorithm, hexdigest = descriptor.digest.split(":", 1)
    if algorithm != "sha256":
        raise VerificationError(f"{reference}: manifest digest {descriptor.digest}: expected sha256")
    subject = ModelSubject(name=reference.base(), sha256=hexdigest, kind="oci", reference=str(reference))
    return OciTarget(subject, descriptor, store, reference, fetched.json())


def oci_packaging(target: OciTarget, *, signed: bool, read_config: bool = False) -> PackagingFacts:
    """The packaging facts of the target's manifest (modctl Modelfile, KitOps Kitfile) and, with
    ``read_config``, its ModelPack config's diffIds (one small blob fetched, digest checked)."""
    config: bytes | None = None
    raw = target.manifest.get("config")
    if read_config and isinstance(raw, dict) and raw.get("mediaType") in (MODELPACK_CONFIG, CNAI_CONFIG):
        try:
            descriptor = Descriptor.from_json(raw, "manifest config")
            config = read_small_blob(target.store, descriptor, "model config", limit=MAX_CONFIG_BYTES)
        except (VerificationError, NotFoundError) as err:
            facts = packaging(target.manifest, None, signed=signed)
            facts["notes"] = [*facts["notes"], f"config not read: {err}"]
            return PackagingFacts.model_validate(facts)
    return PackagingFacts.model_validate(packaging(target.manifest, config, signed=signed))


def _invalid(
    source: str, reason: str, predicate_type: str = "unknown", name: str | None = None
) -> AttestationOutcome:
    return AttestationOutcome(name or predicate_type, predicate_type, "invalid", reason, source)


def _read_referrer(
    target: OciTarget, ref: Descriptor, limits: ReferrerLimits
) -> list[AttestationInput | AttestationOutcome]:
    source = f"referrer {ref.digest}"
    referrer = target.store.fetch_manifest(ref.digest).json()
    bound = subject_digest(referrer)
    if bound != target.descriptor.digest:
        return [_invalid(source, f"referrer subject is {bound!r}, expected {target.descriptor.digest}")]
    layers = [raw for raw in referrer.get("layers") or [] if isinstance(raw, dict)]
    bundles = [raw for raw in layers if str(raw.get("mediaType", "")).startswith(_BUNDLE_PREFIX)]
    if not bundles:
        # cosign's legacy attestations: the same artifactType, DSSE envelope layers
        envelopes = dsse_layers(referrer, source)
        if envelopes:
            return dsse_inputs(target.store, envelopes, ref.digest, max_layers=limits.max_per_predicate)
        found = ", ".join(str(raw.get("mediaType")) for raw in layers) or "no layers"
        return [
            _invalid(source, f"expected a Sigstore bundle layer, found {found} (unsigned or not a bundle)")
        ]
    layer = Descriptor.from_json(bundles[0], f"{source} layers")
    return [AttestationInput(read_small_blob(target.store, layer, f"attestation {layer.digest}"), source)]


def _att_tag_inputs(target: OciTarget, limits: ReferrerLimits) -> list[AttestationInput | AttestationOutcome]:
    """cosign's ``sha256-<hex>.att`` tag: one DSSE attestation per layer (no subject field: each
    statement's subject is checked against the digest when it is verified)."""
    tag = att_tag(target.store, target.descriptor.digest)
    if tag is None:
        return []
    try:
        manifest = target.store.fetch_manifest(tag).json()
        layers = dsse_layers(manifest, f"tag {tag}")
    except (VerificationError, NotFoundError) as err:
        return [_invalid(f"tag {tag}", f"cannot read cosign's attestation tag: {err}")]
    return dsse_inputs(target.store, layers, f"tag {tag}", max_layers=limits.max_attestations)


def _attestation_referrers(
    listing: ReferrerListing, limits: ReferrerLimits
) -> tuple[list[Descriptor], list[AttestationOutcome]]:
    """The in-toto referrers to read, newest first in registry order: at most
    ``limits.max_per_predicate`` per predicate type (by the annotation, only to spread the cap:
    the verified statement decides what an attestation is) and ``limits.max_attestations`` in
    all. Whoever can push can attach thousands; the rest are counted, not read."""
    chosen: list[Descriptor] = []
    per_predicate: dict[str, int] = {}
    left_out = 0
    for ref in listing.of_type(IN_TOTO_JSON):
        claimed = ref.annotations.get(PREDICATE_ANNOTATION, "")
        if (
            len(chosen) >= limits.max_attestations
            or per_predicate.get(claimed, 0) >= limits.max_per_predicate
        ):
            left_out += 1
            continue
        per_predicate[claimed] = per_predicate.get(claimed, 0) + 1
        chosen.append(ref)
    notes = []
    if left_out:
        notes.append(
            _invalid(
                "referrers",
                f"{left_out} attestation referrers were not read (guard reads the newest "
                f"{limits.max_attestations}, at most {limits.max_per_predicate} per predicate type)",
            )
        )
    if listing.skipped:
        notes.append(_invalid("referrers", f"{len(listing.skipped)} junk referrer entries skipped"))
    return chosen, notes


def oci_attestation_inputs(
    target: OciTarget, limits: ReferrerLimits = DEFAULT_LIMITS
) -> tuple[list[AttestationInput], list[AttestationOutcome]]:
    """The attestation bundles attached to ``target`` and the referrers that cannot be one."""
    inputs: list[AttestationInput] = []
    listing = read_referrers(target.store, target.descriptor.digest, limits)  # one listing
    chosen, failed = _attestation_referrers(listing, limits)
    items: list[AttestationInput | AttestationOutcome] = []
    for ref in chosen:
        try:
            items += _read_referrer(target, ref, limits)
        except (VerificationError, NotFoundError) as err:
            items.append(_invalid(f"referrer {ref.digest}", f"cannot read the referrer: {err}"))
    items += _att_tag_inputs(target, limits)
    for item in items:
        if isinstance(item, AttestationInput):
            inputs.append(item)
        else:
            failed.append(item)
    for artifact_type, ptype, name in (
        (CYCLONEDX_JSON, CYCLONEDX_TYPE, "sbom"),
        (SPDX_JSON, SPDX3_TYPE, "spdx"),
    ):
        unsigned = listing.of_type(artifact_type)
        for ref in unsigned[: limits.max_per_predicate]:
            failed.append(
                _invalid(
                    f"referrer {ref.digest}",
                    f"an unsigned SBOM ({artifact_type}): sign it with `guard attest` to have it counted",
                    ptype,
                    name,
                )
            )
        if len(unsigned) > limits.max_per_predicate:
            failed.append(
                _invalid(
                    "referrers",
                    f"{len(unsigned) - limits.max_per_predicate} more unsigned SBOMs "
                    f"({artifact_type}) not listed",
                    ptype,
                    name,
                )
            )
    return inputs, failed


def oci_signature(
    target: OciTarget, verifier: Verifier, limits: ReferrerLimits = DEFAULT_LIMITS
) -> SignatureOutcome:
    listing = read_referrers(target.store, target.descriptor.digest, limits)
    legacy = legacy_sources(target.store, target.descriptor.digest, list(listing.referrers))
    if not listing.of_type(SIGSTORE_BUNDLE) and not legacy:
        return SignatureOutcome(None, "missing", f"no signature is attached to {target.descriptor.digest}")
    try:
        pinned = target.reference.with_digest(target.descriptor.digest)
        result = verify_oci(pinned, verifier, target.store, limits=limits)
    except VerificationError as err:
        return SignatureOutcome(None, "invalid", str(err))
    except GuardError as err:  # a referrer that vanished mid-way: report, never count as signed
        return SignatureOutcome(None, "invalid", f"{type(err).__name__}: {err}")
    source = f"referrer {result.signature_digest}"
    if result.signature_layer is not None:
        source = f"cosign signature {result.signature_digest} layers[{result.signature_layer}]"
    covers = result.mode == "manifest-digest"
    return SignatureOutcome(result.signer, "present", None, source, covers_manifest=covers)


def oci_facts(
    reference: str | Reference,
    verifier: Verifier,
    store: Store | None = None,
    *,
    access: RegistryAccess | None = None,
    attestations: Sequence[AttestationInput] = (),
) -> ModelFacts:
    """The facts of an OCI artifact: resolve it, verify its signature referrer, and verify every
    attestation attached to it (plus ``attestations`` given out of band)."""
    ref = parse_reference(reference) if isinstance(reference, str) else reference
    target = oci_subject(ref, store or open_store(ref, access))
    signature = oci_signature(target, verifier)
    attached, rejected = oci_attestation_inputs(target)
    facts = collect_facts(
        target.subject, verifier, [*attestations, *attached], signature=signature, rejected=rejected
    )
    covered = signature.status == "present" and signature.covers_manifest
    return facts.model_copy(update={"packaging": oci_packaging(target, signed=covered, read_config=True)})
