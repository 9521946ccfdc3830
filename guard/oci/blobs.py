"""Streaming blob reads that verify the digest as the bytes go by (bounded memory)."""

from __future__ import annotations

import hashlib
import queue
import threading
from collections.abc import Callable, Iterator

from guard.errors import IntegrityError
from guard.oci.types import Descriptor, Store

_THREADED_FROM = 8 * 1024 * 1024  # bytes; smaller blobs are hashed inline


class _BackgroundHasher:
    """SHA-256 on a worker thread fed through a bounded queue (hashlib releases the GIL), so
    hashing overlaps the network and the disk; at most ``depth`` chunks are in flight."""

    def __init__(self, depth: int = 8) -> None:
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=depth)
        self._hash = hashlib.sha256()
        self._thread = threading.Thread(target=self._run, name="guard-blob-hash", daemon=True)
        self._thread.start()
        self._done = False

    def _run(self) -> None:
        while (chunk := self._queue.get()) is not None:
            self._hash.update(chunk)

    def update(self, chunk: bytes) -> None:
        self._queue.put(chunk)

    def hexdigest(self) -> str:
        if not self._done:
            self._queue.put(None)
            self._thread.join()
            self._done = True
        return self._hash.hexdigest()

    def close(self) -> None:
        """Stop the worker (on errors); it finishes the few chunks in flight and exits."""
        if not self._done:
            self._done = True
            self._queue.put(None)
            self._thread.join()


class _InlineHasher:
    def __init__(self) -> None:
        self._hash = hashlib.sha256()

    def update(self, chunk: bytes) -> None:
        self._hash.update(chunk)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()

    def close(self) -> None:
        pass


class VerifyingReader:
    """A file-like reader over a blob's chunks that hashes every byte and refuses more bytes
    than the descriptor's size. ``finish()`` drains the rest and checks digest and size."""

    def __init__(
        self,
        chunks: Iterator[bytes],
        descriptor: Descriptor,
        what: str,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self._chunks = chunks
        self._desc = descriptor
        self._what = what
        self._hasher: _BackgroundHasher | _InlineHasher = (
            _BackgroundHasher() if descriptor.size >= _THREADED_FROM else _InlineHasher()
        )
        self._seen = 0
        self._buffer = b""
        self._progress = progress

    def _take(self, chunk: bytes) -> bytes:
        self._seen += len(chunk)
        if self._seen > self._desc.size:
            self._hasher.close()
            raise IntegrityError(
                f"{self._what}: the registry sent more than the {self._desc.size} bytes the manifest "
                f"declares for {self._desc.digest}",
                changed=[self._what],
            )
        self._hasher.update(chunk)
        if self._progress is not None:
            self._progress(len(chunk))
        return chunk

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            out = self._buffer + b"".join(self._take(c) for c in self._chunks)
            self._buffer = b""
            return out
        while len(self._buffer) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += self._take(chunk)
        out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out

    def __iter__(self) -> Iterator[bytes]:
        if self._buffer:
            yield self._buffer
            self._buffer = b""
        for chunk in self._chunks:
            yield self._take(chunk)

    def close(self) -> None:
        """Release the hashing worker; safe to call after finish() and on errors."""
        self._hasher.close()

    def finish(self) -> None:
        for _ in self:
            pass
        actual = "sha256:" + self._hasher.hexdigest()
        if self._seen != self._desc.size or actual != self._desc.digest:
            raise IntegrityError(
                f"{self._what}: blob bytes do not match the manifest: expected {self._desc.digest} "
                f"({self._desc.size} bytes), received {actual} ({self._seen} bytes)",
                changed=[self._what],
            )


def read_small_blob(store: Store, descriptor: Descriptor, what: str, limit: int = 16 * 1024 * 1024) -> bytes:
    """A small blob (config, signature, SBOM) in memory, verified; refuses more than ``limit``."""
    if descriptor.size > limit:
        raise IntegrityError(
            f"{what}: {descriptor.size} bytes is more than the {limit} accepted for this kind of blob",
            changed=[what],
        )
    with store.fetch_blob(descriptor.digest) as chunks:
        reader = VerifyingReader(chunks, descriptor, what)
        data = reader.read()
        reader.finish()
    return data
