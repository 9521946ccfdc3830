"""The value types and backend seams of guard.signing.

Everything that crosses a module boundary in signing is defined here: the serialization options,
the manifest of resource digests, what a verified signature says about its signer, and the two
narrow Protocols each signing / verifying backend implements (one backend per file).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

HashType = Literal["sha256", "blake2b", "blake3"]
SerializationMethod = Literal["files", "shards"]
SigningMethod = Literal["key", "certificate", "keyless"]

OMS_PREDICATE_TYPE = "https://model_signing/signature/v1.0"
LEGACY_PREDICATE_TYPE = "https://model_signing/Digests/v0.1"
IN_TOTO_STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"

DEFAULT_IGNORE_PATHS: tuple[str, ...] = (".git", ".gitignore", ".gitattributes", ".github")
DEFAULT_SIGNATURE_NAME = "model.sig"
DEFAULT_SHARD_SIZE = 1_000_000_000


@dataclass(frozen=True)
class Serialization:
    """How a model directory is turned into resource digests (OMS ``predicate.serialization``)."""

    method: SerializationMethod = "files"
    hash_type: HashType = "sha256"
    allow_symlinks: bool = False
    ignore_paths: tuple[str, ...] = DEFAULT_IGNORE_PATHS
    shard_size: int = DEFAULT_SHARD_SIZE

    def __post_init__(self) -> None:
        if self.shard_size <= 0:
            raise ValueError(f"shard_size must be a positive number of bytes, found {self.shard_size}")


@dataclass(frozen=True, order=True)
class Resource:
    """One signed resource: a file (``files``) or a shard ``path:start:end`` (``shards``)."""

    name: str
    algorithm: str
    digest: str  # lowercase hex


@dataclass(frozen=True)
class Manifest:
    """The resource digests of a model, sorted by name (code point order), as OMS signs them."""

    serialization: Serialization
    resources: tuple[Resource, ...]

    def by_name(self) -> dict[str, Resource]:
        return {r.name: r for r in self.resources}


@dataclass(frozen=True)
class SignerInfo:
    """Who signed, as established by a verifier (never as claimed by the bundle alone).

    ``identity``: for ``key`` the public key's SHA-256 fingerprint (``sha256:<hex>`` of the DER
    SubjectPublicKeyInfo); for ``certificate`` the leaf's subject (and SAN when present); for
    ``keyless`` the certificate SAN (email or URI). ``issuer``: the OIDC issuer for ``keyless``, the
    leaf's issuer DN for ``certificate``, None for ``key``.
    """

    method: SigningMethod
    identity: str
    issuer: str | None = None
    key_fingerprint: str | None = None
    details: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Subject:
    """An in-toto subject: a name and its digests by algorithm (hex)."""

    name: str
    digest: Mapping[str, str]


@dataclass(frozen=True)
class VerifiedStatement:
    """An in-toto Statement whose signature has been verified, and who signed it."""

    statement: Mapping[str, Any]
    predicate_type: str
    subjects: tuple[Subject, ...]
    predicate: Mapping[str, Any]
    signer: SignerInfo


class Signer(Protocol):
    """A signing backend (key, certificate, Sigstore keyless)."""

    method: SigningMethod

    def sign_payload(self, payload: bytes) -> dict[str, Any]:
        """Sign ``payload`` (a serialized in-toto Statement) and return a complete Sigstore bundle
        v0.3 (as a JSON-ready dict) whose ``dsseEnvelope`` carries it with payloadType
        ``application/vnd.in-toto+json``."""
        ...


class Verifier(Protocol):
    """A verifying backend: checks the cryptography and identity of one parsed bundle.

    The template in ``guard.signing.verify`` parses the JSON, checks media type, payload type and
    predicate type; a backend only does its cryptography and identity checks and returns the
    DSSE payload bytes it verified together with who signed them. It raises
    ``SignatureMismatch``, ``IdentityMismatch``, ``TransparencyLogError`` or
    ``BundleFormatError`` (naming the field).
    """

    method: SigningMethod

    def verify_bundle(self, bundle: Mapping[str, Any]) -> tuple[bytes, SignerInfo]: ...


# --- cosign "simple signing" (the legacy ``sha256-<hex>.sig`` format) -----------------------

SIMPLE_SIGNING_TYPE = "cosign container image signature"  # the payload's critical.type


@dataclass(frozen=True)
class SimpleSignature:
    """One cosign legacy signature, as its layer carries it: the payload blob's exact bytes
    (digest already checked against the layer descriptor) and the layer's annotations
    (``dev.cosignproject.cosign/signature`` decoded; the others verbatim, still untrusted).

    ``certificate`` / ``chain``: PEM (keyless or certificate-signed); ``rekor_bundle``: the
    ``dev.sigstore.cosign/bundle`` JSON (Rekor SignedEntryTimestamp and entry, no inclusion proof);
    ``where``: a label for messages (``<manifest digest> layers[i]``)."""

    payload: bytes
    signature: bytes
    where: str
    certificate: str | None = None
    chain: str | None = None
    rekor_bundle: str | None = None
    rfc3161_timestamp: str | None = None


@runtime_checkable
class SimpleSigningVerifier(Protocol):
    """A verifying backend that can also check a cosign simple-signing signature: the
    cryptography and identity over the payload bytes (the caller binds the payload to the
    admitted digest). Raises the same errors as ``Verifier.verify_bundle``."""

    method: SigningMethod

    def verify_simple_signing(self, signature: SimpleSignature) -> SignerInfo: ...
