"""``guard pull``: restore a model directory from a ModelPack, cnai or KitOps artifact.

Every blob is hashed while it streams to disk and refused if it does not match its descriptor;
a file only appears under its final name once its digest has been checked. Paths that would
escape the target directory (absolute, ``..``, through a symlink) and tar entries that are links
or devices are refused with UnsafeArtifactError before anything is written for them.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, cast

from guard.errors import RegistryError, UnsafeArtifactError, UsageError
from guard.oci.blobs import VerifyingReader
from guard.oci.modelpack import ArtifactLayer, artifact_kind, artifact_layers
from guard.oci.reference import Reference
from guard.oci.store import resolve_and_fetch
from guard.oci.types import Store

WRITE_SIZE = 1024 * 1024


@dataclass(frozen=True)
class PullResult:
    digest: str
    kind: str
    files: tuple[str, ...]
    bytes: int


def safe_relative_path(name: str, what: str) -> PurePosixPath:
    """A normalized relative path that stays inside its root, or UnsafeArtifactError."""
    if not name or "\x00" in name or "\\" in name:
        raise UnsafeArtifactError(f"{what}: refused path {name!r} (empty, NUL or backslash)", path=name)
    path = PurePosixPath(name)
    if path.is_absolute() or name.startswith("/"):
        raise UnsafeArtifactError(f"{what}: refused absolute path {name!r}", path=name)
    parts = [p for p in path.parts if p not in ("", ".")]
    if not parts or any(p == ".." for p in parts):
        raise UnsafeArtifactError(
            f"{what}: refused path {name!r}: it escapes the target directory", path=name
        )
    return PurePosixPath(*parts)


def _prepare_parent(root: Path, rel: PurePosixPath, what: str) -> Path:
    """Create the parent directories of ``rel`` under ``root``, refusing symlinks on the way."""
    current = root
    for part in rel.parts[:-1]:
        current = current / part
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            current.mkdir()
            continue
        if not stat.S_ISDIR(st.st_mode):
            kind = "a symlink" if stat.S_ISLNK(st.st_mode) else "not a directory"
            raise UnsafeArtifactError(f"{what}: refused {rel}: {current} is {kind}", path=str(rel))
    target = current / rel.parts[-1]
    with contextlib.suppress(FileNotFoundError):
        st = os.lstat(target)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeArtifactError(
                f"{what}: refused {rel}: {target} exists and is not a regular file", path=str(rel)
            )
    return target


def _write_verified(root: Path, rel: PurePosixPath, reader: VerifyingReader, what: str) -> int:
    target = _prepare_parent(root, rel, what)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".guard-pull.")
    written = 0
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in reader:
                out.write(chunk)
                written += len(chunk)
        reader.finish()
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return written


def _tar_mode(packing: str) -> str:
    if packing == "tar":
        return "r|"
    if packing == "tar+gzip":
        return "r|gz"
    raise RegistryError(f"layers packed as {packing} are not supported (no zstandard decoder installed)")


def _extract_tar(root: Path, layer: ArtifactLayer, reader: VerifyingReader, what: str) -> list[str]:
    """Unpack a tar layer into a staging directory, verify the digest, then move files in."""
    names: list[str] = []
    with tempfile.TemporaryDirectory(dir=root, prefix=".guard-pull.") as staging_name:
        staging = Path(staging_name)
        with tarfile.open(fileobj=cast(IO[bytes], reader), mode=_tar_mode(layer.packing)) as tar:  # type: ignore[call-overload]
            for member in tar:
                rel = safe_relative_path(member.name, f"{what} entry")
                if member.isdir():
                    continue
                if not member.isfile():
                    raise UnsafeArtifactError(
                        f"{what}: refused tar entry {member.name!r}: links and devices are not allowed",
                        path=member.name,
                    )
                source = tar.extractfile(member)
                assert source is not None
                dest = _prepare_parent(staging, rel, what)
                with source, dest.open("xb") as out:
                    while chunk := source.read(WRITE_SIZE):
                        out.write(chunk)
                names.append(str(rel))
        reader.finish()
        for name in names:
            rel = PurePosixPath(name)
            target = _prepare_parent(root, rel, what)
            os.replace(staging / rel, target)
    return names


def pull(
    store: Store,
    ref: Reference,
    target: Path,
    *,
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> PullResult:
    """Pull the model artifact ``ref`` into ``target`` (created if missing)."""
    if target.exists() and not target.is_dir():
        raise UsageError(f"{target} exists and is not a directory")
    descriptor, fetched = resolve_and_fetch(store, ref)
    manifest = fetched.json()
    layers = artifact_layers(manifest)
    # Check every path before the first byte is written.
    for layer in layers:
        if layer.is_raw:
            assert layer.path is not None
            safe_relative_path(layer.path, f"layer {layer.descriptor.digest}")
    raw_paths = [layer.path for layer in layers if layer.is_raw]
    if len(set(raw_paths)) != len(raw_paths):
        raise UnsafeArtifactError("the artifact lists the same file path in more than one layer")
    if on_total is not None:
        on_total(sum(layer.descriptor.size for layer in layers))
    target.mkdir(parents=True, exist_ok=True)
    root = target.resolve()
    files: list[str] = []
    total = 0
    for layer in layers:
        what = layer.path or layer.descriptor.digest
        with store.fetch_blob(layer.descriptor.digest) as chunks:
            reader = VerifyingReader(_iter(chunks), layer.descriptor, what, progress)
            try:
                if layer.is_raw:
                    assert layer.path is not None
                    rel = safe_relative_path(layer.path, what)
                    total += _write_verified(root, rel, reader, what)
                    files.append(str(rel))
                else:
                    files.extend(_extract_tar(root, layer, reader, what))
                    total += layer.descriptor.size
            finally:
                reader.close()
    return PullResult(descriptor.digest, artifact_kind(manifest), tuple(files), total)


def _iter(chunks: Iterator[bytes]) -> Iterator[bytes]:
    for chunk in chunks:
        if chunk:
            yield chunk
