"""Recalls: artifacts and signers that must no longer run, whatever verified before.

A ``recalls:`` entry names a digest (a manifest, or any layer of one: a recalled weights file
repackaged under a new manifest still carries the same layer) or a signer identity (with an
optional issuer and a ``since`` time: signatures made before it still hold). Admission checks
the manifest digest *before* its verification cache and the layers and signers of a cached
verdict on every request, so a recall takes effect at once, whatever the cache TTL. ``guard scan``
reports every running workload a recall matches.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from guard.configmodel import ConfigModel
from guard.errors import VerificationError

if TYPE_CHECKING:
    from guard.admission.ports import VerifiedArtifact

RecallSeverity = Literal["critical", "high", "medium", "low"]
_DIGEST = r"^sha256:[0-9a-f]{64}$"


class Recall(ConfigModel):
    """One recall: exactly one of ``digest`` or ``signer``."""

    id: str = Field(
        min_length=1, pattern=r"^[A-Za-z0-9._:-]+$", description="A stable name, e.g. 'CVE-2026-1234'."
    )
    reason: str = Field(min_length=1, description="Why it is recalled (shown in denies and findings).")
    severity: RecallSeverity = "critical"
    digest: str | None = Field(
        default=None, pattern=_DIGEST, description="A manifest, layer or file digest (sha256:<hex>)."
    )
    signer: str | None = Field(
        default=None,
        min_length=1,
        description="A signer identity as guard reports it (key fingerprint, certificate subject, "
        "keyless SAN).",
    )
    issuer: str | None = Field(default=None, description="With signer: only this OIDC issuer / CA.")
    since: datetime | None = Field(
        default=None,
        description="With signer: only signatures made at or after this time (keyless: the log's "
        "integrated time); signatures with no known time are recalled.",
    )

    @model_validator(mode="after")
    def _one_target(self) -> Recall:
        if (self.digest is None) == (self.signer is None):
            raise ValueError(f"recall {self.id!r}: expected exactly one of digest or signer")
        if self.signer is None and (self.issuer is not None or self.since is not None):
            raise ValueError(f"recall {self.id!r}: issuer and since apply to a signer recall only")
        return self


class RecalledError(VerificationError):
    """The artifact (or its signer) is recalled."""

    def __init__(self, message: str, *, recall: Recall, matched: str) -> None:
        super().__init__(message)
        self.recall = recall
        self.matched = matched  # manifest | layer | signer


@dataclass(frozen=True)
class RecallMatch:
    recall: Recall
    matched: Literal["manifest", "layer", "signer"]
    value: str

    def error(self, digest: str) -> RecalledError:
        what = {
            "manifest": "its manifest",
            "layer": f"its layer {self.value}",
            "signer": f"its signer {self.value}",
        }
        return RecalledError(
            f"{digest} is recalled ({self.recall.id}, {self.recall.severity}): {what[self.matched]} matches "
            f"the recall: {self.recall.reason}",
            recall=self.recall,
            matched=self.matched,
        )


_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T")


def _signed_at(details: object) -> datetime | None:
    value = details.get("integrated_time") if isinstance(details, dict) else None
    if isinstance(value, str) and _ISO.match(value):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


class RecallIndex:
    """The recalls of a config, indexed for the per-request checks (O(1) per digest)."""

    def __init__(self, recalls: Iterable[Recall]) -> None:
        self._digests: dict[str, Recall] = {}
        self._signers: dict[str, list[Recall]] = {}
        for recall in recalls:
            if recall.digest is not None:
                self._digests.setdefault(recall.digest, recall)
            elif recall.signer is not None:
                self._signers.setdefault(recall.signer, []).append(recall)

    def __bool__(self) -> bool:
        return bool(self._digests or self._signers)

    def manifest(self, digest: str) -> RecallMatch | None:
        recall = self._digests.get(digest)
        return RecallMatch(recall, "manifest", digest) if recall else None

    def artifact(self, artifact: VerifiedArtifact) -> RecallMatch | None:
        """A recall matching the verified artifact: its manifest, a layer, or a signer."""
        found = self.manifest(artifact.digest)
        if found is not None:
            return found
        for layer in artifact.layers:
            recall = self._digests.get(layer)
            if recall is not None:
                return RecallMatch(recall, "layer", layer)
        for signer in artifact.signers:
            for recall in self._signers.get(signer.identity, ()):
                if recall.issuer is not None and recall.issuer != signer.issuer:
                    continue
                if recall.since is not None:
                    signed = _signed_at(dict(signer.details))
                    if signed is not None and signed < recall.since:
                        continue
                return RecallMatch(recall, "signer", signer.identity)
        return None
