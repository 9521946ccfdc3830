"""The OCI image layout ``Store`` (``oci-layout:PATH``): a directory any OCI tool can read.

``oci-layout`` + ``index.json`` + ``blobs/sha256/<hex>`` as the image-layout spec defines them. Tags
are ``org.opencontainers.image.ref.name`` annotations in ``index.json``; every pushed manifest is
listed there (untagged referrers too), so referrers are answered natively by scanning the listed
manifests for a ``subject``: no fallback tag is needed. Writers serialize on an ``flock`` and
replace ``index.json`` atomically; blobs are written to a temporary file, checked against their
digest, then renamed into place.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from guard.errors import (
    IntegrityError,
    LayoutNotFoundError,
    NotFoundError,
    UntrustedContentError,
    UsageError,
)
from guard.oci.types import (
    OCI_INDEX,
    Descriptor,
    FetchedManifest,
    Opener,
    ProgressCallback,
    check_digest,
    sha256_digest,
    subject_digest,
)
from guard.untrusted import parse_object

REF_NAME = "org.opencontainers.image.ref.name"
READ_SIZE = 1024 * 1024
MAX_INDEX_BYTES = 16 * 1024 * 1024  # index.json lists every manifest of the layout
MAX_MANIFEST_BYTES = 4 * 1024 * 1024  # as a registry's manifest (guard.oci.registry)
# the OCI digest grammar (algorithm:encoded), of any algorithm but sha256
_OTHER_DIGEST = re.compile(r"(?!sha256:)[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+\Z")
LISTED_TAGS = 10  # a missing tag's error lists the layout's tags when there are at most this many

log = logging.getLogger(__name__)


class LayoutStore:
    """An OCI image layout directory (implements ``guard.oci.types.Store``)."""

    def __init__(self, root: Path, *, create: bool = False) -> None:
        self.root = root
        marker = root / "oci-layout"
        if not marker.is_file():
            if root.exists() and not root.is_dir():
                raise UsageError(
                    f"{self.describe()}: expected a directory (an OCI image layout), found a file"
                )
            if not create:
                if not root.exists():
                    raise LayoutNotFoundError(f"{self.describe()}: no such directory")
                raise LayoutNotFoundError(
                    f"{self.describe()} is a directory but not an OCI image layout (no oci-layout file)"
                )
            (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
            marker.write_text(json.dumps({"imageLayoutVersion": "1.0.0"}), encoding="utf-8")
            if not (root / "index.json").exists():
                self._write_index({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []})

    def describe(self) -> str:
        return f"oci-layout:{self.root}"

    # -- index.json -----------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with (self.root / "index.json.lock").open("a") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def _read_index(self) -> dict[str, Any]:
        # A layout can be a registry's mirror or a copy someone handed over: its files are
        # content someone else wrote (UntrustedContentError, a verification failure, exit 1).
        try:
            body = (self.root / "index.json").read_bytes()
        except FileNotFoundError as err:
            raise NotFoundError(f"{self.root}/index.json does not exist") from err
        except OSError as err:
            # the layout's own files (a mirror's, or one the user named): a mistake in the setup,
            # never an outage a fail-open rule would cover
            raise UsageError(f"{self.root}/index.json cannot be read: {err.strerror or err}") from err
        data = parse_object(body, f"{self.root}/index.json", max_bytes=MAX_INDEX_BYTES)
        manifests = data.get("manifests", [])
        if not isinstance(manifests, list):
            raise UntrustedContentError(
                f"{self.root}/index.json: expected an image index with a manifests list, found "
                f"manifests as {type(manifests).__name__}",
                where="index.json manifests",
            )
        data.setdefault("manifests", [])
        return data

    def _write_index(self, index: dict[str, Any]) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".index.", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(index, fh, indent=2)
            fh.write("\n")
        os.replace(tmp, self.root / "index.json")

    def _entries(self) -> list[Descriptor]:
        index = self._read_index()
        return [
            Descriptor.from_json(m, f"index.json manifests[{i}]") for i, m in enumerate(index["manifests"])
        ]

    # -- manifests ------------------------------------------------------------------------

    def resolve(self, reference: str) -> Descriptor:
        self._refuse_other_digest(reference)
        if reference.startswith("sha256:"):
            check_digest(reference)
            path = self._blob_path(reference)
            if not path.is_file():
                raise LayoutNotFoundError(f"{self.describe()}@{reference}: no such manifest in the layout")
            for entry in self._entries():
                if entry.digest == reference:
                    return Descriptor(entry.media_type, entry.digest, entry.size, entry.artifact_type)
            return self.fetch_manifest(reference).descriptor
        entries = self._entries()
        for entry in reversed(entries):
            if entry.annotations.get(REF_NAME) == reference:
                return Descriptor(entry.media_type, entry.digest, entry.size, entry.artifact_type)
        raise LayoutNotFoundError(f"{self.describe()}: no tag {reference!r}{_tags_hint(entries)}")

    def _refuse_other_digest(self, reference: str) -> None:
        """A digest of another algorithm (``@sha512:...``) is never looked up as a tag: an entry
        of index.json whose ref.name is spelled like it would answer for bytes it does not hash
        to. guard's layouts address manifests by sha256 only."""
        if _OTHER_DIGEST.match(reference):
            raise LayoutNotFoundError(
                f"{self.describe()}@{reference[:80]}: a layout's manifests are found by their sha256 "
                "digest; pin the reference @sha256:..."
            )

    def fetch_manifest(self, reference: str) -> FetchedManifest:
        self._refuse_other_digest(reference)
        digest = reference if reference.startswith("sha256:") else self.resolve(reference).digest
        check_digest(digest)
        try:
            body = self._blob_path(digest).read_bytes()
        except FileNotFoundError as err:
            raise LayoutNotFoundError(f"{self.describe()}@{digest}: no such manifest in the layout") from err
        except OSError as err:
            raise UsageError(
                f"{self.describe()}@{digest}: the manifest's blob cannot be read: {err.strerror or err}"
            ) from err
        actual = sha256_digest(body)
        if actual != digest:
            raise IntegrityError(
                f"{self.describe()}: manifest blob {digest} holds bytes whose digest is {actual}",
                changed=[digest],
            )
        manifest = parse_object(body, f"{self.describe()}@{digest}", max_bytes=MAX_MANIFEST_BYTES)
        media_type = manifest.get("mediaType")
        return FetchedManifest(
            Descriptor(media_type if isinstance(media_type, str) else "", digest, len(body)), body, [manifest]
        )

    def push_manifest(self, body: bytes, media_type: str, tag: str | None = None) -> Descriptor:
        digest = sha256_digest(body)
        self._write_blob_bytes(digest, body)
        try:
            declared = parse_object(body, "manifest", max_bytes=MAX_MANIFEST_BYTES).get("artifactType")
        except UntrustedContentError:
            declared = None
        artifact_type = declared if isinstance(declared, str) else None
        annotations = {REF_NAME: tag} if tag else {}
        entry = Descriptor(media_type, digest, len(body), artifact_type, annotations)
        with self._locked():
            index = self._read_index()
            kept = []
            for m in index["manifests"]:
                ref = (m.get("annotations") or {}).get(REF_NAME)
                if tag and ref == tag:
                    continue  # the tag moves
                if not tag and m.get("digest") == digest and not ref:
                    continue  # already listed untagged
                kept.append(m)
            kept.append(entry.to_json())
            index["manifests"] = kept
            self._write_index(index)
        return Descriptor(media_type, digest, len(body), artifact_type)

    def push_referrer(self, body: bytes, media_type: str) -> tuple[Descriptor, bool]:
        return self.push_manifest(body, media_type, None), True

    def referrers(self, digest: str) -> list[Descriptor]:
        check_digest(digest)
        found: list[Descriptor] = []
        seen: set[str] = set()
        for entry in self._entries():
            if entry.digest in seen or entry.media_type == OCI_INDEX:
                continue
            seen.add(entry.digest)
            try:
                manifest = self.fetch_manifest(entry.digest).json()
            except NotFoundError:
                continue
            except (UntrustedContentError, IntegrityError) as err:
                # one junk manifest must not hide the others (the Referrers API skips it too)
                log.warning("%s: skipping manifest %s: %s", self.describe(), entry.digest, err)
                continue
            if subject_digest(manifest) == digest:
                try:
                    found.append(self._referrer(entry, manifest))
                except UntrustedContentError as err:
                    log.warning("%s: skipping referrer %s: %s", self.describe(), entry.digest, err)
        return found

    @staticmethod
    def _referrer(entry: Descriptor, manifest: dict[str, Any]) -> Descriptor:
        """The referrer descriptor of a listed manifest, as the Referrers API would give it
        (its artifactType, else its config's media type; its annotations), validated."""
        config = manifest.get("config")
        artifact_type = manifest.get("artifactType") or (
            config.get("mediaType") if isinstance(config, dict) else None
        )
        doc: dict[str, Any] = {**entry.to_json(), "annotations": manifest.get("annotations") or {}}
        if artifact_type is not None:
            doc["artifactType"] = artifact_type
        return Descriptor.from_json(doc, f"referrer {entry.digest}")

    # -- blobs ----------------------------------------------------------------------------

    def _blob_path(self, digest: str) -> Path:
        algorithm, hexdigest = digest.split(":", 1)
        return self.root / "blobs" / algorithm / hexdigest

    def blob_exists(self, digest: str) -> bool:
        check_digest(digest)
        return self._blob_path(digest).is_file()

    def _write_blob_bytes(self, digest: str, data: bytes) -> None:
        path = self._blob_path(digest)
        if path.is_file():
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp.")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)

    def push_blob(
        self, digest: str, size: int, opener: Opener, progress: ProgressCallback | None = None
    ) -> None:
        check_digest(digest)
        path = self._blob_path(digest)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp.")
        hasher = hashlib.sha256()
        written = 0
        try:
            with os.fdopen(fd, "wb") as out, opener() as src:
                while chunk := src.read(READ_SIZE):
                    hasher.update(chunk)
                    out.write(chunk)
                    written += len(chunk)
                    if progress is not None:
                        progress(len(chunk))
            actual = "sha256:" + hasher.hexdigest()
            if actual != digest or written != size:
                raise IntegrityError(
                    f"blob source changed while pushing: expected {digest} ({size} bytes), "
                    f"read {actual} ({written} bytes)",
                    changed=[digest],
                )
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    @contextlib.contextmanager
    def fetch_blob(self, digest: str) -> Iterator[Iterator[bytes]]:
        check_digest(digest)
        try:
            fh = self._blob_path(digest).open("rb")
        except FileNotFoundError as err:
            raise NotFoundError(f"{self.describe()}: blob {digest} not found") from err
        except OSError as err:
            why = err.strerror or err
            raise UsageError(f"{self.describe()}: blob {digest} cannot be read: {why}") from err

        def chunks() -> Iterator[bytes]:
            while chunk := fh.read(READ_SIZE):
                yield chunk

        with fh:
            yield chunks()


def _tags_hint(entries: list[Descriptor]) -> str:
    """``; its tags: a, b`` (or how many there are, or that there are none) for a missing tag."""
    tags = sorted({t for e in entries if (t := e.annotations.get(REF_NAME))})
    if not tags:
        return "; the layout has no tags (name a manifest by @sha256:...)"
    if len(tags) <= LISTED_TAGS:
        return "; its tags: " + ", ".join(tags)
    return f"; it has {len(tags)} tags, e.g. " + ", ".join(tags[:LISTED_TAGS])
