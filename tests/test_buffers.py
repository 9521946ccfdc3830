"""guard.buffers: the buffers the kernel copies into start on a page and are private to a process."""

from __future__ import annotations

import ctypes
import os

import pytest

from guard.buffers import page_aligned


def _address(view: memoryview) -> int:
    return ctypes.addressof(ctypes.c_char.from_buffer(view))


@pytest.mark.parametrize("size", [1, 4096, 1 << 20, (1 << 20) + 1])
def test_a_buffer_starts_on_a_page_and_has_the_size_asked(size: int) -> None:
    view = page_aligned(size)
    assert len(view) == size and not view.readonly
    assert _address(view) % 4096 == 0
    view[-1:] = b"x"
    assert bytes(view[-1:]) == b"x"


@pytest.mark.parametrize("size", [0, -1])
def test_an_empty_or_negative_size_is_refused_with_what_was_expected(size: int) -> None:
    with pytest.raises(ValueError, match=f"at least 1 byte, found {size}"):
        page_aligned(size)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_forked_process_writes_its_own_copy() -> None:
    """mmap(-1, n) is shared by default: a child's writes would land in the parent's buffer."""
    view = page_aligned(4096)
    view[:4] = b"abcd"
    pid = os.fork()
    if pid == 0:
        view[:4] = b"zzzz"
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert bytes(view[:4]) == b"abcd"
