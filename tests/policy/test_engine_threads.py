"""A regorus Engine is "unsendable" (pyo3): dropped on another thread than its own, it raises
(printed as "regoruspy::Engine is unsendable, but is being dropped on another thread"). The
embedded engine's per-thread regorus engines must be dropped on their own threads, whichever
thread drops the EmbeddedEngine: the webhook's last reference often goes with a pool work item
or a garbage collection on another thread."""

from __future__ import annotations

import gc
import sys
import threading
from typing import Any

import pytest

from guard.policy.decision import Enforcement
from guard.policy.embedded import EmbeddedEngine
from guard.policy.examples import example_input
from guard.policy.library import load_library


def _deny(_policy: str) -> Enforcement:
    return "deny"


def test_engines_are_dropped_on_their_own_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    unraisable: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    library = load_library()
    engines = [EmbeddedEngine(library, _deny)]  # its first regorus engine: on this thread
    evaluated, dropped = threading.Event(), threading.Event()
    allowed: list[bool] = []

    def worker() -> None:
        allowed.append(engines[0].evaluate_sync(example_input()).allowed)  # a regorus engine here
        evaluated.set()
        dropped.wait(timeout=60)
        EmbeddedEngine(library, _deny).evaluate_sync(example_input())  # this thread goes on working

    thread = threading.Thread(target=worker)
    thread.start()
    assert evaluated.wait(timeout=60)
    engines.clear()  # the last reference, dropped here while the worker thread is alive
    gc.collect()
    dropped.set()
    thread.join(timeout=60)
    EmbeddedEngine(library, _deny).evaluate_sync(example_input())
    gc.collect()
    assert allowed == [True]
    assert [str(u.exc_value) for u in unraisable] == []
