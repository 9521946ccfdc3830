"""Hashing a model directory: digests, serializations, ignore and symlink rules, bad input, cache."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import blake3
import pytest

from guard.errors import ModelDirectoryError, UsageError
from guard.signing import hashing
from guard.signing.cache import DigestCache, cache_key
from guard.signing.hashing import file_digest, hash_model
from guard.signing.types import HashType, Serialization


def _names(model: Path, **kw: Any) -> list[str]:
    return [r.name for r in hash_model(model, Serialization(**kw)).resources]


def test_files_digests_are_sha256_of_each_file(model_dir: Path) -> None:
    manifest = hash_model(model_dir)
    got = {r.name: r.digest for r in manifest.resources}
    expected = {
        p.relative_to(model_dir).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in model_dir.rglob("*")
        if p.is_file() and ".git" not in p.parts
    }
    assert got == expected
    assert all(r.algorithm == "sha256" for r in manifest.resources)
    # order: as model-signing (path components), so a/b sorts before a.b and a-b
    assert [r.name for r in manifest.resources] == [
        "a/b",
        "a-b",
        "a.b",
        "config.json",
        "empty.txt",
        "model.safetensors",
    ]


@pytest.mark.parametrize(
    ("algorithm", "fn"),
    [
        ("blake2b", lambda b: hashlib.blake2b(b).hexdigest()),
        ("blake3", lambda b: blake3.blake3(b).hexdigest()),
    ],
)
def test_other_hashes(model_dir: Path, algorithm: HashType, fn: Callable[[bytes], str]) -> None:
    manifest = hash_model(model_dir, Serialization(hash_type=algorithm))
    weights = manifest.by_name()["model.safetensors"]
    assert weights.digest == fn((model_dir / "model.safetensors").read_bytes())
    assert weights.algorithm == algorithm


def test_blake3_big_file_path_matches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hashing, "BLAKE3_MMAP_THRESHOLD", 1024)  # exercise update_mmap on a small file
    data = os.urandom(300_000)
    (tmp_path / "w").write_bytes(data)
    assert (
        hash_model(tmp_path, Serialization(hash_type="blake3")).resources[0].digest
        == blake3.blake3(data).hexdigest()
    )


def test_shards_cover_each_file_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hashing, "CHUNK_SIZE", 7)  # several reads per shard, odd boundaries
    data = os.urandom(25)
    (tmp_path / "w").write_bytes(data)
    (tmp_path / "empty").write_bytes(b"")
    manifest = hash_model(tmp_path, Serialization(method="shards", shard_size=10))
    assert [(r.name, r.digest, r.algorithm) for r in manifest.resources] == [
        ("w:0:10", hashlib.sha256(data[:10]).hexdigest(), "sha256-sharded-10"),
        ("w:10:20", hashlib.sha256(data[10:20]).hexdigest(), "sha256-sharded-10"),
        ("w:20:25", hashlib.sha256(data[20:]).hexdigest(), "sha256-sharded-10"),
    ]  # an empty file has no shard, as in the reference implementation


def test_threads_and_one_thread_agree(model_dir: Path) -> None:
    assert hash_model(model_dir, workers=1) == hash_model(model_dir, workers=4)


def test_default_and_extra_ignores(model_dir: Path) -> None:
    assert ".git/HEAD" not in _names(model_dir)
    assert ".git/HEAD" in _names(model_dir, ignore_paths=())
    assert _names(model_dir, ignore_paths=(".git", "a", "config.json")) == [
        "a-b",
        "a.b",
        "empty.txt",
        "model.safetensors",
    ]
    # an ignored name covers what is below it, not its prefixes
    assert "a.b" in _names(model_dir, ignore_paths=(".git", "a"))


def test_missing_and_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(ModelDirectoryError, match="does not exist"):
        hash_model(tmp_path / "nope")
    (tmp_path / "empty" / ".git").mkdir(parents=True)
    (tmp_path / "empty" / ".git" / "HEAD").write_text("x")
    with pytest.raises(ModelDirectoryError, match="holds no files to sign"):
        hash_model(tmp_path / "empty")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ModelDirectoryError, match="not a directory"):
        hash_model(tmp_path / "file")


def test_symlink_refused_unless_allowed(model_dir: Path) -> None:
    (model_dir / "link.json").symlink_to("config.json")
    with pytest.raises(ModelDirectoryError, match=r"link\.json is a symbolic link .*--allow-symlinks"):
        hash_model(model_dir)
    by_name = hash_model(model_dir, Serialization(allow_symlinks=True)).by_name()
    assert by_name["link.json"].digest == by_name["config.json"].digest


def test_symlink_outside_never_followed(model_dir: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("outside")
    (model_dir / "escape").symlink_to(secret)
    with pytest.raises(ModelDirectoryError, match="outside the model directory"):
        hash_model(model_dir, Serialization(allow_symlinks=True))
    (model_dir / "escape").unlink()
    (model_dir / "dotdot").symlink_to("../secret.txt")
    with pytest.raises(ModelDirectoryError, match="outside the model directory"):
        hash_model(model_dir, Serialization(allow_symlinks=True))


def test_symlink_to_directory_and_dangling_refused(model_dir: Path) -> None:
    (model_dir / "dirlink").symlink_to("a")
    with pytest.raises(ModelDirectoryError, match="link to a directory"):
        hash_model(model_dir, Serialization(allow_symlinks=True))
    (model_dir / "dirlink").unlink()
    (model_dir / "dangling").symlink_to("nothing-here")
    with pytest.raises(ModelDirectoryError, match="does not resolve"):
        hash_model(model_dir, Serialization(allow_symlinks=True))


def test_fifo_refused_without_blocking(model_dir: Path) -> None:
    os.mkfifo(model_dir / "pipe")
    with pytest.raises(ModelDirectoryError, match="pipe is a FIFO"):
        hash_model(model_dir)


def test_unreadable_file_named(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests run as root, where chmod 000 does not stop reads: simulate the kernel's EACCES on open.
    real_open = os.open

    def deny(path: str | bytes | os.PathLike[str] | os.PathLike[bytes], flags: int, *args: int) -> int:
        if str(path).endswith("model.safetensors"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr("guard.signing.hashing.os.open", deny)
    with pytest.raises(ModelDirectoryError, match=r"cannot read model\.safetensors: permission denied"):
        hash_model(model_dir)


# Root reads any file whatever its mode through CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH: as root the
# hashing runs in a child with both capabilities dropped (setpriv, util-linux), where the kernel
# applies the mode to root as to anyone, and mode 000 gives EACCES on open.
NO_DAC_OVERRIDE = [f"--{caps}=-dac_override,-dac_read_search" for caps in ("inh-caps", "bounding-set")]
HASH_AND_REPORT = """
import sys
from pathlib import Path
from guard.errors import ModelDirectoryError
from guard.signing.hashing import hash_model
try:
    hash_model(Path(sys.argv[1]))
except ModelDirectoryError as err:
    print(err)
    sys.exit(1)
"""


def _hashing_error_under_file_modes(model: Path) -> str | None:
    """What hashing ``model`` raises where file modes apply to the caller (None: it hashed)."""
    if os.geteuid() != 0:
        try:
            hash_model(model)
        except ModelDirectoryError as err:
            return str(err)
        return None
    setpriv = shutil.which("setpriv")
    assert setpriv is not None, "setpriv (util-linux) is needed to drop root's DAC capabilities"
    child = subprocess.run(
        [setpriv, *NO_DAC_OVERRIDE, "--", sys.executable, "-c", HASH_AND_REPORT, str(model)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert child.returncode in (0, 1), child.stdout + child.stderr
    return child.stdout.strip() if child.returncode == 1 else None


def test_unreadable_file_by_mode(model_dir: Path) -> None:
    (model_dir / "config.json").chmod(0)
    error = _hashing_error_under_file_modes(model_dir)
    assert error is not None and re.search(r"cannot read config\.json: permission denied", error), error
    (model_dir / "config.json").chmod(0o644)  # the same caller hashes it once the mode allows
    assert _hashing_error_under_file_modes(model_dir) is None


def test_digest_cache_hits_and_invalidates(
    model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = DigestCache(tmp_path / "cache" / "d.sqlite3")
    first = hash_model(model_dir, cache=cache)
    calls: list[str] = []
    real = hashing._hash_all

    def counting(units: list[hashing._Unit], *args: Any) -> dict[str, str]:
        calls.extend(unit.name for unit in units)
        return real(units, *args)

    monkeypatch.setattr(hashing, "_hash_all", counting)
    assert hash_model(model_dir, cache=cache) == first
    assert calls == []  # every digest came from the cache
    (model_dir / "config.json").write_text('{"changed": true}\n')
    second = hash_model(model_dir, cache=cache)
    assert calls == ["config.json"]
    assert second.by_name()["config.json"].digest == hashlib.sha256(b'{"changed": true}\n').hexdigest()
    assert file_digest(model_dir / "config.json", cache=cache) == second.by_name()["config.json"].digest
    cache.close()


def test_digest_cache_default_and_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("GUARD_DIGEST_CACHE", raising=False)
    with DigestCache.default() as cache:
        assert cache.enabled and cache.path == tmp_path / "guard" / "digests.sqlite3"
    monkeypatch.setenv("GUARD_DIGEST_CACHE", "off")
    with DigestCache.default() as cache:
        assert not cache.enabled


def test_file_digest(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"abc")
    assert file_digest(tmp_path / "f") == hashlib.sha256(b"abc").hexdigest()
    assert file_digest(tmp_path / "f", "blake3") == blake3.blake3(b"abc").hexdigest()
    with pytest.raises(ModelDirectoryError):
        file_digest(tmp_path / "missing")


_LIST_FILES = hashing.list_files


def _change_after_listing(monkeypatch: pytest.MonkeyPatch, change: Callable[[], object]) -> None:
    """``hash_model`` lists the model, then ``change`` runs (a file grown, swapped, emptied) before
    any file is read. Patching again replaces the change (the real listing is always the one run)."""

    def listed(*args: Any, **kw: Any) -> object:
        files = _LIST_FILES(*args, **kw)
        change()
        return files

    monkeypatch.setattr(hashing, "list_files", listed)


@pytest.mark.parametrize("algorithm", ["sha256", "blake3"])
def test_file_changed_while_hashing(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch, algorithm: HashType
) -> None:
    monkeypatch.setattr(hashing, "BLAKE3_MMAP_THRESHOLD", 1)

    def append() -> None:
        with open(model_dir / "config.json", "a") as f:  # a writer still at work
            f.write("more\n")

    _change_after_listing(monkeypatch, append)
    with pytest.raises(ModelDirectoryError, match=r"config\.json changed while it was being hashed"):
        hash_model(model_dir, Serialization(hash_type=algorithm))


@pytest.mark.parametrize("algorithm", ["sha256", "blake3"])
def test_file_swapped_for_a_link_after_listing_is_not_followed(
    model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, algorithm: HashType
) -> None:
    # The walk refuses links; one swapped in between the walk and the read must not be followed
    # to a file outside the model (same size and time, so only the link itself can tell).
    monkeypatch.setattr(hashing, "BLAKE3_MMAP_THRESHOLD", 1)
    outside = tmp_path / "outside.json"
    inside = model_dir / "config.json"
    outside.write_bytes(b"x" * inside.stat().st_size)
    os.utime(outside, ns=(inside.stat().st_atime_ns, inside.stat().st_mtime_ns))

    def swap() -> None:
        inside.unlink()
        inside.symlink_to(outside)

    _change_after_listing(monkeypatch, swap)
    with pytest.raises(ModelDirectoryError, match=r"config\.json became a symbolic link"):
        hash_model(model_dir, Serialization(hash_type=algorithm))


@pytest.mark.parametrize("algorithm", ["sha256", "blake3"])
def test_file_swapped_for_a_fifo_after_listing_is_refused_without_blocking(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch, algorithm: HashType
) -> None:
    """blake3's big-file path opened the path itself: a FIFO swapped in blocked it forever."""
    import threading

    monkeypatch.setattr(hashing, "BLAKE3_MMAP_THRESHOLD", 1)
    inside = model_dir / "config.json"

    def swap() -> None:
        inside.unlink()
        os.mkfifo(inside)

    _change_after_listing(monkeypatch, swap)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            hash_model(model_dir, Serialization(hash_type=algorithm))
        except BaseException as err:  # handed to the test's thread
            errors.append(err)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive(), "hashing blocked on a FIFO"
    assert len(errors) == 1 and isinstance(errors[0], ModelDirectoryError)
    assert re.search(r"config\.json is a FIFO", str(errors[0])), errors[0]


@pytest.mark.parametrize("holding", [True, False], ids=["holding-the-listed-bytes", "silent-writer"])
def test_a_fifo_swapped_in_after_listing_is_refused_by_its_type(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch, holding: bool
) -> None:
    """A small file is stat'ed once, after its read. A FIFO swapped in that holds exactly the bytes
    listed (the same length and content: the read gets them all) is refused by its type; so is
    one whose writer has not written (the read fails with EAGAIN, never blocks), by what it is."""
    inside = model_dir / "config.json"
    content = inside.read_bytes()
    ends: list[int] = []

    def swap() -> None:
        inside.unlink()
        os.mkfifo(inside)
        ends.append(os.open(inside, os.O_RDWR | os.O_NONBLOCK))  # a writer: bytes wait in it
        if holding:
            assert os.write(ends[0], content) == len(content)

    _change_after_listing(monkeypatch, swap)
    try:
        with pytest.raises(ModelDirectoryError, match=r"config\.json is a FIFO; a model holds only"):
            hash_model(model_dir, Serialization(), workers=1)
        with pytest.raises(BlockingIOError):  # empty: the hashing's read took every byte held
            os.read(ends[0], 1 << 16)
    finally:
        for fd in ends:
            os.close(fd)


def test_a_directory_swapped_in_after_listing_is_refused(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inside = model_dir / "config.json"

    def swap() -> None:
        inside.unlink()
        inside.mkdir()

    _change_after_listing(monkeypatch, swap)
    with pytest.raises(ModelDirectoryError, match=r"config\.json is a directory; a model holds"):
        hash_model(model_dir, Serialization())


def test_a_big_blake3_file_emptied_after_listing_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hashing, "BLAKE3_MMAP_THRESHOLD", 1024)
    weights = tmp_path / "w"
    weights.write_bytes(os.urandom(300_000))
    _change_after_listing(monkeypatch, lambda: weights.write_bytes(b""))
    with pytest.raises(ModelDirectoryError, match=r"^w shrank while it was being hashed"):
        hash_model(tmp_path, Serialization(hash_type="blake3"))


def test_non_utf8_file_name_refused(model_dir: Path) -> None:
    fd = os.open(os.fsencode(model_dir) + b"/bad-\xff.bin", os.O_WRONLY | os.O_CREAT, 0o644)
    os.close(fd)
    with pytest.raises(ModelDirectoryError, match="not valid UTF-8"):
        hash_model(model_dir)


def test_progress_bar_only_on_a_terminal(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = hash_model(model_dir)
    assert hash_model(model_dir, progress=True) == expected  # stderr is not a terminal here: no bar
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(hashing, "CHUNK_SIZE", 16)  # many small reads, many progress updates
    monkeypatch.setattr("guard.signing.hashing.sys.stderr.isatty", lambda: True)
    assert hash_model(model_dir, progress=True, workers=2) == expected


def test_too_many_shards_are_refused_before_hashing(tmp_path: Path) -> None:
    # `--shard-size 1` on a 2 MB file made 2 million shards: minutes, gigabytes, a 370 MB signature
    (tmp_path / "w.bin").write_bytes(b"x" * (hashing.MAX_SHARDS + 1))
    with pytest.raises(UsageError, match=r"shard size 1 cuts the model's 100001 bytes into 100001 shards"):
        hash_model(tmp_path, Serialization(method="shards", shard_size=1))
    assert len(hash_model(tmp_path, Serialization(method="shards", shard_size=2)).resources) == 50001


def test_many_small_files_in_batches_and_sizes_around_the_buffer(tmp_path: Path) -> None:
    """Small files go to the pool in batches and are read with one call: every digest is still the
    file's, at every size around the buffer (one byte under, at, over) and for empty files."""
    model = tmp_path / "many"
    (model / "shards").mkdir(parents=True)
    sizes = {f"shards/{i:04d}.bin": (i * 7919) % 70_000 for i in range(300)}
    chunk = hashing.CHUNK_SIZE
    sizes |= {"empty": 0, "under": chunk - 1, "at": chunk, "over": chunk + 1, "big": 3 * chunk + 5}
    for name, size in sizes.items():
        (model / name).write_bytes(os.urandom(size))
    expected = {name: hashlib.sha256((model / name).read_bytes()).hexdigest() for name in sizes}
    for workers in (1, 2, 3):
        algorithms: tuple[HashType, ...] = ("sha256", "blake3")
        for algorithm in algorithms:
            manifest = hash_model(model, Serialization(hash_type=algorithm), workers=workers)
            got = {r.name: r.digest for r in manifest.resources}
            if algorithm == "sha256":
                assert got == expected
            else:
                assert got == {n: blake3.blake3((model / n).read_bytes()).hexdigest() for n in sizes}
    batches = hashing._batches(
        sorted(
            hashing._units(hashing.list_files(model, Serialization()), Serialization()),
            key=lambda u: u.size,
            reverse=True,
        ),
        2,
    )
    assert len(batches) < len(sizes) and sorted(u.name for b in batches for u in b) == sorted(sizes)


def test_small_file_that_shrank_or_grew_after_listing(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = model_dir / "config.json"
    _change_after_listing(monkeypatch, lambda: config.write_bytes(b"{}"))
    with pytest.raises(ModelDirectoryError, match=r"config\.json shrank while it was being hashed"):
        hash_model(model_dir, workers=1)
    _change_after_listing(monkeypatch, lambda: config.write_bytes(config.read_bytes() * 2))
    with pytest.raises(ModelDirectoryError, match=r"config\.json changed while it was being hashed"):
        hash_model(model_dir, workers=2)


@pytest.mark.parametrize(
    "name", ["a/b", "a.b/c-d", "a//b", "./a", "a/./b", "/abs/x", "a/", "", ".", "..", "a/../b", "x:0:10"]
)
def test_path_parts_is_pure_posix_path_parts(name: str) -> None:
    from pathlib import PurePosixPath

    from guard.signing.manifest import path_parts

    assert path_parts(name) == PurePosixPath(name).parts


def test_digest_cache_keys_name_real_paths_and_are_read_in_bulk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cache key holds each file's real path (a model reached through a link, a file linked
    inside it), computed once per model; all keys are looked up in few queries, not one a file."""
    real_root = tmp_path / "real"
    (real_root / "sub").mkdir(parents=True)
    for i in range(1200):  # more than one query's worth of keys
        (real_root / "sub" / f"{i:04d}.bin").write_bytes(i.to_bytes(2, "big"))
    (real_root / "top.json").write_text("{}")
    (real_root / "alias.json").symlink_to("sub/0001.bin")
    (tmp_path / "via").symlink_to(real_root)
    model = tmp_path / "via"
    serialization = Serialization(allow_symlinks=True)
    cache = DigestCache(tmp_path / "cache.sqlite3")
    first = hash_model(model, serialization, cache=cache)
    with contextlib.closing(sqlite3.connect(tmp_path / "cache.sqlite3")) as db:
        stored = {key for (key,) in db.execute("SELECT key FROM digests")}
    expected = {
        cache_key(os.path.realpath(model / r.name), os.stat(model / r.name), "sha256", 0, None)
        for r in first.resources
    }
    assert stored == expected and len(stored) == 1201  # the link and its target: one key
    queries: list[int] = []
    real_get_many = DigestCache.get_many

    def counting(self: DigestCache, keys: list[str]) -> dict[str, str]:
        queries.append(len(keys))
        return real_get_many(self, keys)

    monkeypatch.setattr(DigestCache, "get_many", counting)
    real_hash_all = hashing._hash_all

    def nothing_to_hash(units: list[hashing._Unit], *args: Any) -> dict[str, str]:
        assert units == [], "every digest is cached"
        return real_hash_all(units, *args)

    monkeypatch.setattr(hashing, "_hash_all", nothing_to_hash)
    assert hash_model(model, serialization, cache=cache) == first
    assert queries == [1202]
    cache.close()


def test_read_buffer_is_page_aligned_private_and_reused() -> None:
    """The kernel's copy from the page cache into a 16-byte-aligned destination (a bytearray's)
    measured 5x slower on AMD; the buffer is a private mapping a fork does not share."""
    import ctypes
    import threading

    seen: list[tuple[int, int, bool]] = []
    kept: list[memoryview] = []  # the thread's buffer outlives it here, so its address stays taken

    def grab() -> None:
        view = hashing._buffer()
        kept.append(view)
        address = ctypes.addressof(ctypes.c_char.from_buffer(view))
        seen.append((address, len(view), hashing._buffer() is view))

    thread = threading.Thread(target=grab)
    thread.start()
    thread.join()
    grab()
    assert len(seen) == 2
    for address, size, reused in seen:
        assert address % 4096 == 0
        assert size == hashing.CHUNK_SIZE
        assert reused
    assert seen[0][0] != seen[1][0]  # one buffer a thread

    if hasattr(os, "fork"):
        view = hashing._buffer()
        view[:4] = b"abcd"
        pid = os.fork()
        if pid == 0:  # the child writes its copy; the parent's must not change
            view[:4] = b"zzzz"
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert bytes(view[:4]) == b"abcd"
