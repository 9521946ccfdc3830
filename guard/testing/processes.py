"""Stopping the real programs the test doubles start (docker-registry, Prometheus, Chromium,
``guard serve`` in an image): SIGTERM, a grace period, then SIGKILL; always reaped."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from typing import Any


def stop_process(process: subprocess.Popen[Any], *, grace: float = 10.0) -> None:
    """Stop ``process``: SIGTERM, then SIGKILL when it has not exited within ``grace`` seconds."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def stop_process_group(process: subprocess.Popen[Any], *, grace: float = 10.0) -> None:
    """Stop ``process`` (started with ``start_new_session=True``) and every process of its group:
    SIGTERM to the group, then SIGKILL to what is left of it after ``grace`` seconds; the leader
    reaped. For a program that runs the real one as a child it does not signal (``unshare
    --fork``: SIGTERM ends unshare and leaves its child, ``guard serve`` in an image, running)."""
    with contextlib.suppress(ProcessLookupError):  # the whole group may be gone already
        os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    alive = _group_alive(process)
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = _group_alive(process)
    if alive:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def _group_alive(process: subprocess.Popen[Any]) -> bool:
    """Whether a process of ``process``'s group is left (the leader reaped once it exits)."""
    process.poll()
    try:
        os.killpg(process.pid, 0)
    except ProcessLookupError:
        return False
    return True
