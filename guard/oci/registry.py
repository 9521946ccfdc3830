"""The remote-registry ``Store``: the OCI distribution API for manifests, blobs and referrers.

Uploads stream from disk in ``CHUNK_SIZE`` PATCH requests (bounded memory); manifests and
indexes are pushed with the Content-Type we choose; fetched manifests are checked against their
digest. The transport and authentication live in ``guard.oci.client``.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlparse, urlunparse

from guard.errors import (
    AnswerTooLargeError,
    IntegrityError,
    NotFoundError,
    RegistryError,
    UntrustedContentError,
)
from guard.oci.client import FileWindow, RegistryAccess, RegistryClient
from guard.oci.transport import BodyReader
from guard.oci.types import (
    DIGEST_RE,
    MANIFEST_MEDIA_TYPES,
    Descriptor,
    FetchedManifest,
    Opener,
    ProgressCallback,
    check_digest,
    sha256_digest,
)
from guard.untrusted import parse_object

__all__ = ["CHUNK_SIZE", "RegistryAccess", "RegistryClient", "RegistryStore"]

CHUNK_SIZE = 64 * 1024 * 1024  # bytes per PATCH; streamed from disk, never held in memory
READ_SIZE = 1024 * 1024
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
_ACCEPT = ", ".join(MANIFEST_MEDIA_TYPES)
_DIGEST_ALGORITHMS = ("sha256", "sha512")  # what a reference may pin (guard.oci.reference)

log = logging.getLogger(__name__)


def _parsed_manifest(body: bytes, digest: str) -> dict[str, Any] | None:
    """The manifest as a JSON object, None when its bytes are not one (only to label the
    descriptor and to spare ``FetchedManifest.json`` a second parse: ``json`` judges the bytes
    when they are used, with the same checks)."""
    try:
        return parse_object(body, f"manifest {digest}", max_bytes=MAX_MANIFEST_BYTES)
    except UntrustedContentError:
        return None


def _digest_as(reference: str, body: bytes, sha256: str) -> str:
    """The digest of ``body`` in the algorithm ``reference`` names (a pod may pin
    ``@sha512:...``, and the runtime pulls and checks by it): ``sha256``, its sha256 digest
    computed once, for the common algorithm; IntegrityError for an algorithm guard cannot
    compute, before anything fetched by it is used."""
    algorithm = reference.split(":", 1)[0]
    if algorithm == "sha256":
        return sha256
    if algorithm not in _DIGEST_ALGORITHMS:
        raise IntegrityError(
            f"manifest @{reference[:80]}: expected a sha256 or sha512 digest, found algorithm "
            f"{algorithm[:20]!r}: its bytes cannot be checked",
            changed=[reference[:80]],
        )
    return f"{algorithm}:{hashlib.new(algorithm, body).hexdigest()}"


def _with_query(url: str, **params: str) -> str:
    parts = urlparse(url)
    query = dict(parse_qsl(parts.query))
    query.update(params)
    return urlunparse(parts._replace(query=urlencode(query)))


class RegistryStore:
    """A repository in a remote registry (implements ``guard.oci.types.Store``)."""

    def __init__(self, client: RegistryClient, repository: str) -> None:
        self.client = client
        self.repository = repository
        self._referrers_api: bool | None = None

    @classmethod
    def open(cls, host: str, repository: str, access: RegistryAccess, *, loopback: bool) -> RegistryStore:
        return cls(RegistryClient(host, access, loopback=loopback), repository)

    def describe(self) -> str:
        return f"{self.client.host}/{self.repository}"

    def _path(self, kind: str, ref: str = "") -> str:
        return f"/v2/{self.repository}/{kind}/{ref}"

    # -- manifests ------------------------------------------------------------------------

    def resolve(self, reference: str) -> Descriptor:
        response = self.client.request(
            "HEAD",
            self._path("manifests", reference),
            headers={"Accept": _ACCEPT},
            what=f"{self.describe()}:{reference}",
        )
        digest = response.headers.get("Docker-Content-Digest", "")
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        length = response.headers.get("Content-Length", "")
        # registries may omit them on HEAD, or send what guard cannot read: read the body
        if not DIGEST_RE.match(digest) or not media_type or not length.isdigit():
            return self.fetch_manifest(reference).descriptor
        return Descriptor(media_type, digest, int(length))

    def fetch_manifest(self, reference: str) -> FetchedManifest:
        response = self.client.request(
            "GET",
            self._path("manifests", reference),
            headers={"Accept": _ACCEPT},
            stream=True,
            what=f"{self.describe()}:{reference}",
        )
        with contextlib.closing(response):
            buffer = bytearray()
            for chunk in response.iter_content(READ_SIZE):
                buffer += chunk
                if len(buffer) > MAX_MANIFEST_BYTES:  # a pusher chose its size
                    raise UntrustedContentError(
                        f"manifest {reference} is larger than {MAX_MANIFEST_BYTES} bytes: refused"
                    )
            body = bytes(buffer)
        digest = sha256_digest(body)
        if ":" in reference:  # a digest (a tag has no colon), of whatever algorithm it names
            served = _digest_as(reference, body, digest)
            if served != reference:
                what = f"manifest {self.describe()}@{reference}: the registry served bytes whose digest is"
                raise IntegrityError(f"{what} {served}", changed=[reference])
        claimed = response.headers.get("Docker-Content-Digest")
        # in whichever algorithm the registry names it (one storing by sha512 does)
        if claimed and claimed != (hashed := _digest_as(claimed, body, digest)):
            what = f"manifest {self.describe()}:{reference}: the registry says {claimed}"
            raise IntegrityError(f"{what}, its bytes hash to {hashed}", changed=[reference])
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        parsed = _parsed_manifest(body, digest)
        value = parsed.get("mediaType") if parsed is not None else None
        declared = value if isinstance(value, str) else None
        handed = [parsed] if parsed is not None else []
        return FetchedManifest(Descriptor(declared or media_type, digest, len(body)), body, handed)

    def push_manifest(self, body: bytes, media_type: str, tag: str | None = None) -> Descriptor:
        descriptor, _ = self._put_manifest(body, media_type, tag)
        return descriptor

    def _put_manifest(self, body: bytes, media_type: str, tag: str | None) -> tuple[Descriptor, bool]:
        digest = sha256_digest(body)
        response = self.client.request(
            "PUT",
            self._path("manifests", tag or digest),
            headers={"Content-Type": media_type},
            data=body,
            ok=(200, 201),
            what=f"manifest {self.describe()}:{tag or digest}",
        )
        claimed = response.headers.get("Docker-Content-Digest")
        if claimed and claimed != digest:
            raise RegistryError(f"registry stored manifest as {claimed}, expected {digest}")
        return Descriptor(media_type, digest, len(body)), bool(response.headers.get("OCI-Subject"))

    def push_referrer(self, body: bytes, media_type: str) -> tuple[Descriptor, bool]:
        return self._put_manifest(body, media_type, None)

    def referrers(self, digest: str) -> list[Descriptor] | None:
        if self._referrers_api is False:
            return None
        try:
            response = self.client.request(
                "GET",
                self._path("referrers", digest),
                headers={"Accept": "application/vnd.oci.image.index.v1+json"},
                what=f"referrers of {digest}",
            )
        except NotFoundError:
            self._referrers_api = False
            return None
        except AnswerTooLargeError as err:  # pushers grow the listing (annotations, count)
            raise UntrustedContentError(
                f"referrers of {digest}: the listing is larger than {err.limit} bytes: refused"
            ) from err
        self._referrers_api = True
        # the listing holds what pushers wrote (artifactType, annotations): untrusted content
        index = parse_object(response.content, f"referrers of {digest}", max_bytes=MAX_MANIFEST_BYTES)
        manifests = index.get("manifests")
        if not isinstance(manifests, list):
            raise UntrustedContentError(
                f"referrers of {digest}: expected an image index with a manifests list"
            )
        found = []
        for i, raw in enumerate(manifests):
            try:
                found.append(Descriptor.from_json(raw, f"referrers of {digest} manifests[{i}]"))
            except UntrustedContentError as err:
                log.warning("skipped a referrer entry: %s", err)
        return found

    # -- blobs ----------------------------------------------------------------------------

    def blob_exists(self, digest: str) -> bool:
        try:
            self.client.request("HEAD", self._path("blobs", digest), what=f"blob {digest}")
        except NotFoundError:
            return False
        return True

    def push_blob(
        self, digest: str, size: int, opener: Opener, progress: ProgressCallback | None = None
    ) -> None:
        check_digest(digest)
        start = self.client.request(
            "POST",
            self._path("blobs", "uploads/"),
            headers={"Content-Length": "0"},
            ok=(202,),
            what=f"upload of {digest}",
        )
        session_url = self.client.location(start)
        with opener() as fh:
            offset = 0
            while size - offset > CHUNK_SIZE:
                window = FileWindow(fh, CHUNK_SIZE, progress)
                response = self.client.request(
                    "PATCH",
                    session_url,
                    headers={
                        "Content-Type": "application/octet-stream",
                        "Content-Range": f"{offset}-{offset + CHUNK_SIZE - 1}",
                        "Content-Length": str(CHUNK_SIZE),
                    },
                    data=window,
                    ok=(202,),
                    what=f"upload of {digest}",
                )
                offset += CHUNK_SIZE
                session_url = self.client.location(response)
            last = size - offset
            self.client.request(
                "PUT",
                _with_query(session_url, digest=digest),
                headers={"Content-Type": "application/octet-stream", "Content-Length": str(last)},
                data=FileWindow(fh, last, progress),
                ok=(201,),
                what=f"upload of {digest}",
            )

    @contextlib.contextmanager
    def fetch_blob(self, digest: str) -> Iterator[Iterator[bytes]]:
        check_digest(digest)
        response = self.client.request(
            "GET", self._path("blobs", digest), stream=True, what=f"blob {self.describe()}@{digest}"
        )
        with contextlib.closing(response):
            yield BodyReader(response, READ_SIZE)
