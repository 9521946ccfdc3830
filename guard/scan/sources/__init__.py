"""Where the scan gets objects: one backend per file (``live``: the API server, ``snapshot``:
exported ``kubectl get -o json|yaml`` files), both behind ``ObjectSource``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from guard.scan.result import NotAssessed, Source
from guard.scan.targets import ScanTarget, Scope


class ObjectSink(Protocol):
    """Receives the objects of one kind. ``begin`` (again) discards what the kind had staged: a
    list restarted after a 410 delivers its objects anew; ``commit`` makes them count."""

    def begin(self, target: ScanTarget) -> None: ...

    def add(self, target: ScanTarget, obj: Mapping[str, Any]) -> None: ...

    def commit(self, target: ScanTarget) -> None: ...


@dataclass
class SourceOutcome:
    source: Source
    not_assessed: list[NotAssessed] = field(default_factory=list)
    listed_kinds: int = 0  # kinds listed in full
    failures: list[str] = field(default_factory=list)  # infrastructure failures (partial)


class ObjectSource(Protocol):
    def collect(self, targets: Sequence[ScanTarget], scope: Scope, sink: ObjectSink) -> SourceOutcome:
        """List every target into ``sink``. A kind that cannot be listed is recorded in the
        outcome (not assessed, with why), never raised; raise only when the source as a whole
        cannot be used (a file that does not parse, a config that does not load)."""
        ...
