"""Stopping the real programs the test doubles start (docker-registry, Prometheus, Chromium,
``guard serve`` in an image): SIGTERM, a grace period, then SIGKILL; always reaped."""

from __future__ import annotations

import subprocess
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
