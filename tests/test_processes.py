"""Stopping the real programs tests start: a wrapper that leaves its child running when it is
stopped (``unshare --fork`` does, for ``guard serve`` in an image) is stopped with its group."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from guard.testing.processes import stop_process, stop_process_group

# a parent that ends on SIGTERM and leaves its child running, as unshare --fork does
WRAPPER = ["sh", "-c", "sleep 300 & echo $!; wait"]


def _running(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its reaper does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def _start() -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen(WRAPPER, stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert process.stdout is not None
    child = int(process.stdout.readline())
    assert _running(child)
    return process, child


def test_stopping_the_wrapper_alone_leaves_its_child_running() -> None:
    process, child = _start()
    try:
        stop_process(process)
        time.sleep(0.2)
        assert _running(child)  # what the image tests leaked: a guard serve per run
    finally:
        os.kill(child, 9)


def test_stopping_the_group_stops_the_child_too() -> None:
    process, child = _start()
    stop_process_group(process, grace=5)
    deadline = time.monotonic() + 5
    while _running(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _running(child)
    assert process.returncode is not None


def test_a_group_already_gone_is_no_error() -> None:
    process = subprocess.Popen(["true"], start_new_session=True)
    process.wait(timeout=10)
    stop_process_group(process)
    assert process.returncode == 0
