"""A registry read from a local mirror: one OCI image layout directory per repository.

With ``registries: [{host: registry.example, mirror: {ociLayout: /srv/mirror}}]`` in the config,
``registry.example/team/model:v1`` is read from the layout ``/srv/mirror/team/model`` (what
``guard push DIR oci-layout:/srv/mirror/team/model:v1`` or ``oras copy --to-oci-layout`` write) and
guard never contacts the registry: what the mirror lacks is not found, and is denied.

Trust: content is addressed by digest, so a manifest or blob named by digest is what it names
whoever wrote the directory, and signatures are verified as from a registry. A *tag* is the
layout's ``org.opencontainers.image.ref.name`` annotation: it is as trustworthy as whoever can write
the mirror directory (as a registry's tags are as trustworthy as whoever can push). Referrers are
the layout's manifests whose ``subject`` is the artifact, plus the entries of a fallback index
tagged ``sha256-<hex>`` when the mirror holds one (as copied from a registry without the
Referrers API).
"""

from __future__ import annotations

import logging
from pathlib import Path

from guard.errors import LayoutNotFoundError, NotFoundError, UntrustedContentError, UsageError
from guard.oci.layout import LayoutStore
from guard.oci.types import Descriptor, FetchedManifest, Opener, ProgressCallback

log = logging.getLogger(__name__)

MAX_FALLBACK_ENTRIES = 4096


class MirrorNotFoundError(NotFoundError):
    """The mirror has no such repository, tag, manifest or blob: not an unreachable registry (a
    fail-open rule never covers it) and nothing to retry: exit 1, as a failed verification."""

    exit_code = 1


def mirror_root(mirrors: tuple[tuple[str, str], ...], host: str) -> Path | None:
    """The mirror directory configured for ``host``, if any."""
    for mirrored, root in mirrors:
        if mirrored == host:
            return Path(root)
    return None


class MirrorStore(LayoutStore):
    """``host/repository`` read from ``<root>/<repository>`` (read-only)."""

    def __init__(self, host: str, repository: str, root: Path) -> None:
        self.host = host
        self.repository = repository
        self.mirror = root
        path = root / repository  # repository components are [a-z0-9._-] (guard.oci.reference)
        if not root.is_dir():
            raise MirrorNotFoundError(
                f"{host}/{repository}: the mirror of {host} is configured as {root}, which is not a directory"
            )
        if not (path / "oci-layout").is_file():
            raise MirrorNotFoundError(
                f"{host}/{repository} is not in the mirror of {host}: no OCI image layout at {path}"
            )
        super().__init__(path)

    def describe(self) -> str:
        return f"{self.host}/{self.repository} (mirror oci-layout:{self.root})"

    def resolve(self, reference: str) -> Descriptor:
        try:
            return super().resolve(reference)
        except LayoutNotFoundError as err:
            raise MirrorNotFoundError(f"not in the mirror: {err}") from err

    def fetch_manifest(self, reference: str) -> FetchedManifest:
        try:
            return super().fetch_manifest(reference)
        except LayoutNotFoundError as err:
            raise MirrorNotFoundError(f"not in the mirror: {err}") from err

    def referrers(self, digest: str) -> list[Descriptor]:
        found = super().referrers(digest)
        seen = {d.digest for d in found}
        for entry in self._fallback(digest):
            if entry.digest not in seen:
                seen.add(entry.digest)
                found.append(entry)
        return found

    def _fallback(self, digest: str) -> list[Descriptor]:
        tag = "sha256-" + digest.split(":", 1)[1]
        try:
            index = self.fetch_manifest(tag).json()
        except NotFoundError:
            return []
        manifests = index.get("manifests")
        if not isinstance(manifests, list):
            log.warning("%s: fallback index %s has no manifests list; ignored", self.describe(), tag)
            return []
        entries = []
        for i, m in enumerate(manifests[:MAX_FALLBACK_ENTRIES]):
            try:
                entries.append(Descriptor.from_json(m, f"{tag} manifests[{i}]"))
            except UntrustedContentError as err:
                log.warning("%s: skipping a fallback entry: %s", self.describe(), err)
        return entries

    def _read_only(self) -> UsageError:
        return UsageError(
            f"{self.describe()} is a read-only mirror; write to the layout itself (oci-layout:{self.root})"
        )

    def push_manifest(self, body: bytes, media_type: str, tag: str | None = None) -> Descriptor:
        raise self._read_only()

    def push_referrer(self, body: bytes, media_type: str) -> tuple[Descriptor, bool]:
        raise self._read_only()

    def push_blob(
        self, digest: str, size: int, opener: Opener, progress: ProgressCallback | None = None
    ) -> None:
        raise self._read_only()


__all__ = ["MirrorNotFoundError", "MirrorStore", "mirror_root"]
