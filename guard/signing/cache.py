"""A persistent cache of file digests, so each byte of a model is hashed once.

``guard sign`` fills it and ``guard push`` reads it. An entry is keyed by the file's real path,
size, mtime_ns, ctime_ns, inode and device, the algorithm and the byte range: any write to the
file changes its ctime, which user space cannot set back, so a stale entry is never used.
Verification never reads the cache (it always hashes the bytes). ``GUARD_DIGEST_CACHE=off``
disables it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from pathlib import Path

log = logging.getLogger(__name__)

# Keys per SELECT ... IN (...): under SQLite's oldest limit of 999 parameters.
_QUERY_KEYS = 500

_SCHEMA = "CREATE TABLE IF NOT EXISTS digests (key TEXT PRIMARY KEY, digest TEXT NOT NULL)"


def cache_key(real_path: str, st: os.stat_result, algorithm: str, start: int, end: int | None) -> str:
    span = "all" if end is None else f"{start}-{end}"
    return (
        f"{real_path}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ctime_ns}\0{st.st_ino}\0{st.st_dev}"
        f"\0{algorithm}\0{span}"
    )


class DigestCache:
    """A small SQLite table of digests. Thread-safe; failures to use it only log a warning."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._db = sqlite3.connect(str(path), check_same_thread=False, timeout=5)
            self._db.execute(_SCHEMA)
            self._db.commit()
        except (OSError, sqlite3.Error) as err:
            log.warning("digest cache %s unusable, hashing without it: %s", path, err)
            self._db = None

    @classmethod
    def default(cls) -> DigestCache:
        """The user's cache (``$XDG_CACHE_HOME/guard`` or ``~/.cache/guard``), or a disabled one
        when ``GUARD_DIGEST_CACHE`` is ``off``."""
        setting = os.environ.get("GUARD_DIGEST_CACHE", "").strip().lower()
        if setting in ("off", "0", "false", "no", "disabled"):
            return cls(None)
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        return cls(Path(base) / "guard" / "digests.sqlite3")

    @property
    def enabled(self) -> bool:
        return self._db is not None

    def get(self, key: str) -> str | None:
        if self._db is None:
            return None
        with self._lock:
            try:
                row = self._db.execute("SELECT digest FROM digests WHERE key = ?", (key,)).fetchone()
            except sqlite3.Error as err:
                log.warning("digest cache read failed: %s", err)
                return None
        return str(row[0]) if row else None

    def get_many(self, keys: list[str]) -> dict[str, str]:
        """The cached digests of ``keys`` (those found), in one query per ``_QUERY_KEYS`` keys:
        a model of 2,000 files took 2,000 queries (~15 us each)."""
        if self._db is None or not keys:
            return {}
        found: dict[str, str] = {}
        with self._lock:
            try:
                for start in range(0, len(keys), _QUERY_KEYS):
                    chunk = keys[start : start + _QUERY_KEYS]
                    marks = ",".join("?" * len(chunk))
                    rows = self._db.execute(
                        f"SELECT key, digest FROM digests WHERE key IN ({marks})",  # noqa: S608 - only ? marks
                        chunk,
                    )
                    found.update((str(key), str(digest)) for key, digest in rows)
            except sqlite3.Error as err:
                log.warning("digest cache read failed: %s", err)
                return {}
        return found

    def put(self, key: str, digest: str) -> None:
        if self._db is None:
            return
        with self._lock:
            try:
                self._db.execute("INSERT OR REPLACE INTO digests (key, digest) VALUES (?, ?)", (key, digest))
                self._db.commit()
            except sqlite3.Error as err:
                log.warning("digest cache write failed: %s", err)

    def put_many(self, items: list[tuple[str, str]]) -> None:
        """Store many (key, digest) pairs in one transaction."""
        if self._db is None or not items:
            return
        with self._lock:
            try:
                self._db.executemany("INSERT OR REPLACE INTO digests (key, digest) VALUES (?, ?)", items)
                self._db.commit()
            except sqlite3.Error as err:
                log.warning("digest cache write failed: %s", err)

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._db.close()
                self._db = None

    def __enter__(self) -> DigestCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
