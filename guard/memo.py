"""Bounded memos: what the requests of one template share, kept until there are too many."""

from __future__ import annotations

from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


def keep(memo: dict[K, V], key: K, value: V, limit: int) -> V:
    """Put ``value`` in ``memo`` under ``key``, emptying it first when it holds ``limit`` entries
    (what it holds is cheap to make again); returns ``value``."""
    if len(memo) >= limit:
        memo.clear()
    memo[key] = value
    return value
