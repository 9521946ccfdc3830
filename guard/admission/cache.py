"""An async TTL cache with single-flight, for verification verdicts and tag resolutions.

- A value is kept ``ttl`` seconds; an error the caller marks cacheable (a verification failure)
  is kept ``negative_ttl`` seconds; other errors (registry down) are not kept at all.
- Single-flight: while a key is being computed, every other caller awaits the same computation,
  so N pods arriving together with the same model cause one verification.
- The computation runs as its own task: a caller that gives up (its deadline passed) does not
  cancel it, so its result still lands in the cache for the retry.
- A computation running longer than ``stale_after`` seconds is not joined: the next caller
  starts a fresh one (a registry that drips bytes must not hold a key for longer than one
  request's deadline); whichever finishes last leaves its result.
- At most ``max_entries`` keys; the least recently used go first.

One cache belongs to one event loop (one per webhook process).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

CacheEvent = Literal["hit", "negative_hit", "miss", "coalesced"]


@dataclass
class _Entry(Generic[V]):
    expires: float
    value: V | None = None
    error: BaseException | None = None


class SingleFlightCache(Generic[K, V]):
    def __init__(
        self,
        *,
        ttl: float,
        negative_ttl: float,
        max_entries: int,
        clock: Callable[[], float] = time.monotonic,
        on_event: Callable[[CacheEvent], None] | None = None,
        stale_after: float | None = None,
    ) -> None:
        self._stale_after = stale_after
        self._ttl = ttl
        self._negative_ttl = negative_ttl
        self._max = max_entries
        self._clock = clock
        self._on_event = on_event
        self._entries: OrderedDict[K, _Entry[V]] = OrderedDict()
        self._inflight: dict[K, tuple[float, asyncio.Future[V]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._entries)

    def _event(self, event: CacheEvent) -> None:
        if self._on_event is not None:
            self._on_event(event)

    def peek(self, key: K) -> _Entry[V] | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires <= self._clock():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry

    def _hit(self, key: K) -> _Entry[V] | None:
        """The live entry for ``key`` (an event ``hit``), raising the error it keeps
        (``negative_hit``); None, and no event, when there is none."""
        entry = self.peek(key)
        if entry is None:
            return None
        if entry.error is not None:
            self._event("negative_hit")
            raise entry.error
        self._event("hit")
        return entry

    def cached(self, key: K) -> V | None:
        """What ``get`` answers at once, without computing: the value kept for ``key``, or the
        error kept for it raised; None (no event: the ``get`` that follows counts the miss)."""
        entry = self._hit(key)
        return entry.value if entry is not None else None

    def invalidate(self, key: K | None = None) -> None:
        if key is None:
            self._entries.clear()
        else:
            self._entries.pop(key, None)

    async def get(
        self,
        key: K,
        compute: Callable[[], Awaitable[V]],
        *,
        keep_error: Callable[[BaseException], bool] = lambda _err: False,
    ) -> V:
        """The cached value for ``key``, or the result of ``compute()`` (once for all callers)."""
        entry = self._hit(key)
        if entry is not None:
            return entry.value  # type: ignore[return-value]
        running = self._inflight.get(key)
        if running is not None and not self._stale(running[0]):
            self._event("coalesced")
            return await asyncio.shield(running[1])
        self._event("miss")
        future = asyncio.get_running_loop().create_future()
        self._inflight[key] = (self._clock(), future)
        task = asyncio.create_task(self._run(key, compute, keep_error, future))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return await asyncio.shield(future)

    async def _run(
        self,
        key: K,
        compute: Callable[[], Awaitable[V]],
        keep_error: Callable[[BaseException], bool],
        future: asyncio.Future[V],
    ) -> None:
        try:
            value = await compute()
        except Exception as err:
            if self._negative_ttl > 0 and keep_error(err):
                self._store(key, _Entry(expires=self._clock() + self._negative_ttl, error=err))
            future.set_exception(err)
        else:
            if self._ttl > 0:
                self._store(key, _Entry(expires=self._clock() + self._ttl, value=value))
            future.set_result(value)
        finally:
            if self._inflight.get(key, (0.0, None))[1] is future:  # a fresher one may have taken over
                del self._inflight[key]
            if not future.done():  # cancelled while computing (loop shutting down)
                future.cancel()
        # Nobody may be waiting any more (every caller's deadline passed): mark retrieved.
        if not future.cancelled():
            future.exception()

    def _stale(self, started: float) -> bool:
        return self._stale_after is not None and self._clock() - started > self._stale_after

    def _store(self, key: K, entry: _Entry[V]) -> None:
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
