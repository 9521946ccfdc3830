"""Streaming blob reads that verify the digest as the bytes go by (bounded memory)."""

from __future__ import annotations

import hashlib
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Protocol, runtime_checkable

from guard.buffers import page_aligned
from guard.errors import IntegrityError
from guard.oci.types import Descriptor, Store

PIPELINE_FROM = 8 * 1024 * 1024  # bytes; smaller blobs are copied without a reading thread
_DEPTH = 4  # buffers in flight between the reading thread and the hashing and writing one


@runtime_checkable
class _ReadsInto(Protocol):
    def readinto(self, buffer: bytearray | memoryview, /) -> int: ...


class VerifyingReader:
    """A file-like reader over a blob's chunks that hashes every byte and refuses more bytes
    than the descriptor's size. ``finish()`` drains the rest and checks digest and size.

    ``readinto`` fills a buffer the caller reuses, from the source's own ``readinto`` when it
    has one (``guard.oci.transport.BodyReader``): the bytes are hashed where they landed, in
    this thread (a hashing thread fed through a queue cost more CPU than it saved: a fresh 1 MiB
    chunk per read, handed between threads)."""

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
        self._hash = hashlib.sha256()
        self._source = chunks if isinstance(chunks, _ReadsInto) else None
        self._seen = 0
        self._pending = memoryview(b"")  # hashed bytes of the current chunk not yet returned
        self._progress = progress

    def _take(self, chunk: bytes | memoryview) -> None:
        self._seen += len(chunk)
        if self._seen > self._desc.size:
            raise IntegrityError(
                f"{self._what}: the registry sent more than the {self._desc.size} bytes the manifest "
                f"declares for {self._desc.digest}",
                changed=[self._what],
            )
        self._hash.update(chunk)
        if self._progress is not None:
            self._progress(len(chunk))

    def _next_pending(self) -> bool:
        """Take the next non-empty chunk of the source as the pending bytes; False at the end."""
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return False
            self._take(chunk)
            self._pending = memoryview(chunk)
        return True

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            parts: list[bytes | memoryview] = [self._pending]
            for chunk in self._chunks:
                self._take(chunk)
                parts.append(chunk)
            self._pending = memoryview(b"")
            return b"".join(parts)
        # the pending chunk is consumed through a view: a small read (tarfile asks for 10 KiB)
        # copies what it returns, never the rest of the chunk
        parts = []
        wanted = size
        while wanted > 0 and self._next_pending():
            piece = self._pending[:wanted]
            self._pending = self._pending[len(piece) :]
            parts.append(piece)
            wanted -= len(piece)
        return bytes(parts[0]) if len(parts) == 1 else b"".join(parts)

    def readinto(self, buffer: bytearray | memoryview) -> int:
        """Fill the start of ``buffer`` with the next bytes, hashed and counted; 0 at the end.
        Reads at most one byte past the declared size (enough to refuse an oversized blob)."""
        view = memoryview(buffer)
        if self._pending or self._source is None:
            if not self._next_pending():
                return 0
            count = min(len(view), len(self._pending))
            view[:count] = self._pending[:count]
            self._pending = self._pending[count:]
            return count
        limit = min(len(view), self._desc.size - self._seen + 1)
        count = self._source.readinto(view[:limit])
        self._take(view[:count])
        return count

    def __iter__(self) -> Iterator[bytes]:
        if self._pending:
            yield bytes(self._pending)
            self._pending = memoryview(b"")
        for chunk in self._chunks:
            self._take(chunk)
            yield chunk

    def copy_to(self, write: Callable[[memoryview], object], buffer_size: int) -> int:
        """Copy the rest of the blob to ``write``, hashed and counted; the number of bytes.

        A blob of ``PIPELINE_FROM`` bytes or more read from a source with ``readinto`` is read
        by a second thread into ``_DEPTH`` rotating buffers while this one hashes and writes
        the previous ones (the socket read, SHA-256 and the file write all release the GIL), so
        the network and the hashing overlap. The bytes are hashed and written in order, here;
        the reading thread only fills buffers, and stops at the first error or when this side
        stops (an oversized blob, a failed write)."""
        remaining = self._desc.size - self._seen
        if self._source is None or self._pending or remaining < PIPELINE_FROM:
            buffer = page_aligned(max(1, min(buffer_size, remaining + 1)))
            copied = 0
            while count := self.readinto(buffer):
                write(buffer[:count])
                copied += count
            return copied
        return self._copy_pipelined(self._source, write, buffer_size, remaining)

    def _copy_pipelined(
        self, source: _ReadsInto, write: Callable[[memoryview], object], buffer_size: int, remaining: int
    ) -> int:
        free: queue.Queue[memoryview | None] = queue.Queue()
        full: queue.Queue[tuple[memoryview, int] | BaseException] = queue.Queue()
        for _ in range(_DEPTH):
            free.put(page_aligned(buffer_size))
        stop = threading.Event()

        def read() -> None:
            left = remaining + 1  # one byte past the declared size reveals an oversized blob
            try:
                while (buffer := free.get()) is not None and not stop.is_set():
                    count = source.readinto(buffer[: min(len(buffer), left)])
                    left -= count
                    full.put((buffer, count))
                    if count == 0 or left <= 0:
                        return
            except BaseException as err:  # handed to the hashing side, which raises it
                full.put(err)

        thread = threading.Thread(target=read, name="guard-blob-read", daemon=True)
        thread.start()
        copied = 0
        try:
            while True:
                item = full.get()
                if isinstance(item, BaseException):
                    raise item
                buffer, count = item
                if count == 0:
                    break
                view = buffer[:count]
                self._take(view)  # refuses bytes past the declared size
                write(view)
                copied += count
                free.put(buffer)
        finally:
            stop.set()
            free.put(None)  # a reader waiting for a buffer ends now
            if not thread.is_alive() or copied == remaining:
                thread.join()
            # else it is in a read the caller's closing of the response ends (daemon thread)
        return copied

    def finish(self) -> None:
        for _ in self:
            pass
        actual = "sha256:" + self._hash.hexdigest()
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
