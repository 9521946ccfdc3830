"""Open the ``Store`` a reference names, and resolve references to manifests safely."""

from __future__ import annotations

from guard.errors import ReferenceChangedError, UsageError
from guard.oci.layout import LayoutStore
from guard.oci.mirror import MirrorStore, mirror_root
from guard.oci.reference import Reference
from guard.oci.registry import RegistryAccess, RegistryStore
from guard.oci.types import Descriptor, FetchedManifest, Store


def open_store(ref: Reference, access: RegistryAccess | None = None, *, create: bool = False) -> Store:
    """The store holding ``ref``: a layout directory (``create`` makes one), a registry repo, or
    the mirror ``access.mirrors`` names for its host (guard.oci.mirror)."""
    if ref.layout is not None:
        return LayoutStore(ref.layout, create=create)
    assert ref.host is not None and ref.repository is not None
    access = access or RegistryAccess()
    mirror = mirror_root(access.mirrors, ref.host)
    if mirror is not None:  # the registry is never contacted: what the mirror lacks is not found
        if create:
            raise UsageError(
                f"{ref.host} is read from the mirror {mirror}: push to the layout itself "
                f"(oci-layout:{mirror / ref.repository})"
            )
        return MirrorStore(ref.host, ref.repository, mirror)
    return RegistryStore.open(ref.endpoint, ref.repository, access, loopback=ref.is_loopback)


def fetch_resolved(store: Store, reference: str, expected_digest: str | None = None) -> FetchedManifest:
    """Fetch the manifest ``reference`` names. A digest is checked by the store; a tag fetched
    after it was resolved to ``expected_digest`` must still point there (ReferenceChangedError)."""
    fetched = store.fetch_manifest(reference)
    if expected_digest is not None and fetched.descriptor.digest != expected_digest:
        raise ReferenceChangedError(
            f"{store.describe()}:{reference} moved between resolve and fetch: it was {expected_digest}, "
            f"it is now {fetched.descriptor.digest}; pin the digest (@sha256:...) or retry",
            expected=expected_digest,
            found=fetched.descriptor.digest,
        )
    return fetched


def resolve_and_fetch(store: Store, ref: Reference) -> tuple[Descriptor, FetchedManifest]:
    """Resolve ``ref`` to a digest (tags via the store), then fetch that manifest and check that
    what was fetched is what the tag resolved to."""
    if ref.digest is not None:
        fetched = store.fetch_manifest(ref.digest)
        return fetched.descriptor, fetched
    resolved = store.resolve(ref.reference)
    fetched = fetch_resolved(store, ref.reference, resolved.digest)
    return fetched.descriptor, fetched
