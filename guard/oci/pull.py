"""``guard pull``: restore a model directory from a ModelPack, cnai or KitOps artifact.

Every blob is hashed while it streams to a staging directory inside the target and refused if it
does not match its descriptor; files are moved to their final names only once every blob has
been checked, so a refused pull leaves the target as it was. Paths that would
escape the target directory (absolute, ``..``, through a symlink) and tar entries that are links
or devices are refused with UnsafeArtifactError before anything is written for them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, BinaryIO, cast

from guard.errors import IntegrityError, RegistryError, UnsafeArtifactError, UsageError
from guard.oci.blobs import VerifyingReader
from guard.oci.modelpack import ArtifactLayer, artifact_kind, artifact_layers, layer_is_executable
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
            with contextlib.suppress(FileExistsError):  # another layer's thread made it
                current.mkdir()
            st = os.lstat(current)
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


def _create(path: Path, rel: PurePosixPath, what: str) -> BinaryIO:
    try:
        return path.open("xb")
    except FileExistsError as err:
        raise UnsafeArtifactError(
            f"{what}: {rel} appears more than once in the artifact", path=str(rel)
        ) from err


def _write_verified(staging: Path, rel: PurePosixPath, reader: VerifyingReader, size: int, what: str) -> int:
    """Stream one raw layer to its staging file through reused buffers (the reader hashes each
    read where it landed; the file is written from the same memory)."""
    with _create(_prepare_parent(staging, rel, what), rel, what) as out:
        written = reader.copy_to(out.write, WRITE_SIZE)
    reader.finish()
    if written != size:  # finish() checked what was hashed; this is what the file holds
        raise IntegrityError(
            f"{what}: wrote {written} of the {size} bytes the manifest declares", changed=[what]
        )
    return written


def _tar_stream(packing: str, reader: VerifyingReader) -> tuple[IO[bytes], str]:
    """The stream tarfile reads and its mode: plain, gzip (tarfile's own), or zstd."""
    if packing == "tar":
        return cast(IO[bytes], reader), "r|"
    if packing == "tar+gzip":
        return cast(IO[bytes], reader), "r|gz"
    if packing == "tar+zstd":
        import zstandard  # noqa: PLC0415 - only for zstd layers

        source = cast(IO[bytes], reader)
        return cast(IO[bytes], zstandard.ZstdDecompressor().stream_reader(source)), "r|"
    raise RegistryError(f"unsupported layer packing {packing!r}")


def _extract_tar(staging: Path, layer: ArtifactLayer, reader: VerifyingReader, what: str) -> list[str]:
    """Unpack a tar layer into the staging directory (regular files only), then check the digest."""
    names: list[str] = []
    stream, mode = _tar_stream(layer.packing, reader)
    # tarfile's stream reads RECORDSIZE (10 KiB) at a time unless told otherwise
    with tarfile.open(fileobj=stream, mode=mode, bufsize=WRITE_SIZE) as tar:  # type: ignore[call-overload]
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
            with source, _create(_prepare_parent(staging, rel, what), rel, what) as out:
                while chunk := source.read(WRITE_SIZE):
                    out.write(chunk)
            names.append(str(rel))
    reader.finish()
    return names


def _check_target(root: Path, rel: PurePosixPath, what: str) -> None:
    """Refuse (before anything is moved) a target path that goes through a symlink or a
    non-directory, or that names something other than a regular file."""
    current = root
    for part in rel.parts[:-1]:
        current = current / part
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            return
        if not stat.S_ISDIR(st.st_mode):
            kind = "a symlink" if stat.S_ISLNK(st.st_mode) else "not a directory"
            raise UnsafeArtifactError(f"{what}: refused {rel}: {current} is {kind}", path=str(rel))
    with contextlib.suppress(FileNotFoundError):
        if not stat.S_ISREG(os.lstat(current / rel.parts[-1]).st_mode):
            raise UnsafeArtifactError(
                f"{what}: refused {rel}: {current / rel.parts[-1]} exists and is not a regular file",
                path=str(rel),
            )


def check_pull_target(target: Path, *, force: bool = False) -> None:
    """Refuse a target that is not a directory, or (without ``force``) one that is not empty."""
    if target.exists() and not target.is_dir():
        raise UsageError(f"{target} exists and is not a directory")
    if target.is_dir() and not force:
        present = sorted(entry.name for entry in target.iterdir())
        if present:
            shown = ", ".join(present[:5]) + (f" and {len(present) - 5} more" if len(present) > 5 else "")
            raise UsageError(
                f"{target} is not empty (found {shown}): expected a new or empty directory, so that "
                "nothing but the artifact's files ends up there; pass --force to pull into it anyway"
            )


def pull(
    store: Store,
    ref: Reference,
    target: Path,
    *,
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
    concurrency: int = 4,
    force: bool = False,
) -> PullResult:
    """Pull the model artifact ``ref`` into ``target`` (created if missing), up to
    ``concurrency`` blobs at once.

    ``target`` must be missing or empty: files already there would mix with the artifact's and a
    later sign or verify would cover them too. ``force`` pulls into a non-empty directory anyway,
    replacing the artifact's files and leaving the others where they are."""
    check_pull_target(target, force=force)
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
    # Everything lands in a staging directory first: a refused blob leaves the target untouched.
    staging = Path(tempfile.mkdtemp(dir=root, prefix=".guard-pull."))

    def fetch(layer: ArtifactLayer) -> tuple[list[str], int]:
        what = layer.path or layer.descriptor.digest
        with store.fetch_blob(layer.descriptor.digest) as chunks:
            reader = VerifyingReader(chunks, layer.descriptor, what, progress)
            if layer.is_raw:
                assert layer.path is not None
                rel = safe_relative_path(layer.path, what)
                written = _write_verified(staging, rel, reader, layer.descriptor.size, what)
                if layer_is_executable(layer.descriptor):
                    os.chmod(staging / rel, 0o755)  # noqa: S103 - an executable script; never setuid
                return [str(rel)], written
            return _extract_tar(staging, layer, reader, what), layer.descriptor.size

    try:
        workers = max(1, min(concurrency, len(layers)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="guard-pull") as pool:
            for names, size in pool.map(fetch, layers):
                files.extend(names)
                total += size
        for name in files:
            _check_target(root, PurePosixPath(name), name)
        for name in files:
            rel = PurePosixPath(name)
            os.replace(staging / rel, _prepare_parent(root, rel, name))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return PullResult(descriptor.digest, artifact_kind(manifest), tuple(files), total)
