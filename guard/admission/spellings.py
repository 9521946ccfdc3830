"""Deprecated spellings of guard's annotation keys: ``guard.cnai.io`` became ``guard.cnai.dev``.

An object written with the old key is still checked (its references are read and verified, so the
old spelling never lets a reference through unread), and the decision carries a warning saying
which key to write. An object that carries both spellings with different values is denied: guard
never picks one of two answers to "which models does this run".
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from guard.admission.references import walk
from guard.admission.settings import KindSpec

REFERENCES_ANNOTATION = "models.guard.cnai.dev/references"
# new key -> the old spellings still read
DEPRECATED_ANNOTATIONS: Mapping[str, tuple[str, ...]] = {
    REFERENCES_ANNOTATION: ("models.guard.cnai.io/references",),
}
_SPLIT_RE = re.compile(r"[\s,]+")


def with_deprecated(keys: Sequence[str]) -> tuple[str, ...]:
    """The configured annotation keys and the old spellings of each (read as well)."""
    out = list(keys)
    for key in keys:
        out.extend(old for old in DEPRECATED_ANNOTATIONS.get(key, ()) if old not in out)
    return tuple(out)


@dataclass(frozen=True)
class Spellings:
    """What the annotation keys of one object say: warnings, and conflicts (deny)."""

    warnings: tuple[str, ...] = ()
    conflicts: tuple[str, ...] = ()


def _metadata(obj: Mapping[str, Any], kind: KindSpec) -> Iterator[tuple[str, Any]]:
    yield "metadata", obj.get("metadata")
    for path in kind.pod_metadata:
        yield from walk(obj, path)


def _items(value: object) -> frozenset[str]:
    if not isinstance(value, str):
        return frozenset()
    return frozenset(i for i in _SPLIT_RE.split(value.strip()) if i)


def check_spellings(obj: Mapping[str, Any] | None, kind: KindSpec, keys: Sequence[str]) -> Spellings:
    """Warnings for old annotation keys in ``obj`` (and its pod templates), and a conflict for
    each place that carries both spellings of one key with different values."""
    warnings: list[str] = []
    conflicts: list[str] = []
    for where, metadata in _metadata(obj or {}, kind):
        annotations = metadata.get("annotations") if isinstance(metadata, Mapping) else None
        if not isinstance(annotations, Mapping):
            continue
        for key in keys:
            for old in DEPRECATED_ANNOTATIONS.get(key, ()):
                if old not in annotations:
                    continue
                place = f"{where}.annotations[{old}]"
                if key in annotations and _items(annotations[key]) != _items(annotations[old]):
                    conflicts.append(
                        f"{place} and {where}.annotations[{key}] name different references; "
                        f"write only {key} (the old spelling {old} is deprecated)"
                    )
                else:
                    warnings.append(f"{place}: the annotation key {old} is deprecated; write {key}")
    return Spellings(tuple(warnings), tuple(conflicts))
