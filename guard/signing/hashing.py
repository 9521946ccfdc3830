"""Hashing a model directory into a Manifest (OMS ``files`` and ``shards`` serializations).

Speed: hashing is the cost of signing. Work is split into units (a file, or a shard of one),
largest first, over a pool of threads; each thread reuses one ~1 MiB buffer (``readinto``) and
hashlib / blake3 release the GIL while hashing, so threads use every core. A single big file
only spreads over cores with ``shards`` (or blake3, which is internally parallel).

Safety: symlinks are refused unless allowed, and even then never followed outside the model
directory (nor to directories); FIFOs, sockets and devices are refused; every failure to read is a
ModelDirectoryError naming the file.
"""

from __future__ import annotations

import hashlib
import os
import stat
import sys
import threading
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import blake3

from guard.errors import ModelDirectoryError, UsageError
from guard.signing.cache import DigestCache, cache_key
from guard.signing.manifest import make_manifest
from guard.signing.oms import resource_algorithm
from guard.signing.types import Manifest, Resource, Serialization

CHUNK_SIZE = 1 << 20
# blake3 hashes big files with its own threads (update_mmap); below this a plain read is faster.
BLAKE3_MMAP_THRESHOLD = 64 << 20
# A statement of more shards than this is refused before any hashing: `--shard-size 1` on a 2 MB
# file made 2 million shards (143 s, 5.7 GB of memory, a 370 MB signature); 100,000 shards of the
# default 1 GB size cover 100 TB.
MAX_SHARDS = 100_000
ALGORITHMS = ("sha256", "blake2b", "blake3")


class _Hasher(Protocol):
    def update(self, data: Any, /) -> object: ...
    def hexdigest(self) -> str: ...


def new_hasher(algorithm: str, *, threads: bool = False) -> _Hasher:
    if algorithm == "sha256":
        return hashlib.sha256()
    if algorithm == "blake2b":
        return hashlib.blake2b()
    if algorithm == "blake3":
        return blake3.blake3(max_threads=blake3.blake3.AUTO if threads else 1)
    raise UsageError(f"unknown hash algorithm {algorithm!r}: expected one of {', '.join(ALGORITHMS)}")


_local = threading.local()


def _buffer() -> memoryview:
    view: memoryview | None = getattr(_local, "view", None)
    if view is None:
        view = memoryview(bytearray(CHUNK_SIZE))
        _local.view = view
    return view


@dataclass(frozen=True)
class _File:
    name: str  # relative POSIX path inside the model (the link's name for an allowed symlink)
    path: Path  # what is read (the resolved target for an allowed symlink)
    st: os.stat_result


@dataclass(frozen=True)
class _Unit:
    file: _File
    start: int
    end: int | None  # None: the whole file (files serialization)

    @property
    def size(self) -> int:
        return (self.end if self.end is not None else self.file.st.st_size) - self.start

    @property
    def name(self) -> str:
        return self.file.name if self.end is None else f"{self.file.name}:{self.start}:{self.end}"


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def is_ignored(name: str, ignore: Collection[str]) -> bool:
    """An ignored path covers itself and everything below it."""
    return any(name == p or name.startswith(p + "/") for p in ignore)


def _normalize_ignore(paths: Collection[str]) -> set[str]:
    out = set()
    for p in paths:
        norm = os.path.normpath(p.replace("\\", "/")).lstrip("/")
        if norm and norm != "." and not norm.startswith(".."):
            out.add(norm.replace(os.sep, "/"))
    return out


def _resolve_link(root_real: str, entry_path: str, name: str) -> tuple[Path, os.stat_result]:
    target = os.readlink(entry_path)
    try:
        real = os.path.realpath(entry_path, strict=True)
    except (OSError, RuntimeError) as err:
        raise ModelDirectoryError(f"{name} is a symbolic link to {target}, which does not resolve") from err
    if os.path.commonpath([root_real, real]) != root_real:
        raise ModelDirectoryError(
            f"{name} is a symbolic link to {target}, outside the model directory; guard never follows "
            "links out of the model, even with --allow-symlinks"
        )
    st = os.stat(real)
    if stat.S_ISDIR(st.st_mode):
        raise ModelDirectoryError(
            f"{name} is a symbolic link to a directory ({target}); only links to files can be signed"
        )
    if not stat.S_ISREG(st.st_mode):
        raise ModelDirectoryError(
            f"{name} is a symbolic link to {_kind(st.st_mode)}; expected a regular file"
        )
    return Path(real), st


def list_files(model_dir: Path, serialization: Serialization, exclude: Collection[str] = ()) -> list[_File]:
    """Every file to hash, by relative POSIX name (sorted), applying the ignore and symlink rules."""
    if not model_dir.exists():
        raise ModelDirectoryError(f"model directory {model_dir} does not exist")
    if not model_dir.is_dir():
        raise ModelDirectoryError(f"{model_dir} is not a directory: expected a model directory")
    root_real = os.path.realpath(model_dir)
    ignore = _normalize_ignore([*serialization.ignore_paths, *exclude])
    files: list[_File] = []

    def walk(directory: str, prefix: str) -> None:
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except PermissionError as err:
            raise ModelDirectoryError(f"cannot read directory {prefix or '.'}: permission denied") from err
        except OSError as err:
            raise ModelDirectoryError(f"cannot read directory {prefix or '.'}: {err.strerror}") from err
        for entry in entries:
            name = f"{prefix}{entry.name}"
            try:
                name.encode("utf-8")
            except UnicodeEncodeError as err:
                shown = name.encode("utf-8", "backslashreplace").decode()
                raise ModelDirectoryError(
                    f"file name {shown} is not valid UTF-8; OMS names files in UTF-8: rename it"
                ) from err
            if is_ignored(name, ignore):
                continue
            if entry.is_symlink():
                if not serialization.allow_symlinks:
                    raise ModelDirectoryError(
                        f"{name} is a symbolic link (to {os.readlink(entry.path)}); symlinks are refused "
                        "unless --allow-symlinks is given"
                    )
                real, st = _resolve_link(root_real, entry.path, name)
                files.append(_File(name, real, st))
                continue
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                walk(entry.path, name + "/")
            elif stat.S_ISREG(st.st_mode):
                files.append(_File(name, Path(entry.path), st))
            else:
                raise ModelDirectoryError(f"{name} is {_kind(st.st_mode)}; a model holds only regular files")

    walk(str(model_dir), "")
    if not files:
        raise ModelDirectoryError(
            f"model directory {model_dir} holds no files to sign"
            + (f" (ignored: {', '.join(sorted(ignore))})" if ignore else "")
        )
    return files


def _units(files: list[_File], serialization: Serialization) -> list[_Unit]:
    if serialization.method == "shards":
        step = serialization.shard_size
        count = sum(-(-f.st.st_size // step) for f in files)
        if count > MAX_SHARDS:
            total = sum(f.st.st_size for f in files)
            raise UsageError(
                f"shard size {step} cuts the model's {total} bytes into {count} shards; expected at "
                f"most {MAX_SHARDS}: use a larger shard size (OMS's default: 1000000000, --shard-size 1G)"
            )
    units: list[_Unit] = []
    for f in files:
        if serialization.method == "files":
            units.append(_Unit(f, 0, None))
            continue
        size, step = f.st.st_size, serialization.shard_size
        # As the reference implementation: an empty file has no shard.
        units.extend(_Unit(f, start, min(start + step, size)) for start in range(0, size, step))
    return units


def _open(path: Path, name: str) -> int:
    try:
        # O_NONBLOCK: a FIFO swapped in after the walk must not hang us.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except PermissionError as err:
        raise ModelDirectoryError(f"cannot read {name}: permission denied") from err
    except OSError as err:
        raise ModelDirectoryError(f"cannot read {name}: {err.strerror}") from err
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise ModelDirectoryError(f"{name} is {_kind(st.st_mode)}; a model holds only regular files")
    return fd


def _hash_unit(unit: _Unit, algorithm: str, progress: Callable[[int], None] | None) -> str:
    """Hash one file or shard with this thread's reused buffer."""
    name = unit.file.name
    if algorithm == "blake3" and unit.end is None and unit.size >= BLAKE3_MMAP_THRESHOLD:
        try:
            digest = blake3.blake3(max_threads=blake3.blake3.AUTO).update_mmap(unit.file.path).hexdigest()
            after = os.stat(unit.file.path)
        except OSError as err:
            raise ModelDirectoryError(f"cannot read {name}: {err.strerror or err}") from err
        _check_unchanged(name, unit.file.st, after)
        if progress:
            progress(unit.size)
        return digest
    hasher = new_hasher(algorithm)
    view = _buffer()
    fd = _open(unit.file.path, name)
    try:
        if unit.start:
            os.lseek(fd, unit.start, os.SEEK_SET)
        remaining = unit.size
        with os.fdopen(fd, "rb", buffering=0, closefd=False) as f:
            while remaining > 0:
                want = min(CHUNK_SIZE, remaining)
                got = f.readinto(view[:want])
                if not got:
                    raise ModelDirectoryError(f"{name} shrank while it was being hashed")
                hasher.update(view[:got])
                remaining -= got
                if progress:
                    progress(got)
        after = os.fstat(fd)
    except OSError as err:
        raise ModelDirectoryError(f"cannot read {name}: {err.strerror or err}") from err
    finally:
        os.close(fd)
    _check_unchanged(name, unit.file.st, after)
    return hasher.hexdigest()


def _check_unchanged(name: str, before: os.stat_result, after: os.stat_result) -> None:
    if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
        raise ModelDirectoryError(f"{name} changed while it was being hashed; sign it once it is complete")


@contextmanager
def _progress_bar(enabled: bool, total: int, label: str) -> Iterator[Callable[[int], None] | None]:
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console  # noqa: PLC0415
    from rich.progress import (  # noqa: PLC0415
        BarColumn,
        DownloadColumn,
        Progress,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    bar = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    task = bar.add_task(label, total=total)
    lock = threading.Lock()
    pending = [0]

    def advance(n: int) -> None:
        with lock:
            pending[0] += n
            if pending[0] < (32 << 20):
                return
            n, pending[0] = pending[0], 0
        bar.advance(task, n)

    with bar:
        yield advance


def default_workers() -> int:
    return max(1, min(32, os.cpu_count() or 1))


def hash_model(
    model_dir: Path,
    serialization: Serialization | None = None,
    *,
    progress: bool = False,
    cache: DigestCache | None = None,
    exclude: Collection[str] = (),
    workers: int | None = None,
) -> Manifest:
    """Hash ``model_dir`` into a Manifest. ``exclude``: extra relative paths to skip that are not
    recorded in the serialization (e.g. the signature being verified)."""
    serialization = serialization or Serialization()
    files = list_files(model_dir, serialization, exclude)
    units = sorted(_units(files, serialization), key=lambda u: u.size, reverse=True)
    algorithm = resource_algorithm(serialization)
    digests: dict[str, str] = {}
    todo: list[_Unit] = []
    keys: dict[str, str] = {}
    for unit in units:
        if cache is not None and cache.enabled:
            key = cache_key(
                str(unit.file.path.resolve()), unit.file.st, serialization.hash_type, unit.start, unit.end
            )
            keys[unit.name] = key
            hit = cache.get(key)
            if hit is not None:
                digests[unit.name] = hit
                continue
        todo.append(unit)
    total = sum(u.size for u in todo)
    n_workers = workers or default_workers()
    with _progress_bar(progress, total, f"hashing {model_dir.name or model_dir}") as advance:
        if n_workers == 1 or len(todo) <= 1:
            for unit in todo:
                digests[unit.name] = _hash_unit(unit, serialization.hash_type, advance)
        else:
            with ThreadPoolExecutor(max_workers=n_workers, thread_name_prefix="guard-hash") as pool:
                futures: dict[Future[str], _Unit] = {
                    pool.submit(_hash_unit, unit, serialization.hash_type, advance): unit for unit in todo
                }
                done, _ = wait(futures, return_when=FIRST_EXCEPTION)
                for future in done:
                    if future.exception() is not None:
                        for other in futures:
                            other.cancel()
                        future.result()
                for future, unit in futures.items():
                    digests[unit.name] = future.result()
    if cache is not None and cache.enabled:
        cache.put_many([(keys[u.name], digests[u.name]) for u in todo])
    return make_manifest(
        serialization, (Resource(name, algorithm, digest) for name, digest in digests.items())
    )


def file_digest(path: Path, algorithm: str = "sha256", *, cache: DigestCache | None = None) -> str:
    """The hex digest of one file (through the cache when one is given)."""
    try:
        st = os.stat(path)
    except OSError as err:
        raise ModelDirectoryError(f"cannot read {path}: {err.strerror}") from err
    if not stat.S_ISREG(st.st_mode):
        raise ModelDirectoryError(f"{path} is {_kind(st.st_mode)}; expected a regular file")
    new_hasher(algorithm)  # validates the name
    key = cache_key(str(path.resolve()), st, algorithm, 0, None)
    if cache is not None:
        hit = cache.get(key)
        if hit is not None:
            return hit
    digest = _hash_unit(_Unit(_File(str(path), path, st), 0, None), algorithm, None)
    if cache is not None:
        cache.put(key, digest)
    return digest
