"""``guard push``: a model directory as a CNCF ModelPack artifact.

File digests come from ``guard.signing.hash_model`` with the shared ``DigestCache``, so a model
signed with ``guard sign`` is not hashed again; the file set is exactly the one a signature
covers (same ignore rules, same refusal of symlinks). Blobs the store already has are skipped;
the others stream from disk in bounded memory.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from guard.errors import IntegrityError, ModelDirectoryError, UsageError
from guard.oci.modelpack import ModelMetadata, build_config, infer_metadata, layer_for_file
from guard.oci.types import (
    MODELPACK_ARTIFACT,
    MODELPACK_CONFIG,
    MODELPACK_FILEPATH,
    OCI_CREATED,
    OCI_MANIFEST,
    Descriptor,
    Store,
    sha256_digest,
)
from guard.signing import (
    DigestCache,
    Manifest,
    Serialization,
    compare_manifests,
    hash_model,
    manifest_from_statement,
)
from guard.signing.manifest import file_of
from guard.signing.types import LEGACY_PREDICATE_TYPE, OMS_PREDICATE_TYPE


@dataclass(frozen=True)
class PushResult:
    descriptor: Descriptor
    layers: tuple[Descriptor, ...]
    uploaded: int
    skipped: int
    uploaded_bytes: int


def _opener(path: Path) -> Callable[[], BinaryIO]:
    def open_file() -> BinaryIO:
        return path.open("rb")

    return open_file


def build_time() -> datetime:
    """``SOURCE_DATE_EPOCH`` when set (reproducible builds), else now."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if epoch:
        try:
            return datetime.fromtimestamp(int(epoch), UTC)
        except (ValueError, OverflowError) as err:
            raise UsageError(f"SOURCE_DATE_EPOCH: expected seconds since the epoch, found {epoch!r}") from err
    return datetime.now(UTC)


def push_bytes(store: Store, data: bytes) -> str:
    """Push a small in-memory blob unless present; return its digest."""
    digest = sha256_digest(data)
    if not store.blob_exists(digest):
        store.push_blob(digest, len(data), lambda: io.BytesIO(data))
    return digest


def claimed_manifest(bundle: bytes, source: str) -> Manifest | None:
    """The OMS manifest a signature claims, NOT verified: only used before a push to select the
    files the signature covers and refuse a model that does not match it. None for a signature
    that is not an OMS model signature (e.g. one over a manifest digest)."""
    from guard.signing.bundle import envelope_of, parse_bundle, parse_statement  # noqa: PLC0415

    statement = parse_statement(envelope_of(parse_bundle(bundle, source)).payload)
    if statement.get("predicateType") not in (OMS_PREDICATE_TYPE, LEGACY_PREDICATE_TYPE):
        return None
    return manifest_from_statement(statement)


def _check_against_signature(signed: Manifest, pushed: Manifest) -> None:
    """Refuse to push files the signature does not describe (before any upload)."""
    method = signed.serialization.method
    if method == "files" and signed.serialization.hash_type == "sha256":
        compare_manifests(signed, pushed)
        return
    want = {file_of(r.name, method) for r in signed.resources}
    have = {r.name for r in pushed.resources}
    if want != have:
        raise IntegrityError(
            "the signature does not cover the files being pushed: "
            f"not signed {sorted(have - want)}, signed but missing {sorted(want - have)}",
            added=sorted(have - want),
            removed=sorted(want - have),
        )


def model_layers(
    model_dir: Path, exclude: Collection[str] = (), signed: Manifest | None = None
) -> list[tuple[Descriptor, Path]]:
    """One raw layer per file of the model (digests through the shared cache). With ``signed``
    (the manifest a signature claims), the files are selected with its ignore rules and must
    be exactly the signed ones (IntegrityError otherwise)."""
    if not model_dir.is_dir():
        raise ModelDirectoryError(f"{model_dir} is not a directory")
    serialization = Serialization()
    if signed is not None:
        serialization = Serialization(
            allow_symlinks=signed.serialization.allow_symlinks,
            ignore_paths=signed.serialization.ignore_paths,
        )
    with DigestCache.default() as cache:
        manifest = hash_model(model_dir, serialization, cache=cache, exclude=exclude)
    if signed is not None:
        _check_against_signature(signed, manifest)
    out = []
    for resource in manifest.resources:
        path = model_dir / resource.name
        st = path.stat()
        executable = bool(st.st_mode & 0o111)
        out.append((layer_for_file(resource.name, "sha256:" + resource.digest, st.st_size, executable), path))
    return out


def push_model(
    store: Store,
    model_dir: Path,
    tag: str | None,
    *,
    metadata: ModelMetadata | None = None,
    exclude: Collection[str] = (),
    signed: Manifest | None = None,
    concurrency: int = 4,
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
    created: datetime | None = None,
) -> PushResult:
    """Push ``model_dir`` to ``store`` as a ModelPack artifact, tagged ``tag`` when given.
    ``signed``: the manifest the signature to attach claims (see ``model_layers``). Up to
    ``concurrency`` blobs upload at once (each in bounded memory)."""
    created = created or build_time()
    layers = model_layers(model_dir, exclude, signed)
    workers = max(1, min(concurrency, len(layers)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="guard-push") as pool:
        present = list(pool.map(lambda item: store.blob_exists(item[0].digest), layers))
        missing = [item for item, there in zip(layers, present, strict=True) if not there]
        if on_total is not None:
            on_total(sum(d.size for d, _ in missing))
        # list() re-raises the first failure; the pool waits for the other uploads to end
        list(
            pool.map(
                lambda item: store.push_blob(item[0].digest, item[0].size, _opener(item[1]), progress),
                missing,
            )
        )
    names = [d.annotations[MODELPACK_FILEPATH] for d, _ in layers]
    meta = infer_metadata(model_dir, names, metadata or ModelMetadata())
    config = build_config(meta, [d for d, _ in layers], created)
    config_digest = push_bytes(store, config)
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": MODELPACK_ARTIFACT,
        "config": {"mediaType": MODELPACK_CONFIG, "digest": config_digest, "size": len(config)},
        "layers": [d.to_json() for d, _ in layers],
        "annotations": {OCI_CREATED: created.strftime("%Y-%m-%dT%H:%M:%SZ")},
    }
    body = json.dumps(manifest, indent=2).encode()
    descriptor = store.push_manifest(body, OCI_MANIFEST, tag)
    return PushResult(
        Descriptor(OCI_MANIFEST, descriptor.digest, descriptor.size, MODELPACK_ARTIFACT),
        tuple(d for d, _ in layers),
        len(missing),
        len(layers) - len(missing),
        sum(d.size for d, _ in missing),
    )
