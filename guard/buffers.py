"""Page-aligned buffers for the kernel to copy into (file reads, socket receives).

A ``bytearray`` of 1 MiB gets its bytes from malloc 16 bytes past a page boundary (malloc maps a
block that large and keeps its header in the first 16 bytes). On the AMD guests of the benchmarks
the kernel's copy into user memory runs 2-5x slower when the destination sits 1 to 31 bytes past
the source modulo a page (0, 32, 48, 1,040 or 4,144 bytes past are all fast), and the source of a
read from the page cache is a page: reading 1 GiB of a cached file into a buffer 16 bytes past a
page took 0.42-0.57 s of system time against 0.09-0.11 s on a page. A receive over loopback from a
sender writing whole pages: 0.39-0.54 s against 0.18-0.22 s a GiB; a blob from docker-registry
over loopback, where the sender's layout decides more, 0.31 against 0.29 s (medians of 10, within
their spread). An anonymous mapping starts on a page, so guard's read buffers are mappings.
"""

from __future__ import annotations

import mmap

__all__ = ["page_aligned"]


def page_aligned(size: int) -> memoryview:
    """A writable buffer of ``size`` bytes (at least one) that starts on a page boundary.

    The mapping is private: Python's ``mmap(-1, n)`` is shared by default, and a process forked
    from this one would then write into the same memory. It is unmapped when the last view of it
    is released."""
    if size < 1:
        raise ValueError(f"buffer size must be at least 1 byte, found {size}")
    return memoryview(mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS))
