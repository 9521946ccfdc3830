"""Fixtures for the policy tests: the shipped library, loaded once per session."""

from __future__ import annotations

import pytest

from guard.policy.library import PolicyLibrary, load_library


@pytest.fixture(scope="session")
def library() -> PolicyLibrary:
    return load_library()
