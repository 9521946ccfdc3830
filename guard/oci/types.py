"""OCI value types, media types and the ``Store`` seam.

A ``Store`` is one repository (a registry repository, or an OCI image layout directory). Each
implementation lives in its own file (``registry.py``, ``layout.py``); everything above the seam
(push, pull, attach, discover, verify) is written once against this Protocol.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Protocol

from guard.errors import GuardError, RegistryError, UntrustedContentError
from guard.untrusted import parse_object

# --- media types -----------------------------------------------------------------------------

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
OCI_EMPTY_BYTES = b"{}"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_MEDIA_TYPES = (OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST)

MODELPACK_ARTIFACT = "application/vnd.cncf.model.manifest.v1+json"
MODELPACK_CONFIG = "application/vnd.cncf.model.config.v1+json"
MODELPACK_LAYER_PREFIX = "application/vnd.cncf.model."
MODELPACK_FILEPATH = "org.cncf.model.filepath"
MODELPACK_FILE_METADATA = "org.cncf.model.file.metadata+json"
MODELPACK_UNTESTED = "org.cncf.model.file.mediatype.untested"
CNAI_ARTIFACT = "application/vnd.cnai.model.manifest.v1+json"
CNAI_CONFIG = "application/vnd.cnai.model.config.v1+json"
CNAI_LAYER_PREFIX = "application/vnd.cnai.model."
CNAI_FILEPATH = "org.cnai.model.filepath"
KITOPS_ARTIFACT = "application/vnd.kitops.modelkit.manifest.v1+json"
KITOPS_CONFIG = "application/vnd.kitops.modelkit.config.v1+json"
KITOPS_LAYER_PREFIX = "application/vnd.kitops.modelkit."
OCI_TITLE = "org.opencontainers.image.title"
OCI_CREATED = "org.opencontainers.image.created"

SIGSTORE_BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"
CYCLONEDX_JSON = "application/vnd.cyclonedx+json"
IN_TOTO_JSON = "application/vnd.in-toto+json"

MAX_SIZE = 2**63 - 1  # OCI: sizes are int64
MAX_MEDIA_TYPE_CHARS = 255  # RFC 6838: type and subtype are 127 characters each at most
DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$")
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def check_digest(digest: Any, what: str = "digest", error: type[GuardError] = RegistryError) -> str:
    """Return ``digest`` if it is ``sha256:<64 hex>``; raise ``error`` otherwise."""
    if not isinstance(digest, str) or not DIGEST_RE.match(digest):
        raise error(f"{what}: expected sha256:<64 lowercase hex>, found {_short(digest)}")
    return digest


def subject_digest(manifest: Any) -> Any:
    """The digest a manifest names as its ``subject`` (what a referrer is bound to), else None.
    Whatever the pusher wrote: compare it, never trust its type."""
    subject = manifest.get("subject") if isinstance(manifest, dict) else None
    return subject.get("digest") if isinstance(subject, dict) else None


def _short(value: Any, limit: int = 120) -> str:
    """``repr(value)`` cut to ``limit`` characters: values from content someone pushed are
    quoted in messages, never at any length."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


@dataclass(frozen=True)
class Descriptor:
    """An OCI content descriptor."""

    media_type: str
    digest: str
    size: int
    artifact_type: str | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out

    @classmethod
    def from_json(cls, data: Any, where: str = "descriptor") -> Descriptor:
        """Parse and validate a descriptor. Descriptors are content whoever pushed them wrote:
        ``UntrustedContentError`` names the field that is wrong."""
        bad = UntrustedContentError
        if not isinstance(data, Mapping):
            raise bad(f"{where}: expected a JSON object, found {type(data).__name__}", where=where)
        media_type = data.get("mediaType")
        size = data.get("size")
        if not isinstance(media_type, str) or not media_type or len(media_type) > MAX_MEDIA_TYPE_CHARS:
            raise bad(f"{where}.mediaType: expected a media type, found {_short(media_type)}", where=where)
        if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= MAX_SIZE:
            raise bad(
                f"{where}.size: expected an integer from 0 to 2^63-1, found {_short(size)}", where=where
            )
        digest = check_digest(data.get("digest"), f"{where}.digest", bad)
        annotations = data.get("annotations") or {}
        if not isinstance(annotations, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in annotations.items()
        ):
            raise bad(f"{where}.annotations: expected a map of strings to strings", where=where)
        artifact_type = data.get("artifactType")
        if artifact_type is not None and not isinstance(artifact_type, str):
            raise bad(f"{where}.artifactType: expected a string, found {_short(artifact_type)}", where=where)
        return cls(media_type, digest, size, artifact_type, dict(annotations))


@dataclass(frozen=True)
class FetchedManifest:
    """A manifest's exact bytes with the descriptor they were fetched as (digest checked).

    ``parsed``: the JSON object a store already parsed from ``body`` (with ``parse_object``'s
    limits) to label the descriptor, handed to the first ``json()`` call instead of a second
    parse (a manifest of 1,000 layers: ~7.5 ms each); later calls parse ``body`` again, so no
    two callers share (and change) one object."""

    descriptor: Descriptor
    body: bytes
    parsed: list[dict[str, Any]] = field(default_factory=list, compare=False, repr=False)

    def json(self) -> dict[str, Any]:
        """The manifest as a JSON object (``UntrustedContentError`` when it is not one: whoever
        pushed it chose its bytes)."""
        try:
            return self.parsed.pop()  # atomic: one caller only gets the store's object
        except IndexError:
            return parse_object(self.body, f"manifest {self.descriptor.digest}")


Opener = Callable[[], BinaryIO]
ProgressCallback = Callable[[int], None]


class Store(Protocol):
    """One repository of OCI content (a registry repository or a layout directory)."""

    def describe(self) -> str:
        """A human label, e.g. ``registry.example/models/llama`` or ``oci-layout:/path``."""
        ...

    def resolve(self, reference: str) -> Descriptor:
        """The descriptor of the manifest a tag or digest names (NotFoundError if none)."""
        ...

    def fetch_manifest(self, reference: str) -> FetchedManifest:
        """A manifest by tag or digest. Bytes fetched by digest are checked against it."""
        ...

    def push_manifest(self, body: bytes, media_type: str, tag: str | None = None) -> Descriptor:
        """Store a manifest (by digest, and under ``tag`` when given)."""
        ...

    def blob_exists(self, digest: str) -> bool: ...

    def push_blob(
        self, digest: str, size: int, opener: Opener, progress: ProgressCallback | None = None
    ) -> None:
        """Upload a blob from a file opened by ``opener`` in bounded memory."""
        ...

    def fetch_blob(self, digest: str) -> AbstractContextManager[Iterator[bytes]]:
        """Stream a blob's bytes. Callers verify the digest (see ``guard.oci.blobs``)."""
        ...

    def referrers(self, digest: str) -> list[Descriptor] | None:
        """Referrers from a native Referrers API, or None when the store has none."""
        ...

    def push_referrer(self, body: bytes, media_type: str) -> tuple[Descriptor, bool]:
        """Store a manifest with a ``subject``; True when the store indexed it natively (no
        fallback tag needed)."""
        ...
