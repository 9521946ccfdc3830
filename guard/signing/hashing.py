"""Hashing a model directory into a Manifest (OMS ``files`` and ``shards`` serializations).

Speed: hashing is the cost of signing. Work is split into units (a file, or a shard of one),
largest first, over a pool of threads; each thread reuses one ~1 MiB buffer (``readinto``) and
hashlib / blake3 release the GIL while hashing, so threads use every core. A single big file
only spreads over cores with ``shards`` (or blake3, which is internally parallel).

Safety: the files come from ``guard.signing.listing`` (symlink and ignore rules); a file swapped for
a FIFO, socket or device after the listing is refused when opened, one that changes while it is
read is refused; every failure to read is a ModelDirectoryError naming the file.
"""

from __future__ import annotations

import errno
import hashlib
import mmap
import os
import stat
import sys
import threading
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from guard.buffers import page_aligned
from guard.errors import ModelDirectoryError, UsageError
from guard.signing.listing import ListedFile, file_kind, list_files
from guard.signing.manifest import make_manifest
from guard.signing.oms import resource_algorithm
from guard.signing.types import Manifest, Resource, Serialization

if TYPE_CHECKING:
    import blake3

    from guard.signing.cache import DigestCache

__all__ = [
    "ALGORITHMS",
    "BATCH_BYTES",
    "BLAKE3_MMAP_THRESHOLD",
    "CHUNK_SIZE",
    "MAX_SHARDS",
    "default_workers",
    "file_digest",
    "hash_model",
    "list_files",
    "new_hasher",
]

CHUNK_SIZE = 1 << 20
# Files smaller than CHUNK_SIZE are read whole with one call and handed to the pool in batches of
# about this many bytes (see _batches).
BATCH_BYTES = 8 << 20
# blake3 hashes big files mapped, with its own threads; below this a plain read is faster.
BLAKE3_MMAP_THRESHOLD = 64 << 20
# A statement of more shards than this is refused before any hashing: `--shard-size 1` on a 2 MB
# file made 2 million shards (143 s, 5.7 GB of memory, a 370 MB signature); 100,000 shards of the
# default 1 GB size cover 100 TB.
MAX_SHARDS = 100_000
ALGORITHMS = ("sha256", "blake2b", "blake3")


class _Hasher(Protocol):
    def update(self, data: Any, /) -> object: ...
    def hexdigest(self) -> str: ...


def _blake3() -> type[blake3.blake3]:
    """blake3's hasher, imported when a blake3 digest is asked for (sha256 and blake2b do not
    load the library)."""
    import blake3  # noqa: PLC0415

    return blake3.blake3


def new_hasher(algorithm: str, *, threads: bool = False) -> _Hasher:
    if algorithm == "sha256":
        return hashlib.sha256()
    if algorithm == "blake2b":
        return hashlib.blake2b()
    if algorithm == "blake3":
        new = _blake3()
        return new(max_threads=new.AUTO if threads else 1)
    raise UsageError(f"unknown hash algorithm {algorithm!r}: expected one of {', '.join(ALGORITHMS)}")


_local = threading.local()


def _buffer() -> memoryview:
    """This thread's read buffer, page-aligned (``guard.buffers``: a bytearray's bytes start 16
    bytes past a page, and the kernel's copy from the page cache into them ran 5x slower)."""
    view: memoryview | None = getattr(_local, "view", None)
    if view is None:
        view = page_aligned(CHUNK_SIZE)
        _local.view = view
    return view


class _Unit(NamedTuple):
    """A file, or a shard of one (a named tuple: one is built per file, and cheaply)."""

    file: ListedFile
    start: int
    end: int | None  # None: the whole file (files serialization)

    @property
    def size(self) -> int:
        return (self.end if self.end is not None else self.file.st.st_size) - self.start

    @property
    def name(self) -> str:
        return self.file.name if self.end is None else f"{self.file.name}:{self.start}:{self.end}"


def _units(files: list[ListedFile], serialization: Serialization) -> list[_Unit]:
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


def _open(path: str, name: str, *, regular: bool = True) -> int:
    """``path`` opened to read; ``regular``: checked to be a regular file now (without it the
    caller checks the ``fstat`` it takes after reading, before it uses a byte)."""
    try:
        # O_NONBLOCK: a FIFO swapped in after the walk must not hang us. O_NOFOLLOW: what the
        # listing hands over is never a link (an allowed symlink is listed by its resolved target),
        # so a link found here was swapped in after the walk: refused, not followed.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    except PermissionError as err:
        raise ModelDirectoryError(f"cannot read {name}: permission denied") from err
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise ModelDirectoryError(
                f"{name} became a symbolic link after the model was listed; expected a regular "
                "file (sign or verify the model once nothing changes it)"
            ) from err
        raise ModelDirectoryError(f"cannot read {name}: {err.strerror}") from err
    if regular:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise _not_regular(name, st.st_mode)
    return fd


def _not_regular(name: str, mode: int) -> ModelDirectoryError:
    return ModelDirectoryError(f"{name} is {file_kind(mode)}; a model holds only regular files")


def _read_error(name: str, fd: int, err: OSError) -> ModelDirectoryError:
    """What a failed read of ``name`` (still open as ``fd``) says: what the file became when it is
    no longer a regular one (a directory: EISDIR; a FIFO whose writer has not written: EAGAIN)."""
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        mode = stat.S_IFREG
    if not stat.S_ISREG(mode):
        return _not_regular(name, mode)
    return ModelDirectoryError(f"cannot read {name}: {err.strerror or err}")


def _hash_unit(unit: _Unit, algorithm: str, progress: Callable[[int], None] | None) -> str:
    """Hash one file or shard with this thread's reused buffer."""
    name = unit.file.name
    if algorithm == "blake3" and unit.end is None and unit.size >= BLAKE3_MMAP_THRESHOLD:
        # Mapped and hashed on every core by blake3 (6.3 GiB/s here; read in chunks: 3.3-3.6).
        # The file is opened as every other one is (blake3's own update_mmap opened the path: it
        # followed a link swapped in after the listing, and blocked forever on a FIFO). A file
        # truncated while it is mapped still ends the process (SIGBUS): closed, but not the clear
        # error a read gives.
        fd = _open(unit.file.path, name)
        try:
            with mmap.mmap(fd, 0, access=mmap.ACCESS_READ) as mapped:
                new = _blake3()
                digest = new(max_threads=new.AUTO).update(mapped).hexdigest()
            after = os.fstat(fd)
        except OSError as err:
            raise ModelDirectoryError(f"cannot read {name}: {err.strerror or err}") from err
        except ValueError as err:  # emptied since the listing: mmap cannot map 0 bytes
            raise ModelDirectoryError(f"{name} shrank while it was being hashed") from err
        finally:
            os.close(fd)
        _check_unchanged(name, unit.file.st, after)
        if progress:
            progress(unit.size)
        return digest
    if _is_small(unit, algorithm):
        return _hash_small_files([unit.file], algorithm, progress)[0]
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


def _hash_small_files(
    files: list[ListedFile], algorithm: str, progress: Callable[[int], None] | None
) -> list[str]:
    """Files smaller than the buffer, one after another on this thread, in one loop: each is read
    whole with one ``readv`` into this thread's buffer (one byte more than its listed size, so
    growth shows) and hashed with one call; no file object, no call per file but the system's
    and the hash's (on 2,000 x 64 KiB files, each Python call left out is ~1% of the time)."""
    view = _buffer()
    digest = _one_shot(algorithm)
    readv, fstat, close = os.readv, os.fstat, os.close
    digests: list[str] = []
    for file in files:
        size = file.st.st_size
        # One fstat, after the read: it says whether what was read is still a regular file of the
        # listed size and time (a FIFO or a directory swapped in is refused before its bytes are
        # used: O_NONBLOCK, so reading one cannot block). A system call less a file: each lets
        # the GIL go and take it back, and two threads doing so at once hand it over every time.
        fd = _open(file.path, file.name, regular=False)
        try:
            got = readv(fd, [view[: size + 1]])
            while 0 < got < size:  # a short read (network filesystems): read on
                more = readv(fd, [view[got : size + 1]])
                if not more:
                    break
                got += more
            after = fstat(fd)
        except OSError as err:
            raise _read_error(file.name, fd, err) from err
        finally:
            close(fd)
        if not stat.S_ISREG(after.st_mode):
            raise _not_regular(file.name, after.st_mode)
        if got != size or after.st_size != size or after.st_mtime_ns != file.st.st_mtime_ns:
            _changed(file, got, after)
        digests.append(digest(view[:got]))
        if progress:
            progress(got)
    return digests


def _one_shot(algorithm: str) -> Callable[[memoryview], str]:
    """The hex digest of one buffer, in one call (the hash releases the GIL while it runs)."""
    if algorithm == "sha256":
        sha256 = hashlib.sha256
        return lambda data: sha256(data).hexdigest()
    if algorithm == "blake3":
        new = _blake3()
        return lambda data: new(data, max_threads=1).hexdigest()

    def digest(data: memoryview) -> str:
        hasher = new_hasher(algorithm)
        hasher.update(data)
        return hasher.hexdigest()

    return digest


def _changed(file: ListedFile, got: int, after: os.stat_result) -> None:
    """Raise what a small file's read and stat show: it shrank, or it changed."""
    if got < file.st.st_size:
        raise ModelDirectoryError(f"{file.name} shrank while it was being hashed")
    if got > file.st.st_size:
        raise ModelDirectoryError(
            f"{file.name} changed while it was being hashed; sign it once it is complete"
        )
    _check_unchanged(file.name, file.st, after)


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
    todo = units
    keys: dict[str, str] = {}
    if cache is not None and cache.enabled:
        from guard.signing.cache import cache_key  # noqa: PLC0415 - loaded with the cache given

        hash_type = serialization.hash_type
        keys = {u.name: cache_key(u.file.real, u.file.st, hash_type, u.start, u.end) for u in units}
        hits = cache.get_many(list(keys.values()))
        todo = []
        for unit in units:
            hit = hits.get(keys[unit.name])
            if hit is None:
                todo.append(unit)
            else:
                digests[unit.name] = hit
    total = sum(u.size for u in todo)
    with _progress_bar(progress, total, f"hashing {model_dir.name or model_dir}") as advance:
        digests.update(_hash_all(todo, serialization.hash_type, workers or default_workers(), advance))
    if cache is not None and cache.enabled:
        cache.put_many([(keys[u.name], digests[u.name]) for u in todo])
    return make_manifest(
        serialization, (Resource(name, algorithm, digest) for name, digest in digests.items())
    )


def _is_small(unit: _Unit, algorithm: str) -> bool:
    """A whole file under the buffer, read with one call (blake3's mmap path aside)."""
    size = unit.file.st.st_size
    return (
        unit.end is None
        and size < CHUNK_SIZE
        and not (algorithm == "blake3" and size >= BLAKE3_MMAP_THRESHOLD)
    )


def _batches(units: list[_Unit], workers: int, algorithm: str = "sha256") -> list[list[_Unit]]:
    """The tasks: a unit of a buffer or more alone; smaller files (a tokenizer's shards, a
    diffusers tree) grouped, so a task's bookkeeping (a future, a queue hand-off, the GIL passing
    between threads) is paid per batch, not per 64 KiB file, and a batch is hashed in one loop
    (_hash_small_files). Batches stay small enough (a quarter of each worker's share of those
    bytes, at most BATCH_BYTES) for the threads to finish together."""
    large: list[list[_Unit]] = []
    small: list[_Unit] = []
    for unit in units:
        if _is_small(unit, algorithm):
            small.append(unit)
        else:
            large.append([unit])
    limit = max(CHUNK_SIZE, min(BATCH_BYTES, sum(u.file.st.st_size for u in small) // (4 * workers)))
    batches: list[list[_Unit]] = []
    current: list[_Unit] = []
    held = 0
    for unit in small:
        current.append(unit)
        held += unit.file.st.st_size + 4096  # a file's open/stat/close counts as some bytes
        if held >= limit:
            batches.append(current)
            current, held = [], 0
    if current:
        batches.append(current)
    return large + batches


def _hash_batch(units: list[_Unit], algorithm: str, progress: Callable[[int], None] | None) -> list[str]:
    if len(units) == 1 and not _is_small(units[0], algorithm):
        return [_hash_unit(units[0], algorithm, progress)]
    return _hash_small_files([u.file for u in units], algorithm, progress)


def _hash_all(
    units: list[_Unit], algorithm: str, workers: int, progress: Callable[[int], None] | None
) -> dict[str, str]:
    """Every unit's digest by name: on this thread for one worker or task, else on a pool (the
    first failure cancels what has not started and is raised)."""
    batches = _batches(units, workers, algorithm)
    digests: dict[str, str] = {}
    if workers == 1 or len(batches) <= 1:
        for batch in batches:
            digests.update(zip((u.name for u in batch), _hash_batch(batch, algorithm, progress), strict=True))
        return digests
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="guard-hash") as pool:
        futures: dict[Future[list[str]], list[_Unit]] = {
            pool.submit(_hash_batch, batch, algorithm, progress): batch for batch in batches
        }
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        for future in done:
            if future.exception() is not None:
                for other in futures:
                    other.cancel()
                future.result()
        for future, batch in futures.items():
            digests.update(zip((u.name for u in batch), future.result(), strict=True))
    return digests


def file_digest(path: Path, algorithm: str = "sha256", *, cache: DigestCache | None = None) -> str:
    """The hex digest of one file (through the cache when one is given)."""
    try:
        st = os.stat(path)
    except OSError as err:
        raise ModelDirectoryError(f"cannot read {path}: {err.strerror}") from err
    if not stat.S_ISREG(st.st_mode):
        raise ModelDirectoryError(f"{path} is {file_kind(st.st_mode)}; expected a regular file")
    new_hasher(algorithm)  # validates the name
    real = str(path.resolve())
    key = ""
    if cache is not None:
        from guard.signing.cache import cache_key  # noqa: PLC0415 - loaded with the cache given

        key = cache_key(real, st, algorithm, 0, None)
        hit = cache.get(key)
        if hit is not None:
            return hit
    listed = ListedFile(str(path), os.fspath(path), st, real)
    digest = _hash_unit(_Unit(listed, 0, None), algorithm, None)
    if cache is not None:
        cache.put(key, digest)
    return digest
