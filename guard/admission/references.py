"""Extract every artifact reference an object brings into the cluster.

References come from the pod specs the kind table names (containers, init and ephemeral
containers, ``volumes[].image.reference``, model CSI volumes, and the model sources containers
declare: ``guard.admission.sources``), from plain reference fields (KServe ``storageUri``), model
ids and storage specs, and from the configured annotations on the object and its pod templates.
Each occurrence keeps where it was found, so a deny can name the container and the field.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pydantic_core

from guard.admission import sources
from guard.admission.settings import KindSpec
from guard.errors import UsageError
from guard.oci.reference import parse_image_reference

_CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")
_SCHEME_RE = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.\-]*)://(.*)$")
_SPLIT_RE = re.compile(r"[\s,]+")
# KServe: oci+native:// mounts the image as an image volume, oci+fetch:// has the storage
# initializer pull it; KitOps' kit:// names a ModelKit in an OCI registry. All are OCI artifacts.
_OCI_SCHEMES = frozenset({"oci", "oci+native", "oci+fetch", "kit"})


@dataclass(frozen=True, order=True)
class Occurrence:
    """Where a reference was found: the field path, and the container when there is one.

    ``source`` says how it reaches the pod when the field path alone does not (``declared``: a
    container's env or args; ``csiVolume``; ``storageSpec``; ``storageUri``: a model field of a
    custom resource); None: told by the path (see ``guard.admission.policies``)."""

    location: str
    container: str | None = None
    source: str | None = None

    def describe(self) -> str:
        if self.container:
            return f"container {self.container!r} ({self.location})"
        return self.location


@dataclass(frozen=True)
class ArtifactReference:
    """One distinct reference, with every place it occurs.

    ``scheme`` is ``oci`` for images and ``oci://`` URIs (then ``reference`` has no scheme); for
    other URIs (``s3``, ``gs``, ``hf``, ``pvc``, ``https``) ``reference`` is the whole URI.
    """

    reference: str
    scheme: str
    occurrences: tuple[Occurrence, ...]

    @property
    def is_oci(self) -> bool:
        return self.scheme == "oci"

    @property
    def pinned(self) -> bool:
        """True when the reference names a digest (``repo@sha256:...``)."""
        return self.is_oci and "@" in self.reference

    def where(self, limit: int = 3) -> str:
        shown = [o.describe() for o in self.occurrences[:limit]]
        more = len(self.occurrences) - limit
        return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def split_scheme(value: str) -> tuple[str, str]:
    """``oci://r/m:t`` -> ``("oci", "r/m:t")`` (also ``oci+native://``, ``oci+fetch://``,
    ``kit://``); ``s3://b/k`` -> ``("s3", "s3://b/k")``; an image reference without scheme ->
    ``("oci", value)``."""
    match = _SCHEME_RE.match(value)
    if match is None:
        return "oci", value
    scheme = match.group(1).lower()
    if scheme in _OCI_SCHEMES:
        return "oci", match.group(2)
    return scheme, value


def walk(node: Any, path: str, here: str = "") -> Iterator[tuple[str, Any]]:
    """Yield ``(concrete_path, value)`` for every value a dotted path with ``*`` reaches."""
    if not path:
        yield here, node
        return
    head, _, rest = path.partition(".")
    if head == "*":
        if isinstance(node, Mapping):
            for key, child in node.items():
                yield from walk(child, rest, f"{here}.{key}" if here else str(key))
        elif isinstance(node, list):
            for index, child in enumerate(node):
                yield from walk(child, rest, f"{here}[{index}]")
        return
    if isinstance(node, Mapping) and head in node:
        yield from walk(node[head], rest, f"{here}.{head}" if here else head)


def _pod_spec_refs(spec: Any, where: str) -> Iterator[tuple[str, Occurrence]]:
    if not isinstance(spec, Mapping):
        return
    for field in _CONTAINER_LISTS:
        containers = spec.get(field)
        if not isinstance(containers, list):
            continue
        for index, container in enumerate(containers):
            if not isinstance(container, Mapping):
                continue
            image = container.get("image")
            name = container.get("name")
            name = name if isinstance(name, str) else None
            if isinstance(image, str) and image:
                yield image, Occurrence(f"{where}.{field}[{index}].image", name)
            here = f"{where}.{field}[{index}]"
            for declared, location in sources.container_sources(container, here, spec, where):
                yield declared, Occurrence(location, name, "declared")
    volumes = spec.get("volumes")
    if isinstance(volumes, list):
        for index, volume in enumerate(volumes):
            if not isinstance(volume, Mapping):
                continue
            mounted = volume.get("image")
            ref = mounted.get("reference") if isinstance(mounted, Mapping) else None
            if isinstance(ref, str) and ref:
                yield ref, Occurrence(f"{where}.volumes[{index}].image.reference")
            model = sources.csi_source(volume)
            if model is not None:
                location = f"{where}.volumes[{index}].csi.volumeAttributes.modelRef"
                yield model, Occurrence(location, None, "csiVolume")


def _annotation_refs(metadata: Any, where: str, keys: Sequence[str]) -> Iterator[tuple[str, Occurrence]]:
    annotations = metadata.get("annotations") if isinstance(metadata, Mapping) else None
    if not isinstance(annotations, Mapping):
        return
    for key in keys:
        value = annotations.get(key)
        if isinstance(value, str):
            for item in _SPLIT_RE.split(value.strip()):
                if item:
                    yield item, Occurrence(f"{where}.annotations[{key}]")


def _normalized(scheme: str, ref: str) -> str:
    if scheme != "oci":
        return ref
    try:
        return parse_image_reference(ref).image()
    except UsageError:
        return ref  # not a reference guard can read: kept as written (the rules' default applies)


# The metadata the API server sets for each pod of a template (``rest.BeforeCreate`` runs before
# validating admission: a name from generateName, a uid, a creation time; managed fields with
# their times; a resource version). Nothing guard reads of an object but the name (a volatile
# field of the policy input, guard.policy.cache.VOLATILE) comes from them.
PER_POD_METADATA = frozenset({"name", "uid", "creationTimestamp", "managedFields", "resourceVersion"})
TEMPLATE_KEY_BYTES = 32 * 1024  # an object larger than this (as JSON) gets no template digest


def template_digest(obj: Mapping[str, Any] | None) -> bytes | None:
    """SHA-256 of the JSON of ``obj`` without its top-level ``PER_POD_METADATA``: the same for
    the pods of one template. The admission pipeline keys an object's references by it, and the
    policy evaluator a template's result (with what else the result depends on). None: no object,
    metadata that is no object, no JSON, or larger than ``TEMPLATE_KEY_BYTES``.

    Extraction (``extract_references``, ``check_spellings``) reads none of ``PER_POD_METADATA``
    (tests/admission/test_reference_memo.py records what it reads of every case object)."""
    if not isinstance(obj, Mapping) or not obj:
        return None
    metadata = obj.get("metadata")
    if metadata is not None and not isinstance(metadata, Mapping):
        return None
    try:
        text = pydantic_core.to_json(
            [
                {k: v for k, v in obj.items() if k != "metadata"},
                {k: v for k, v in (metadata or {}).items() if k not in PER_POD_METADATA},
            ]
        )
    except (TypeError, ValueError, pydantic_core.PydanticSerializationError):
        return None
    if len(text) > TEMPLATE_KEY_BYTES:
        return None
    return hashlib.sha256(text).digest()


def extract_references(
    obj: Mapping[str, Any] | None, kind: KindSpec, annotation_keys: Sequence[str]
) -> tuple[ArtifactReference, ...]:
    """Every distinct reference in ``obj``, in first-seen order, each with all its occurrences."""
    if not obj:
        return ()
    found: list[tuple[str, Occurrence]] = []
    found.extend(_annotation_refs(obj.get("metadata"), "metadata", annotation_keys))
    for path in kind.pod_metadata:
        for where, metadata in walk(obj, path):
            found.extend(_annotation_refs(metadata, where, annotation_keys))
    for path in kind.pod_specs:
        for where, spec in walk(obj, path):
            found.extend(_pod_spec_refs(spec, where))
    for path in kind.references:
        for where, value in walk(obj, path):
            if isinstance(value, str) and value:
                found.append((value, Occurrence(where)))
    for path in kind.model_ids:
        for where, value in walk(obj, path):
            if isinstance(value, str) and value.strip():
                found.append((sources.model_id_reference(value), Occurrence(where, None, "storageUri")))
    for path in kind.storage_specs:
        for where, value in walk(obj, path):
            ref = sources.storage_spec_source(value)
            if ref is not None:
                found.append((ref, Occurrence(where, None, "storageSpec")))
    for path in kind.containers:
        for where, value in walk(obj, path):
            if isinstance(value, Mapping):
                name = value.get("name") if isinstance(value.get("name"), str) else None
                for ref, location in sources.container_sources(value, where, None, where):
                    found.append((ref, Occurrence(location, name, "declared")))
    # Grouped by the normalised reference (guard.oci.reference): ``nginx``, ``docker.io/nginx``
    # and ``DOCKER.IO:443/library/nginx:latest`` are one artifact, verified once; the first
    # spelling seen is the one messages show. Occurrences are ordered sets: one image in
    # thousands of containers stays linear.
    grouped: dict[tuple[str, str], dict[Occurrence, None]] = {}
    spelled: dict[tuple[str, str], str] = {}
    for raw, occurrence in found:
        scheme, written = split_scheme(raw.strip())
        key = (scheme, _normalized(scheme, written))
        spelled.setdefault(key, written)
        grouped.setdefault(key, {})[occurrence] = None
    return tuple(
        ArtifactReference(reference=spelled[(scheme, ref)], scheme=scheme, occurrences=tuple(places))
        for (scheme, ref), places in grouped.items()
    )
