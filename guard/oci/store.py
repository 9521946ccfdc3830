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
    """The manifest ``ref`` names and its descriptor: by digest (checked by the store), or by
    tag in one request, the digest being that of the bytes fetched (what is verified or pulled
    is exactly what was received). A HEAD before the GET only made the registry read and
    validate the manifest twice, ~25 ms at 1,000 layers for distribution 2.8."""
    fetched = store.fetch_manifest(ref.digest if ref.digest is not None else ref.reference)
    return fetched.descriptor, fetched
