"""Verify a model in a registry or layout without downloading its weights.

``verify_oci(ref, verifier, store)`` is a pure, thread-safe function (no globals): the CLI's
``guard verify oci://...`` and the admission webhook call it. Procedure:

1. Resolve the reference to a manifest digest (a tag that moves between resolve and fetch is
   reported, never silently followed) and fetch the manifest (digest checked).
2. Find the signature referrers (artifactType Sigstore bundle): Referrers API, else the
   fallback tag ``sha256-<hex>``.
3. For each signature, newest first, until one verifies: fetch its referrer manifest (its
   ``subject`` must be this manifest) and its bundle blob (digest checked, bounded size).
4. An OMS model signature: ``verify_model_bundle`` (cryptography, identity, statement), then the
   signed resources must equal the raw layers exactly: name <-> ``org.cncf.model.filepath``,
   sha256 <-> layer digest, nothing extra, nothing missing. No layer blob is fetched.
5. Any other in-toto statement: verified with ``verify_statement``; one of its subjects must be
   the manifest digest itself (container images, modelcars, tar-layer artifacts).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import typer

from guard.errors import (
    BundleFormatError,
    GuardError,
    IntegrityError,
    NotFoundError,
    RegistryError,
    VerificationError,
)
from guard.oci.blobs import read_small_blob
from guard.oci.modelpack import artifact_kind, artifact_layers
from guard.oci.reference import Reference, parse_reference
from guard.oci.referrers import list_referrers
from guard.oci.registry import RegistryAccess
from guard.oci.store import open_store, resolve_and_fetch
from guard.oci.types import OCI_CREATED, SIGSTORE_BUNDLE, Descriptor, Store
from guard.signing import Manifest, Resource, compare_manifests, verify_model_bundle, verify_statement
from guard.signing.types import LEGACY_PREDICATE_TYPE, OMS_PREDICATE_TYPE, SignerInfo, Verifier

_BUNDLE_PREFIX = "application/vnd.dev.sigstore.bundle"
Mode = Literal["layers", "manifest-digest"]
MAX_SIGNATURES = 16  # newest signature referrers tried per verification
MODEL_PREDICATES = (OMS_PREDICATE_TYPE, LEGACY_PREDICATE_TYPE)


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
        }


def _peek_predicate_type(bundle: bytes) -> str | None:
    """The bundle's claimed predicate type, only to choose the verifying path (never trusted)."""
    try:
        doc = json.loads(bundle)
        payload = base64.b64decode(doc["dsseEnvelope"]["payload"])
        value = json.loads(payload).get("predicateType")
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    return value if isinstance(value, str) else None


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
    except RegistryError as err:
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


def _verify_signature(
    store: Store, sig: Descriptor, subject: Descriptor, manifest: Mapping[str, Any], verifier: Verifier
) -> tuple[Mode, SignerInfo, str, tuple[str, ...]]:
    referrer = store.fetch_manifest(sig.digest).json()
    subject_field = referrer.get("subject")
    bound = subject_field.get("digest") if isinstance(subject_field, dict) else None
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
    claimed = _peek_predicate_type(bundle)
    hexdigest = subject.digest.split(":", 1)[1]
    if claimed in MODEL_PREDICATES:
        verified = verify_model_bundle(bundle, verifier)
        # A v0.2 statement's subjects are the model's files: one whose bytes happen to be this
        # manifest does not vouch for the manifest (and every layer it names).
        oms = verified.statement.get("predicateType") == OMS_PREDICATE_TYPE
        subjects = (verified.statement.get("subject") or []) if oms else []
        if any(isinstance(s, dict) and (s.get("digest") or {}).get("sha256") == hexdigest for s in subjects):
            return "manifest-digest", verified.signer, str(claimed), ()
        files = _check_layers(manifest, verified.manifest, subject.digest)
        return "layers", verified.signer, str(claimed), files
    statement = verify_statement(bundle, verifier)
    if not any(s.digest.get("sha256") == hexdigest for s in statement.subjects):
        found = [dict(s.digest) for s in statement.subjects]
        raise IntegrityError(
            f"the signature's subject is {found}, not the manifest {subject.digest}", changed=[subject.digest]
        )
    return "manifest-digest", statement.signer, statement.predicate_type, ()


def verify_oci(
    ref: str | Reference,
    verifier: Verifier,
    store: Store | None = None,
    *,
    access: RegistryAccess | None = None,
) -> OciVerification:
    """Verify the artifact ``ref`` names against ``verifier`` without fetching any weight blob."""
    reference = parse_reference(ref) if isinstance(ref, str) else ref
    store = store or open_store(reference, access)
    # 1. resolve and fetch
    descriptor, fetched = resolve_and_fetch(store, reference)
    manifest = fetched.json()
    # 2. find signatures
    signatures = list_referrers(store, descriptor.digest, SIGSTORE_BUNDLE)
    if not signatures:
        raise VerificationError(
            f"no signature is attached to {reference.base()}@{descriptor.digest} (no referrer with "
            f"artifactType {SIGSTORE_BUNDLE}); attach one with `guard attach --signature`"
        )
    signatures.sort(key=lambda d: d.annotations.get(OCI_CREATED, ""), reverse=True)
    if len(signatures) > MAX_SIGNATURES:  # bound the work an attacker can cause by attaching junk
        signatures = signatures[:MAX_SIGNATURES]
    # 3.-5. verify each, newest first, until one holds
    failures: list[GuardError] = []
    for sig in signatures:
        try:
            mode, signer, predicate, files = _verify_signature(store, sig, descriptor, manifest, verifier)
        except (VerificationError, NotFoundError) as err:
            failures.append(err)
            continue
        return OciVerification(
            reference=str(ref),
            digest=descriptor.digest,
            store=store.describe(),
            artifact_kind=artifact_kind(manifest),
            mode=mode,
            signature_digest=sig.digest,
            predicate_type=predicate,
            signer=signer,
            files=files,
        )
    first = failures[0]
    if len(failures) == 1:
        raise first
    detail = "; ".join(f"{type(e).__name__}: {e}" for e in failures)
    raise type(first)(f"none of the {len(failures)} attached signatures verified: {detail}") from first


def format_verification(result: OciVerification) -> str:
    """One human paragraph saying what was verified and how."""
    who = result.signer.identity + (f" (issuer {result.signer.issuer})" if result.signer.issuer else "")
    if result.mode == "layers":
        how = f"{len(result.files)} files match the layer digests (no weights fetched)"
    else:
        how = "the signature's subject is the manifest digest"
    return (
        f"verified {result.reference}\n  digest: {result.digest}\n"
        f"  signed by: {who} [{result.signer.method}]\n"
        f"  binding: {how}\n  signature: {result.signature_digest}"
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
    result = verify_oci(target, verifier, access=access)
    if json_output:
        typer.echo(json.dumps(result.to_json(), indent=2))
    else:
        typer.echo(format_verification(result))
    return result
